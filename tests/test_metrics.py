"""Tests for ensemble_lab.metrics.

Oracles: torchmetrics (top-label ECE on continuous confidences), scikit-learn (accuracy, log loss, Brier,
calibration curve), and slow, obviously-correct python-loop references written here for everything else
(edge conventions, quantile bins, classwise ECE, risk-coverage, diversity).  Property tests use hypothesis.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab import metrics as M
from ensemble_lab import selective as SEL
from ensemble_lab._numerics import uniform_bins

# ------------------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------------------


def _probs(n, c, seed=0, scale=2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(n, c, generator=g, dtype=torch.float64), dim=1).to(dtype)


def _labels(n, c, seed=0):
    g = torch.Generator().manual_seed(seed + 1000)
    return torch.randint(0, c, (n,), generator=g)


def _member_probs(k, n, c, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(k, n, c, generator=g, dtype=torch.float64), dim=-1)


@pytest.fixture(scope="module")
def tm_ce():
    """torchmetrics' functional multiclass_calibration_error (a test-only dependency, in the `test` extra)."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    return multiclass_calibration_error


def _top(p, y):
    """Slow top-label confidence and correctness (python argmax: first maximum)."""
    conf, correct = [], []
    for row, label in zip(p.tolist(), y.tolist(), strict=False):
        m = max(row)
        pred = row.index(m)
        conf.append(m)
        correct.append(1.0 if pred == label else 0.0)
    return conf, correct


def _loop_bin(value, edges):
    """(lo, hi] bins, the first closed at its low end; values past the last edge go to the last bin."""
    n_bins = len(edges) - 1
    for b in range(n_bins):
        if value <= edges[b + 1]:
            return b
    return n_bins - 1


def _loop_ce(conf, hit, edges, norm="l1"):
    n_bins = len(edges) - 1
    members = [[] for _ in range(n_bins)]
    for c, h in zip(conf, hit, strict=False):
        members[_loop_bin(c, edges)].append((c, h))
    n = len(conf)
    gaps = []
    for ms in members:
        if ms:
            acc = sum(h for _, h in ms) / len(ms)
            cf = sum(c for c, _ in ms) / len(ms)
            gaps.append((len(ms), abs(acc - cf)))
    if norm == "l1":
        return sum(nb / n * g for nb, g in gaps)
    if norm == "l2":
        return math.sqrt(sum(nb / n * g * g for nb, g in gaps))
    return max(g for _, g in gaps)


def _uniform_edges(n_bins):
    return [k / n_bins for k in range(n_bins + 1)]


def _quantile_edges(values, n_bins):
    s = sorted(values)
    n = len(s)
    inner = [s[math.ceil(b * n / n_bins) - 1] for b in range(1, n_bins)]
    return [0.0] + inner + [1.0]


# ------------------------------------------------------------------------------------------------------------
# scores against scikit-learn
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [2, 3, 7])
def test_accuracy_nll_brier_match_sklearn(c):
    from sklearn.metrics import accuracy_score, brier_score_loss, log_loss
    from sklearn.preprocessing import label_binarize

    p, y = _probs(500, c, seed=c), _labels(500, c, seed=c)
    pn, yn = p.numpy(), y.numpy()
    assert M.accuracy(p, y) == pytest.approx(accuracy_score(yn, pn.argmax(1)), abs=1e-15)
    # sklearn clips to [eps, 1 - eps]; these probabilities are far from 0 and 1, so the clip is inactive
    assert pn.min() > 1e-12
    assert M.nll(p, y) == pytest.approx(log_loss(yn, pn, labels=list(range(c))), rel=1e-12)
    onehot = label_binarize(yn, classes=list(range(c)))
    if c == 2:  # label_binarize gives one column for two classes
        onehot = np.hstack([1 - onehot, onehot])
    expected = float(((pn - onehot) ** 2).sum(1).mean())
    assert M.brier(p, y) == pytest.approx(expected, rel=1e-12)
    # sklearn >= 1.7: multiclass Brier is the sum over classes; scale_by_half="auto" halves it for 2 classes
    assert M.brier(p, y) == pytest.approx(
        brier_score_loss(yn, pn, labels=list(range(c)), scale_by_half=False), rel=1e-12
    )


def test_float32_scores_accumulate_accurately():
    p64, y = _probs(200_003, 10, seed=3, scale=1.0), _labels(200_003, 10, seed=3)
    p32 = p64.to(torch.float32)
    exact = ((p32.double() - torch.nn.functional.one_hot(y, 10)) ** 2).sum(1).mean()
    assert M.brier(p32, y) == pytest.approx(float(exact), abs=1e-8)
    assert M.nll(p32, y) == pytest.approx(float(-torch.log(p32.double().gather(1, y[:, None])).mean()), abs=1e-6)


