"""Headless tests of the selection Lab on a tiny library and a tiny winning-team world: every number against the
routine it must come from (forward selection run afresh, the baselines, the decompositions, scipy's Kendall tau,
a greedy loop over the cached OSBORN scores)."""

import base64
import re
import zlib

import pytest
import torch
import traitlets
from scipy.stats import kendalltau

from ensemble_lab import metrics
from ensemble_lab.artefacts.transfer_world import ESTIMATORS, LABEL_SEEDS, TEAM_SIZES, teams
from ensemble_lab.decompositions import brier_decomposition, nll_decomposition
from ensemble_lab.labs import Lab, links
from ensemble_lab.labs.base import lab_work
from ensemble_lab.labs.selection import HILL_SIZES, MAX_STEPS, SelectionLab, SelectionState
from ensemble_lab.labs.selection import lab as lab_module
from ensemble_lab.selection import forward_select, select_team, top_k, uniform

from .conftest import assert_refused
from .selection_fixtures import tiny_library, tiny_transfer_world


@pytest.fixture(autouse=True)
def one_thread():
    """The oracles run as the Lab runs its work: one torch thread (many small ops are far slower on several)."""
    with lab_work():
        yield


@pytest.fixture(scope="module")
def library():
    return tiny_library()


@pytest.fixture(scope="module")
def world():
    return tiny_transfer_world()


@pytest.fixture(scope="module")
def shared_lab(library, world):
    lab = SelectionLab(library, world)
    return lab, lab.state.to_dict()


@pytest.fixture
def lab(shared_lab):
    lab, defaults = shared_lab
    assert lab.set(**defaults)
    return lab


def _test_split(library):
    return library.probs["test"].double(), library.labels["test"]


def _score(metric, probs, labels) -> float:
    """The metric forward selection climbs on, by ensemble_lab.metrics (lower is better)."""
    if metric == "nll":
        return metrics.nll(probs, labels)
    if metric == "brier":
        return metrics.brier(probs, labels)
    if metric == "ece":
        return metrics.ece(probs, labels)
    return 1.0 - metrics.accuracy(probs, labels)


def _ensemble(member_probs, counts) -> torch.Tensor:
    w = torch.as_tensor(counts, dtype=torch.float64)
    return torch.einsum("k,knc->nc", w / w.sum(), member_probs.double())


def _check_row(row, member_probs, labels, counts, hill, held_out):
    ens = _ensemble(member_probs, counts)
    assert row["hill"] == pytest.approx(hill, rel=1e-9)
    assert row["held_out"] == pytest.approx(held_out, rel=1e-9)
    assert row["nll"] == pytest.approx(metrics.nll(ens, labels), rel=1e-9)
    assert row["accuracy"] == pytest.approx(metrics.accuracy(ens, labels))
    assert row["ece"] == pytest.approx(metrics.ece(ens, labels), rel=1e-9, abs=1e-12)
    assert row["brier"] == pytest.approx(metrics.brier(ens, labels), rel=1e-9)
    assert row["models"] == int((torch.as_tensor(counts) > 0).sum())


def _first_max(values) -> int:
    values = torch.as_tensor(values).tolist()
    return values.index(max(values))


# -- defaults and the target's limits ----------------------------------------------------------------------------


def test_defaults_take_the_target_from_the_world_and_limit_it_to_the_worlds_targets(lab, library, world):
    assert lab.state.target == world.targets[0] == "t-a"
    assert lab.state.choices("target") == world.targets
    declared = {name: spec.default for name, spec in SelectionState.table().items()}
    assert declared["target"] == "rotated + sticker"  # the real world's name: outside the tiny world's targets
    assert lab.state.to_dict() == {**declared, "target": "t-a"}
    assert lab.names == library.names
    other = SelectionLab(library, tiny_transfer_world(targets=("t-b", "t-a")))
    assert other.state.target == "t-b"
    with pytest.raises(ValueError, match=r"^state: target must be one of t-a, t-b; got 'rotated \+ sticker'"):
        SelectionLab(library, world, SelectionState())  # the State's own default is refused by name
    assert SelectionLab(library, world, SelectionState(target="t-b")).state.target == "t-b"


