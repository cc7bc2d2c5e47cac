"""Headless tests of the soups Lab on a tiny world: every number against the routines it should come from."""

import re

import pytest
import torch
import torch.nn.functional as F
import traitlets
from soups_fixtures import tiny_world

from ensemble_lab import combine, metrics, soups
from ensemble_lab.artefacts.soup_world import ALPHAS, SHIFTED, ZERO_SHOT, endpoint_name
from ensemble_lab.labs.soups import ALL_SHIFTED, SoupsLab, SoupsState
from ensemble_lab.labs.soups import lab as soups_lab

from .conftest import assert_refused


@pytest.fixture(scope="module")
def world():
    return tiny_world()


@pytest.fixture(scope="module")
def shared_lab(world):
    lab = SoupsLab(world)  # built once: a new checklist refits the learned soup
    return lab, lab.state.to_dict()


@pytest.fixture
def lab(shared_lab):
    lab, defaults = shared_lab
    assert lab.set(**defaults)
    return lab


def _acc(logits, y):
    return float((logits.argmax(-1) == y).double().mean())


def _shifted(world, per_split):
    return torch.cat([per_split[s] for s in SHIFTED], dim=-2), torch.cat([world.labels[s] for s in SHIFTED])


def test_wise_ft_curve_and_row_match_the_interpolated_models(lab, world):
    assert lab.set(alpha=0.3, lr=1e-3, head_scale=0.5)
    r = lab.result
    name = endpoint_name(1e-3)
    assert r.endpoint == name
    b = soups.scale_head(world.states[name], "head", 0.5)
    model = world.model
    model.load_state_dict(soups.interpolate(world.states[ZERO_SHOT], b, 0.3))
    with torch.no_grad():
        per_split = {s: model(x) for s, x in world.images.items()}
    model.load_state_dict(world.states[ZERO_SHOT])
    assert r.point["id_acc"] == pytest.approx(_acc(per_split["test"], world.labels["test"]))
    z, y = _shifted(world, per_split)
    assert r.point["shift_acc"] == pytest.approx(_acc(z, y))
    assert r.point["shift_ece"] == pytest.approx(metrics.ece(z.double().softmax(-1), y), abs=1e-6)
    row = r.table["WiSE-FT (alpha 0.3)"]
    assert row["acc_shift"] == pytest.approx(_acc(z, y))
    assert row["passes"] == 1
    assert row["nll_id"] == pytest.approx(
        F.cross_entropy(per_split["test"].double(), world.labels["test"]).item(), rel=1e-4
    )
    assert r.curve["id_acc"].shape == (len(ALPHAS),)
    assert float(r.curve["id_acc"][3]) == pytest.approx(r.point["id_acc"])


def test_soup_rows_match_the_soup_routines(lab, world):
    assert lab.set(ingredients=[endpoint_name(3e-4), endpoint_name(1e-3), "LS 0.1", endpoint_name(1e-2)])
    r = lab.result
    names = [endpoint_name(3e-4), endpoint_name(1e-3), "LS 0.1", endpoint_name(1e-2)]  # checklist order
    states = [world.states[n] for n in names]
    xv, yv = world.images["val"], world.labels["val"]
    model = world.model

    def run(sd, x):
        model.load_state_dict(sd)
        with torch.no_grad():
            out = model(x)
        model.load_state_dict(world.states[ZERO_SHOT])
        return out

    greedy = soups.greedy_soup(states, lambda sd: _acc(run(sd, xv), yv))
    assert r.greedy_kept == tuple(names[i] for i in greedy.kept)
    yt = world.labels["test"]
    assert r.table["greedy soup"]["acc_id"] == pytest.approx(_acc(run(greedy, world.images["test"]), yt))
    assert r.table["uniform soup"]["acc_id"] == pytest.approx(
        _acc(run(soups.uniform_soup(states), world.images["test"]), yt)
    )
    probs = combine.combine(torch.stack([world.logits[n]["test"] for n in names]), rule="prob")
    ens = r.table["output ensemble"]
    assert ens["acc_id"] == pytest.approx(metrics.accuracy(probs, yt))
    assert ens["nll_id"] == pytest.approx(metrics.nll(probs.double(), yt), rel=1e-5)
    assert ens["passes"] == 4
    assert ens["macs"] == pytest.approx(4 * lab.macs)
    best = max(names, key=lambda n: _acc(world.logits[n]["val"], yv))
    assert f"best ingredient ({best})" in r.table
    coefficients, groups = r.learned
    assert coefficients.shape == (4, len(groups))
    assert torch.allclose(coefficients.sum(0), torch.ones(len(groups), dtype=torch.float64))


