"""Headless tests of the cascades Lab: every number against the cascades routines it should come from, and tau,
the windows and the adjusted windows against the authors' rule (Xia & Bouganis,
https://github.com/Guoxoug/window-early-exit, ``cascade_results.py``: tau on the FIRST stage's val scores and
correctness, the window in quantile space of those scores)."""

import math
from types import SimpleNamespace

import pytest
import torch

from ensemble_lab import cascades, selective
from ensemble_lab.labs import CascadesLab, CascadesState
from ensemble_lab.labs.cascades.lab import SWEEP, THRESHOLD_SWEEP

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


def _val(lab, order=(0, 1), score="msp"):
    z, y = lab._data.split("val")
    scores = cascades.stage_scores(z, score, order=list(order))
    correct = cascades.stage_probs(z, order=list(order)).argmax(-1) == y
    return scores, correct


def test_defaults_two_stages_and_a_window_with_two_finite_edges(lab):
    state = lab.state
    assert (state.order, state.target_kind, state.target, state.half_width) == ([0, 1], "coverage", 0.8, 0.1)
    assert state.adjusted is False
    r = lab.result
    assert r.exit_share.shape == (2,)
    lo, hi = r.window
    assert math.isfinite(lo)
    assert math.isfinite(hi)
    assert lo < r.tau < hi
    assert len(r.stage_windows) == 1
    assert 0.0 < float(r.exit_share[0]) < 1.0
    # tau for 80% coverage sits at val level ~0.2, so the window spans levels ~0.1 .. ~0.3 on any large val split
    for seed in (1, 2, 3):
        lo, hi = CascadesLab(_predictions(seed), COSTS).result.window
        assert math.isfinite(lo)
        assert math.isfinite(hi)


def test_tau_is_the_authors_rule_on_the_first_stage(lab):
    scores, correct = _val(lab)
    assert lab.result.tau == selective.threshold_for_coverage(scores[0], 0.8)
    assert lab.set(target_kind="risk", target=0.05)
    tau = selective.threshold_for_risk(scores[0], correct[0], 0.05)  # member 0 alone: its scores, its correctness
    assert lab.result.tau == tau
    z, y = lab._data.split("val")
    torch.testing.assert_close(scores[0], cascades.confidence_score(z[0], "msp"))
    assert bool((correct[0] == (z[0].argmax(-1) == y)).all())
    full = selective.threshold_for_risk(scores[-1], correct[-1], 0.05)  # the old rule: the full cascade's
    assert full != tau
    assert lab.set(order=[2, 0])  # the first stage is member 2 now
    assert lab.result.tau == selective.threshold_for_risk(
        cascades.confidence_score(z[2], "msp"), z[2].argmax(-1) == y, 0.05
    )


def test_result_matches_the_routines(lab):
    scores, correct = _val(lab)
    windows = cascades.fit_windows(scores[:1], correct[:1], 0.1, target_coverage=0.8)
    r = lab.result
    assert r.window == (windows.lo[0], windows.hi[0])
    assert r.stage_tau == windows.tau
    zt, yt = lab._data.split("test")
    want = cascades.fitted_cascade(zt, windows, costs=COSTS, order=[0, 1])
    # two stages: the same as the one-window cascade around tau in quantile space of the first stage's val scores
    legacy = cascades.window_cascade(zt, r.tau, 0.1, costs=COSTS, order=[0, 1], val_scores=scores[0])
    assert want.exit_stage.tolist() == legacy.exit_stage.tolist()
    ok = want.predictions == yt
    assert r.cascade["macs"] == pytest.approx(float(want.cost.mean()))
    assert r.cascade["aurc"] == pytest.approx(selective.aurc(want.confidence, ok))
    assert (r.cascade["risk"], r.cascade["coverage"]) == pytest.approx(
        selective.selective_risk(want.confidence, ok, r.tau)
    )
    torch.testing.assert_close(r.exit_share, torch.bincount(want.exit_stage, minlength=2).double() / N)
    assert r.ensemble["macs"] == pytest.approx(20.0)
    assert len(r.frontiers["window"][0]) == len(SWEEP)
    assert len(r.frontiers["threshold"][0]) == len(THRESHOLD_SWEEP) + 1