def test_hill_set_is_a_seeded_subset_of_the_validation_split(lab, library):
    n = library.labels["val"].shape[0]
    p_val, y_val = library.probs["val"].double(), library.labels["val"]
    for size in HILL_SIZES:
        for seed in (0, 1):
            idx = lab_module.hill_indices(n, size, seed)
            if size >= n:
                assert torch.equal(idx, torch.arange(n))
            else:
                assert idx.shape == (size,)
                assert torch.equal(idx, idx.unique())  # distinct and sorted
                assert int(idx.min()) >= 0
                assert int(idx.max()) < n
            p, y = lab.hill_set(size, seed)
            assert torch.equal(p, p_val[:, idx])
            assert torch.equal(y, y_val[idx])
    assert not torch.equal(lab_module.hill_indices(n, 100, 0), lab_module.hill_indices(n, 100, 1))


# -- the library: forward selection, its path, the baselines ------------------------------------------------------

CASES = [
    # metric, hill_size, bagging, init, steps, seed
    ("nll", 5000, False, 0, 25, 0),
    ("brier", 100, False, 2, 7, 0),
    ("ece", 250, False, 0, MAX_STEPS, 1),
    ("error", 500, False, 5, 1, 0),
    ("nll", 250, True, 3, 10, 2),  # bagged (20 bags: the costliest case, so only one)
]


def _fresh(lab, state, steps):
    p, y = lab.hill_set(state.hill_size, state.seed)
    return forward_select(
        p,
        y,
        metric=state.metric,
        steps=steps,
        init=state.init,
        bags=lab_module.N_BAGS if state.bagging else 1,
        seed=state.seed,
        held_out=_test_split(lab.library),
    )


@pytest.mark.parametrize(("metric", "hill_size", "bagging", "init", "steps", "seed"), CASES)
def test_forward_selection_row_and_path_are_forward_select_run_afresh(
    lab, library, metric, hill_size, bagging, init, steps, seed
):
    assert lab.set(metric=metric, hill_size=hill_size, bagging=bagging, init=init, steps=steps, seed=seed)
    r = lab.result
    fresh = _fresh(lab, lab.state, steps)
    counts = fresh.counts
    want_team = {library.names[i]: int(counts[i]) for i in range(library.k) if int(counts[i]) > 0}
    assert r.team == want_team
    assert list(r.team.values()) == sorted(r.team.values(), reverse=True)  # the largest first
    assert r.steps == steps
    assert r.metric == metric
    assert r.best_step == fresh.best_step
    assert (r.best_step is None) == bagging
    p_test, y_test = _test_split(library)
    row = r.table["forward selection"]
    _check_row(row, p_test, y_test, counts, fresh.score, fresh.held_out_score)
    assert row["held_out"] == pytest.approx(_score(metric, _ensemble(p_test, counts), y_test), rel=1e-9, abs=1e-12)
    # the curves: the long path of MAX_STEPS additions, the mean over bags at each ensemble size
    long = _fresh(lab, lab.state, MAX_STEPS)
    n_bags = lab_module.N_BAGS if bagging else 1
    assert len(long.path) == n_bags * (init + MAX_STEPS)
    sizes = list(range(1, init + MAX_STEPS + 1))
    assert r.path["step"].tolist() == sizes
    for key, field in (("hill", "score"), ("held_out", "held_out")):
        want = [sum(getattr(st, field) for st in long.path if st.step == i) / n_bags for i in sizes]
        assert r.path[key].tolist() == pytest.approx(want, rel=1e-6)  # the curves are kept in float32


