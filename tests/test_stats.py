"""Paired bootstrap: the difference and interval against a slow reference on the same draws, the interval's
width against the closed-form standard error, coverage on planted differences over many seeds (plain and
clustered), and bad input."""

import functools
import math

import numpy as np
import pytest
import torch

from ensemble_lab import metrics
from ensemble_lab.stats import (
    MEAN_METRICS,
    ClusterResampler,
    PairedDifference,
    over_seeds,
    paired_bootstrap,
    per_sample_terms,
    percentile_interval,
    resample_units,
    two_sample_bootstrap,
)


def _one_hot_preds(correct: torch.Tensor, y: torch.Tensor, c: int = 3) -> torch.Tensor:
    """Probabilities (N, C) whose argmax is the label where ``correct`` and the next class elsewhere."""
    pred = torch.where(correct, y, (y + 1) % c)
    return 0.1 / (c - 1) + (0.9 - 0.1 / (c - 1)) * torch.nn.functional.one_hot(pred, c).double()


def _planted(n: int, seed: int, p_a=0.80, p_b=0.75, rho=0.5, cluster_size=1):
    """Correctness of A and B on n samples, correlated per sample, and with a per-cluster effect on each model
    when ``cluster_size`` > 1 (a model gets the samples of one cluster right or wrong together, and the two models
    are good on different clusters).  The true accuracy difference is p_a - p_b."""
    g = np.random.default_rng(seed)
    n_clusters = n // cluster_size
    cluster_a = np.repeat(g.standard_normal(n_clusters), cluster_size)
    cluster_b = np.repeat(g.standard_normal(n_clusters), cluster_size)
    shared = np.sqrt(rho) * g.standard_normal(n)
    w = 0.0 if cluster_size == 1 else 0.8
    noise_a = np.sqrt(1 - rho) * g.standard_normal(n)
    noise_b = np.sqrt(1 - rho) * g.standard_normal(n)
    latent_a = np.sqrt(1 - w**2) * (shared + noise_a) + w * cluster_a
    latent_b = np.sqrt(1 - w**2) * (shared + noise_b) + w * cluster_b
    from scipy.stats import norm

    correct_a = torch.as_tensor(latent_a < norm.ppf(p_a))
    correct_b = torch.as_tensor(latent_b < norm.ppf(p_b))
    y = torch.as_tensor(g.integers(0, 3, n))
    clusters = torch.arange(n) // cluster_size
    return _one_hot_preds(correct_a, y), _one_hot_preds(correct_b, y), y, clusters


def _reference(metric, a, b, y, clusters, draws):
    """Slow, obviously correct: for each resample, the listed clusters' samples gathered one cluster at a time."""
    groups = {}
    for i, c in enumerate(clusters.tolist()):
        groups.setdefault(c, []).append(i)
    keys = sorted(groups)
    diffs = []
    for row in draws.tolist():
        idx = [i for u in row for i in groups[keys[u]]]
        t = torch.tensor(idx)
        diffs.append(metric(a[t], y[t]) - metric(b[t], y[t]))
    return diffs