def test_nll_floors_zero_probability_at_tiny():
    for dtype in (torch.float32, torch.float64):
        p = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=dtype)
        y = torch.tensor([1, 0])
        expected = (-math.log(torch.finfo(dtype).tiny) - math.log(0.5)) / 2
        assert M.nll(p, y) == pytest.approx(expected, rel=1e-6)
        assert math.isfinite(M.nll(p, y))


def test_accuracy_ties_go_to_lowest_class():
    p = torch.tensor([[0.5, 0.5, 0.0], [0.25, 0.25, 0.5], [1 / 3, 1 / 3, 1 / 3], [0.2, 0.4, 0.4]], dtype=torch.float64)
    # argmax: 0, 2, 0, 1
    assert M.accuracy(p, torch.tensor([1, 2, 0, 2])) == 0.5
    assert M.accuracy(p, torch.tensor([0, 2, 0, 1])) == 1.0
    assert M.accuracy(p, torch.tensor([1, 1, 2, 2])) == 0.0
    # many tied rows (takes the full-argmax fallback) and the same rows among untied ones (subset path)
    tied = p[[0, 2, 3]].repeat(100, 1)
    y = torch.tensor([1, 2, 2]).repeat(100)
    assert M.accuracy(tied, y) == 0.0
    mixed = torch.cat([tied, _probs(2000, 3, seed=1)])
    ym = torch.cat([y, _labels(2000, 3, seed=1)])
    expected = float((mixed.argmax(1) == ym).double().mean())
    assert M.accuracy(mixed, ym) == expected
    assert M.summary(mixed, ym)["accuracy"] == expected


# ------------------------------------------------------------------------------------------------------------
# top-label ECE
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_ece_matches_torchmetrics_on_continuous_confidences(tm_ce, norm, n_bins):
    for seed in range(3):
        p, y = _probs(3000, 5, seed=seed), _labels(3000, 5, seed=seed)
        ours = M.ece(p, y, n_bins=n_bins, norm=norm)
        theirs = float(tm_ce(p, y, num_classes=5, n_bins=n_bins, norm=norm))
        # torchmetrics accumulates in float32
        assert ours == pytest.approx(theirs, abs=2e-6), (seed, ours, theirs)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_ece_matches_loop_reference_random(norm):
    for strategy in ("uniform", "quantile"):
        p, y = _probs(400, 4, seed=5), _labels(400, 4, seed=5)
        conf, hit = _top(p, y)
        edges = _uniform_edges(12) if strategy == "uniform" else _quantile_edges(conf, 12)
        expected = _loop_ce(conf, hit, edges, norm)
        assert M.ece(p, y, n_bins=12, strategy=strategy, norm=norm) == pytest.approx(expected, abs=1e-12)


def _edge_probs():
    """Rows whose top-label confidence lies exactly on k/10 edges (and at 1), float64, 4 classes."""
    confs = [0.4, 0.5, 0.6, 0.6, 0.55, 0.7, 0.75, 0.8, 0.9, 0.95, 1.0, 1.0, 0.3, 0.35, 0.6, 0.9]
    rows = []
    for c in confs:
        rest = (1.0 - c) / 3
        rows.append([c, rest, rest, 1.0 - c - 2 * rest])
    p = torch.tensor(rows, dtype=torch.float64)
    assert torch.equal(p.max(1).values, torch.tensor(confs, dtype=torch.float64))
    y = torch.tensor([0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 2, 1, 1])
    return p, y


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_ece_values_on_bin_edges_follow_lo_hi_convention(norm):
    p, y = _edge_probs()
    conf, hit = _top(p, y)
    expected = _loop_ce(conf, hit, _uniform_edges(10), norm)
    assert M.ece(p, y, n_bins=10, norm=norm) == pytest.approx(expected, abs=1e-12)
    rel = M.reliability(p, y, n_bins=10)
    # 0.6 -> bin 5 = (0.5, 0.6], 1.0 -> bin 9 = (0.9, 1.0], 0.3 -> bin 2 = (0.2, 0.3]
    assert rel.count.tolist() == [0, 0, 1, 2, 1, 4, 1, 2, 2, 3]
    assert rel.count.dtype == torch.int64