@pytest.mark.parametrize(("metric", "hill_size", "seed"), [("nll", 5000, 0), ("ece", 100, 3), ("error", 250, 1)])
def test_baseline_rows_are_top_k_uniform_and_the_best_single_model(lab, library, metric, hill_size, seed):
    assert lab.set(metric=metric, hill_size=hill_size, seed=seed, steps=12)
    r = lab.result
    p, y = lab.hill_set(hill_size, seed)
    p_test, y_test = _test_split(library)
    ho = (p_test, y_test)
    k = int((_fresh(lab, lab.state, 12).counts > 0).sum())  # distinct models of the selection
    assert k == r.table["forward selection"]["models"]
    singles = [_score(metric, p[i], y) for i in range(library.k)]
    ranked = sorted(range(library.k), key=lambda i: (singles[i], i))
    best = ranked[0]
    assert list(r.table) == [
        "forward selection",
        f"top-{k}",
        f"uniform (all {library.k})",
        f"best single model ({library.names[best]})",
    ]
    top = top_k(p, y, k, metric=metric, held_out=ho)
    assert sorted(int(i) for i in top.counts.nonzero()) == sorted(ranked[:k])
    top_counts = torch.zeros(library.k)
    top_counts[ranked[:k]] = 1
    _check_row(r.table[f"top-{k}"], p_test, y_test, top_counts, top.score, top.held_out_score)
    assert top.score == pytest.approx(_score(metric, _ensemble(p, top_counts), y), rel=1e-9, abs=1e-12)
    every = uniform(p, y, metric=metric, held_out=ho)
    ones = torch.ones(library.k)
    _check_row(r.table[f"uniform (all {library.k})"], p_test, y_test, ones, every.score, every.held_out_score)
    one = torch.zeros(library.k)
    one[best] = 1
    row = r.table[f"best single model ({library.names[best]})"]
    _check_row(row, p_test, y_test, one, singles[best], _score(metric, p_test[best], y_test))


@pytest.mark.parametrize("metric", ["nll", "brier", "ece", "error"])
def test_decompositions_use_the_selection_counts_on_the_test_split(lab, library, metric):
    assert lab.set(metric=metric, steps=9, hill_size=250)
    r = lab.result
    counts = _fresh(lab, lab.state, 9).counts
    p_test, y_test = _test_split(library)
    fn = nll_decomposition if metric == "nll" else brier_decomposition
    for name, weights in (("forward selection", counts.tolist()), ("uniform", None)):
        got, want = r.decomposition[name], fn(p_test, y_test, weights=weights)
        assert got.loss == ("nll" if metric == "nll" else "brier")
        assert got.mean_member_loss == pytest.approx(want.mean_member_loss, rel=1e-12)
        assert got.diversity == pytest.approx(want.diversity, rel=1e-9)
        assert got.ensemble_loss == pytest.approx(want.ensemble_loss, rel=1e-12)
        assert got.ensemble_loss == pytest.approx(got.mean_member_loss - got.diversity, rel=1e-12)
        assert got.diversity >= 0
        assert (got.diversity > 1e-12) == (weights is None or sum(c > 0 for c in weights) > 1)
    loss = "nll" if metric == "nll" else "brier"  # the table and the bars tell the same story
    assert r.decomposition["forward selection"].ensemble_loss == pytest.approx(
        r.table["forward selection"][loss], rel=1e-9
    )
    assert r.decomposition["uniform"].ensemble_loss == pytest.approx(
        r.table[f"uniform (all {library.k})"][loss], rel=1e-9
    )
    assert "not applicable" in r.soup


def test_the_steps_slider_slides_along_one_cached_path(lab, monkeypatch):
    calls = []
    original = lab_module.forward_select
    monkeypatch.setattr(lab_module, "forward_select", lambda *a, **k: (calls.append(k["steps"]), original(*a, **k))[1])
    assert lab.set(metric="brier", hill_size=100, seed=5)  # a new path: computed once
    for steps in (1, 17, MAX_STEPS, 4):
        assert lab.set(steps=steps)
        assert lab.result.steps == steps
    assert calls == [MAX_STEPS]


# -- the winning team ----------------------------------------------------------------------------------------------


