"""Headless tests of the cascades Lab: every number against the cascades routines it should come from."""

from types import SimpleNamespace

import pytest
import torch

from ensemble_lab import cascades, selective
from ensemble_lab.labs import CascadesLab, CascadesState
from ensemble_lab.labs.cascades.lab import SWEEP

from .conftest import assert_refused

K, C, N = 3, 5, 800


def _predictions(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits, labels = {}, {}
    for split, noise in (("val", 1.2), ("test", 1.2), ("noise-3", 2.5)):
        y = torch.randint(0, C, (N,), generator=g)
        logits[split] = 2.0 * torch.nn.functional.one_hot(y, C).float() + noise * torch.randn(K, N, C, generator=g)
        labels[split] = y
    return SimpleNamespace(logits=logits, labels=labels)


COSTS = [10.0, 10.0, 10.0]


@pytest.fixture
def lab():
    preds = _predictions()
    big = _predictions(1)  # a "larger single model": cleaner logits on the same labels
    single = SimpleNamespace(
        logits={
            s: 3.0 * torch.nn.functional.one_hot(preds.labels[s], C).float() + big.logits[s][0] for s in preds.logits
        }
    )
    return CascadesLab(preds, COSTS, singles={"big": (single, 40.0)})


def test_result_matches_the_routines(lab):
    z, y = lab._data.split("val")
    full_val_conf = cascades.stage_scores(z)[-1]
    full_val_ok = cascades.stage_probs(z)[-1].argmax(-1) == y
    tau = selective.threshold_for_risk(full_val_conf, full_val_ok, 0.05)
    r = lab.result
    assert r.tau == pytest.approx(tau)
    zt, yt = lab._data.split("test")
    want = cascades.window_cascade(zt, tau, 0.1, costs=COSTS, val_scores=cascades.stage_scores(z)[0])
    ok = want.predictions == yt
    assert r.cascade["macs"] == pytest.approx(float(want.cost.mean()))
    assert r.cascade["aurc"] == pytest.approx(selective.aurc(want.confidence, ok))
    assert (r.cascade["risk"], r.cascade["coverage"]) == pytest.approx(
        selective.selective_risk(want.confidence, ok, tau)
    )
    torch.testing.assert_close(r.exit_share, torch.bincount(want.exit_stage, minlength=K).double() / N)
    assert r.ensemble["macs"] == pytest.approx(30.0)
    assert len(r.frontier[0]) == len(SWEEP)
    assert bool((r.frontier[0].diff() >= -1e-9).all())


def test_window_extremes_and_threshold_policy(lab):
    assert lab.set(half_width=0.0)
    assert lab.result.cascade["macs"] == pytest.approx(10.0)
    assert float(lab.result.exit_share[0]) == 1.0
    assert lab.set(policy="threshold")
    zt, yt = lab._data.split("test")
    want = cascades.threshold_cascade(zt, lab.result.tau, costs=COSTS)
    assert lab.result.cascade["macs"] == pytest.approx(float(want.cost.mean()))


def test_stages_target_split_and_singles(lab):
    assert lab.set(order=[0, 1])
    assert lab.result.exit_share.shape == (2,)
    assert lab.result.ensemble["macs"] == pytest.approx(20.0)
    assert lab.set(target_kind="coverage", target=0.8)
    assert lab.result.ensemble["coverage"] == pytest.approx(0.8, abs=0.06)
    assert lab.set(split="noise-3")
    assert lab.result.split == "noise-3"
    big = lab.result.singles["big"]
    assert big["macs"] == 40.0
    assert big["accuracy"] > lab.result.ensemble["accuracy"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"half_width": 0.7}, "half_width must be in [0, 0.5]"),
        ({"target": 0.0}, "target must be in (0, 1]"),
        ({"order": [0, 0]}, "order must list distinct members"),
        ({"order": [5]}, "order must list distinct members"),
        ({"policy": "greedy"}, "policy must be one of"),
        ({"score": "margin"}, "score must be one of"),
        ({"split": "nope"}, "split must be one of"),
    ],
)
def test_bad_settings_go_to_the_status_line(lab, changes, fragment):
    assert_refused(lab, changes, fragment)


