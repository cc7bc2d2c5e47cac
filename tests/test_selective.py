"""Selective classification and OOD detection against brute force over every candidate threshold, sklearn's
roc_auc_score and a loop over every pair."""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab import selective as SEL

# ------------------------------------------------------------------------------------------------------------
# selective classification vs brute force over every candidate threshold
# ------------------------------------------------------------------------------------------------------------


def _tied_data(n, seed, levels=None):
    """Confidences (with ties when ``levels`` is given: values rounded to that many steps) and correctness."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(size=n)
    if levels is not None:
        conf = np.round(conf * levels) / levels
    correct = rng.uniform(size=n) < 0.3 + 0.6 * conf  # more confident -> more often right
    return torch.tensor(conf), torch.tensor(correct)


def _brute_threshold_for_risk(conf, ok, target):
    best = None
    for t in sorted(set(conf)):  # increasing: the first that reaches the target is the smallest
        acc = [o for c, o in zip(conf, ok, strict=False) if c >= t]
        if sum(1 for o in acc if not o) / len(acc) <= target:
            return t
    return best


def _brute_min_risk(conf, ok):
    risks = []
    for t in set(conf):
        acc = [o for c, o in zip(conf, ok, strict=False) if c >= t]
        risks.append(sum(1 for o in acc if not o) / len(acc))
    return min(risks)


def _brute_curve(conf, ok):
    """Expected risk of the i most confident samples, ties broken uniformly at random, for i = 1..N."""
    n = len(conf)
    out = []
    srt = sorted(conf, reverse=True)
    for i in range(1, n + 1):
        v = srt[i - 1]  # the i-th largest value: its block is cut
        higher = [o for c, o in zip(conf, ok, strict=False) if c > v]
        block = [o for c, o in zip(conf, ok, strict=False) if c == v]
        take = i - len(higher)
        err = sum(1 for o in higher if not o) + Fraction(take * sum(1 for o in block if not o), len(block))
        out.append(float(err / i))  # exact rational, rounded once
    return out


@pytest.mark.parametrize("levels", [None, 5, 12])
@pytest.mark.parametrize("seed", range(4))
def test_threshold_for_risk_matches_brute_force(levels, seed):
    conf, ok = _tied_data(60, seed, levels)
    cl, ol = conf.tolist(), ok.tolist()
    lowest = _brute_min_risk(cl, ol)
    for target in (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0):
        ref = _brute_threshold_for_risk(cl, ol, target)
        if ref is None:
            with pytest.raises(ValueError, match="target_risk.*lowest selective risk.*" + re.escape(f"{lowest:.6g}")):
                SEL.threshold_for_risk(conf, ok, target)
            continue
        t = SEL.threshold_for_risk(conf, ok, target)
        assert t == ref
        risk, _ = SEL.selective_risk(conf, ok, t)
        assert risk <= target


@pytest.mark.parametrize("levels", [None, 4, 10])
@pytest.mark.parametrize("seed", range(4))
def test_threshold_for_coverage_matches_brute_force(levels, seed):
    conf, _ = _tied_data(37, seed, levels)
    cl = conf.tolist()
    for cov in (0.0, 0.01, 0.1, 0.25, 0.5, 0.51, 0.9, 0.99, 1.0):
        # the largest candidate threshold accepting at least cov of the samples
        cands = [t for t in sorted(set(cl)) if sum(1 for c in cl if c >= t) / len(cl) >= cov]
        ref = max(cands) if cov > 0 else math.inf
        assert SEL.threshold_for_coverage(conf, cov) == ref


@pytest.mark.parametrize("levels", [None, 4, 10])
@pytest.mark.parametrize("seed", range(4))
def test_risk_at_coverage_and_coverage_at_risk_match_brute_force(levels, seed):
    conf, ok = _tied_data(41, seed, levels)
    n = 41
    curve = _brute_curve(conf.tolist(), ok.tolist())
    np.testing.assert_allclose(SEL.risk_coverage(conf, ok).risk.numpy(), curve, rtol=1e-12)
    for cov in (0.01, 0.1, 0.3, 0.5, 0.77, 1.0):
        i = min(i for i in range(1, n + 1) if i / n >= cov)
        assert SEL.risk_at_coverage(conf, ok, cov) == curve[i - 1]
    for target in (0.01, 0.1, 0.2, 0.3, 0.6, 1.0):
        good = [i / n for i in range(1, n + 1) if curve[i - 1] <= target]
        assert SEL.coverage_at_risk(conf, ok, target) == (max(good) if good else 0.0)


def test_coverage_at_risk_agrees_with_threshold_without_ties_and_can_exceed_with_ties():
    conf, ok = _tied_data(50, 3)
    for target in (0.1, 0.2, 0.3):
        t = SEL.threshold_for_risk(conf, ok, target)
        assert SEL.coverage_at_risk(conf, ok, target) == SEL.selective_risk(conf, ok, t)[1]
    # one tied block of 4 with 2 errors after 2 correct samples: threshold-wise the block is all or nothing
    conf = torch.tensor([0.9, 0.8, 0.5, 0.5, 0.5, 0.5])
    ok = torch.tensor([1, 1, 1, 0, 1, 0])
    assert SEL.threshold_for_risk(conf, ok, 0.2) == pytest.approx(0.8)
    # on the curve, the first sample of the block carries 2/4 expected errors: 0.5 / 3 <= 0.2 < 1 / 4
    assert SEL.coverage_at_risk(conf, ok, 0.2) == pytest.approx(3 / 6)
    assert SEL.risk_at_coverage(conf, ok, 4 / 6) == pytest.approx(1.0 / 4)


def test_selective_risk_empty_acceptance_is_nan():
    r, cov = SEL.selective_risk(torch.tensor([0.2, 0.3]), torch.tensor([1, 0]), 0.5)
    assert math.isnan(r)
    assert cov == 0.0
    assert SEL.selective_risk(torch.tensor([0.2, 0.3]), torch.tensor([1, 0]), 0.3) == (1.0, 0.5)  # float32 0.3 >= 0.3


# ------------------------------------------------------------------------------------------------------------
# OOD detection
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [None, 3, 20])
@pytest.mark.parametrize("seed", range(3))
def test_ood_auroc_matches_sklearn(levels, seed):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    s_in, s_out = rng.normal(0.7, 1, size=53), rng.normal(0, 1, size=31)
    if levels is not None:
        s_in, s_out = np.round(s_in * levels / 4), np.round(s_out * levels / 4)
    ref = roc_auc_score(np.r_[np.ones(53), np.zeros(31)], np.r_[s_in, s_out])
    assert SEL.ood_auroc(torch.tensor(s_in), torch.tensor(s_out)) == pytest.approx(ref, abs=1e-12)
    assert SEL.ood_auroc(s_in.astype(np.float32), s_out) == pytest.approx(ref, abs=1e-7)


@pytest.mark.parametrize("levels", [None, 3, 20])
@pytest.mark.parametrize("seed", range(3))
def test_fpr_at_tpr_matches_brute_force(levels, seed):
    rng = np.random.default_rng(seed)
    s_in, s_out = rng.normal(1, 1, size=40), rng.normal(0, 1, size=29)
    if levels is not None:
        s_in, s_out = np.round(s_in * levels / 4), np.round(s_out * levels / 4)
    for tpr in (0.0, 0.5, 0.8, 0.95, 1.0):
        cands = [t for t in sorted(set(s_in.tolist())) if np.mean(s_in >= t) >= tpr]
        t = max(cands) if tpr > 0 else math.inf
        ref = float(np.mean(s_out >= t))
        assert SEL.fpr_at_tpr(torch.tensor(s_in), torch.tensor(s_out), tpr) == ref


def test_ood_extremes():
    assert SEL.ood_auroc([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert SEL.ood_auroc([0.0, 1.0], [2.0, 3.0]) == 0.0
    assert SEL.ood_auroc([1.0, 1.0], [1.0]) == 0.5
    assert SEL.fpr_at_tpr([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert SEL.fpr_at_tpr([2.0, 3.0], [0.0, 2.0], tpr=1.0) == 0.5  # an OOD tie with the threshold is accepted


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 40), seed=st.integers(0, 10_000), levels=st.sampled_from([None, 2, 5]), target=st.floats(0.01, 1.0)
)
def test_threshold_for_risk_reaches_target_and_is_smallest(n, seed, levels, target):
    conf, ok = _tied_data(n, seed, levels)
    try:
        t = SEL.threshold_for_risk(conf, ok, target)
    except ValueError:
        assert _brute_threshold_for_risk(conf.tolist(), ok.tolist(), target) is None
        return
    assert SEL.selective_risk(conf, ok, t)[0] <= target
    lower = conf[conf < t]
    if lower.numel():  # the next threshold down no longer reaches the target
        assert SEL.selective_risk(conf, ok, float(lower.max()))[0] > target


@settings(max_examples=30, deadline=None)
@given(n_in=st.integers(1, 20), n_out=st.integers(1, 20), seed=st.integers(0, 10_000))
def test_auroc_swap_symmetry(n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    a, b = np.round(rng.normal(size=n_in), 1), np.round(rng.normal(size=n_out), 1)
    assert SEL.ood_auroc(a, b) + SEL.ood_auroc(b, a) == pytest.approx(1.0, abs=1e-12)


def test_coverages_at_risks_equals_one_call_per_risk():
    g = torch.Generator().manual_seed(3)
    conf = torch.rand(500, generator=g)
    ok = torch.rand(500, generator=g) < conf
    risks = [0.01, 0.05, 0.2, 1.0]
    assert SEL.coverages_at_risks(conf, ok, risks) == [SEL.coverage_at_risk(conf, ok, r) for r in risks]
    with pytest.raises(ValueError, match="target_risk"):
        SEL.coverages_at_risks(conf, ok, [0.1, 0.0])


def test_coverages_at_risks_checks_target_risks_by_name():
    conf = torch.tensor([0.9, 0.8, 0.7, 0.6])
    ok = torch.tensor([True, True, False, True])
    expected = SEL.coverages_at_risks(conf, ok, [0.3, 0.5])
    assert SEL.coverages_at_risks(conf, ok, np.array([0.3, 0.5])) == expected
    assert SEL.coverages_at_risks(conf, ok, torch.tensor([0.3, 0.5], dtype=torch.float64)) == expected
    with pytest.raises(TypeError, match="target_risks must be a list or tuple"):
        SEL.coverages_at_risks(conf, ok, (r for r in [0.3, 0.5]))
    with pytest.raises(TypeError, match="target_risks must be a list or tuple"):
        SEL.coverages_at_risks(conf, ok, 0.3)
    with pytest.raises(ValueError, match=r"target_risks\[1\] must be in \(0, 1\]"):
        SEL.coverages_at_risks(conf, ok, [0.3, 2.0])
    with pytest.raises(ValueError, match=r"^target_risk must be in \(0, 1\]"):
        SEL.coverage_at_risk(conf, ok, 2.0)
    with pytest.raises(TypeError, match="validate must be True or False"):
        SEL.aurc(conf, ok, validate="no")