def test_torchmetrics_edge_convention_differs(tm_ce):
    """torchmetrics bins are [lo, hi) with an extra bin for confidence exactly 1; ours are (lo, hi]."""
    p = torch.tensor([[0.6, 0.4], [0.55, 0.45], [1.0, 0.0], [0.95, 0.05]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1])
    conf, hit = _top(p, y)
    ours = M.ece(p, y, n_bins=10)
    assert ours == pytest.approx(_loop_ce(conf, hit, _uniform_edges(10)), abs=1e-12)
    # ours groups 0.6 with 0.55 and 1.0 with 0.95: |0.5 - 0.575| and |0.5 - 0.975|
    assert ours == pytest.approx(0.5 * 0.075 + 0.5 * 0.475, abs=1e-12)
    # torchmetrics puts every sample in its own bin: mean |hit - conf|
    theirs = float(tm_ce(p, y, num_classes=2, n_bins=10))
    assert theirs == pytest.approx((0.4 + 0.55 + 0.0 + 0.95) / 4, abs=1e-6)


def test_ece_perfect_and_empty_bins():
    # one-hot predictions, all correct: confidence exactly 1 in the last bin, every other bin empty
    y = _labels(50, 3)
    p = torch.nn.functional.one_hot(y, 3).double()
    for strategy in ("uniform", "quantile"):
        for norm in ("l1", "l2", "max"):
            assert M.ece(p, y, strategy=strategy, norm=norm) == 0.0
    rel = M.reliability(p, y, n_bins=5)
    assert rel.count.tolist() == [0, 0, 0, 0, 50]
    assert torch.isnan(rel.confidence[:4]).all()
    assert torch.isnan(rel.accuracy[:4]).all()
    assert rel.confidence[4] == 1.0
    assert rel.accuracy[4] == 1.0
    assert rel.ece == 0.0
    # all wrong with confidence 1: ECE 1
    assert M.ece(p, (y + 1) % 3) == 1.0


def test_single_sample_and_single_class_present():
    p = torch.tensor([[0.2, 0.7, 0.1]], dtype=torch.float64)
    y = torch.tensor([1])
    assert M.accuracy(p, y) == 1.0
    assert M.ece(p, y) == pytest.approx(0.3)
    assert M.ece(p, y, strategy="quantile") == pytest.approx(0.3)
    assert M.classwise_ece(p, y) == pytest.approx((0.2 + 0.3 + 0.1) / 3)
    rel = M.reliability(p, y, n_bins=4, strategy="quantile")
    assert int(rel.count.sum()) == 1
    pp, yy = _probs(100, 4, seed=2), torch.full((100,), 2)
    conf, hit = _top(pp, yy)
    assert M.ece(pp, yy) == pytest.approx(_loop_ce(conf, hit, _uniform_edges(15)), abs=1e-12)
    assert M.summary(pp, yy)["accuracy"] == pytest.approx(float((pp.argmax(1) == 2).double().mean()))


def test_quantile_bins_with_ties_and_few_samples():
    g = torch.Generator().manual_seed(7)
    p = _probs(300, 3, seed=7)
    p = torch.round(p * 20) / 20  # heavy ties in the confidences
    p = p / p.sum(1, keepdim=True)
    y = torch.randint(0, 3, (300,), generator=g)
    conf, hit = _top(p, y)
    for n_bins in (1, 4, 15, 400):  # 400 > N: duplicate edges, empty bins
        edges = _quantile_edges(conf, n_bins)
        rel = M.reliability(p, y, n_bins=n_bins, strategy="quantile")
        assert rel.edges.tolist() == pytest.approx(edges, abs=0)
        assert int(rel.count.sum()) == 300
        for norm in ("l1", "l2", "max"):
            expected = _loop_ce(conf, hit, edges, norm)
            assert M.ece(p, y, n_bins=n_bins, strategy="quantile", norm=norm) == pytest.approx(expected, abs=1e-12)
    # without ties the bins are equal-mass to within one sample
    pc = _probs(1000, 5, seed=8)
    rel = M.reliability(pc, _labels(1000, 5), n_bins=7, strategy="quantile")
    assert int(rel.count.max() - rel.count.min()) <= 1


@pytest.mark.parametrize("n_bins", [1, 7, 10, 15, 100])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_uniform_binning_is_exact_at_and_around_edges(n_bins, dtype):
    """The arithmetic fast path equals the (lo, hi] loop reference against float64 edges k / B, ulp by ulp."""
    edges = torch.arange(n_bins + 1, dtype=torch.float64) / n_bins
    on = edges.to(dtype)  # the edges rounded to the input dtype (some above, some below k / B)
    up = torch.nextafter(on, torch.tensor(2.0, dtype=dtype))
    down = torch.nextafter(on, torch.tensor(-1.0, dtype=dtype))
    values = torch.cat([on, up, down, edges.to(dtype)]).clamp(0, 1)
    bins, scaled = uniform_bins(values, n_bins)
    assert scaled.dtype == torch.float64
    assert torch.allclose(scaled / n_bins, values.double(), rtol=1e-15, atol=0)
    idx = bins.to(torch.int64)
    ref = [_loop_bin(x, edges.tolist()) for x in values.tolist()]
    assert idx.tolist() == ref
    assert torch.equal(idx, torch.bucketize(values.double(), edges[1:-1].contiguous()))


