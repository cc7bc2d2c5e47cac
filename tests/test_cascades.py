"""Tests for ensemble_lab.cascades.

Oracles: slow per-sample python references written here that literally run the members one at a time and apply
each exit rule (with their own softmax, scores, window edges and cost counting), brute-force loops over every
candidate threshold for the selective-classification helpers, and scikit-learn's ``roc_auc_score`` for AUROC.
The per-stage windows are checked against a loop reference of the authors' recipe (Xia & Bouganis,
https://github.com/Guoxoug/window-early-exit: ``cascade_results.py``, ``plot_msdnet_unc_cascade.py``,
``utils/cascade_utils.py``, ``utils/eval_utils.py``), with our conventions where the module docstring says they
differ, and against transcriptions of the authors' own functions (``uncertainties``, ``window_threshold_strategy``,
``percentileofscore`` + ``torch.quantile``) where the two conventions meet.  Property tests use hypothesis.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import percentileofscore

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


def _member_score(row, score):
    """One member's own max logit / logsumexp (what the authors average for an ensemble stage)."""
    if score == "max_logit":
        return max(row)
    m = max(row)
    return m + math.log(sum(math.exp(v - m) for v in row))


def _score(pbar, zbar, score, smean=None):
    """A stage's score from its averaged probabilities ``pbar``, averaged logits ``zbar`` and the running mean of
    its members' own scores ``smean`` (for ``max_logit`` / ``neg_energy``, the authors' rule)."""
    if score == "msp":
        return max(pbar)
    if score == "neg_entropy":
        return sum(p * math.log(p) for p in pbar if p > 0)
    if score in ("max_logit", "neg_energy"):
        return smean
    if score == "max_logit_of_mean":
        return max(zbar)
    m = max(zbar)
    return m + math.log(sum(math.exp(v - m) for v in zbar))


def _loop_cascade(z, keep_going, score, costs=None, order=None, weights=None):
    """Run members one at a time per sample; ``keep_going(score, stage)`` says whether to run the next one.

    Returns lists: predictions, exit stage, confidence, cost, number of member evaluations, probs."""
    k, n, c = z.shape
    order = list(range(k)) if order is None else list(order)
    weights = [1.0] * k if weights is None else [float(w) for w in weights]
    costs = [1.0] * k if costs is None else [float(x) for x in costs]
    out = {"pred": [], "exit": [], "conf": [], "cost": [], "evals": [], "probs": []}
    zl = z.tolist()
    for i in range(n):
        num, zsum, ssum, den, cost, evals = [0.0] * c, [0.0] * c, 0.0, 0.0, 0.0, 0
        for j, m in enumerate(order):
            row = zl[m][i]  # run member m on sample i
            evals += 1
            cost += costs[m]
            p = _softmax(row)
            num = [a + weights[m] * b for a, b in zip(num, p, strict=False)]
            zsum = [a + weights[m] * b for a, b in zip(zsum, row, strict=False)]
            if score in ("max_logit", "neg_energy"):
                ssum += weights[m] * _member_score(row, score)
            den += weights[m]
            pbar = [a / den for a in num]
            zbar = [a / den for a in zsum]
            s = _score(pbar, zbar, score, ssum / den)
            if j == len(order) - 1 or not keep_going(s, j):
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
    ref = [_score(_softmax(row), row, score, _member_score(row, score.replace("_of_mean", ""))) for row in z.tolist()]
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
    # max_logit / neg_energy (the authors' rule): the weighted mean of the members' own scores
    mean_of = lambda s: (w.view(-1, 1) * s).sum(0) / w.sum()  # noqa: E731
    torch.testing.assert_close(CS.stage_scores(z, "max_logit", weights=w)[-1], mean_of(z.amax(-1)))
    torch.testing.assert_close(CS.stage_scores(z, "neg_energy", weights=w)[-1], mean_of(torch.logsumexp(z, -1)))
    # ..._of_mean: of the averaged member logits
    torch.testing.assert_close(CS.stage_scores(z, "max_logit_of_mean", weights=w)[-1], zbar.amax(-1))
    torch.testing.assert_close(CS.stage_scores(z, "neg_energy_of_mean", weights=w)[-1], torch.logsumexp(zbar, -1))
    # the two rules differ for an ensemble, and (max and logsumexp are convex) the mean of scores is never below
    for name in ("max_logit", "neg_energy"):
        mean_rule, of_mean = (
            CS.stage_scores(z, name, weights=w)[1:],
            CS.stage_scores(z, f"{name}_of_mean", weights=w)[1:],
        )
        assert bool((mean_rule >= of_mean - 1e-12).all())
        assert float((mean_rule - of_mean).max()) > 0.1
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
    ref = _loop_cascade(z, lambda s, j: s < tau, score, costs, order, weights)
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
    ref = _loop_cascade(z, lambda s, j: tau - hw < s < tau + hw, score, costs, order, weights)
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
    ref = _loop_cascade(z, lambda s, j: lo < s < hi, score, costs, order, weights)
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
# per-stage windows, the authors' way: loop references
# ------------------------------------------------------------------------------------------------------------