def test_three_stages_get_a_tau_and_a_window_each(lab):
    assert lab.set(order=[0, 1, 2], half_width=0.15)
    scores, correct = _val(lab, order=(0, 1, 2))
    r = lab.result
    assert len(r.stage_tau) == 2
    for j in range(2):  # each in its own stage's val quantile space
        assert r.stage_tau[j] == selective.threshold_for_coverage(scores[j], 0.8)
        w = cascades.fit_windows(scores[j], None, 0.15, target_coverage=0.8)
        assert r.stage_windows[j] == (w.lo[0], w.hi[0])
    assert r.tau == r.stage_tau[0]
    assert r.stage_windows[0] != r.stage_windows[1]
    zt, _ = lab._data.split("test")
    windows = cascades.fit_windows(scores[:2], correct[:2], 0.15, target_coverage=0.8)
    want = cascades.fitted_cascade(zt, windows, costs=COSTS, order=[0, 1, 2])
    torch.testing.assert_close(r.exit_share, torch.bincount(want.exit_stage, minlength=3).double() / N)
    assert r.cascade["macs"] == pytest.approx(float(want.cost.mean()))
    assert float(r.exit_share[1]) > 0  # some samples do stop at the middle stage


def test_adjusted_window_on_a_shifted_split(lab):
    assert lab.set(split="noise-3")
    plain = lab.result
    assert lab.set(adjusted=True)
    r = lab.result
    assert r.adjusted
    assert r.tau == plain.tau  # tau stays the val one
    scores, correct = _val(lab)
    fitted = cascades.fit_windows(scores[:1], correct[:1], 0.1, target_coverage=0.8)
    z_shift, y_shift = lab._data.split("noise-3")
    deploy = cascades.stage_scores(z_shift, "msp", order=[0, 1])[:1]  # unlabelled: no y_shift used
    adjusted = cascades.adjust_windows(fitted, deploy)
    assert r.window == (adjusted.lo[0], adjusted.hi[0])
    assert r.window != plain.window
    assert math.isfinite(r.window[0])
    assert math.isfinite(r.window[1])
    # the re-estimated window passes on about 2q of the shifted images again; the val window does not
    assert float(r.exit_share[1]) == pytest.approx(0.2, abs=3 / N)
    assert abs(float(plain.exit_share[1]) - 0.2) > 0.05
    want = cascades.fitted_cascade(z_shift, adjusted, costs=COSTS, order=[0, 1])
    assert r.cascade["aurc"] == pytest.approx(selective.aurc(want.confidence, want.predictions == y_shift))
    # the window frontier is adjusted too (its point at the current half-width is the current cascade)
    i = SWEEP.index(0.1)
    assert float(r.frontiers["window"][0][i]) == pytest.approx(r.cascade["macs"])
    assert lab.set(adjusted=False)
    assert lab.result.window == plain.window


def test_window_extremes_and_threshold_policy(lab):
    assert lab.set(half_width=0.0)
    assert lab.result.cascade["macs"] == pytest.approx(10.0)
    assert float(lab.result.exit_share[0]) == 1.0
    assert lab.set(policy="threshold")
    zt, _ = lab._data.split("test")
    want = cascades.threshold_cascade(zt, lab.result.tau, costs=COSTS, order=[0, 1])
    assert lab.result.cascade["macs"] == pytest.approx(float(want.cost.mean()))
    assert lab.result.window == (-math.inf, lab.result.tau)
    assert lab.set(order=[0, 1, 2])  # three stages: a tau per stage, each stage passes on below its own
    scores, _ = _val(lab, order=(0, 1, 2))
    taus = [selective.threshold_for_coverage(scores[j], 0.8) for j in range(2)]
    assert lab.result.stage_windows == tuple((-math.inf, t) for t in taus)


def test_frontiers_of_both_policies(lab):
    zt, yt = lab._data.split("test")
    scores, correct = _val(lab)
    macs, quality = lab.result.frontiers["window"]
    for i in (0, 5, len(SWEEP) - 1):
        w = cascades.fit_windows(scores[:1], correct[:1], SWEEP[i], target_coverage=0.8)
        r = cascades.fitted_cascade(zt, w, costs=COSTS, order=[0, 1])
        assert float(macs[i]) == pytest.approx(float(r.cost.mean()))
        assert float(quality[i]) == pytest.approx(selective.risk_at_coverage(r.confidence, r.predictions == yt, 0.8))
    assert bool((macs.diff() >= -1e-9).all())
    macs, quality = lab.result.frontiers["threshold"]
    for i in (0, 7, len(THRESHOLD_SWEEP) - 1):  # exit thresholds at val coverages of the first stage's scores
        t = selective.threshold_for_coverage(scores[0], THRESHOLD_SWEEP[i])
        r = cascades.threshold_cascade(zt, t, costs=COSTS, order=[0, 1])
        assert float(macs[i]) == pytest.approx(float(r.cost.mean()))
        assert float(quality[i]) == pytest.approx(selective.risk_at_coverage(r.confidence, r.predictions == yt, 0.8))
    assert float(macs[-1]) == pytest.approx(20.0)  # then everyone passed on: the full ensemble
    full = cascades.stage_scores(zt, order=[0, 1])[-1]
    full_ok = cascades.stage_probs(zt, order=[0, 1])[-1].argmax(-1) == yt
    assert float(quality[-1]) == pytest.approx(selective.risk_at_coverage(full, full_ok, 0.8))
    assert bool((macs.diff() >= -1e-9).all())
    assert lab.set(target_kind="risk", target=0.05)  # quality is then the coverage at the target risk
    r = cascades.fitted_cascade(
        zt, cascades.fit_windows(scores[:1], correct[:1], 0.1, target_risk=0.05), costs=COSTS, order=[0, 1]
    )
    assert lab.result.quality == pytest.approx(selective.coverage_at_risk(r.confidence, r.predictions == yt, 0.05))