# ------------------------------------------------------------------------------------------------------------
# reliability and classwise ECE
# ------------------------------------------------------------------------------------------------------------


def test_reliability_matches_sklearn_calibration_curve():
    from sklearn.calibration import calibration_curve

    # binary, positive-class probability in (0.5, 1]: the top label is always class 1, so the top-label
    # reliability diagram is sklearn's positive-class calibration curve (sklearn bins are (lo, hi] too)
    g = torch.Generator().manual_seed(3)
    p1 = 0.5 + 0.5 * torch.rand(2000, generator=g, dtype=torch.float64) ** 2
    y = (torch.rand(2000, generator=g, dtype=torch.float64) < p1 - 0.1).long()
    p = torch.stack([1 - p1, p1], dim=1)
    prob_true, prob_pred = calibration_curve(y.numpy(), p1.numpy(), n_bins=10, strategy="uniform")
    rel = M.reliability(p, y, n_bins=10)
    nonempty = rel.count > 0
    assert rel.count[:5].sum() == 0  # confidence > 0.5
    np.testing.assert_allclose(rel.accuracy[nonempty].numpy(), prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rel.confidence[nonempty].numpy(), prob_pred, rtol=0, atol=1e-12)
    assert rel.ece == pytest.approx(M.ece(p, y, n_bins=10), abs=1e-15)


def test_reliability_fields():
    p, y = _probs(1000, 6, seed=4), _labels(1000, 6, seed=4)
    for strategy in ("uniform", "quantile"):
        rel = M.reliability(p, y, n_bins=8, strategy=strategy)
        assert rel.edges.shape == (9,)
        assert rel.confidence.shape == (8,)
        assert rel.accuracy.shape == (8,)
        assert rel.count.shape == (8,)
        assert rel.count.dtype == torch.int64
        assert int(rel.count.sum()) == 1000
        assert isinstance(rel.ece, float)
        assert rel.ece == pytest.approx(M.ece(p, y, n_bins=8, strategy=strategy), abs=1e-15)
        assert rel.edges[0] == 0
        assert rel.edges[-1] == 1
        assert (rel.edges.diff() >= 0).all()
        ok = rel.count > 0
        assert ((rel.confidence[ok] > rel.edges[:-1][ok]) & (rel.confidence[ok] <= rel.edges[1:][ok])).all()
        w = rel.count[ok].double() / 1000
        assert rel.ece == pytest.approx(float((w * (rel.accuracy[ok] - rel.confidence[ok]).abs()).sum()), abs=1e-12)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rel.ece = 0.0  # frozen


def _loop_classwise(p, y, n_bins, strategy):
    n, c = p.shape
    rows, labels = p.tolist(), y.tolist()
    total = 0.0
    for k in range(c):
        col = [r[k] for r in rows]
        hit = [1.0 if lab == k else 0.0 for lab in labels]
        edges = _uniform_edges(n_bins) if strategy == "uniform" else _quantile_edges(col, n_bins)
        total += _loop_ce(col, hit, edges, "l1")
    return total / c


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_classwise_ece_matches_loop_reference(strategy):
    p, y = _probs(300, 4, seed=9), _labels(300, 4, seed=9)
    # exact zeros and ones in some columns (confidence 0 goes to bin 0)
    p[:20] = torch.nn.functional.one_hot(y[:20], 4).double()
    for n_bins in (1, 5, 15):
        expected = _loop_classwise(p, y, n_bins, strategy)
        assert M.classwise_ece(p, y, n_bins=n_bins, strategy=strategy) == pytest.approx(expected, abs=1e-12)
    # a class absent from the labels still counts
    y0 = torch.zeros(300, dtype=torch.int64)
    assert M.classwise_ece(p, y0, strategy=strategy) == pytest.approx(_loop_classwise(p, y0, 15, strategy), abs=1e-12)


