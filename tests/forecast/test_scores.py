"""Scores of ensemble forecasts (ensemble_lab.forecast.scores) against two oracles and the closed forms.

Oracles: scoringrules (CRPS "nrg" and "fair", energy score, mixture CRPS, normal CRPS, Brier) and properscoring
(the threshold-free ensemble CRPS), on random inputs with ties; scipy's ``quad`` for the normal CRPS integral and
``scipy.stats.chisquare`` for the rank-histogram test; plain loops for the rank histogram, the reliability table
and the per-lead spread-skill.  Statistical checks (unbiasedness of the fair CRPS, spread-skill ~ 1, flat rank
histograms) use seeded draws and intervals from the Monte Carlo error.  Property tests use hypothesis.
"""

from __future__ import annotations

import math

import numpy as np
import properscoring as ps
import pytest
import scoringrules as sr
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from ensemble_lab.forecast import scores
from ensemble_lab.forecast.scores import (
    RankFlatness,
    SpreadSkill,
    ThresholdReliability,
    brier_threshold,
    crps_ensemble,
    crps_gaussian,
    crps_gaussian_mixture,
    energy_score,
    exceedance_probability,
    rank_histogram,
    rank_histogram_flatness,
    spread_skill,
    spread_skill_ratio,
    threshold_reliability,
)

F64 = torch.float64
SHAPES = [(), (7,), (3, 4)]
MS = [2, 3, 10, 50]