def test_soup_mix_is_the_tables_and_mix_soups_without_the_learned_soup(lab, world):
    names = [endpoint_name(3e-4), endpoint_name(1e-3), "LS 0.1"]
    assert lab.set(ingredients=names[::-1])
    mix = lab.soup_mix(names[::-1])  # checklist order whatever the order asked
    assert mix is lab.soup_mix(names)  # computed once per checklist, shared with the table
    assert mix.greedy_kept == lab.result.greedy_kept
    yt = world.labels["test"]
    for row in ("uniform soup", "greedy soup", "learned soup", "output ensemble"):
        assert _acc(mix.logits[row]["test"], yt) == pytest.approx(lab.result.table[row]["acc_id"])
    quick = soups_lab.mix_soups(world, names, learned=False)
    assert "learned soup" not in quick.logits
    assert quick.learned[1] == ()
    assert torch.equal(quick.logits["greedy soup"]["test"], mix.logits["greedy soup"]["test"])
    with pytest.raises(ValueError, match="names must be a non-empty list"):
        lab.soup_mix(["nope"])
    with pytest.raises(ValueError, match="names must be ingredients of the world"):
        soups_lab.mix_soups(world, ["nope"])


def test_split_and_line(lab, world):
    assert lab.set(split="noisy", line_a=ZERO_SHOT, line_b=endpoint_name(1e-2))
    r = lab.result
    assert r.shift_name == "noisy"
    z = world.logits[ZERO_SHOT]["noisy"]
    assert r.table["zero-shot"]["acc_shift"] == pytest.approx(_acc(z, world.labels["noisy"]))
    yv = world.labels["val"]
    assert float(r.line["loss"][0]) == pytest.approx(
        F.cross_entropy(world.logits[ZERO_SHOT]["val"].double(), yv).item(), rel=1e-5
    )
    assert float(r.line["acc"][-1]) == pytest.approx(_acc(world.logits[endpoint_name(1e-2)]["val"], yv))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(alpha=0.35), "alpha"),
        (dict(alpha=1.5), "alpha"),
        (dict(lr=5e-3), "lr"),
        (dict(head_scale=0.0), "head_scale"),
        (dict(split="sepia"), "split"),
        (dict(soup="soup of the day"), "soup"),
        (dict(ingredients=[]), "ingredients"),
        (dict(ingredients=["lr 9"]), "ingredients"),
        (dict(line_a="lr 9"), "line_a"),
        (dict(line_a=endpoint_name(1e-2)), "line_a and line_b"),
    ],
)
def test_bad_settings_leave_state_and_result_unchanged(lab, change, match):
    before = lab.state.to_dict()
    assert_refused(lab, change, match)
    name, value = next(iter(change.items()))
    if change in (dict(ingredients=[]), dict(line_a=endpoint_name(1e-2))):
        setattr(lab.state, name, value)  # needs the world (none checked, both ends equal): rolled back
    else:  # the State's table refuses at once
        with pytest.raises(traitlets.TraitError, match=re.escape(match)):
            setattr(lab.state, name, value)
    assert lab.state.to_dict() == before


def test_settings_round_trip_and_switching_endpoints(lab):
    assert lab.set(bang=True, lr=3e-3, alpha=0.0, split=ALL_SHIFTED, soup="learned")
    assert lab.result.endpoint == endpoint_name(3e-3, True)
    assert lab.result.current == "learned soup"
    # alpha 0 is the zero-shot model whatever the endpoint
    assert lab.result.point["id_acc"] == pytest.approx(lab.result.table["zero-shot"]["acc_id"])
    copy = SoupsState.from_json(lab.state.to_json())
    assert copy.to_dict() == lab.state.to_dict()