def test_classwise_binary_equals_top_class_calibration_of_each_column():
    p, y = _probs(500, 2, seed=11), _labels(500, 2, seed=11)
    # for two classes, column 1 against y == 1 and column 0 against y == 0 have mirrored bins (up to edges)
    cw = M.classwise_ece(p, y, n_bins=10)
    assert 0 <= cw <= 1
    assert cw == pytest.approx(_loop_classwise(p, y, 10, "uniform"), abs=1e-12)


# ------------------------------------------------------------------------------------------------------------
# risk-coverage
# ------------------------------------------------------------------------------------------------------------


def _loop_risk(conf, correct):
    """Slow reference: expected errors among the i most confident, ties averaged over their orders."""
    n = len(conf)
    order = sorted(range(n), key=lambda i: -conf[i])
    risks = []
    for i in range(1, n + 1):
        v = conf[order[i - 1]]
        above = [j for j in range(n) if conf[j] > v]
        tied = [j for j in range(n) if conf[j] == v]
        err_above = sum(1 for j in above if not correct[j])
        err_tied = sum(1 for j in tied if not correct[j])
        risks.append((err_above + (i - len(above)) * err_tied / len(tied)) / i)
    return risks


def test_risk_coverage_matches_loop_reference_with_ties():
    g = torch.Generator().manual_seed(2)
    conf = torch.round(torch.rand(200, generator=g) * 10) / 10  # many ties
    correct = torch.rand(200, generator=g) < conf
    rc = SEL.risk_coverage(conf, correct)
    expected = _loop_risk(conf.tolist(), correct.tolist())
    np.testing.assert_allclose(rc.risk.numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rc.coverage.numpy(), np.arange(1, 201) / 200, rtol=0, atol=1e-15)
    assert (rc.threshold.diff() <= 0).all()
    assert rc.threshold.tolist() == sorted(conf.tolist(), reverse=True)
    assert rc.aurc == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert SEL.aurc(conf, correct) == rc.aurc
    # the curve does not depend on the input order
    perm = torch.randperm(200, generator=g)
    assert torch.allclose(SEL.risk_coverage(conf[perm], correct[perm]).risk, rc.risk, rtol=0, atol=1e-12)


def test_risk_coverage_without_ties_is_plain_cumulative_error():
    g = torch.Generator().manual_seed(4)
    conf = torch.rand(500, generator=g, dtype=torch.float64)
    correct = (torch.rand(500, generator=g) < conf.float()).numpy().astype(int)  # 0/1 ints, numpy
    rc = SEL.risk_coverage(conf.numpy(), correct)
    order = np.argsort(-conf.numpy())
    err = 1 - correct[order]
    np.testing.assert_allclose(rc.risk.numpy(), np.cumsum(err) / np.arange(1, 501), rtol=0, atol=1e-12)
    # all correct: zero risk; all wrong: AURC 1; one sample
    assert SEL.aurc(conf, torch.ones(500, dtype=torch.bool)) == 0.0
    assert SEL.aurc(conf, torch.zeros(500, dtype=torch.bool)) == 1.0
    assert SEL.aurc(torch.tensor([0.3]), torch.tensor([False])) == 1.0


# ------------------------------------------------------------------------------------------------------------
# entropy and diversity
# ------------------------------------------------------------------------------------------------------------


def _loop_entropy(row):
    return -sum(x * math.log(x) for x in row if x > 0)


def _loop_diversity(mp):
    k, n, c = mp.shape
    rows = mp.tolist()
    preds = [[r.index(max(r)) for r in member] for member in rows]
    pairs = list(itertools.combinations(range(k), 2))
    dis = (sum(preds[i][s] != preds[j][s] for i, j in pairs for s in range(n)) / (len(pairs) * n)) if pairs else 0.0
    kl, mi = 0.0, 0.0
    for s in range(n):
        bar = [sum(rows[m][s][cc] for m in range(k)) / k for cc in range(c)]
        for m in range(k):
            kl += sum(pv * (math.log(pv) - math.log(bv)) for pv, bv in zip(rows[m][s], bar, strict=False) if pv > 0) / (
                k * n
            )
        mi += (_loop_entropy(bar) - sum(_loop_entropy(rows[m][s]) for m in range(k)) / k) / n
    return dis, kl, mi