def _ref_tau(scores, correct, target_risk=None, target_coverage=None):
    """Brute force over every candidate threshold t (a score; accept ``s >= t``): for a target risk the smallest t
    whose risk among the accepted is <= the target, for a target coverage the largest t accepting at least that
    fraction."""
    m = len(scores)
    best = None
    for t in sorted(set(scores)):
        accepted = [i for i in range(m) if scores[i] >= t]
        if target_risk is not None:
            risk = sum(1 for i in accepted if not correct[i]) / len(accepted)
            if risk <= target_risk and best is None:
                best = t  # candidates ascend: the first that qualifies is the smallest
        elif len(accepted) / m >= target_coverage:
            best = t  # the last that qualifies is the largest
    return best


def _ref_windows(rows, correct_rows, half_widths, target_risk=None, target_coverage=None, deploy_rows=None):
    """The authors' recipe, one stage at a time (``plot_msdnet_unc_cascade.py``: a tau and a window per exit): tau_j
    on stage j's val scores and correctness, then ``u = F(tau_j)`` and the edges ``Q(u -+ q_j)`` in quantile
    space of stage j's val scores, or of its deployment scores for the adjusted window (``cascade_results.py``)."""
    out = []
    for j, (val, ok, q) in enumerate(zip(rows, correct_rows, half_widths, strict=True)):
        tau = _ref_tau(val, ok, target_risk, target_coverage)
        ref = val if deploy_rows is None else deploy_rows[j]
        level = sum(1 for x in ref if x <= tau) / len(ref)
        lo, hi = _loop_edges(tau, q, ref)
        out.append((tau, level, lo, hi))
    return out


def _world(k, n, c, seed, signal=2.0):
    """Member logits that know the labels somewhat (accuracy well above chance), and the labels."""
    y = _labels(n, c, seed=seed)
    return signal * torch.nn.functional.one_hot(y, c).double() + _logits(k, n, c, seed=seed), y


def _val_stages(k, m, c, seed, score, order=None, weights=None):
    z, y = _world(k, m, c, seed)
    s = CS.stage_scores(z, score, order=order, weights=weights)
    ok = CS.stage_probs(z, order=order, weights=weights).argmax(-1) == y
    return s, ok


@pytest.mark.parametrize("score", CS.SCORES)
@pytest.mark.parametrize("target", [("risk", 0.1), ("risk", 0.25), ("coverage", 0.7), ("coverage", 0.25)])
def test_fit_windows_matches_the_loop_reference(score, target):
    s, ok = _val_stages(4, 60, 3, seed=31, score=score, order=[3, 1, 0, 2])
    hws = [0.1, 0.25, 0.4]
    kw = {f"target_{target[0]}": target[1]}
    w = CS.fit_windows(s[:-1], ok[:-1], hws, **kw)
    ref = _ref_windows(s[:-1].tolist(), ok[:-1].tolist(), hws, **kw)
    assert len(w) == 3
    assert list(zip(w.tau, w.level, w.lo, w.hi, strict=True)) == ref
    assert w.half_width == tuple(hws)
    # the first stage alone: tau from the FIRST stage's val scores and correctness (a 2-stage cascade)
    w1 = CS.fit_windows(s[0], ok[0], 0.1, **kw)
    assert (w1.tau[0], w1.level[0], w1.lo[0], w1.hi[0]) == ref[0]
    assert w1.tau[0] == _ref_tau(s[0].tolist(), ok[0].tolist(), **{f"target_{target[0]}": target[1]})