@pytest.mark.parametrize("cluster_size", [1, 4])
@pytest.mark.parametrize("metric", [metrics.accuracy, metrics.nll, metrics.brier])
def test_difference_and_interval_equal_the_slow_reference_on_the_same_draws(metric, cluster_size):
    a, b, y, clusters = _planted(120, seed=3, cluster_size=cluster_size)
    got = paired_bootstrap(metric, a, b, y, clusters=clusters if cluster_size > 1 else None, n_resamples=50, seed=5)
    draws = resample_units(120 // cluster_size, 50, seed=5)
    ref = _reference(metric, a, b, y, clusters, draws)
    low, high = np.quantile(ref, [0.05, 0.95])
    assert got.difference == pytest.approx(metric(a, y) - metric(b, y), abs=1e-12)
    assert got.low == pytest.approx(low, abs=1e-12)
    assert got.high == pytest.approx(high, abs=1e-12)
    assert got.resolved == (low > 0 or high < 0)
    assert got.n_units == 120 // cluster_size


def test_interval_width_matches_the_closed_form_standard_error():
    """For a mean difference the percentile interval is about difference +- z * sd(d) / sqrt(N)."""
    a, b, y, _ = _planted(2000, seed=1)
    r = paired_bootstrap(metrics.accuracy, a, b, y, n_resamples=2000, level=0.9, seed=0)
    d = (a.argmax(1) == y).double() - (b.argmax(1) == y).double()
    half = 1.6448536 * float(d.std(unbiased=False)) / math.sqrt(len(d))
    assert (r.high - r.low) / 2 == pytest.approx(half, rel=0.1)
    assert r.difference == pytest.approx(float(d.mean()), abs=1e-12)


def test_coverage_on_planted_differences_is_about_the_level():
    """Over 120 seeds the 90% interval covers the true accuracy difference (0.05) in 81% to 97% of them (the
    binomial 99.9% band around 90% for 120 trials)."""
    covered = 0
    for seed in range(120):
        a, b, y, _ = _planted(300, seed=seed)
        r = paired_bootstrap(metrics.accuracy, a, b, y, n_resamples=300, level=0.9, seed=seed)
        covered += r.low <= 0.05 <= r.high
    assert 0.81 <= covered / 120 <= 0.97, covered


def test_with_clusters_coverage_holds_where_resampling_samples_undercovers():
    """Samples of one cluster share an effect: resampling single samples makes the interval too narrow, resampling
    clusters covers about the level."""
    plain = clustered = 0
    trials = 80
    for seed in range(trials):
        a, b, y, clusters = _planted(400, seed=seed, p_a=0.78, p_b=0.75, cluster_size=8)
        r_plain = paired_bootstrap(metrics.accuracy, a, b, y, n_resamples=200, seed=seed)
        r_clust = paired_bootstrap(metrics.accuracy, a, b, y, clusters=clusters, n_resamples=200, seed=seed)
        plain += r_plain.low <= 0.03 <= r_plain.high
        clustered += r_clust.low <= 0.03 <= r_clust.high
        assert r_clust.n_units == 50
    assert clustered / trials >= 0.8, clustered
    assert plain < clustered, (plain, clustered)


def test_metric_options_and_the_verdict_text():
    a, b, y, _ = _planted(200, seed=0)
    ece10 = functools.partial(metrics.ece, n_bins=10)
    r = paired_bootstrap(ece10, a, b, y, n_resamples=100)
    assert isinstance(r, PairedDifference)
    assert r.difference == pytest.approx(ece10(a, y) - ece10(b, y))
    text = str(r)
    assert text.startswith("A - B = ")
    assert ("not resolved" in text) == (not r.resolved)
    same = paired_bootstrap(metrics.accuracy, a, a, y, n_resamples=50)
    assert (same.difference, same.low, same.high, same.resolved) == (0.0, 0.0, 0.0, False)


def test_same_seed_same_interval_and_numpy_input():
    a, b, y, _ = _planted(150, seed=2)
    r1 = paired_bootstrap(metrics.nll, a, b, y, n_resamples=80, seed=9)
    r2 = paired_bootstrap(metrics.nll, a.numpy(), b.numpy(), y.numpy(), n_resamples=80, seed=9)
    assert r1 == r2
    assert paired_bootstrap(metrics.nll, a, b, y, n_resamples=80, seed=10) != r1


def test_percentile_interval_is_numpys_quantile():
    v = np.random.default_rng(0).standard_normal(101)
    assert percentile_interval(v, 0.8) == pytest.approx(tuple(np.quantile(v, [0.1, 0.9])))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(metric="accuracy"), TypeError, "metric must be a callable"),
        (dict(pred_b=torch.full((5, 3), 1 / 3)), ValueError, "pred_b must have the same number of samples"),
        (dict(pred_a=torch.full((10, 3), float("nan"))), ValueError, "pred_a must be finite"),
        (dict(labels=torch.arange(9)), ValueError, "labels must have shape"),
        (dict(labels=torch.full((10,), 7)), ValueError, "labels must lie in"),
        (dict(clusters=torch.zeros(9, dtype=torch.long)), ValueError, "clusters must have shape"),
        (dict(clusters=torch.zeros(10)), ValueError, "clusters must hold integer"),
        (dict(n_resamples=1), ValueError, "n_resamples"),
        (dict(n_resamples=True), TypeError, "n_resamples"),
        (dict(level=1.0), ValueError, "level"),
        (dict(level="0.9"), TypeError, "level"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=2**64), ValueError, "seed"),
        (dict(metric=lambda p, y: float("nan")), ValueError, "metric returned nan"),
        (dict(metric=lambda p, y: "x"), TypeError, "metric must return a number"),
        (dict(pred_b=torch.full((10, 3), 1 / 3, device="meta")), ValueError, "pred_b must be on the same device"),
    ],
)
def test_bad_input_names_the_argument(kwargs, error, match):
    args = (
        dict(
            metric=metrics.accuracy,
            pred_a=torch.full((10, 3), 1 / 3),
            pred_b=torch.full((10, 3), 1 / 3),
            labels=torch.arange(10) % 3,
            n_resamples=10,
        )
        | kwargs
    )
    with pytest.raises(error, match=match):
        paired_bootstrap(args.pop("metric"), args.pop("pred_a"), args.pop("pred_b"), args.pop("labels"), **args)