@pytest.mark.parametrize("k", [1, 2, 5])
def test_diversity_matches_loop_reference(k):
    mp = _member_probs(k, 60, 4, seed=k)
    mp[0, :5] = torch.nn.functional.one_hot(torch.arange(5) % 4, 4).double()  # exact zeros
    dis, kl, mi = _loop_diversity(mp)
    assert M.disagreement(mp) == pytest.approx(dis, abs=1e-12)
    assert M.kl_to_ensemble(mp) == pytest.approx(kl, abs=1e-12)
    assert M.mutual_information(mp) == pytest.approx(mi, abs=1e-12)
    assert M.kl_to_ensemble(mp) == pytest.approx(M.mutual_information(mp), abs=1e-12)  # the identity
    d = M.diversity(mp)
    assert set(d) == {"disagreement", "kl_to_ensemble", "mutual_information"}
    assert d["disagreement"] == pytest.approx(dis, abs=1e-12)
    assert d["mutual_information"] == pytest.approx(mi, abs=1e-12)
    assert d["kl_to_ensemble"] == pytest.approx(kl, abs=1e-12)
    if k == 1:
        assert M.disagreement(mp) == 0.0


def test_disagreement_with_tied_rows_uses_lowest_index():
    a = torch.tensor([[[0.5, 0.5], [0.3, 0.7]], [[0.9, 0.1], [0.5, 0.5]]], dtype=torch.float64)
    # argmax: member 0 -> [0, 1], member 1 -> [0, 0]; one disagreement out of 2 pair-samples
    assert M.disagreement(a) == 0.5
    assert M.diversity(a)["disagreement"] == 0.5


def test_entropy_per_sample():
    p = torch.tensor([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]], dtype=torch.float64)
    h = M.entropy(p)
    assert h.shape == (3,)
    np.testing.assert_allclose(h.numpy(), [0.0, math.log(3), math.log(2)], atol=1e-12)
    mp = _member_probs(3, 10, 5)
    assert M.entropy(mp).shape == (3, 10)
    np.testing.assert_allclose(M.entropy(mp).numpy(), [[_loop_entropy(r) for r in m] for m in mp.tolist()], atol=1e-12)


# ------------------------------------------------------------------------------------------------------------
# summary, types, devices
# ------------------------------------------------------------------------------------------------------------


def test_summary_agrees_with_single_metrics_and_returns_floats():
    p, y = _probs(2000, 10, seed=12, dtype=torch.float32), _labels(2000, 10, seed=12)
    s = M.summary(p, y, n_bins=10, strategy="quantile")
    assert list(s) == ["accuracy", "nll", "brier", "ece"]
    assert all(type(v) is float for v in s.values())
    assert s["accuracy"] == M.accuracy(p, y)
    assert s["nll"] == pytest.approx(M.nll(p, y), abs=1e-12)
    assert s["brier"] == pytest.approx(M.brier(p, y), abs=1e-12)
    assert s["ece"] == pytest.approx(M.ece(p, y, n_bins=10, strategy="quantile"), abs=1e-12)
    assert s == M.summary(p, y, n_bins=10, strategy="quantile", validate=False)
    for f in (M.accuracy, M.nll, M.brier, M.ece, M.classwise_ece):
        assert type(f(p, y)) is float
    mp = _member_probs(3, 50, 4)
    for f in (M.disagreement, M.kl_to_ensemble, M.mutual_information):
        assert type(f(mp)) is float


def test_numpy_and_lists_are_accepted():
    p, y = _probs(100, 3, seed=13), _labels(100, 3, seed=13)
    assert M.summary(p.numpy(), y.numpy()) == M.summary(p, y)
    assert M.ece(p.tolist(), y.tolist()) == M.ece(p, y)
    assert M.accuracy(p, y.double()) == M.accuracy(p, y)  # integral floats are fine
    mp = _member_probs(2, 20, 3)
    assert M.disagreement(mp.numpy()) == M.disagreement(mp)


def test_inputs_requiring_grad_and_float32_members():
    logits = torch.randn(200, 5, requires_grad=True)
    p, y = logits.softmax(1), _labels(200, 5)
    s = M.summary(p, y)
    assert s == M.summary(p.detach(), y)
    assert not M.entropy(p).requires_grad
    assert not M.reliability(p, y).confidence.requires_grad
    mp = torch.randn(4, 200, 5, requires_grad=True).softmax(-1)
    d = M.diversity(mp)
    assert d["disagreement"] == M.disagreement(mp)  # same float64 accumulation in both paths
    assert d["mutual_information"] == pytest.approx(M.mutual_information(mp), abs=1e-6)
    assert d["kl_to_ensemble"] == pytest.approx(M.kl_to_ensemble(mp), abs=1e-6)