def test_stages_target_split_and_singles(lab):
    assert lab.set(order=[0, 1, 2])
    assert lab.result.exit_share.shape == (3,)
    assert lab.result.ensemble["macs"] == pytest.approx(30.0)
    assert lab.set(order=[])  # empty means all members
    assert lab.result.exit_share.shape == (3,)
    assert lab.set(target_kind="coverage", target=0.6)
    scores, _ = _val(lab, order=(0, 1, 2))
    assert lab.result.tau == selective.threshold_for_coverage(scores[0], 0.6)
    assert lab.set(order=[0, 1], split="noise-3")
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
        ({"adjusted": "yes"}, "adjusted must be True or False"),
    ],
)
def test_bad_settings_go_to_the_status_line(lab, changes, fragment):
    assert_refused(lab, changes, fragment)


def test_unreachable_risk_names_what_the_data_can_reach():
    preds = _predictions()
    g = torch.Generator().manual_seed(5)
    preds.labels["val"] = torch.randint(0, C, (N,), generator=g)  # val labels unrelated to the logits
    lab = CascadesLab(preds, COSTS, state=CascadesState(target_kind="risk", target=0.95))
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


def test_one_member_predictions_default_to_one_stage():
    preds = _predictions()
    one = SimpleNamespace(logits={s: z[:1] for s, z in preds.logits.items()}, labels=preds.labels)
    lab = CascadesLab(one, [10.0])
    assert lab.state.order == [0]
    assert lab.result.exit_share.tolist() == [1.0]
    assert lab.result.cascade["macs"] == 10.0


def test_state_round_trips(lab):
    lab.set(order=[2, 0, 1], score="neg_energy", half_width=0.2, split="noise-3", adjusted=True)
    copy = CascadesLab(_predictions(), COSTS, state=CascadesState.from_json(lab.state.to_json()))
    assert copy.result.cascade == lab.result.cascade
    assert copy.result.stage_windows == lab.result.stage_windows


def test_view_controls(lab):
    view = lab.view
    view.half_width.value = 0.0
    assert lab.state.half_width == 0.0
    assert "stage 1: 100.0%" in view.table.value
    view.stages.value = 3
    assert lab.state.order == [0, 1, 2]
    assert "later stages" in view.table.value
    view.adjusted.value = True
    assert lab.state.adjusted
    view.policy.value = "threshold"
    assert lab.state.policy == "threshold"
    assert "ok" in view.status.value
    assert len(view.frontier_plot.threshold.get_xdata()) == len(THRESHOLD_SWEEP) + 1
    assert len(view.frontier_plot.sweep.get_xdata()) == len(SWEEP)


def test_ood_detection_on_a_shifted_split(lab):
    assert lab.result.ood is None
    assert lab.set(split="noise-3")
    ood = lab.result.ood
    z_in, z_out = lab._data.split("test")[0], lab._data.split("noise-3")[0]
    full_in, full_out = (cascades.stage_scores(z, order=[0, 1])[-1] for z in (z_in, z_out))
    assert ood["full ensemble"]["auroc"] == pytest.approx(selective.ood_auroc(full_in, full_out))
    assert ood["full ensemble"]["fpr95"] == pytest.approx(selective.fpr_at_tpr(full_in, full_out, 0.95))
    scores, correct = _val(lab)
    w = cascades.fit_windows(scores[:1], correct[:1], 0.1, target_coverage=0.8)
    conf = [cascades.fitted_cascade(z, w, costs=COSTS, order=[0, 1]).confidence for z in (z_in, z_out)]
    assert ood["cascade"]["auroc"] == pytest.approx(selective.ood_auroc(*conf))
    lo_cov, hi_cov = lab.result.window_coverage
    assert 0.0 <= lo_cov <= hi_cov <= 1.0


def test_members_text_box(lab):
    view = lab.view
    assert view.members.value == "0, 1"
    view.members.value = "2, 0"
    assert lab.state.order == [2, 0]
    assert view.stages.value == 2
    view.members.value = "0, x"
    assert "members must be member numbers" in view.status.value
    assert lab.state.order == [2, 0]
    assert view.members.value == "2, 0"
    view.split.value = "noise-3"
    assert "AUROC" in view.table.value