@pytest.mark.parametrize("score", CS.SCORES)
@pytest.mark.parametrize("case", [2, 3, 4, 5])  # 3 and 4 stages, with orders, weights and costs
@pytest.mark.parametrize("policy", CS.POLICIES)
def test_fitted_cascade_per_stage_windows_match_the_loop(score, case, policy):
    k, order, weights, costs = CASES[case]
    c = 4
    s, ok = _val_stages(k, 80, c, seed=40 + case, score=score, order=order, weights=weights)
    w = CS.fit_windows(s[:-1], ok[:-1], [0.15, 0.3, 0.2][: s.shape[0] - 1], target_coverage=0.6)
    z = _logits(k, 70, c, seed=50 + case)
    res = CS.fitted_cascade(z, w, score=score, costs=costs, order=order, weights=weights, policy=policy)
    if policy == "window":
        ref = _loop_cascade(z, lambda x, j: w.lo[j] < x < w.hi[j], score, costs, order, weights)
    else:
        ref = _loop_cascade(z, lambda x, j: x < w.tau[j], score, costs, order, weights)
    _check_result(res, ref, c)
    assert len(set(ref["exit"])) >= 2  # the windows do send some samples on and stop others
    # one window per stage, the last one unused, gives the same cascade
    w_all = CS.fit_windows(s, ok, 0.15, target_coverage=0.6)
    w_all = CS.CascadeWindows(
        tau=w.tau + w_all.tau[-1:],
        lo=w.lo + (0.0,),
        hi=w.hi + (0.0,),
        half_width=w.half_width + (0.0,),
        level=w.level + (0.5,),
    )
    again = CS.fitted_cascade(z, w_all, score=score, costs=costs, order=order, weights=weights, policy=policy)
    assert again.exit_stage.tolist() == res.exit_stage.tolist()


def test_fitted_cascade_with_two_stages_is_the_authors_window_strategy():
    """Transcription of ``window_threshold_strategy`` (``utils/cascade_utils.py``): exit at the first member when
    its score is above the window or below it, else take the second stage; costs the same way
    (``cascade_results.py``: ``cascade_macs[0]`` or ``cascade_macs[0] + cascade_macs[1]``)."""

    def authors_window_strategy(conf_scores, data1, data2, window):
        out = (conf_scores > window[1]) + (conf_scores < window[0])
        out = out.view([conf_scores.shape[0]] + [1] * (len(data1.shape) - 1))
        return data1 * out + data2 * ~out

    s, ok = _val_stages(2, 300, 5, seed=61, score="msp")
    w = CS.fit_windows(s[0], ok[0], 0.1, target_risk=0.4)
    z = _logits(2, 200, 5, seed=62)
    test0 = CS.stage_scores(z, "msp")[0]
    assert not bool(torch.isin(test0, torch.tensor([w.lo[0], w.hi[0]], dtype=test0.dtype)).any())  # no ties
    probs = CS.stage_probs(z)
    want_probs = authors_window_strategy(test0, probs[0], probs[1], (w.lo[0], w.hi[0]))
    want_cost = authors_window_strategy(
        test0, torch.full((200,), 3.0), torch.full((200,), 3.0 + 5.0), (w.lo[0], w.hi[0])
    )
    res = CS.fitted_cascade(z, w, costs=[3.0, 5.0])
    torch.testing.assert_close(res.probs, want_probs)
    torch.testing.assert_close(res.cost, want_cost.double())
    assert 0 < float((res.exit_stage == 1).double().mean()) < 1