def test_over_seeds_summarises_a_number_and_a_mapping_like_numpy():
    seen = []

    def experiment(seed):
        seen.append(seed)
        return {"acc": 0.9 + 0.01 * seed, "nll": torch.tensor(0.3 - 0.02 * seed)}

    out = over_seeds(experiment, seeds=range(4))
    assert seen == [0, 1, 2, 3]
    acc = np.array([0.9, 0.91, 0.92, 0.93])
    assert out["acc"].values == pytest.approx(tuple(acc))
    assert out["acc"].mean == pytest.approx(acc.mean())
    assert out["acc"].std == pytest.approx(acc.std(ddof=1))
    assert (out["nll"].low, out["nll"].high) == pytest.approx((0.24, 0.3))
    one = over_seeds(lambda s: 2.0, seeds=[5])
    assert (one.mean, one.std, one.seeds) == (2.0, 0.0, (5,))
    assert "over 1 seeds" in str(one)


@pytest.mark.parametrize(
    ("experiment", "seeds", "error", "match"),
    [
        ("f", (0, 1), TypeError, "experiment must be a callable"),
        (lambda s: 1.0, 3, TypeError, "seeds must be a list"),
        (lambda s: 1.0, "012", TypeError, "seeds must be a list"),
        (lambda s: 1.0, (), ValueError, "at least one seed"),
        (lambda s: 1.0, (0, 0), ValueError, "must not repeat"),
        (lambda s: 1.0, (0, -1), ValueError, r"seeds\[1\]"),
        (lambda s: 1.0, (0, True), TypeError, r"seeds\[1\]"),
        (lambda s: float("nan"), (0,), ValueError, "experiment returned nan on seed 0"),
        (lambda s: "x", (0,), TypeError, "experiment must return a number"),
        (lambda s: {"a": 1.0} if s == 0 else {"b": 1.0}, (0, 1), ValueError, "same names"),
        (lambda s: {"a": 1.0} if s == 0 else 1.0, (0, 1), TypeError, "not a mix"),
    ],
)
def test_over_seeds_bad_input(experiment, seeds, error, match):
    with pytest.raises(error, match=match):
        over_seeds(experiment, seeds)


