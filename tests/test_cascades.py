"""Tests for ensemble_lab.cascades.

Oracles: slow per-sample python references written here that literally run the members one at a time and apply
each exit rule (with their own softmax, scores, window edges and cost counting), brute-force loops over every
candidate threshold for the selective-classification helpers, and scikit-learn's ``roc_auc_score`` for AUROC.
Property tests use hypothesis.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab import cascades as CS
from ensemble_lab import selective as SEL

# ------------------------------------------------------------------------------------------------------------
# helpers and loop references
# ------------------------------------------------------------------------------------------------------------


def _logits(k, n, c, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(k, n, c, generator=g, dtype=torch.float64)


def _labels(n, c, seed=0):
    g = torch.Generator().manual_seed(seed + 1000)
    return torch.randint(0, c, (n,), generator=g)


def _softmax(row):
    m = max(row)
    e = [math.exp(v - m) for v in row]
    s = sum(e)
    return [v / s for v in e]


def _score(pbar, zbar, score):
    if score == "msp":
        return max(pbar)
    if score == "neg_entropy":
        return sum(p * math.log(p) for p in pbar if p > 0)
    if score == "max_logit":
        return max(zbar)
    m = max(zbar)
    return m + math.log(sum(math.exp(v - m) for v in zbar))


def _loop_cascade(z, keep_going, score, costs=None, order=None, weights=None):
    """Run members one at a time per sample; ``keep_going(score)`` says whether to run the next one.

    Returns lists: predictions, exit stage, confidence, cost, number of member evaluations, probs."""
    k, n, c = z.shape
    order = list(range(k)) if order is None else list(order)
    weights = [1.0] * k if weights is None else [float(w) for w in weights]
    costs = [1.0] * k if costs is None else [float(x) for x in costs]
    out = {"pred": [], "exit": [], "conf": [], "cost": [], "evals": [], "probs": []}
    zl = z.tolist()
    for i in range(n):
        num, zsum, den, cost, evals = [0.0] * c, [0.0] * c, 0.0, 0.0, 0
        for j, m in enumerate(order):
            row = zl[m][i]  # run member m on sample i
            evals += 1
            cost += costs[m]
            p = _softmax(row)
            num = [a + weights[m] * b for a, b in zip(num, p, strict=False)]
            zsum = [a + weights[m] * b for a, b in zip(zsum, row, strict=False)]
            den += weights[m]
            pbar = [a / den for a in num]
            zbar = [a / den for a in zsum]
            s = _score(pbar, zbar, score)
            if j == len(order) - 1 or not keep_going(s):
                break
        out["pred"].append(pbar.index(max(pbar)))
        out["exit"].append(j)
        out["conf"].append(s)
        out["cost"].append(cost)
        out["evals"].append(evals)
        out["probs"].append(pbar)
    return out


def _loop_edges(tau, q, val):
    """Quantile window edges by the definitions: F(t) = #(v <= t) / M, Q(p) = min{x in v : F(x) >= p}."""
    v = sorted(val)
    m = len(v)
    u = sum(1 for x in v if x <= tau) / m

    def inv(p):
        if p <= 0:
            return -math.inf
        if p >= 1:
            return math.inf
        for k, x in enumerate(v):
            if (k + 1) / m >= p:  # F(x) >= (k + 1) / M, with equality at the end of a tied block
                return x
        raise AssertionError

    return inv(u - q), inv(u + q)