def _greedy_osborn(world, target, seed, size):
    """Greedy team building over the cached OSBORN scores: add the source whose team scores highest (ties: the
    lowest index)."""
    team: list[int] = []
    for _ in range(size):
        best, best_value = None, None
        for c in range(len(world.sources)):
            if c in team:
                continue
            cand = tuple(sorted([*team, c]))
            k = len(cand)
            value = float(world.scores[(target, seed)]["OSBORN"][k][world.teams[k].index(cand)])
            if best_value is None or value > best_value:
                best, best_value = c, value
        team.append(best)
    return tuple(sorted(team))


@pytest.mark.parametrize(
    ("target", "label_seed", "team_size", "estimator"),
    [
        ("t-a", 0, 2, "OSBORN"),
        ("t-a", 0, 3, "OSBORN w/o cohesion"),  # four teams tie for the best accuracy, six for the top score
        ("t-a", 0, 1, "MS-LEEP"),
        ("t-b", 2, 3, "E-LEEP"),
        ("t-b", 1, 2, "OSBORN w/o cohesion"),
    ],
)
def test_winning_team_numbers(lab, world, target, label_seed, team_size, estimator):
    assert lab.set(target=target, label_seed=label_seed, team_size=team_size, estimator=estimator)
    r = lab.result
    key = (target, label_seed)
    assert r.teams == world.teams[team_size] == teams(len(world.sources), team_size)
    assert r.sources == world.sources
    truth = world.accuracy[key][team_size]
    assert torch.equal(r.truth, truth)
    assert torch.equal(r.scores, world.scores[key][estimator][team_size])
    assert set(r.tau) == set(ESTIMATORS)
    for e in ESTIMATORS:
        s = world.scores[key][e][team_size]
        assert r.tau[e] == pytest.approx(kendalltau(s.numpy(), truth.numpy()).statistic, rel=1e-12)
        i = _first_max(s)
        assert r.picks[e] == (r.teams[i], pytest.approx(float(truth[i])))
    b = _first_max(truth)
    assert r.best == (r.teams[b], pytest.approx(float(truth[b])))
    assert r.best_index == b
    assert r.pick_index == _first_max(r.scores)
    assert r.teams[r.pick_index] == r.picks[estimator][0]
    assert float(r.truth[r.pick_index]) == r.picks[estimator][1]
    greedy = _greedy_osborn(world, target, label_seed, team_size)
    assert r.picks["OSBORN greedy"] == (greedy, pytest.approx(float(truth[r.teams.index(greedy)])))
    osborn = world.scores[key]["OSBORN"]
    by_select_team = select_team(
        lambda t: float(osborn[len(t)][world.teams[len(t)].index(tuple(sorted(t)))]), len(world.sources), team_size
    )
    assert tuple(sorted(by_select_team.team)) == greedy


def test_ties_go_to_the_first_team(world):
    """The fixture's case where several teams share the best accuracy and the top score (else the test above
    could not tell the first maximum from another one)."""
    truth = world.accuracy[("t-a", 0)][3].tolist()
    scores = world.scores[("t-a", 0)]["OSBORN w/o cohesion"][3].tolist()
    assert truth.count(max(truth)) > 1
    assert scores.count(max(scores)) > 1


def test_greedy_osborn_is_not_always_the_top_scored_team():
    w = tiny_transfer_world(targets=("t-a", "faint + noise"))
    lab = SelectionLab(tiny_library(k=3, n_val=50, n_test=50), w)
    assert lab.set(target="faint + noise", label_seed=2, team_size=3)
    r = lab.result
    assert r.picks["OSBORN greedy"][0] == _greedy_osborn(w, "faint + noise", 2, 3)
    assert r.picks["OSBORN greedy"][0] != r.picks["OSBORN"][0]  # greedy is the paper's procedure, not the argmax