def test_windows_meet_the_authors_quantile_recipe():
    """``cascade_results.py``: ``u = percentileofscore(val, tau) / 100`` and ``torch.quantile(val, [u - q, u + q])``.
    Without ties our level F(tau) is their u, and each edge is one of the two order statistics that
    ``torch.quantile`` interpolates between."""
    g = torch.Generator().manual_seed(70)
    val = torch.rand(137, generator=g, dtype=torch.float64)
    srt = val.sort().values
    for tau in (float(srt[40]), float(srt[40] + srt[41]) / 2, float(srt[90])):  # on a val score and between two
        for q in (0.05, 0.1, 0.2):
            w = CS.adjust_windows(CS.CascadeWindows((tau,), (0.0,), (1.0,), (q,), (0.5,)), val)  # around tau
            u = percentileofscore(val.numpy(), tau) / 100.0
            assert w.level[0] == pytest.approx(u, abs=1e-12)
            for edge, p in ((w.lo[0], u - q), (w.hi[0], u + q)):
                pos = p * (len(val) - 1)  # torch.quantile's (linear) position
                lo_i = math.floor(pos)
                assert edge in (float(srt[lo_i]), float(srt[lo_i + 1]))
                theirs = float(torch.quantile(val, torch.tensor(p, dtype=torch.float64)))
                assert float(srt[lo_i]) <= theirs <= float(srt[lo_i + 1])


@pytest.mark.parametrize("score", ["msp", "neg_energy", "max_logit_of_mean"])
def test_adjusted_windows_match_the_loop_and_pass_on_about_2q(score):
    s, ok = _val_stages(3, 90, 4, seed=80, score=score)
    w = CS.fit_windows(s[:-1], ok[:-1], [0.1, 0.2], target_coverage=0.5)
    shifted, _ = _world(3, 120, 4, seed=81, signal=0.8)  # members know less: the scores move down
    deploy = CS.stage_scores(shifted, score)[:-1]
    a = CS.adjust_windows(w, deploy)
    ref = _ref_windows(s[:-1].tolist(), ok[:-1].tolist(), [0.1, 0.2], target_coverage=0.5, deploy_rows=deploy.tolist())
    assert list(zip(a.tau, a.level, a.lo, a.hi, strict=True)) == ref
    assert a.tau == w.tau
    assert a.half_width == w.half_width
    assert all(x > y for x, y in zip(a.level, w.level, strict=True))  # tau sits higher among the shifted scores
    assert a.lo != w.lo
    assert a.hi != w.hi
    assert all(math.isfinite(x) for x in a.lo + a.hi)
    for j, q in enumerate((0.1, 0.2)):  # no labels used, and each window again holds about 2q of the scores
        inside = float(((deploy[j] > a.lo[j]) & (deploy[j] < a.hi[j])).double().mean())
        # 2qM - 1 scores lie strictly between the two order statistics; rounding of the levels u -+ q can move
        # each edge by one
        assert abs(inside - 2 * q) <= 3 / deploy.shape[1]


def test_ensemble_scores_are_the_authors_mean_of_member_scores():
    """Transcription of ``uncertainties`` (``utils/eval_utils.py``) and of the ensemble stage's scores in
    ``cascade_results.py``: ``av_unc_metrics`` (the members' uncertainties averaged) and ``add_adjusted_uncs`` (the
    softmax ones of the averaged probabilities, ``*_ens``).  Uncertainties there are minus our confidences."""

    def uncertainties(logits):
        logits = logits.type(torch.DoubleTensor)
        probs = logits.softmax(dim=-1)
        return {
            "confidence": probs.max(dim=-1).values,
            "entropy": (-probs * probs.log()).sum(dim=-1),
            "max_logit": -logits.max(dim=-1).values,
            "energy": -torch.logsumexp(logits, dim=-1),
        }

    z = _logits(2, 40, 6, seed=90)
    members = [uncertainties(z[i]) for i in range(2)]
    av = {name: (members[0][name] + members[1][name]) / 2 for name in members[0]}
    log_pbar = ((z[0].softmax(-1) + z[1].softmax(-1)) / 2).log()
    ens = uncertainties(log_pbar)
    torch.testing.assert_close(CS.stage_scores(z, "max_logit")[1], -av["max_logit"])
    torch.testing.assert_close(CS.stage_scores(z, "neg_energy")[1], -av["energy"])
    torch.testing.assert_close(CS.stage_scores(z, "msp")[1], ens["confidence"])
    torch.testing.assert_close(CS.stage_scores(z, "neg_entropy")[1], -ens["entropy"])
    for name, theirs in (("max_logit", "max_logit"), ("neg_energy", "energy")):  # the first stage: one member
        torch.testing.assert_close(CS.stage_scores(z, name)[0], -members[0][theirs])