def _check_result(res, ref, n_classes):
    assert res.predictions.dtype == torch.int64
    assert res.exit_stage.dtype == torch.int64
    assert res.cost.dtype == torch.float64
    assert res.predictions.tolist() == ref["pred"]
    assert res.exit_stage.tolist() == ref["exit"]
    np.testing.assert_allclose(res.confidence.numpy(), ref["conf"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.cost.numpy(), ref["cost"], rtol=1e-12)
    np.testing.assert_allclose(res.probs.numpy(), np.array(ref["probs"]).reshape(-1, n_classes), atol=1e-12)


CASES = [  # (K, order, weights, costs)
    (2, None, None, None),
    (2, [1, 0], [0.3, 0.7], [2.0, 5.0]),
    (3, [2, 0, 1], None, [1.0, 2.0, 4.0]),
    (3, [1, 2], [1.0, 2.0, 0.5], None),  # a subset of the members
    (4, None, [1.0, 0.0, 2.0, 1.0], [3.0, 1.0, 1.0, 0.5]),  # a zero-weight member still costs
    (4, [3, 1, 0, 2], [0.5, 1.5, 1.0, 2.0], [1.0, 1.0, 10.0, 1.0]),
]


def _tau_and_spread(score, c, seed):
    """An operating threshold near the middle of the first-stage scores of an independent draw, and their spread."""
    s = CS.stage_scores(_logits(2, 200, c, seed=seed + 500), score)[0]
    return float(s.median()) + 1e-3, float(s.std())


# ------------------------------------------------------------------------------------------------------------
# scores and stages
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", CS.SCORES)
def test_confidence_score_matches_loop_reference(score):
    z = _logits(1, 30, 5, seed=3)[0]
    ref = [_score(_softmax(row), row, score) for row in z.tolist()]
    np.testing.assert_allclose(CS.confidence_score(z, score).numpy(), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("score", CS.SCORES)
def test_single_member_stage_scores_equal_confidence_score(score):
    z = _logits(3, 25, 4, seed=4)
    s = CS.stage_scores(z, score, order=[2, 0, 1], weights=[1.0, 2.0, 3.0])
    torch.testing.assert_close(s[0], CS.confidence_score(z[2], score), rtol=1e-12, atol=1e-12)


def test_stage_conventions_for_ensembles():
    z = _logits(3, 20, 4, seed=5)
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    p = torch.softmax(z, dim=-1)
    pbar = (w.view(-1, 1, 1) * p).sum(0) / w.sum()
    zbar = (w.view(-1, 1, 1) * z).sum(0) / w.sum()
    torch.testing.assert_close(CS.stage_probs(z, weights=w)[-1], pbar)
    # msp / neg_entropy: of the averaged probabilities (= of the stage logits log pbar)
    torch.testing.assert_close(CS.stage_scores(z, "msp", weights=w)[-1], CS.confidence_score(pbar.log(), "msp"))
    torch.testing.assert_close(
        CS.stage_scores(z, "neg_entropy", weights=w)[-1], CS.confidence_score(pbar.log(), "neg_entropy")
    )
    # max_logit / neg_energy: of the averaged member logits
    torch.testing.assert_close(CS.stage_scores(z, "max_logit", weights=w)[-1], zbar.amax(-1))
    torch.testing.assert_close(CS.stage_scores(z, "neg_energy", weights=w)[-1], torch.logsumexp(zbar, -1))
    sp = CS.stage_probs(z, order=[1, 2])
    assert sp.shape == (2, 20, 4)
    torch.testing.assert_close(sp[1], p[1:].mean(0))
    torch.testing.assert_close(sp.sum(-1), torch.ones(2, 20, dtype=torch.float64))


# ------------------------------------------------------------------------------------------------------------
# policies vs the per-sample loop
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", CS.SCORES)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_threshold_cascade_matches_loop(score, case):
    k, order, weights, costs = CASES[case]
    c = 4
    z = _logits(k, 60, c, seed=case)
    tau, _ = _tau_and_spread(score, c, case)
    res = CS.threshold_cascade(z, tau, score=score, costs=costs, order=order, weights=weights)
    ref = _loop_cascade(z, lambda s: s < tau, score, costs, order, weights)
    _check_result(res, ref, c)
    # cost accounting: with unit costs the cost is the number of member evaluations
    res1 = CS.threshold_cascade(z, tau, score=score, order=order, weights=weights)
    assert res1.cost.tolist() == [float(e) for e in ref["evals"]]
    assert (res1.exit_stage + 1).tolist() == ref["evals"]


@pytest.mark.parametrize("score", CS.SCORES)
@pytest.mark.parametrize("case", range(len(CASES)))
def test_window_cascade_score_units_matches_loop(score, case):
    k, order, weights, costs = CASES[case]
    c = 5
    z = _logits(k, 60, c, seed=10 + case)
    tau, spread = _tau_and_spread(score, c, 10 + case)
    hw = 0.7 * spread
    res = CS.window_cascade(z, tau, hw, score=score, costs=costs, order=order, weights=weights)
    ref = _loop_cascade(z, lambda s: tau - hw < s < tau + hw, score, costs, order, weights)
    _check_result(res, ref, c)
    assert len(set(ref["exit"])) > 0
    assert max(ref["exit"]) > 0


@pytest.mark.parametrize("score", CS.SCORES)
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("q", [0.1, 0.45])
def test_window_cascade_quantile_units_matches_loop(score, case, q):
    k, order, weights, costs = CASES[case]
    c = 3
    z = _logits(k, 50, c, seed=20 + case)
    val = CS.stage_scores(_logits(k, 37, c, seed=99 + case), score, order=order, weights=weights)[0]
    tau, _ = _tau_and_spread(score, c, 20 + case)
    lo, hi = _loop_edges(tau, q, val.tolist())
    elo, ehi = CS.window_edges(tau, q, val)
    assert (float(elo[0]), float(ehi[0])) == (lo, hi)
    res = CS.window_cascade(z, tau, q, score=score, costs=costs, order=order, weights=weights, val_scores=val)
    ref = _loop_cascade(z, lambda s: lo < s < hi, score, costs, order, weights)
    _check_result(res, ref, c)


def test_quantile_edges_with_ties_and_ends():
    val = torch.tensor([0.1, 0.2, 0.2, 0.2, 0.5, 0.7, 0.7, 0.9], dtype=torch.float64)
    for tau in (0.0, 0.1, 0.2, 0.3, 0.7, 0.95, 1.5):
        for q in (0.0, 0.1, 0.125, 0.25, 0.3, 0.5):
            lo, hi = CS.window_edges(tau, q, val)
            assert (float(lo[0]), float(hi[0])) == _loop_edges(tau, q, val.tolist()), (tau, q)
    lo, hi = CS.window_edges(0.5, [0.0, 0.5], val)  # F(0.5) = 5/8
    assert lo[0] == hi[0] == 0.5  # q = 0: an empty open window
    assert lo[1] == 0.1
    assert hi[1] == math.inf
    lo, hi = CS.window_edges(0.2, [0.0, 0.5], val)  # F(0.2) = 1/2
    assert lo[0] == hi[0] == 0.2
    assert lo[1] == -math.inf
    assert hi[1] == math.inf
    lo, hi = CS.window_edges(0.2, [0.0, 0.1, 0.3], val)
    assert lo.tolist() == sorted(lo.tolist(), reverse=True)
    assert hi.tolist() == sorted(hi.tolist())


# ------------------------------------------------------------------------------------------------------------
# extremes
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", CS.SCORES)
def test_zero_half_width_is_single_model(score):
    z = _logits(4, 40, 3, seed=7)
    costs, order = [1.0, 2.0, 3.0, 4.0], [2, 0, 3, 1]
    tau, _ = _tau_and_spread(score, 3, 7)
    val = CS.stage_scores(z, score, order=order)[0]  # even with scores exactly on the edges
    for kw in ({}, {"val_scores": val}):
        res = CS.window_cascade(z, tau, 0.0, score=score, costs=costs, order=order, **kw)
        assert res.exit_stage.tolist() == [0] * 40
        assert res.cost.tolist() == [3.0] * 40
        assert res.predictions.tolist() == z[2].argmax(-1).tolist()
        torch.testing.assert_close(res.confidence, CS.confidence_score(z[2], score), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("score", CS.SCORES)
def test_huge_window_is_full_ensemble(score):
    z = _logits(3, 40, 4, seed=8)
    w = [0.2, 0.5, 0.3]
    val = CS.stage_scores(_logits(3, 30, 4, seed=9), score)[0]
    full = CS.stage_probs(z, weights=w)[-1]
    for tau in (float(val.median()), float(val.min()) - 1.0, float(val.max()) + 1.0):
        for res in (
            CS.window_cascade(z, tau, 1e9, score=score, weights=w, costs=[1, 2, 3]),
            CS.window_cascade(z, float(val.median()), 0.5, score=score, weights=w, costs=[1, 2, 3], val_scores=val),
        ):
            assert res.exit_stage.tolist() == [2] * 40
            assert res.cost.tolist() == [6.0] * 40
            assert res.predictions.tolist() == full.argmax(-1).tolist()
            torch.testing.assert_close(res.probs, full)
    # the threshold cascade: an unreachable threshold runs everyone to the end, a trivial one stops at stage 0
    assert CS.threshold_cascade(z, 1e9, score=score).exit_stage.tolist() == [2] * 40
    assert CS.threshold_cascade(z, -1e9, score=score).exit_stage.tolist() == [0] * 40


def test_single_stage_order_always_exits_at_zero():
    z = _logits(3, 10, 3, seed=11)
    res = CS.window_cascade(z, 0.5, 1e9, order=[1], costs=[1.0, 7.0, 2.0])
    assert res.exit_stage.tolist() == [0] * 10
    assert res.cost.tolist() == [7.0] * 10
    assert CS.expected_cost(res) == 7.0 == res.mean_cost


# ------------------------------------------------------------------------------------------------------------
# the sweep
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("score", ["msp", "neg_energy"])
@pytest.mark.parametrize("quantile", [False, True])
def test_window_sweep_matches_per_half_width_cascade(score, quantile):
    k, c = 4, 5
    z = _logits(k, 80, c, seed=12)
    y = _labels(80, c, seed=12)
    order, weights, costs = [3, 0, 2, 1], [1.0, 2.0, 1.0, 0.5], [1.0, 2.0, 3.0, 4.0]
    tau, spread = _tau_and_spread(score, c, 12)
    if quantile:
        val = CS.stage_scores(_logits(k, 45, c, seed=13), score, order=order, weights=weights)[0]
        hws = [0.0, 0.02, 0.1, 0.2, 0.3, 0.5, 0.25]
    else:
        val = None
        hws = [0.0, 0.1 * spread, 0.5 * spread, spread, 3 * spread, 1e6]
    cost, risk, cov = CS.window_sweep(z, tau, hws, score, costs, val, labels=y, order=order, weights=weights)
    assert cost.shape == risk.shape == cov.shape == (len(hws),)
    for i, hw in enumerate(hws):
        res = CS.window_cascade(z, tau, hw, score, costs, order, weights, val_scores=val)
        r, cv = SEL.selective_risk(res.confidence, res.predictions == y, tau)
        assert float(cost[i]) == pytest.approx(res.mean_cost, rel=1e-12)
        assert float(cov[i]) == cv
        assert (math.isnan(r) and math.isnan(float(risk[i]))) or float(risk[i]) == pytest.approx(r, rel=1e-12)
    assert float(cost[0]) == 4.0  # half-width 0: everyone pays costs[order[0]] only
    by_width = cost.numpy()[np.argsort(hws, kind="stable")]
    assert (np.diff(by_width) >= 0).all()  # wider windows never cost less


# ------------------------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 4),
    n=st.integers(1, 30),
    c=st.integers(2, 5),
    seed=st.integers(0, 10_000),
    score=st.sampled_from(CS.SCORES),
    quantile=st.booleans(),
    hw=st.lists(st.floats(0, 0.5), min_size=2, max_size=6),
)
def test_cost_and_exit_stage_are_monotone_in_half_width(k, n, c, seed, score, quantile, hw):
    z = _logits(k, n, c, seed=seed)
    val = CS.stage_scores(_logits(k, 17, c, seed=seed + 1), score)[0] if quantile else None
    tau = float(CS.stage_scores(z, score)[0].mean())
    hw = sorted(hw) if quantile else [4 * h for h in sorted(hw)]
    exits = [CS.window_cascade(z, tau, h, score, costs=list(range(1, k + 1)), val_scores=val) for h in hw]
    for a, b in zip(exits, exits[1:], strict=False):
        assert (a.exit_stage <= b.exit_stage).all()
        assert a.mean_cost <= b.mean_cost
    cost, _, _ = CS.window_sweep(z, tau, hw, score, list(range(1, k + 1)), val, labels=_labels(n, c, seed))
    np.testing.assert_allclose(cost.numpy(), [r.mean_cost for r in exits], rtol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# input handling and bad input
# ------------------------------------------------------------------------------------------------------------


def test_numpy_float32_and_outputs_on_input_device():
    z = _logits(3, 12, 4, seed=1).float()
    res = CS.window_cascade(z.numpy(), 0.6, 0.1, order=np.array([2, 0, 1]))
    assert res.probs.dtype == torch.float32
    assert res.cost.dtype == torch.float64
    assert res.predictions.device == z.device
    assert CS.threshold_cascade(z, 0.6, order=torch.tensor([1, 2])).exit_stage.max() <= 1


def test_bad_input_names_the_argument():
    z = _logits(3, 10, 4, seed=0)
    val = torch.rand(20)
    y = _labels(10, 4)
    conf, ok = torch.rand(5), torch.tensor([1, 0, 1, 1, 0])
    cases = [
        (ValueError, "threshold.*finite", lambda: CS.window_cascade(z, float("nan"), 0.1)),
        (ValueError, "threshold.*finite", lambda: CS.threshold_cascade(z, math.inf)),
        (TypeError, "threshold", lambda: CS.threshold_cascade(z, "high")),
        (ValueError, r"half_width.*\[0, 0.5\]", lambda: CS.window_cascade(z, 0.5, 0.6, val_scores=val)),
        (ValueError, r"half_width.*\[0, 0.5\]", lambda: CS.window_cascade(z, 0.5, -0.1, val_scores=val)),
        (ValueError, "half_width.*>= 0", lambda: CS.window_cascade(z, 0.5, -0.1)),
        (ValueError, "half_width.*finite", lambda: CS.window_cascade(z, 0.5, math.inf)),
        (ValueError, "half_width.*single number", lambda: CS.window_cascade(z, 0.5, [0.1, 0.2])),
        (ValueError, "half_widths.*>= 0", lambda: CS.window_sweep(z, 0.5, [0.1, -1.0], labels=y)),
        (ValueError, "half_widths.*empty", lambda: CS.window_sweep(z, 0.5, [], labels=y)),
        (ValueError, "order.*non-empty", lambda: CS.window_cascade(z, 0.5, 0.1, order=[])),
        (ValueError, "order.*repeat.*1, 1", lambda: CS.window_cascade(z, 0.5, 0.1, order=[1, 1])),
        (ValueError, r"order.*\[0, 2\].*\[0, 3\]", lambda: CS.window_cascade(z, 0.5, 0.1, order=[0, 3])),
        (TypeError, "order.*integer", lambda: CS.stage_probs(z, order=[0.5, 1.0])),
        (ValueError, r"costs.*\(3,\).*\(2,\)", lambda: CS.window_cascade(z, 0.5, 0.1, costs=[1.0, 2.0])),
        (ValueError, "costs.*non-negative", lambda: CS.window_cascade(z, 0.5, 0.1, costs=[1.0, -2.0, 1.0])),
        (ValueError, "costs.*finite", lambda: CS.threshold_cascade(z, 0.5, costs=[1.0, math.nan, 1.0])),
        (ValueError, "weights.*non-negative", lambda: CS.stage_probs(z, weights=[1.0, -1.0, 1.0])),
        (ValueError, "weights.*first member", lambda: CS.stage_probs(z, weights=[0.0, 1.0, 1.0])),
        (ValueError, "score.*'msp'.*'energy'", lambda: CS.window_cascade(z, 0.5, 0.1, score="energy")),
        (ValueError, "score", lambda: CS.confidence_score(z[0], "entropy")),
        (ValueError, "member_logits.*shape", lambda: CS.window_cascade(z[0], 0.5, 0.1)),
        (ValueError, "member_logits.*finite", lambda: CS.threshold_cascade(z * math.nan, 0.5)),
        (ValueError, "logits.*shape", lambda: CS.confidence_score(torch.ones(4))),
        (ValueError, "val_scores.*shape", lambda: CS.window_cascade(z, 0.5, 0.1, val_scores=torch.ones(2, 2))),
        (ValueError, "val_scores.*finite", lambda: CS.window_edges(0.5, 0.1, torch.tensor([0.1, math.nan]))),
        (ValueError, r"labels.*\(10,\)", lambda: CS.window_sweep(z, 0.5, [0.1], labels=y[:5])),
        (ValueError, r"target_risk.*\(0, 1\]", lambda: SEL.threshold_for_risk(conf, ok, 0.0)),
        (ValueError, r"target_risk.*\(0, 1\]", lambda: SEL.coverage_at_risk(conf, ok, 1.5)),
        (ValueError, "target_risk.*lowest.*0.5", lambda: SEL.threshold_for_risk([0.5, 0.5], [1, 0], 0.1)),
        (ValueError, r"coverage.*\[0, 1\]", lambda: SEL.threshold_for_coverage(conf, 1.1)),
        (ValueError, r"coverage.*\(0, 1\]", lambda: SEL.risk_at_coverage(conf, ok, 0.0)),
        (ValueError, "confidence.*finite", lambda: SEL.risk_at_coverage(conf * math.inf, ok, 0.5)),
        (ValueError, r"correct.*shape \(5,\)", lambda: SEL.threshold_for_risk(conf, ok[:3], 0.5)),
        (ValueError, r"tpr.*\[0, 1\]", lambda: SEL.fpr_at_tpr(conf, conf, tpr=1.5)),
        (ValueError, "scores_out.*shape", lambda: SEL.ood_auroc(conf, torch.ones(0))),
        (ValueError, "scores_in.*finite", lambda: SEL.ood_auroc(conf * math.nan, conf)),
        (TypeError, "result", lambda: CS.expected_cost(0.5)),
    ]
    for exc, pattern, call in cases:
        with pytest.raises(exc, match=pattern):
            call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():  # pragma: no cover - runs where a GPU exists
    z = _logits(3, 50, 4, seed=2)
    y = _labels(50, 4, seed=2)
    val = CS.stage_scores(_logits(3, 30, 4, seed=3))[0]
    cpu = CS.window_cascade(z, 0.6, 0.2, costs=[1.0, 2.0, 3.0], val_scores=val)
    gpu = CS.window_cascade(z.cuda(), 0.6, 0.2, costs=[1.0, 2.0, 3.0], val_scores=val.cuda())
    assert gpu.cost.device.type == "cuda"
    assert gpu.exit_stage.cpu().tolist() == cpu.exit_stage.tolist()
    sweep = CS.window_sweep(z.cuda(), 0.6, [0.0, 0.2], val_scores=val.cuda(), labels=y.cuda())
    assert sweep[0].device.type == "cuda"
    assert SEL.ood_auroc(val.cuda(), z[0, :, 0].cuda()) == pytest.approx(SEL.ood_auroc(val, z[0, :, 0]))


# ----------------------------------------------------------------------------------------------------------
# bad-input regressions
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [False, True, "0.1", b"0.1", [0.1, True], ["0.1", "0.2"], torch.tensor([True])])
def test_half_widths_refuse_bools_and_strings(bad):
    z = _logits(3, 10, 4)
    with pytest.raises(TypeError, match="half_width"):
        CS.window_edges(0.5, bad)
    with pytest.raises(TypeError, match="half_widths"):
        CS.window_sweep(z, 0.5, bad if isinstance(bad, (list, torch.Tensor)) else [bad], labels=_labels(10, 4))
    if not isinstance(bad, (list, torch.Tensor)):
        with pytest.raises(TypeError, match="half_width"):
            CS.window_cascade(z, 0.5, bad)


def test_costs_whose_sums_overflow_are_refused_by_name():
    z, y = _logits(3, 10, 4), _labels(10, 4)
    for call in (
        lambda c: CS.threshold_cascade(z, 0.5, costs=c),
        lambda c: CS.window_cascade(z, 0.5, 0.1, costs=c),
        lambda c: CS.window_sweep(z, 0.5, [0.0, 0.1], costs=c, labels=y),
    ):
        with pytest.raises(ValueError, match="sum of costs"):
            call([1e308] * 3)
    r = CS.threshold_cascade(z, 0.5, costs=[1e300] * 3)  # large but representable: accepted, finite
    assert math.isfinite(r.mean_cost)