# -- refusals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (dict(metric="auc"), "metric must be one of nll, brier, ece, error; got 'auc'"),
        (dict(hill_size=300), "hill_size must be one of 100, 250, 500, 1000, 2500, 5000; got 300"),
        (dict(steps=0), "steps must be in [1, 50], got 0"),
        (dict(steps=51), "steps must be in [1, 50], got 51"),
        (dict(init=6), "init must be in [0, 5], got 6"),
        (dict(target="rotated + sticker"), "target must be one of t-a, t-b; got 'rotated + sticker'"),
        (dict(team_size=4), "team_size must be one of 1, 2, 3; got 4"),
        (dict(estimator="LEEP"), "estimator must be one of MS-LEEP, E-LEEP, OSBORN, OSBORN w/o cohesion; got"),
        (dict(label_seed=3), "label_seed must be one of 0, 1, 2; got 3"),
        (dict(bagging="yes"), "bagging must be True or False"),
    ],
)
def test_bad_settings_are_refused_and_the_state_stays(lab, change, fragment):
    assert lab.set(steps=7, target="t-b")  # not the defaults: a refusal must not reset them
    before = lab.state.to_dict()
    assert_refused(lab, change, fragment)
    assert_refused(lab, {**change, "seed": 9}, fragment)  # all or nothing: the valid part is not applied either
    name, value = next(iter(change.items()))
    with pytest.raises(traitlets.TraitError, match=re.escape(fragment)):
        setattr(lab.state, name, value)
    assert lab.state.to_dict() == before
    assert lab.result.steps == 7


def test_an_init_larger_than_a_bag_is_refused_by_the_computation(lab):
    assert lab.set(bagging=True, init=3)  # 20 bags of 3 of the 6 models
    state, result = lab.state.to_dict(), lab.result
    assert_refused(lab, dict(init=4), "init must be at most the bag size int(bag_fraction * K) = 3")
    lab.state.init = 4  # assigned directly: computed, refused, rolled back
    assert lab.state.to_dict() == state
    assert lab.result is result
    assert "init must be at most the bag size" in lab.status
    assert_refused(lab, dict(bagging=False, init=4, hill_size=1234), "hill_size")


def test_wrong_constructor_arguments_are_named(library, world):
    with pytest.raises(TypeError, match=r"^library must be a ModelLibrary .*got TransferWorld"):
        SelectionLab(world, library)
    with pytest.raises(TypeError, match=r"^world must be a TransferWorld .*got ModelLibrary"):
        SelectionLab(library, library)
    with pytest.raises(TypeError, match=r"^world must be a TransferWorld .*got NoneType"):
        SelectionLab(library, None)
    with pytest.raises(TypeError, match="state must be a SelectionState, got dict"):
        SelectionLab(library, world, {"steps": 3})


# -- links ---------------------------------------------------------------------------------------------------------


def test_link_round_trip(library, world):
    lab = SelectionLab(library, world)
    default_link = lab.link()
    assert default_link.startswith("el1.selection.")
    assert links.decode_link(default_link)["settings"] == {}  # the world's first target is this data's default
    changes = dict(  # bagging stays off: each Lab below would recompute 20 bags (a bool round trip: test_links)
        metric="brier",
        hill_size=250,
        init=2,
        steps=7,
        target="t-b",
        team_size=3,
        estimator="E-LEEP",
        label_seed=2,
        seed=4,
    )
    assert lab.set(**changes), lab.status
    text = lab.link()
    assert re.match(r"^[A-Za-z0-9_.-]+$", text)
    assert links.decode_link(text)["settings"] == changes
    want = lab.state.to_dict()
    for opener in (SelectionLab, Lab):
        again = opener.from_link(text, library, world)
        assert type(again) is SelectionLab
        assert again.state.to_dict() == want
        assert again.link() == text
        assert again.result.team == lab.result.team
        assert again.result.table == lab.result.table
    assert (
        SelectionLab.from_link(default_link, library, world).state.to_dict()
        == SelectionLab(library, world).state.to_dict()
    )
    other = SelectionLab(library, world)
    assert other.apply_link(text)
    assert other.state.to_dict() == want


def test_a_link_made_on_another_world_is_refused(library, world):
    lab = SelectionLab(library, world)
    assert lab.set(steps=3)
    text = lab.link()
    swapped = tiny_transfer_world(targets=("t-b", "t-a"))  # another first target: another default
    with pytest.raises(ValueError, match="link was made on other data"):
        SelectionLab.from_link(text, library, swapped)
    digest = links.decode_link(text)["digest"]
    forged = "el1.selection." + base64.urlsafe_b64encode(
        zlib.compress(f'{{"d": "{digest}", "s": {{"target": "faint + noise"}}}}'.encode())
    ).decode().rstrip("=")
    with pytest.raises(ValueError, match=r"^link: its settings do not fit this Lab's data: target must be one of"):
        SelectionLab.from_link(forged, library, world)


