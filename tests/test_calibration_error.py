"""Debiased ECE, bootstrap intervals and smooth ECE: against the authors' code where installed, slow exact
references, and synthetic models whose true calibration error is known by construction."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab import metrics
from ensemble_lab.calibration_error import (
    bootstrap_ci,
    bootstrap_ece,
    debiased_ece,
    smooth_ece,
    smooth_ece_bandwidth,
    smooth_reliability,
)


def _world(n, delta=0.0, c=3, lo=0.5, hi=1.0, seed=0):
    """A model with KNOWN top-label miscalibration: top-label confidence ``f ~ U[lo, hi]`` on a random class (the
    rest of the mass spread over the other classes, each below ``f``), correct with probability ``f - delta``.

    Its population top-label ECE is ``delta`` (the binned one too, for any bins), its squared l2 error
    ``delta ** 2``, its smooth ECE ``delta`` at every bandwidth.  ``delta = 0``: calibrated by construction.
    """
    g = torch.Generator().manual_seed(seed)
    conf = lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64)
    top = torch.randint(0, c, (n,), generator=g)
    rest = torch.rand(n, c - 1, generator=g, dtype=torch.float64)
    rest = rest / rest.sum(1, keepdim=True) * (1 - conf)[:, None]
    p = torch.empty(n, c, dtype=torch.float64)
    p.scatter_(1, (top[:, None] + torch.arange(1, c)[None]) % c, rest)
    p.scatter_(1, top[:, None], conf[:, None])
    correct = torch.rand(n, generator=g, dtype=torch.float64) < conf - delta
    other = (top + torch.randint(1, c, (n,), generator=g)) % c
    return p, torch.where(correct, top, other)


def _conf_correct(p, y):
    return p.max(1).values.numpy(), (p.argmax(1) == y).double().numpy()


# ----------------------------------------------------------------------------------------------------------
# debiased ECE
# ----------------------------------------------------------------------------------------------------------


def _reference_debiased(conf, correct, edges):
    """Per-bin loop over numpy with the (lo, hi] bins of ``edges``."""
    idx = np.searchsorted(edges[1:-1], conf, side="left")
    total = 0.0
    for b in range(len(edges) - 1):
        m = idx == b
        nb = int(m.sum())
        if nb < 2:
            continue
        acc, cf = correct[m].mean(), conf[m].mean()
        total += nb / len(conf) * ((acc - cf) ** 2 - acc * (1 - acc) / (nb - 1))
    return total


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_debiased_ece_matches_reference_and_plugin_identity(strategy, n_bins):
    p, y = _world(700, delta=0.05, lo=0.4, seed=1)
    conf, correct = _conf_correct(p, y)
    edges = metrics.reliability(p, y, n_bins=n_bins, strategy=strategy).edges.numpy()
    got = debiased_ece(p, y, n_bins=n_bins, strategy=strategy)
    assert isinstance(got, float)
    assert got == pytest.approx(_reference_debiased(conf, correct, edges), abs=1e-12)
    plugin = metrics.ece(p, y, n_bins=n_bins, strategy=strategy, norm="l2") ** 2
    assert got < plugin  # the variance term is subtracted
    assert debiased_ece(p, y, n_bins=n_bins, strategy=strategy, squared=False) == pytest.approx(
        math.sqrt(max(got, 0.0)), abs=1e-15
    )


def test_debiased_ece_matches_the_authors_package():
    cal = pytest.importorskip("calibration", reason="uncertainty-calibration (Kumar et al.'s package) not installed")
    if not hasattr(cal, "unbiased_square_ce"):
        pytest.skip("the installed 'calibration' module is not uncertainty-calibration")
    for seed, strategy in [(2, "quantile"), (3, "uniform"), (4, "quantile")]:
        p, y = _world(500, delta=0.03 * seed, lo=0.4, seed=seed)
        conf, correct = _conf_correct(p, y)
        edges = metrics.reliability(p, y, n_bins=10, strategy=strategy).edges.numpy()
        binned = cal.bin(list(zip(conf, correct, strict=False)), list(edges[1:]))  # their bins: right edges, (lo, hi]
        assert debiased_ece(p, y, n_bins=10, strategy=strategy) == pytest.approx(
            cal.unbiased_square_ce(binned), abs=1e-12
        )


def _many(delta, seeds, n=400):
    deb, plug = [], []
    for s in seeds:
        p, y = _world(n, delta=delta, lo=0.4, seed=s)
        deb.append(debiased_ece(p, y, n_bins=10))
        plug.append(metrics.ece(p, y, n_bins=10, strategy="quantile", norm="l2") ** 2)
    return np.array(deb), np.array(plug)


def test_debiased_ece_is_unbiased_on_calibrated_data_where_the_plugin_is_not():
    deb, plug = _many(0.0, range(200))
    se = deb.std(ddof=1) / np.sqrt(len(deb))
    assert abs(deb.mean()) < 3 * se + 1e-5  # ~0 in expectation ...
    assert (deb < 0).mean() > 0.2  # ... so it is often negative, and reported as such
    assert plug.mean() > deb.mean() + 10 * se  # the plug-in is biased upward
    assert plug.mean() == pytest.approx(np.mean(plug - deb), rel=0.05)  # by about the variance term


def test_debiased_ece_recovers_a_known_squared_error():
    deb, plug = _many(0.1, range(200, 300))
    se = deb.std(ddof=1) / np.sqrt(len(deb))
    assert abs(deb.mean() - 0.01) < 3 * se + 2e-4
    assert plug.mean() - 0.01 > 5 * se


# ----------------------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "truth"),
    [
        (metrics.ece, 0.15),  # population ECE is delta; at delta = 0.15 binned ECE is ~unbiased
        (metrics.accuracy, 0.6 - 0.15),  # E[conf] - delta, conf ~ U[0.4, 0.8]
    ],
)
def test_bootstrap_interval_covers_the_truth_at_about_the_nominal_rate(metric, truth):
    reps, hits, widths = 100, 0, []
    for rep in range(reps):
        p, y = _world(600, delta=0.15, lo=0.4, hi=0.8, seed=1000 + rep)
        kwargs = {"n_bins": 5} if metric is metrics.ece else {}
        est, low, high = bootstrap_ci(metric, p, y, n_boot=100, level=0.9, seed=rep, **kwargs)
        assert low <= high
        hits += low <= truth <= high
        widths.append(high - low)
    assert 0.8 <= hits / reps <= 0.98, hits
    assert 0 < np.mean(widths) < 0.15


def test_bootstrap_api():
    p, y = _world(300, delta=0.1, seed=5)
    a = bootstrap_ci(metrics.ece, p, y, n_boot=50, seed=3, n_bins=5)
    assert a == bootstrap_ci(metrics.ece, p, y, n_boot=50, seed=3, n_bins=5)  # seeded
    assert a != bootstrap_ci(metrics.ece, p, y, n_boot=50, seed=4, n_bins=5)
    assert all(isinstance(v, float) for v in a)
    assert a[0] == metrics.ece(p, y, n_bins=5)  # the estimate is the metric on all the data
    # any f(probs, labels) -> number, including one without validate= and one returning a tensor
    b = bootstrap_ci(lambda q, t: (q.argmax(1) == t).double().mean(), p, y, n_boot=50, seed=3)
    assert b[0] == pytest.approx(metrics.accuracy(p, y))
    assert b[1] <= b[0] <= b[2]
    wide = bootstrap_ci(metrics.accuracy, p, y, n_boot=200, level=0.99)
    narrow = bootstrap_ci(metrics.accuracy, p, y, n_boot=200, level=0.5)
    assert wide[1] <= narrow[1] <= narrow[2] <= wide[2]
    # numpy input
    c = bootstrap_ci(metrics.ece, p.numpy(), y.numpy(), n_boot=50, seed=3, n_bins=5)
    assert c == a


def test_bootstrap_batches_larger_than_one_chunk():
    p, y = _world(50_000, delta=0.1, seed=6)  # several gather batches (chunk bounded by memory)
    est, low, high = bootstrap_ci(metrics.accuracy, p, y, n_boot=30, seed=1)
    assert low < est < high
    assert high - low < 0.02


@pytest.mark.parametrize(
    ("estimator", "metric", "kwargs"),
    [
        ("binned", metrics.ece, {"n_bins": 15, "strategy": "uniform"}),
        ("binned", metrics.ece, {"n_bins": 7, "strategy": "quantile"}),
        ("debiased", debiased_ece, {"n_bins": 15, "strategy": "quantile"}),
        ("debiased", debiased_ece, {"n_bins": 4, "strategy": "uniform"}),
        ("smooth", smooth_ece, {"bandwidth": 0.05}),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_batched_bootstrap_equals_one_metric_call_per_resample(estimator, metric, kwargs, dtype):
    """Same seed, same resamples: the batched interval is the generic one (which calls the tested metric)."""
    p, y = _world(3000, delta=0.05, c=4, seed=11)
    p = p.to(dtype)
    fast = bootstrap_ece(p, y, estimator, n_boot=60, seed=2, **kwargs)
    slow = bootstrap_ci(metric, p, y, n_boot=60, seed=2, **kwargs)
    assert fast == pytest.approx(slow, abs=1e-12, rel=1e-9)


def test_batched_smooth_bootstrap_holds_the_full_sample_bandwidth():
    p, y = _world(2000, delta=0.1, seed=12)
    sigma = smooth_ece_bandwidth(p, y)
    auto = bootstrap_ece(p, y, "smooth", n_boot=40, seed=5)
    fixed = bootstrap_ci(smooth_ece, p, y, n_boot=40, seed=5, bandwidth=sigma)
    assert auto == pytest.approx(fixed, abs=1e-12)
    assert auto[0] == pytest.approx(smooth_ece(p, y), abs=1e-9)
    assert auto[1] < 0.1 < auto[2]  # the true smooth ECE of this world is delta = 0.1


def test_batched_bootstrap_is_seeded_and_batches_across_chunks():
    p, y = _world(120_000, delta=0.1, seed=13)  # > 1 resample batch of at most ~4M gathered entries
    a = bootstrap_ece(p, y, n_boot=40, seed=1, n_bins=10)
    assert a == bootstrap_ece(p, y, n_boot=40, seed=1, n_bins=10)
    assert a != bootstrap_ece(p, y, n_boot=40, seed=2, n_bins=10)
    assert a[1] < 0.1 < a[2]
    assert a[2] - a[1] < 0.01


# ----------------------------------------------------------------------------------------------------------
# smooth ECE
# ----------------------------------------------------------------------------------------------------------


def _reference_smece(f, r, sigma, m=5001):
    """The definition, evaluated directly: reflected Gaussian kernel as a sum of images, trapezoid over t."""
    t = np.linspace(0, 1, m)
    k = np.zeros((m, len(f)))
    for j in range(-3, 4):
        k += np.exp(-0.5 * ((t[:, None] - f[None] + 2 * j) / sigma) ** 2)
        k += np.exp(-0.5 * ((t[:, None] + f[None] + 2 * j) / sigma) ** 2)
    k /= sigma * np.sqrt(2 * np.pi)
    return np.trapezoid(np.abs(k @ r / len(f)), t)


@pytest.mark.parametrize("sigma", [0.02, 0.05, 0.1, 0.5])
def test_smooth_ece_matches_the_definition(sigma):
    p, y = _world(200, delta=0.05, lo=0.34, seed=7)  # confidences reach the boundary at 1
    f, correct = _conf_correct(p, y)
    assert smooth_ece(p, y, bandwidth=sigma) == pytest.approx(_reference_smece(f, correct - f, sigma), rel=1e-3)


def test_smooth_ece_is_about_zero_when_calibrated_and_the_shift_when_shifted():
    p0, y0 = _world(20_000, delta=0.0, lo=0.4, seed=8)
    p1, y1 = _world(20_000, delta=0.1, lo=0.4, seed=8)
    s0, s1 = smooth_ece(p0, y0), smooth_ece(p1, y1)
    assert s0 < 0.02
    assert s1 == pytest.approx(0.1, abs=0.01)
    assert smooth_ece_bandwidth(p1, y1) == pytest.approx(s1, abs=1e-5)  # the fixed point sigma* = smECE
    assert smooth_ece(p1, y1, bandwidth=smooth_ece_bandwidth(p1, y1)) == pytest.approx(s1, abs=1e-12)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), delta=st.floats(0.0, 0.3))
def test_smooth_ece_is_non_increasing_in_the_bandwidth(seed, delta):
    p, y = _world(200, delta=delta, lo=0.34, seed=seed)
    vals = [smooth_ece(p, y, bandwidth=s) for s in (0.01, 0.03, 0.1, 0.3, 1.0)]
    assert all(b <= a + 1e-6 for a, b in zip(vals, vals[1:], strict=False))
    assert vals[-1] >= 0
    assert vals[0] <= 1


def test_smooth_ece_agrees_with_relplot():
    relplot = pytest.importorskip("relplot", reason="relplot (Blasiok & Nakkiran's package) not installed")
    for delta, seed in [(0.0, 9), (0.1, 10)]:
        # confidences away from 0 and 1: relplot's grid handles the reflection at the boundary approximately
        p, y = _world(5000, delta=delta, lo=0.5, hi=0.9, seed=seed)
        f, correct = _conf_correct(p, y)
        for sigma in (0.02, 0.05, 0.1):
            assert smooth_ece(p, y, bandwidth=sigma) == pytest.approx(relplot.smECE_sigma(f, correct, sigma), rel=1e-2)
        # automatic bandwidth: relplot bisects to 2**-10 and returns smECE at the top of its bracket
        theirs, width = relplot.smECE(f, correct, return_width=True)
        assert smooth_ece(p, y, bandwidth=width) == pytest.approx(theirs, rel=1e-2)
        assert width - 2**-10 - 1e-4 <= smooth_ece_bandwidth(p, y) <= width + 1e-4
        assert smooth_ece(p, y) == pytest.approx(theirs, abs=2**-10)


def test_smooth_reliability_curve():
    p, y = _world(20_000, delta=0.1, lo=0.4, seed=11)
    x, curve = smooth_reliability(p, y, grid=101)
    assert x.shape == curve.shape == (101,)
    assert x[0] == 0
    assert x[-1] == 1
    inside = (x >= 0.5) & (x <= 0.9)
    torch.testing.assert_close(curve[inside], x[inside] - 0.1, atol=0.03, rtol=0)
    p0, y0 = _world(20_000, delta=0.0, lo=0.4, seed=11)
    x0, c0 = smooth_reliability(p0, y0, bandwidth=0.05)
    inside0 = (x0 >= 0.5) & (x0 <= 0.9)
    torch.testing.assert_close(c0[inside0], x0[inside0], atol=0.03, rtol=0)


# ----------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------

_P, _Y = _world(40, seed=12)
_NOT_SIMPLEX = _P * 1.5
_NAN = _P.clone()
_NAN[0, 0] = float("nan")
_BAD = [
    (lambda: debiased_ece(_P, _Y, n_bins=0), ValueError, "n_bins"),
    (lambda: debiased_ece(_P, _Y, n_bins=3.0), TypeError, "n_bins must be an int"),
    (lambda: debiased_ece(_P, _Y, strategy="equal"), ValueError, "strategy must be one of"),
    (lambda: debiased_ece(_P, _Y, squared="yes"), TypeError, "squared must be True or False, got .yes."),
    (lambda: debiased_ece(_NOT_SIMPLEX, _Y), ValueError, "probs"),
    (lambda: debiased_ece(_NAN, _Y), ValueError, "probs must be finite"),
    (lambda: debiased_ece(_P, _Y[:-1]), ValueError, "labels must have shape"),
    (lambda: debiased_ece(_P, _Y + 3), ValueError, "labels must lie in"),
    (lambda: bootstrap_ci("ece", _P, _Y), TypeError, "metric must be a callable"),
    (lambda: bootstrap_ci(metrics.ece, _P, _Y, n_boot=1), ValueError, "n_boot"),
    (lambda: bootstrap_ci(metrics.ece, _P, _Y, level=1.0), ValueError, r"level must be in \(0, 1\)"),
    (lambda: bootstrap_ci(metrics.ece, _P, _Y, level=0.0), ValueError, "level"),
    (lambda: bootstrap_ci(metrics.ece, _P, _Y, seed=1.5), TypeError, "seed must be an int"),
    (lambda: bootstrap_ci(metrics.ece, _NOT_SIMPLEX, _Y), ValueError, "probs"),
    (lambda: bootstrap_ci(metrics.ece, _P, _Y.float() + 0.5), ValueError, "labels must be integer"),
    (lambda: bootstrap_ci(lambda p, y: "high", _P, _Y), TypeError, "metric must return a number"),
    (lambda: bootstrap_ci(lambda p, y: float("nan"), _P, _Y), ValueError, "non-finite"),
    (lambda: bootstrap_ece(_P, _Y, "kernel"), ValueError, "estimator must be one of"),
    (lambda: bootstrap_ece(_P, _Y, n_bins=0), ValueError, "n_bins"),
    (lambda: bootstrap_ece(_P, _Y, strategy="equal"), ValueError, "strategy"),
    (lambda: bootstrap_ece(_P, _Y, n_boot=1), ValueError, "n_boot"),
    (lambda: bootstrap_ece(_P, _Y, level=1.5), ValueError, "level"),
    (lambda: bootstrap_ece(_P, _Y, "smooth", bandwidth=0.0), ValueError, "bandwidth"),
    (lambda: bootstrap_ece(_NAN, _Y), ValueError, "probs must be finite"),
    (lambda: bootstrap_ece(_P, _Y[:-1]), ValueError, "labels must have shape"),
    (lambda: smooth_ece(_P, _Y, bandwidth=0.0), ValueError, "bandwidth must be a finite number > 0"),
    (lambda: smooth_ece(_P, _Y, bandwidth=-0.1), ValueError, "bandwidth"),
    (lambda: smooth_ece(_P, _Y, bandwidth=1e-6), ValueError, r"bandwidth must be in \[0.0001, 10\]"),
    (lambda: smooth_ece(_P, _Y, bandwidth=float("inf")), ValueError, "bandwidth"),
    (lambda: smooth_ece(_NAN, _Y), ValueError, "probs must be finite"),
    (lambda: smooth_ece(_P[:, :1], _Y), ValueError, "probs must have shape"),
    (lambda: smooth_ece_bandwidth(_P, _Y[:3]), ValueError, "labels must have shape"),
    (lambda: smooth_reliability(_P, _Y, grid=1), ValueError, "grid"),
    (lambda: smooth_reliability(_P, _Y, grid=10.0), TypeError, "grid must be an int"),
    (lambda: smooth_reliability(_P, _Y, bandwidth=0), ValueError, "bandwidth"),
    (lambda: smooth_reliability(_NOT_SIMPLEX, _Y), ValueError, "probs"),
]


@pytest.mark.parametrize(("call", "exc", "match"), _BAD, ids=[f"bad{i}" for i in range(len(_BAD))])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_seeds_counts_and_bandwidth_are_checked():
    for seed in (-1, 2**64):
        with pytest.raises(ValueError, match=r"seed must be in \[0, 9223372036854775807\]"):
            bootstrap_ci(metrics.ece, _P, _Y, seed=seed)
        with pytest.raises(ValueError, match="seed must be in"):
            bootstrap_ece(_P, _Y, seed=seed)
    with pytest.raises(ValueError, match=r"n_boot must be in \[2, 10000000\]"):
        bootstrap_ci(metrics.ece, _P, _Y, n_boot=2**64)
    with pytest.raises(ValueError, match=r"n_bins must be in \[1, 10000000\]"):
        debiased_ece(_P, _Y, n_bins=2**70)
    with pytest.raises(ValueError, match=r"grid must be in \[2, 10000000\]"):
        smooth_reliability(_P, _Y, grid=2**64)
    with pytest.raises(TypeError, match="bandwidth must be a number"):
        bootstrap_ece(_P, _Y, bandwidth="abc")
    with pytest.raises(ValueError, match="bandwidth applies only to estimator='smooth'"):
        bootstrap_ece(_P, _Y, "binned", bandwidth=0.1)
    with pytest.raises(ValueError, match="n_bins=5000000 is too many bins for bootstrap_ece"):
        bootstrap_ece(_P, _Y, n_bins=5_000_000)
    est, low, high = bootstrap_ece(_P, _Y, "smooth", bandwidth=0.1, n_boot=20)
    assert low <= high