def test_huge_logits_keep_mean_scores_finite():
    z = _logits(3, 10, 4, seed=3)
    z = z / z.abs().max() * 1e308
    for score in ("max_logit", "neg_energy", "max_logit_of_mean", "neg_energy_of_mean"):
        s = CS.stage_scores(z, score, weights=[1.0, 3.0, 2.0])
        assert bool(torch.isfinite(s).all()), score
        ref = _loop_cascade(z / 1e300, lambda x, j: True, score, weights=[1.0, 3.0, 2.0])["conf"]  # scaled down
        if score.startswith("max_logit"):  # exact in scale
            np.testing.assert_allclose(s[-1].numpy() / 1e300, ref, rtol=1e-9)
    z32 = (z / 1e308 * 3e38).float()
    assert bool(torch.isfinite(CS.stage_scores(z32, "neg_energy")).all())


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


def test_windows_bad_input_names_the_argument():
    s, ok = _val_stages(4, 30, 3, seed=5, score="msp")
    rows, good = s[:-1], ok[:-1]
    w = CS.fit_windows(rows, good, 0.1, target_coverage=0.5)
    z = _logits(4, 10, 3, seed=6)
    unreachable = good.clone()
    unreachable[1] = False  # stage 2 never right
    cases = [
        (
            ValueError,
            r"scores.*shape \(M,\) or \(S, M\)",
            lambda: CS.fit_windows(s[None], ok[None], 0.1, target_risk=0.2),
        ),
        (ValueError, "scores.*shape", lambda: CS.fit_windows(torch.ones(0), [], 0.1, target_coverage=0.5)),
        (ValueError, "scores.*finite", lambda: CS.fit_windows(rows * math.nan, good, 0.1, target_risk=0.2)),
        (TypeError, "scores", lambda: CS.fit_windows("abc", good, 0.1, target_risk=0.2)),
        (
            ValueError,
            r"correct.*shape of scores \(3, 30\)",
            lambda: CS.fit_windows(rows, good[:2], 0.1, target_risk=0.2),
        ),
        (ValueError, "correct.*boolean or 0/1", lambda: CS.fit_windows(rows, good * 2, 0.1, target_risk=0.2)),
        (ValueError, "correct.*same device", lambda: CS.fit_windows(rows, good.to("meta"), 0.1, target_risk=0.2)),
        (ValueError, "correct is needed with target_risk", lambda: CS.fit_windows(rows, None, 0.1, target_risk=0.2)),
        (ValueError, "exactly one of target_risk and target_coverage", lambda: CS.fit_windows(rows, good, 0.1)),
        (
            ValueError,
            "exactly one of target_risk and target_coverage",
            lambda: CS.fit_windows(rows, good, 0.1, target_risk=0.2, target_coverage=0.5),
        ),
        (ValueError, r"target_risk.*\(0, 1\]", lambda: CS.fit_windows(rows, good, 0.1, target_risk=0.0)),
        (TypeError, "target_risk", lambda: CS.fit_windows(rows, good, 0.1, target_risk="0.1")),
        (ValueError, r"target_coverage.*\(0, 1\]", lambda: CS.fit_windows(rows, good, 0.1, target_coverage=1.5)),
        (ValueError, "target_coverage.*finite", lambda: CS.fit_windows(rows, good, 0.1, target_coverage=math.nan)),
        (
            ValueError,
            "target_risk.*lowest.*row 1 of scores",
            lambda: CS.fit_windows(rows, unreachable, 0.1, target_risk=0.2),
        ),
        (ValueError, r"half_width.*\[0, 0.5\]", lambda: CS.fit_windows(rows, good, 0.6, target_risk=0.2)),
        (ValueError, "half_width.*one number or 3", lambda: CS.fit_windows(rows, good, [0.1, 0.2], target_risk=0.2)),
        (TypeError, "half_width", lambda: CS.fit_windows(rows, good, True, target_risk=0.2)),
        (TypeError, "windows.*CascadeWindows", lambda: CS.adjust_windows({"tau": (0.5,)}, rows)),
        (ValueError, r"scores.*one row per window \(3\)", lambda: CS.adjust_windows(w, rows[:2])),
        (ValueError, "scores.*finite", lambda: CS.adjust_windows(w, rows * math.inf)),
        (TypeError, "windows.*CascadeWindows", lambda: CS.fitted_cascade(z, None)),
        (
            ValueError,
            r"windows must hold 3 window\(s\) for 4 stage",
            lambda: CS.fitted_cascade(z, CS.fit_windows(rows[0], None, 0.1, target_coverage=0.5)),
        ),
        (ValueError, "windows must hold 1 window.*for 2 stage", lambda: CS.fitted_cascade(z, w, order=[0, 1])),
        (ValueError, "policy.*'window'.*'threshold'", lambda: CS.fitted_cascade(z, w, policy="greedy")),
        (ValueError, "score.*'msp'", lambda: CS.fitted_cascade(z, w, score="energy")),
        (ValueError, r"costs.*\(4,\)", lambda: CS.fitted_cascade(z, w, costs=[1.0, 2.0])),
        (ValueError, "tau must be finite", lambda: CS.CascadeWindows((math.nan,), (0.0,), (1.0,), (0.1,), (0.5,))),
        (ValueError, "equal length", lambda: CS.CascadeWindows((0.5, 0.6), (0.0,), (1.0,), (0.1,), (0.5,))),
        (ValueError, "equal length", lambda: CS.CascadeWindows((), (), (), (), ())),
        (ValueError, "lo and hi", lambda: CS.CascadeWindows((0.5,), (1.0,), (0.0,), (0.1,), (0.5,))),
        (ValueError, r"half_width.*\[0, 0.5\]", lambda: CS.CascadeWindows((0.5,), (0.0,), (1.0,), (0.7,), (0.5,))),
        (ValueError, r"level.*\[0, 1\]", lambda: CS.CascadeWindows((0.5,), (0.0,), (1.0,), (0.1,), (1.5,))),
        (TypeError, "tau.*sequence of numbers", lambda: CS.CascadeWindows(0.5, (0.0,), (1.0,), (0.1,), (0.5,))),
        (TypeError, "lo.*sequence of numbers", lambda: CS.CascadeWindows((0.5,), ("0",), (1.0,), (0.1,), (0.5,))),
        (TypeError, "hi.*sequence of numbers", lambda: CS.CascadeWindows((0.5,), (0.0,), (True,), (0.1,), (0.5,))),
    ]
    for exc, pattern, call in cases:
        with pytest.raises(exc, match=pattern):
            call()
    # what is valid: numpy input, 0/1 correctness, a per-row list of half-widths, correct=None for a coverage target
    w2 = CS.fit_windows(rows.numpy(), good.int().numpy(), [0.1, 0.2, 0.3], target_risk=0.5)
    assert w2.half_width == (0.1, 0.2, 0.3)
    assert all(math.isfinite(t) for t in w2.tau)
    assert CS.fit_windows(rows, None, 0.1, target_coverage=0.5) == CS.fit_windows(rows, good, 0.1, target_coverage=0.5)
    assert CS.adjust_windows(w, rows) == w  # adjusted on the val scores themselves: nothing moves


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
    s, ok = _val_stages(3, 40, 4, seed=4, score="neg_energy")
    w_cpu = CS.fit_windows(s[:-1], ok[:-1], 0.2, target_risk=0.5)
    w_gpu = CS.fit_windows(s[:-1].cuda(), ok[:-1].cuda(), 0.2, target_risk=0.5)
    assert w_gpu == w_cpu
    assert CS.adjust_windows(w_gpu, s[:-1].cuda() / 2) == CS.adjust_windows(w_cpu, s[:-1] / 2)
    r = CS.fitted_cascade(z.cuda(), w_gpu, score="neg_energy", costs=[1.0, 2.0, 3.0])
    assert r.exit_stage.device.type == "cuda"
    assert (
        r.exit_stage.cpu().tolist()
        == CS.fitted_cascade(z, w_cpu, score="neg_energy", costs=[1.0, 2.0, 3.0]).exit_stage.tolist()
    )


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