def test_outputs_stay_on_input_device():
    p, y = _probs(100, 3), _labels(100, 3)
    rel = M.reliability(p, y)
    assert rel.edges.device == p.device
    assert rel.count.device == p.device
    rc = SEL.risk_coverage(p.max(1).values, p.argmax(1) == y)
    assert rc.risk.device == p.device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():  # pragma: no cover - runs where a GPU exists
    p, y = _probs(5000, 7, seed=14, dtype=torch.float32), _labels(5000, 7, seed=14)
    mp = _member_probs(4, 500, 7).float()
    pc, yc, mpc = p.cuda(), y.cuda(), mp.cuda()
    for strategy in ("uniform", "quantile"):
        assert M.summary(pc, yc, strategy=strategy) == pytest.approx(M.summary(p, y, strategy=strategy), abs=1e-5)
        assert M.reliability(pc, yc, strategy=strategy).count.device.type == "cuda"
        cw = M.classwise_ece(p, y, strategy=strategy)
        assert M.classwise_ece(pc, yc, strategy=strategy) == pytest.approx(cw, abs=1e-5)
    assert M.diversity(mpc) == pytest.approx(M.diversity(mp), abs=1e-5)
    assert SEL.aurc(pc.max(1).values, pc.argmax(1) == yc) == pytest.approx(SEL.aurc(p.max(1).values, p.argmax(1) == y))
    with pytest.raises(ValueError, match="labels"):
        M.ece(pc, y)


# ------------------------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------------------------


@st.composite
def _prob_data(draw):
    n = draw(st.integers(1, 40))
    c = draw(st.integers(2, 5))
    seed = draw(st.integers(0, 10_000))
    scale = draw(st.sampled_from([0.0, 1.0, 5.0, 50.0]))  # 0: uniform rows (ties); 50: saturated (conf 1)
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(scale * torch.randn(n, c, generator=g, dtype=torch.float64), dim=1)
    y = torch.randint(0, c, (n,), generator=g)
    return p, y


@settings(max_examples=40, deadline=None)
@given(_prob_data(), st.integers(1, 20), st.sampled_from(["uniform", "quantile"]), st.sampled_from(["l1", "l2", "max"]))
def test_ece_in_unit_interval(data, n_bins, strategy, norm):
    p, y = data
    e = M.ece(p, y, n_bins=n_bins, strategy=strategy, norm=norm)
    assert 0.0 <= e <= 1.0
    assert 0.0 <= M.classwise_ece(p, y, n_bins=n_bins, strategy=strategy) <= 1.0
    conf, hit = _top(p, y)
    edges = _uniform_edges(n_bins) if strategy == "uniform" else _quantile_edges(conf, n_bins)
    assert e == pytest.approx(_loop_ce(conf, hit, edges, norm), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(_prob_data())
def test_brier_nll_accuracy_ranges(data):
    p, y = data
    s = M.summary(p, y)
    assert 0.0 <= s["brier"] <= 2.0 + 1e-12
    assert 0.0 <= s["accuracy"] <= 1.0
    assert s["nll"] >= 0.0
    assert s["accuracy"] == float((p.argmax(1) == y).double().mean())


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 6), st.integers(1, 30), st.integers(2, 5), st.integers(0, 10_000), st.sampled_from([0.0, 1.0, 20.0])
)
def test_identical_members_have_no_diversity(k, n, c, seed, scale):
    g = torch.Generator().manual_seed(seed)
    one = torch.softmax(scale * torch.randn(1, n, c, generator=g, dtype=torch.float64), dim=-1)
    mp = one.expand(k, n, c).contiguous()
    assert M.disagreement(mp) == 0.0
    assert abs(M.mutual_information(mp)) <= 1e-12
    assert abs(M.kl_to_ensemble(mp)) <= 1e-12


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 6), st.integers(1, 30), st.integers(2, 5), st.integers(0, 10_000), st.sampled_from([0.0, 1.0, 20.0])
)
def test_member_permutation_changes_nothing(k, n, c, seed, scale):
    g = torch.Generator().manual_seed(seed)
    mp = torch.softmax(scale * torch.randn(k, n, c, generator=g, dtype=torch.float64), dim=-1)
    perm = torch.randperm(k, generator=g)
    a, b = M.diversity(mp), M.diversity(mp[perm])
    assert a["disagreement"] == pytest.approx(b["disagreement"], abs=1e-12)
    assert a["mutual_information"] == pytest.approx(b["mutual_information"], abs=1e-12)
    assert M.disagreement(mp) == pytest.approx(M.disagreement(mp[perm]), abs=1e-12)
    assert M.kl_to_ensemble(mp) == pytest.approx(M.kl_to_ensemble(mp[perm]), abs=1e-12)
    assert M.mutual_information(mp) == pytest.approx(M.mutual_information(mp[perm]), abs=1e-12)
    assert 0.0 <= a["disagreement"] <= 1.0
    assert a["mutual_information"] >= -1e-12


# ------------------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------------------