# ---------------------------------------------------------------------------------------------- two samples
def _independent(n_a: int, n_b: int, seed: int, p_a=0.80, p_b=0.75, cluster_size=1):
    """Correct/wrong predictions on two different samples, with a per-cluster effect when ``cluster_size`` > 1;
    the true accuracy difference is p_a - p_b."""
    from scipy.stats import norm

    g = np.random.default_rng(seed)

    def sample(n, p):
        w = 0.0 if cluster_size == 1 else 0.8
        cluster = np.repeat(g.standard_normal(n // cluster_size), cluster_size)
        latent = np.sqrt(1 - w**2) * g.standard_normal(n) + w * cluster
        y = torch.as_tensor(g.integers(0, 3, n))
        return _one_hot_preds(torch.as_tensor(latent < norm.ppf(p)), y), y, torch.arange(n) // cluster_size

    return (*sample(n_a, p_a), *sample(n_b, p_b))


@pytest.mark.parametrize("cluster_size", [1, 4])
def test_two_sample_bootstrap_equals_the_slow_reference_on_the_same_draws(cluster_size):
    a, ya, ca, b, yb, cb = _independent(80, 120, seed=2, cluster_size=cluster_size)
    clusters = dict(clusters_a=ca, clusters_b=cb) if cluster_size > 1 else {}
    got = two_sample_bootstrap(metrics.nll, a, ya, b, yb, n_resamples=40, seed=9, **clusters)
    gen = torch.Generator().manual_seed(9)
    ua, ub = 80 // cluster_size, 120 // cluster_size
    draws_a = torch.randint(0, ua, (40, ua), generator=gen)
    draws_b = torch.randint(0, ub, (40, ub), generator=gen)
    diffs = []
    for row_a, row_b in zip(draws_a.tolist(), draws_b.tolist(), strict=True):
        ia = torch.tensor([i for u in row_a for i in range(u * cluster_size, (u + 1) * cluster_size)])
        ib = torch.tensor([i for u in row_b for i in range(u * cluster_size, (u + 1) * cluster_size)])
        diffs.append(metrics.nll(a[ia], ya[ia]) - metrics.nll(b[ib], yb[ib]))
    low, high = np.quantile(diffs, [0.05, 0.95])
    assert got.difference == pytest.approx(metrics.nll(a, ya) - metrics.nll(b, yb), abs=1e-12)
    assert (got.low, got.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert got.n_units == ua + ub


def test_two_sample_interval_matches_the_closed_form_and_covers_about_the_level():
    """Half-width about z * sqrt(var_a / n_a + var_b / n_b); over 120 seeds the 90% interval covers the true
    difference (0.05) in 81% to 97% of them."""
    a, ya, _, b, yb, _ = _independent(1500, 1000, seed=0)
    r = two_sample_bootstrap(metrics.accuracy, a, ya, b, yb, n_resamples=2000, seed=1)
    ca, cb = (a.argmax(1) == ya).double(), (b.argmax(1) == yb).double()
    half = 1.6448536 * math.sqrt(float(ca.var(unbiased=False)) / 1500 + float(cb.var(unbiased=False)) / 1000)
    assert (r.high - r.low) / 2 == pytest.approx(half, rel=0.1)
    covered = 0
    for seed in range(120):
        a, ya, _, b, yb, _ = _independent(300, 200, seed=seed)
        r = two_sample_bootstrap(metrics.accuracy, a, ya, b, yb, n_resamples=300, seed=seed)
        covered += r.low <= 0.05 <= r.high
    assert 0.81 <= covered / 120 <= 0.97, covered


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(metric=None), TypeError, "metric must be a callable"),
        (dict(labels_a=torch.arange(9)), ValueError, "labels_a must hold one label per sample of pred_a"),
        (dict(labels_b=torch.full((6,), 3)), ValueError, "labels_b must lie in"),
        (dict(pred_b=torch.full((6, 3), float("inf"))), ValueError, "pred_b must be finite"),
        (dict(clusters_a=torch.zeros(9, dtype=torch.long)), ValueError, "clusters_a must have shape"),
        (dict(clusters_b=torch.zeros(6)), ValueError, "clusters_b must hold integer"),
        (dict(n_resamples=0), ValueError, "n_resamples"),
        (dict(level=0), ValueError, "level"),
        (dict(seed="1"), TypeError, "seed"),
    ],
)
def test_two_sample_bad_input_names_the_argument(kwargs, error, match):
    args = (
        dict(
            metric=metrics.accuracy,
            pred_a=torch.full((10, 3), 1 / 3),
            labels_a=torch.arange(10) % 3,
            pred_b=torch.full((6, 3), 1 / 3),
            labels_b=torch.arange(6) % 3,
            n_resamples=10,
        )
        | kwargs
    )
    positional = [args.pop(k) for k in ("metric", "pred_a", "labels_a", "pred_b", "labels_b")]
    with pytest.raises(error, match=match):
        two_sample_bootstrap(*positional, **args)