# -- challenges ----------------------------------------------------------------------------------------------------


def _status(lab):
    return {c.key: (solved, text) for c, solved, text in lab.challenge_status()}


def test_small_hill_set_challenge_follows_the_settings(lab):
    solved, text = _status(lab)["small-hill-set"]
    nll = lab.result.table["forward selection"]["held_out"]
    assert not solved
    assert text == (
        f"hill-climbing images 5000 (goal ≤ 100) · metric nll (goal = nll) ✓ · held-out NLL {nll:.3f} (goal ≤ 0.345)"
        + (" ✓" if nll <= 0.345 else "")
    )
    assert lab.set(hill_size=100)
    solved, text = _status(lab)["small-hill-set"]
    nll = lab.result.table["forward selection"]["held_out"]
    assert nll > 0.345  # the tiny library is weaker than the real one
    assert text == (
        f"hill-climbing images 100 (goal ≤ 100) ✓ · metric nll (goal = nll) ✓ · held-out NLL {nll:.3f} (goal ≤ 0.345)"
    )
    assert not solved
    assert lab.set(metric="brier")
    solved, text = _status(lab)["small-hill-set"]
    row = lab.result.table["forward selection"]
    assert "metric brier (goal = nll) ·" in text
    assert not solved
    assert row["held_out"] != pytest.approx(row["nll"])  # climbing on Brier: its held-out score is a Brier score
    assert text.endswith(f"held-out NLL {row['nll']:.3f} (goal ≤ 0.345)")  # the NLL, whatever the metric


def test_winning_team_challenge_is_solved_by_a_good_estimator_only():
    w = tiny_transfer_world(targets=("t-a", "faint + noise"))
    lab = SelectionLab(tiny_library(k=3, n_val=50, n_test=50), w)
    solved, text = _status(lab)["winning-team"]
    assert not solved
    assert text.startswith("target t-a (goal = faint + noise) · team size 2 (goal = 3) · its team's accuracy ")
    assert lab.set(target="faint + noise", team_size=3, label_seed=1, estimator="OSBORN")
    r = lab.result
    truth = w.accuracy[("faint + noise", 1)][3]
    best = float(truth.max())
    osborn = float(truth[_first_max(w.scores[("faint + noise", 1)]["OSBORN"][3])])
    assert osborn >= best - 0.01
    solved, text = _status(lab)["winning-team"]
    assert solved
    assert text == (
        "target faint + noise (goal = faint + noise) ✓ · team size 3 (goal = 3) ✓ · its team's accuracy "
        f"{100 * osborn:.1f}% (goal ≥ best team - 1 point, {100 * (best - 0.01):.1f}%) ✓"
    )
    assert lab.set(estimator="MS-LEEP")
    ms_leep = float(truth[_first_max(w.scores[("faint + noise", 1)]["MS-LEEP"][3])])
    assert ms_leep < best - 0.01
    assert r.picks["MS-LEEP"][1] == pytest.approx(ms_leep)
    solved, text = _status(lab)["winning-team"]
    assert not solved
    bound = f"{100 * (best - 0.01):.1f}%"
    assert text.endswith(f"its team's accuracy {100 * ms_leep:.1f}% (goal ≥ best team - 1 point, {bound})")
    assert lab.set(team_size=2, estimator="OSBORN")
    assert not _status(lab)["winning-team"][0]


def test_every_label_seed_and_team_size_is_in_the_tiny_world(world):
    for target in world.targets:
        for seed in LABEL_SEEDS:
            assert set(world.accuracy[(target, seed)]) == set(TEAM_SIZES)
            assert set(world.scores[(target, seed)]) == set(ESTIMATORS)
            assert world.osborn_terms[(target, seed)].shape == (len(world.sources), 3)