def test_bad_probs_name_the_argument():
    y = torch.tensor([0, 1])
    for bad, what in [
        (torch.ones(2), "shape"),
        (torch.ones(2, 1), "shape"),
        (torch.tensor([[0.7, 0.7], [0.5, 0.5]]), "sum to 1"),
        (torch.tensor([[1.2, -0.2], [0.5, 0.5]]), r"\[0, 1\]"),
        (torch.tensor([[float("nan"), 0.5], [0.5, 0.5]]), "finite"),
        (torch.tensor([[float("inf"), 0.5], [0.5, 0.5]]), "finite"),
    ]:
        for f in (M.accuracy, M.nll, M.brier, M.ece, M.classwise_ece, M.reliability, M.summary):
            with pytest.raises(ValueError, match="probs") as info:
                f(bad, y)
            assert info.match(what)
    with pytest.raises(TypeError, match="probs"):
        M.ece("not probabilities", y)


def test_bad_labels_name_the_argument():
    p = torch.tensor([[0.3, 0.7], [0.5, 0.5]])
    for bad, what in [
        (torch.tensor([0, 2]), r"\[0, 1\]"),
        (torch.tensor([-1, 0]), r"\[0, 1\]"),
        (torch.tensor([0, 1, 1]), r"shape \(2,\)"),
        (torch.tensor([0.5, 1.0]), "integer"),
        (np.array([[0, 1]]), "shape"),
    ]:
        for f in (M.accuracy, M.nll, M.brier, M.ece, M.classwise_ece, M.reliability, M.summary):
            with pytest.raises(ValueError, match="labels") as info:
                f(p, bad)
            assert info.match(what)


def test_bad_options_name_the_argument():
    p, y = torch.tensor([[0.3, 0.7]]), torch.tensor([1])
    for f in (M.ece, M.classwise_ece, M.reliability, M.summary):
        with pytest.raises(ValueError, match="n_bins"):
            f(p, y, n_bins=0)
        with pytest.raises(TypeError, match="n_bins"):
            f(p, y, n_bins=2.5)
        with pytest.raises(ValueError, match="strategy.*'uniform', 'quantile'.*'equal'"):
            f(p, y, strategy="equal")
    with pytest.raises(ValueError, match="norm.*'l1', 'l2', 'max'.*'l3'"):
        M.ece(p, y, norm="l3")


def test_bad_member_probs_name_the_argument():
    for f in (M.disagreement, M.kl_to_ensemble, M.mutual_information, M.diversity):
        with pytest.raises(ValueError, match=r"member_probs.*\(K, N, C\).*\(3, 2\)"):
            f(torch.full((3, 2), 0.5))
        with pytest.raises(ValueError, match="member_probs.*sum to 1"):
            f(torch.full((2, 3, 2), 0.6))
        with pytest.raises(ValueError, match="member_probs.*finite"):
            f(torch.full((2, 3, 2), float("nan")))
    with pytest.raises(ValueError, match="probs"):
        M.entropy(torch.tensor([[0.2, 0.2]]))


def test_bad_risk_coverage_input_names_the_argument():
    with pytest.raises(ValueError, match="confidence.*shape"):
        SEL.risk_coverage(torch.ones(2, 2), torch.ones(2))
    with pytest.raises(ValueError, match="confidence.*finite"):
        SEL.aurc(torch.tensor([0.5, float("nan")]), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"correct.*shape \(2,\)"):
        SEL.aurc(torch.tensor([0.5, 0.2]), torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match="correct.*0/1"):
        SEL.aurc(torch.tensor([0.5, 0.2]), torch.tensor([2, 0]))


@pytest.mark.parametrize("flag", ["no", None, 2, 0.5, [], np.array([True, False])])
def test_validate_must_be_a_bool(flag):
    p = torch.tensor([[0.9, 0.1], [0.4, 0.6]])
    y = torch.tensor([0, 1])
    with pytest.raises(TypeError, match="validate must be True or False"):
        M.ece(p, y, validate=flag)
    with pytest.raises(TypeError, match="validate must be True or False"):
        M.disagreement(p[None], validate=flag)
    assert M.ece(p, y, validate=np.bool_(False)) == M.ece(p, y)


def test_huge_n_bins_is_refused_by_name():
    p = torch.tensor([[0.9, 0.1], [0.4, 0.6]])
    y = torch.tensor([0, 1])
    for fn in (M.ece, M.classwise_ece, M.reliability, M.summary):
        with pytest.raises(ValueError, match=r"n_bins must be in \[1, 10000000\], got 18446744073709551616"):
            fn(p, y, n_bins=2**64)