# -- the cluster resampler: the draws of paired_bootstrap, drawn once ------------------------------------------


def _soft_pair(n: int, seed: int, c: int = 4):
    """Two sets of float64 probabilities (N, C) that differ, and labels: neither one-hot nor flat."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    z = torch.randn(n, c, generator=g, dtype=torch.float64) + 1.5 * torch.nn.functional.one_hot(y, c)
    a = torch.softmax(z, -1)
    b = torch.softmax(z + torch.randn(n, c, generator=g, dtype=torch.float64), -1)
    return a, b, y


@pytest.mark.parametrize("clustered", [False, True])
@pytest.mark.parametrize("name", MEAN_METRICS)
def test_cluster_resampler_equals_paired_bootstrap_on_the_same_draws(name, clustered):
    a, b, y = _soft_pair(150, seed=2)
    # ids that are neither dense nor sorted: the units are the distinct ids in sorted order, as paired_bootstrap has
    clusters = (
        (torch.randint(0, 40, (150,), generator=torch.Generator().manual_seed(4)) * 7 - 50) if clustered else None
    )
    metric = getattr(metrics, name)
    want = paired_bootstrap(metric, a, b, y, clusters=clusters, n_resamples=300, level=0.8, seed=5)
    r = ClusterResampler(clusters, 300, 0.8, 5, n=150)
    got = r.compare(name, a, b, y)
    fields = ("difference", "low", "high", "resolved", "n_units", "n_resamples", "level")
    got_fields, want_fields = ([getattr(d, f) for f in fields] for d in (got, want))
    assert got_fields == pytest.approx(want_fields, abs=1e-9)
    # the same interval from the parts: per-sample terms, their resampled means, interval()
    ta, tb = per_sample_terms(name, a, y), per_sample_terms(name, b, y)
    assert float(ta.mean()) == pytest.approx(metric(a, y), abs=1e-12)
    by_parts = r.interval(metric(a, y) - metric(b, y), r.resampled_means(ta) - r.resampled_means(tb))
    assert (by_parts.low, by_parts.high) == pytest.approx((got.low, got.high), abs=1e-12)


def test_cluster_resampler_counts_sums_and_means():
    clusters = torch.tensor([30, 10, 10, 20, 30, 30])
    r = ClusterResampler(clusters, n_resamples=7, seed=3)
    assert (r.n, r.n_units) == (6, 3)
    assert r.values.tolist() == [10, 20, 30]
    assert r.ids.tolist() == [2, 0, 0, 1, 2, 2]
    assert r.sizes.tolist() == [2.0, 1.0, 3.0]
    draws = resample_units(3, 7, seed=3)
    for row in range(7):
        assert r.counts[row].tolist() == [float((draws[row] == u).sum()) for u in range(3)]
    assert r.counts.sum(dim=1).tolist() == [3.0] * 7
    v = torch.arange(6, dtype=torch.float64)
    assert r.unit_sums(v).tolist() == [3.0, 3.0, 9.0]
    assert r.unit_sums(torch.stack([v, 2 * v], 1)).shape == (3, 2)
    for row in range(7):  # a resample's mean: every sample counts as often as its cluster is drawn
        w = r.counts[row, r.ids]
        assert float(r.resampled_means(v)[row]) == pytest.approx(float((w * v).sum() / w.sum()), abs=1e-12)
    two = r.resampled_means(torch.stack([v, 2 * v], 1))
    assert torch.allclose(two[:, 1], 2 * two[:, 0])
    assert r.same_clusters(clusters + 1)
    assert not r.same_clusters(torch.tensor([0, 1, 1, 2, 0, 1]))
    assert r.units_of(torch.tensor([20, 30])).tolist() == [1, 2]
    d = r.compare_means(v, torch.zeros(6, dtype=torch.float64))
    assert d.difference == pytest.approx(2.5)
    assert d.n_units == 3
    plain = ClusterResampler(None, n_resamples=7, seed=3, n=6)
    assert plain.n_units == 6
    assert torch.equal(plain.counts.sum(1), torch.full((7,), 6.0, dtype=torch.float64))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(clusters=None), ValueError, "n must be given when clusters is None"),
        (dict(clusters=torch.rand(10)), ValueError, "clusters must hold integer group ids"),
        (dict(clusters=torch.zeros(2, 5, dtype=torch.long)), ValueError, r"clusters must have shape \(N,\)"),
        (dict(n=9), ValueError, r"clusters must have shape \(9,\)"),
        (dict(n=0), ValueError, "n must be"),
        (dict(clusters="abc"), TypeError, "clusters must be"),
        (dict(n_resamples=1), ValueError, "n_resamples"),
        (dict(level=1.0), ValueError, "level"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(device="meta"), ValueError, "device must be the clusters' device"),
    ],
)
def test_cluster_resampler_refuses_bad_construction(kwargs, error, match):
    args = dict(clusters=torch.arange(10) // 2, n_resamples=10) | kwargs
    with pytest.raises(error, match=match):
        ClusterResampler(**args)


def test_cluster_resampler_refuses_bad_comparisons():
    a, b, y = _soft_pair(10, seed=0)
    r = ClusterResampler(torch.arange(10) // 2, n_resamples=10)
    with pytest.raises(ValueError, match="metric must be one of"):
        r.compare("ece", a, b, y)
    with pytest.raises(ValueError, match=r"pred_a must have shape \(10, C\)"):
        r.compare("nll", a[:5], b[:5], y[:5])
    with pytest.raises(ValueError, match="pred_b must have the shape of pred_a"):
        r.compare("nll", a, torch.full((10, 3), 1 / 3, dtype=torch.float64), y)
    with pytest.raises(ValueError, match="pred_b must lie in"):
        r.compare("nll", a, b - 0.1, y)
    with pytest.raises(ValueError, match="labels must have shape"):
        r.compare("nll", a, b, y[:3])
    with pytest.raises(ValueError, match="resampled must have shape"):
        r.interval(0.0, torch.zeros(3))
    with pytest.raises(ValueError, match="resampled must be finite"):
        r.interval(0.0, torch.full((10,), float("nan")))
    with pytest.raises(ValueError, match="estimate returned nan"):
        r.interval(float("nan"), torch.zeros(10))
    with pytest.raises(ValueError, match="per_sample must have shape"):
        r.unit_sums(torch.zeros(4))
    with pytest.raises(ValueError, match="out_clusters must name clusters of the in-distribution set"):
        r.units_of(torch.tensor([0, 99]), "out_clusters")
    with pytest.raises(ValueError, match=r"values_b must have shape \(10,\)"):
        r.compare_means(torch.zeros(10), torch.zeros(4))
    with pytest.raises(ValueError, match="metric must be one of"):
        per_sample_terms("ece", a, y)