def test_unreachable_risk_names_what_the_data_can_reach():
    preds = _predictions()
    g = torch.Generator().manual_seed(5)
    preds.labels["val"] = torch.randint(0, C, (N,), generator=g)  # val labels unrelated to the logits
    lab = CascadesLab(preds, COSTS, state=CascadesState(target=0.95))
    state = lab.state.to_dict()
    assert not lab.set(target=0.05)
    assert "target_risk" in lab.status
    assert "lowest" in lab.status.lower()
    assert lab.state.to_dict() == state


def test_bad_costs():
    with pytest.raises(ValueError, match="costs must be 3 finite non-negative"):
        CascadesLab(_predictions(), [1.0, 2.0])
    with pytest.raises(ValueError, match="costs"):
        CascadesLab(_predictions(), [1.0, -2.0, 1.0])


def test_state_round_trips(lab):
    lab.set(order=[2, 0], score="neg_entropy", half_width=0.2, split="noise-3")
    copy = CascadesLab(_predictions(), COSTS, state=CascadesState.from_json(lab.state.to_json()))
    assert copy.result.cascade == lab.result.cascade


def test_view_controls(lab):
    view = lab.view
    view.half_width.value = 0.0
    assert lab.state.half_width == 0.0
    assert "stage 1: 100.0%" in view.table.value
    view.stages.value = 2
    assert lab.state.order == [0, 1]
    view.policy.value = "threshold"
    assert lab.state.policy == "threshold"
    assert "ok" in view.status.value


def test_ood_detection_on_a_shifted_split(lab):
    assert lab.result.ood is None
    assert lab.set(split="noise-3")
    ood = lab.result.ood
    z_in, z_out = lab._data.split("test")[0], lab._data.split("noise-3")[0]
    full_in, full_out = cascades.stage_scores(z_in)[-1], cascades.stage_scores(z_out)[-1]
    assert ood["full ensemble"]["auroc"] == pytest.approx(selective.ood_auroc(full_in, full_out))
    assert ood["full ensemble"]["fpr95"] == pytest.approx(selective.fpr_at_tpr(full_in, full_out, 0.95))
    z_val = lab._data.split("val")[0]
    tau, val0 = lab.result.tau, cascades.stage_scores(z_val)[0]
    conf = [cascades.window_cascade(z, tau, 0.1, costs=COSTS, val_scores=val0).confidence for z in (z_in, z_out)]
    assert ood["cascade"]["auroc"] == pytest.approx(selective.ood_auroc(*conf))
    lo_cov, hi_cov = lab.result.window_coverage
    assert 0.0 <= lo_cov <= hi_cov <= 1.0


def test_members_text_box(lab):
    view = lab.view
    view.members.value = "2, 0"
    assert lab.state.order == [2, 0]
    assert view.stages.value == 2
    view.members.value = "0, x"
    assert "members must be member numbers" in view.status.value
    assert lab.state.order == [2, 0]
    assert view.members.value == "2, 0"
    view.split.value = "noise-3"
    assert "AUROC" in view.table.value


def test_frontier_reads_each_half_widths_curve_at_the_target(lab):
    z_val = lab._data.split("val")[0]
    zt, yt = lab._data.split("test")
    tau, val0 = lab.result.tau, cascades.stage_scores(z_val)[0]
    macs, quality = lab.result.frontier
    for i in (0, 5, len(SWEEP) - 1):
        r = cascades.window_cascade(zt, tau, SWEEP[i], costs=COSTS, val_scores=val0)
        assert float(macs[i]) == pytest.approx(float(r.cost.mean()))
        assert float(quality[i]) == pytest.approx(selective.coverage_at_risk(r.confidence, r.predictions == yt, 0.05))
    assert lab.set(target_kind="coverage", target=0.8)
    r = cascades.window_cascade(zt, lab.result.tau, 0.1, costs=COSTS, val_scores=val0)
    assert lab.result.quality == pytest.approx(selective.risk_at_coverage(r.confidence, r.predictions == yt, 0.8))