def _draw(m, shape, seed, dtype=F64, ties=True):
    """Members ``(m, *shape)`` and observations ``shape``; with ``ties``, some members equal each other or the
    observation exactly (rounded draws plus copies)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((m, *shape), generator=g, dtype=F64) * 2 + 0.5
    y = torch.randn(shape, generator=g, dtype=F64) * 2
    if ties:
        x = (x * 4).round() / 4  # quarter steps: ties among members
        xf, yf = x.reshape(m, -1), y.reshape(-1).clone()
        yf[::3] = xf[0, ::3]  # the observation equals a member at every third point
        if m > 2:
            xf[2] = xf[1]
        x, y = xf.reshape(x.shape), yf.reshape(y.shape)
    return x.to(dtype), y.to(dtype)


def _tol(dtype):
    return dict(rtol=1e-10, atol=1e-10) if dtype == F64 else dict(rtol=1e-5, atol=1e-5)


def _np(t):
    return t.detach().double().numpy()


# ----------------------------------------------------------------------------------------------------------
# oracles
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("m", [1, *MS])
def test_crps_standard_matches_scoringrules_and_properscoring(m, shape, dtype):
    x, y = _draw(m, shape, seed=m * 10 + len(shape), dtype=dtype)
    got = crps_ensemble(x, y)
    assert got.dtype == dtype
    assert tuple(got.shape) == shape
    want_sr = sr.crps_ensemble(_np(y), _np(x), m_axis=0, estimator="nrg", backend="numpy")
    want_ps = ps.crps_ensemble(_np(y), np.moveaxis(_np(x), 0, -1))
    np.testing.assert_allclose(_np(got), want_sr, **_tol(dtype))
    np.testing.assert_allclose(_np(got), want_ps, **_tol(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("m", MS)
def test_crps_fair_matches_scoringrules(m, shape, dtype):
    x, y = _draw(m, shape, seed=m * 11 + len(shape), dtype=dtype)
    got = crps_ensemble(x, y, fair=True)
    want = sr.crps_ensemble(_np(y), _np(x), m_axis=0, estimator="fair", backend="numpy")
    np.testing.assert_allclose(_np(got), want, **_tol(dtype))


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("d", [1, 3, 40])
@pytest.mark.parametrize("m", MS)
def test_energy_score_matches_scoringrules(m, d, dtype):
    x, y = _draw(m, (6, d), seed=m * 13 + d, dtype=dtype)
    for fair, estimator in ((False, "nrg"), (True, "fair")):
        got = energy_score(x, y, fair=fair)
        assert got.dtype == dtype
        assert tuple(got.shape) == (6,)
        want = sr.es_ensemble(_np(y), _np(x), m_axis=0, v_axis=-1, estimator=estimator, backend="numpy")
        np.testing.assert_allclose(_np(got), want, **_tol(dtype))


def test_energy_score_of_one_variable_is_the_crps():
    x, y = _draw(10, (9,), seed=3)
    for fair in (False, True):
        torch.testing.assert_close(energy_score(x[..., None], y[..., None], fair=fair), crps_ensemble(x, y, fair=fair))


def test_energy_score_in_small_blocks_is_the_same(monkeypatch):
    x, y = _draw(7, (2, 5, 4), seed=4)
    whole = energy_score(x, y, fair=True)
    monkeypatch.setattr(scores, "_CHUNK", 7 * 7 * 3)  # blocks of 3 points: 4 blocks for the 10 points
    torch.testing.assert_close(energy_score(x, y, fair=True), whole, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("m", [1, 3, 10])
def test_mixture_crps_matches_scoringrules(m, dtype):
    g = torch.Generator().manual_seed(m)
    means = torch.randn(m, 4, 5, generator=g, dtype=F64)
    stds = torch.rand(m, 4, 5, generator=g, dtype=F64) * 2 + 0.05
    y = torch.randn(4, 5, generator=g, dtype=F64)
    w = torch.rand(m, generator=g, dtype=F64) + 0.1
    w = w / w.sum()
    got = crps_gaussian_mixture(means.to(dtype), stds.to(dtype), y.to(dtype), weights=w)
    assert got.dtype == dtype
    wb = np.broadcast_to(_np(w)[:, None, None], means.shape)
    want = sr.crps_mixnorm(_np(y), _np(means.to(dtype)), _np(stds.to(dtype)), wb, m_axis=0, backend="numpy")
    np.testing.assert_allclose(_np(got), want, **_tol(dtype))
    uniform = sr.crps_mixnorm(_np(y), _np(means), _np(stds), m_axis=0, backend="numpy")
    np.testing.assert_allclose(_np(crps_gaussian_mixture(means, stds, y)), uniform, rtol=1e-10, atol=1e-10)


def test_mixture_of_one_is_the_normal_crps_and_weights_are_normalised():
    g = torch.Generator().manual_seed(5)
    mu, s, y = torch.randn(8, generator=g, dtype=F64), torch.rand(8, generator=g, dtype=F64) + 0.1, torch.randn(8)
    torch.testing.assert_close(crps_gaussian_mixture(mu[None], s[None], y.double()), crps_gaussian(mu, s, y.double()))
    means, stds = torch.randn(3, 8, generator=g, dtype=F64), torch.rand(3, 8, generator=g, dtype=F64) + 0.1
    torch.testing.assert_close(
        crps_gaussian_mixture(means, stds, y.double(), weights=[1.0, 2.0, 3.0]),
        crps_gaussian_mixture(means, stds, y.double(), weights=[1 / 6, 2 / 6, 3 / 6]),
    )


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_crps_gaussian_matches_scoringrules_and_broadcasts(dtype):
    g = torch.Generator().manual_seed(6)
    mu = torch.randn(5, 1, generator=g, dtype=F64)
    s = torch.rand(1, 4, generator=g, dtype=F64) + 0.1
    y = torch.randn(5, 4, generator=g, dtype=F64) * 3
    got = crps_gaussian(mu.to(dtype), s.to(dtype), y.to(dtype))
    assert got.shape == (5, 4)
    assert got.dtype == dtype
    want = sr.crps_normal(_np(y.to(dtype)), _np(mu.to(dtype)), _np(s.to(dtype)), backend="numpy")
    np.testing.assert_allclose(_np(got), want, **_tol(dtype))
    assert crps_gaussian(0.0, 1.0, torch.tensor([0.0, 1.0], dtype=F64)).dtype == F64
    # a tiny std: the score tends to |y - mean| and stays finite
    assert float(crps_gaussian(0.0, 1e-300, 2.0)) == pytest.approx(2.0, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("m", MS)
def test_brier_matches_scoringrules_and_the_fair_formula(m, dtype):
    x, y = _draw(m, (40,), seed=m * 17, dtype=dtype)
    threshold = 0.5  # the quarter steps put members and observations exactly on it: strict ">" is tested
    p = exceedance_probability(x, threshold)
    o = (y > threshold).double()
    np.testing.assert_allclose(_np(p), (_np(x) > threshold).mean(0), rtol=0, atol=1e-7)
    got = brier_threshold(x, y, threshold)
    assert got.dtype == dtype
    np.testing.assert_allclose(_np(got), sr.brier_score(_np(o), _np(p), backend="numpy"), **_tol(dtype))
    fair = brier_threshold(x, y, threshold, fair=True)
    pd = _np(p)
    np.testing.assert_allclose(_np(fair), (pd - _np(o)) ** 2 - pd * (1 - pd) / (m - 1), **_tol(dtype))
    assert bool((fair >= 0).all())


def test_per_point_thresholds():
    x, y = _draw(5, (3, 4), seed=7)
    t = torch.linspace(-1, 1, 4, dtype=F64)  # one threshold per column, broadcast over rows
    want = (x > t).double().mean(0)
    torch.testing.assert_close(exceedance_probability(x, t), want)
    torch.testing.assert_close(brier_threshold(x, y, t), (want - (y > t).double()) ** 2)
    assert threshold_reliability(x, y, t).count.sum() == 12


# ----------------------------------------------------------------------------------------------------------
# closed forms and what the fair estimator promises
# ----------------------------------------------------------------------------------------------------------

CASES = [(0.0, 1.0, 0.3), (1.5, 0.4, -0.2), (-2.0, 3.0, 4.0)]


@pytest.mark.parametrize(("mu", "s", "y"), CASES)
def test_crps_gaussian_is_the_integral(mu, s, y):
    def integrand(t):
        return (stats.norm.cdf(t, mu, s) - (t >= y)) ** 2

    lo, hi = mu - 40 * s, mu + 40 * s
    left = integrate.quad(integrand, lo, y, epsabs=1e-13, limit=200)[0]
    right = integrate.quad(integrand, y, hi, epsabs=1e-13, limit=200)[0]
    assert float(crps_gaussian(mu, s, torch.tensor(y, dtype=F64))) == pytest.approx(left + right, abs=1e-10)


@pytest.mark.parametrize(("mu", "s", "y"), CASES)
def test_crps_gaussian_is_the_limit_of_sampled_ensembles(mu, s, y):
    g = torch.Generator().manual_seed(8)
    draws = mu + s * torch.randn(400, 500, generator=g, dtype=F64)  # 500 ensembles of 400 members
    fair = crps_ensemble(draws, torch.full((500,), y, dtype=F64), fair=True)
    se = float(fair.std()) / math.sqrt(fair.numel())
    assert abs(float(fair.mean()) - float(crps_gaussian(mu, s, y))) < 4 * se


def test_fair_crps_is_unbiased_and_the_standard_one_is_not():
    m, n = 3, 200_000
    g = torch.Generator().manual_seed(9)
    x = torch.randn(m, n, generator=g, dtype=F64)
    y = torch.randn(n, generator=g, dtype=F64) * 1.3 + 0.2  # any observations: the bias is about the members
    truth = crps_gaussian(0.0, 1.0, y)
    fair = crps_ensemble(x, y, fair=True) - truth
    standard = crps_ensemble(x, y) - truth
    assert abs(float(fair.mean())) < 4 * float(fair.std()) / math.sqrt(n)
    bias = 1 / (m * math.sqrt(math.pi))  # E|X - X'| / (2M) with E|X - X'| = 2 / sqrt(pi)
    assert abs(float(standard.mean()) - bias) < 4 * float(standard.std()) / math.sqrt(n)
    assert float(standard.mean()) > 10 * float(standard.std()) / math.sqrt(n)


# ----------------------------------------------------------------------------------------------------------
# spread and skill
# ----------------------------------------------------------------------------------------------------------


def test_spread_skill_is_one_for_a_reliable_ensemble_and_less_when_under_dispersed():
    m, n = 5, 100_000
    g = torch.Generator().manual_seed(10)
    centre = torch.randn(n, generator=g, dtype=F64) * 3  # the forecast distribution changes from point to point
    x = centre + torch.randn(m, n, generator=g, dtype=F64)
    y = centre + torch.randn(n, generator=g, dtype=F64)
    r = spread_skill(x, y)
    assert isinstance(r, SpreadSkill)
    assert r.ratio.ndim == 0
    assert float(r.ratio) == pytest.approx(1.0, abs=0.015)
    assert float(spread_skill_ratio(centre + 0.5 * (x - centre), y)) < 0.6
    assert float(spread_skill_ratio(x, y)) == float(r.ratio)


def test_spread_skill_by_hand_and_per_lead_matches_a_loop():
    x, y = _draw(4, (3, 50), seed=11, ties=False)
    r = spread_skill(x, y, dim=1)
    assert r.ratio.shape == (3,)
    for lead in range(3):
        xl, yl = x[:, lead].numpy(), y[lead].numpy()
        spread = math.sqrt(np.mean(np.var(xl, axis=0, ddof=1)))
        skill = math.sqrt(np.mean((xl.mean(0) - yl) ** 2))
        assert float(r.spread[lead]) == pytest.approx(spread, rel=1e-12)
        assert float(r.skill[lead]) == pytest.approx(skill, rel=1e-12)
        assert float(r.ratio[lead]) == pytest.approx(math.sqrt(5 / 4) * spread / skill, rel=1e-12)
    torch.testing.assert_close(spread_skill(x, y, dim=(-1,)).ratio, r.ratio)
    torch.testing.assert_close(spread_skill(x, y, dim=(0, 1)).ratio, spread_skill(x, y).ratio)


def test_spread_skill_refuses_a_perfect_mean():
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="ensemble mean equals the observations exactly"):
        spread_skill(x, torch.tensor([1.0, 2.0]))


# ----------------------------------------------------------------------------------------------------------
# rank histogram
# ----------------------------------------------------------------------------------------------------------


def _rank_loop(x, y, seed):
    """One point at a time, ties broken by the same stream of uniforms as the routine documents."""
    m = x.shape[0]
    xf, yf = x.reshape(m, -1), y.reshape(-1)
    u = torch.rand(yf.shape[0], generator=torch.Generator().manual_seed(seed), dtype=F64)
    counts = [0] * (m + 1)
    for p in range(yf.shape[0]):
        below = sum(float(xf[i, p]) < float(yf[p]) for i in range(m))
        ties = sum(float(xf[i, p]) == float(yf[p]) for i in range(m))
        counts[below + min(int(math.floor(float(u[p]) * (ties + 1))), ties)] += 1
    return counts


@pytest.mark.parametrize("m", [1, 3, 10])
def test_rank_histogram_matches_a_loop(m):
    x, y = _draw(m, (6, 9), seed=m + 12)
    counts = rank_histogram(x, y, seed=3)
    assert counts.dtype == torch.int64
    assert counts.shape == (m + 1,)
    assert counts.tolist() == _rank_loop(x, y, 3)
    assert int(counts.sum()) == 54


def test_rank_histogram_ties_are_random_but_reproducible():
    g = torch.Generator().manual_seed(13)
    x = torch.randint(0, 3, (4, 2000), generator=g).double()  # a discrete variable: many ties
    y = torch.randint(0, 3, (2000,), generator=g).double()
    a, b, c = rank_histogram(x, y, seed=1), rank_histogram(x, y, seed=1), rank_histogram(x, y, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert int(a.sum()) == int(c.sum()) == 2000
    # all members tie with the observation: the rank is uniform over 0..M
    flat = rank_histogram(torch.zeros(4, 5000), torch.zeros(5000), seed=0)
    assert rank_histogram_flatness(flat).delta < 4


def test_rank_histogram_is_flat_for_exchangeable_and_u_shaped_when_under_dispersed():
    m, n = 9, 20_000
    g = torch.Generator().manual_seed(14)
    centre = torch.randn(n, generator=g, dtype=F64)
    x = centre + torch.randn(m, n, generator=g, dtype=F64)
    y = centre + torch.randn(n, generator=g, dtype=F64)
    flat = rank_histogram_flatness(rank_histogram(x, y))
    assert isinstance(flat, RankFlatness)
    assert flat.n_points == n
    assert flat.n_members == m
    assert flat.delta < 3
    assert flat.p_value > 1e-3
    under = rank_histogram(centre + 0.5 * (x - centre), y)
    assert int(under[0]) > 2 * int(under[m // 2])
    assert int(under[-1]) > 2 * int(under[m // 2])
    assert rank_histogram_flatness(under).delta > 100


def test_flatness_matches_scipy():
    counts = [30, 12, 9, 14, 35]
    r = rank_histogram_flatness(torch.tensor(counts))
    want = stats.chisquare(counts)
    assert r.chi2 == pytest.approx(want.statistic, rel=1e-12)
    assert r.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert r.delta == pytest.approx(want.statistic / 4, rel=1e-12)
    assert rank_histogram_flatness(np.array(counts, dtype=np.float64)) == r


# ----------------------------------------------------------------------------------------------------------
# reliability of a threshold event
# ----------------------------------------------------------------------------------------------------------


def test_threshold_reliability_matches_a_loop():
    x, y = _draw(6, (200,), seed=15)
    r = threshold_reliability(x, y, 1.0)
    assert isinstance(r, ThresholdReliability)
    k = (x > 1.0).sum(0)
    o = y > 1.0
    for j in range(7):
        sel = k == j
        assert int(r.count[j]) == int(sel.sum())
        assert int(r.hits[j]) == int((sel & o).sum())
        want = float((sel & o).sum()) / int(sel.sum()) if sel.any() else 0.0
        assert float(r.observed_frequency[j]) == pytest.approx(want, rel=1e-15)
        assert bool(r.present[j]) == bool(sel.any())
        assert float(r.probability[j]) == pytest.approx(j / 6)
    assert r.base_rate == pytest.approx(float(o.double().mean()))
    assert r.n_points == 200
    assert not bool(torch.isnan(r.observed_frequency).any())


# ----------------------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------------------


@st.composite
def _ensembles(draw, min_m=1):
    m = draw(st.integers(min_m, 8))
    n = draw(st.integers(1, 6))
    values = st.sampled_from([-3.0, -1.0, -0.25, 0.0, 0.5, 1.0, 2.75]) | st.floats(-10, 10, allow_nan=False)
    x = torch.tensor(draw(st.lists(st.lists(values, min_size=n, max_size=n), min_size=m, max_size=m)), dtype=F64)
    y = torch.tensor(draw(st.lists(values, min_size=n, max_size=n)), dtype=F64)
    return x, y


FEW = settings(max_examples=40, deadline=None, database=None)


@FEW
@given(_ensembles(min_m=2), st.integers(0, 2**31 - 1), st.floats(-50, 50))
def test_crps_properties(data, seed, shift):
    x, y = data
    standard, fair = crps_ensemble(x, y), crps_ensemble(x, y, fair=True)
    scale = 1e-12 * (1 + x.abs().max() + y.abs().max())
    assert bool((standard >= -scale).all())
    assert bool((fair >= -scale).all())
    assert bool((fair <= standard + scale).all())
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(crps_ensemble(x[perm], y), standard, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(crps_ensemble(x + shift, y + shift), standard, rtol=1e-9, atol=1e-9 * (1 + abs(shift)))
    e = energy_score(x[..., None].expand(-1, -1, 2), y[..., None].expand(-1, 2), fair=True)
    torch.testing.assert_close(e, math.sqrt(2) * fair, rtol=1e-10, atol=1e-10)


@FEW
@given(_ensembles())
def test_crps_of_one_member_is_the_absolute_error(data):
    x, y = data
    torch.testing.assert_close(crps_ensemble(x[:1], y), (x[0] - y).abs(), rtol=0, atol=0)


def test_crps_is_differentiable():
    g = torch.Generator().manual_seed(16)
    x = torch.randn(5, 3, generator=g, dtype=F64, requires_grad=True)
    y = torch.randn(3, generator=g, dtype=F64)
    assert torch.autograd.gradcheck(lambda t: crps_ensemble(t, y, fair=True), (x,))
    assert torch.autograd.gradcheck(
        lambda t: energy_score(t.unsqueeze(-1).expand(-1, -1, 2), y[:, None].expand(-1, 2)), (x,)
    )


# ----------------------------------------------------------------------------------------------------------
# bad input (the census, tests/bad_input, covers the rest)
# ----------------------------------------------------------------------------------------------------------

X, Y = torch.randn(4, 6), torch.randn(6)

BAD = [
    (crps_ensemble, (X, torch.randn(5)), ValueError, "observations"),
    (crps_ensemble, (X[:0], Y), ValueError, "members"),
    (crps_ensemble, (X[:1], Y, True), ValueError, r"members.*M - 1"),
    (crps_ensemble, (X.masked_fill(X > 1, math.nan), Y), ValueError, "members must be finite"),
    (crps_ensemble, (X, Y.clone().fill_(math.inf)), ValueError, "observations must be finite"),
    (crps_ensemble, (X > 0, Y), TypeError, "members"),
    (crps_ensemble, (X.to(torch.complex64), Y), TypeError, "members"),
    (crps_ensemble, (X, Y.to("meta")), ValueError, "observations must be on the same device"),
    (crps_ensemble, (X, Y, "yes"), TypeError, "fair"),
    (
        crps_ensemble,
        (torch.full((2, 3), 1e308, dtype=F64), torch.full((3,), -1e308, dtype=F64)),
        ValueError,
        "members against observations",
    ),
    (energy_score, (X[0], Y), ValueError, "members must have shape"),
    (energy_score, (X[..., None], Y), ValueError, "observations"),
    (crps_gaussian, (X, -X.abs(), X), ValueError, "std must be > 0"),
    (crps_gaussian, (X, 1.0, torch.randn(5)), ValueError, "broadcast"),
    (crps_gaussian_mixture, (X, X.abs() + 1, torch.randn(4)), ValueError, "observations"),
    (crps_gaussian_mixture, (X, (X.abs() + 1)[:2], Y), ValueError, "stds"),
    (crps_gaussian_mixture, (X, X.abs() + 1, Y, [1.0, -1.0, 1.0, 1.0]), ValueError, "weights"),
    (spread_skill, (X[:1], Y), ValueError, "members"),
    (spread_skill, (X, Y, 1), ValueError, "dim"),
    (spread_skill, (X, Y, True), TypeError, "dim"),
    (rank_histogram, (X, Y[:3]), ValueError, "observations"),
    (rank_histogram_flatness, ([1, -1, 2],), ValueError, "counts"),
    (rank_histogram_flatness, ([0, 0, 0],), ValueError, "counts"),
    (rank_histogram_flatness, ([1.5, 1, 2],), ValueError, "counts"),
    (exceedance_probability, (X, math.nan), ValueError, "threshold"),
    (exceedance_probability, (X, [0.0, 1.0]), ValueError, "threshold"),
    (brier_threshold, (X[:1], Y, 0.0, True), ValueError, "members"),
    (threshold_reliability, (X, Y, "0.5"), TypeError, "threshold"),
]


@pytest.mark.parametrize(("fn", "args", "error", "match"), BAD, ids=[f"{b[0].__name__}-{b[3]}" for b in BAD])
def test_refusals_name_the_argument(fn, args, error, match):
    with pytest.raises(error, match=match):
        fn(*args)


def test_numpy_and_lists_are_accepted():
    got = crps_ensemble([[0.0, 1.0], [2.0, 1.0]], np.array([1.0, 1.0]))
    assert got.dtype == F64
    assert got.tolist() == [0.5, 0.0]
