"""Post-hoc calibration against scipy fits of the same objectives, slow references, and the Wu & Gales effect."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax

from ensemble_lab import metrics
from ensemble_lab.calibration import (
    POOL_RULES,
    HistogramBinning,
    PooledCalibrator,
    VectorScaling,
    apply_temperature,
    calibrate_then_pool,
    fit_histogram_binning,
    fit_member_temperatures,
    fit_temperature,
    fit_vector_scaling,
    pool_then_calibrate,
    pooled_logits,
)
from ensemble_lab.combine import combine


def _world(n, c=5, scale=3.0, seed=0, dtype=torch.float64):
    """Logits whose calibrated version is ``z / scale``: labels drawn from ``softmax(z / scale)``."""
    g = torch.Generator().manual_seed(seed)
    base = 1.5 * torch.randn(n, c, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(base, dim=1), 1, generator=g).squeeze(1)
    return (base * scale).to(dtype), y


def _np_nll(z, y, t):
    return float(-log_softmax(z / t, axis=1)[np.arange(len(y)), y].mean())


def _scipy_temperature(z, y):
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y)
    res = minimize_scalar(
        lambda lt: _np_nll(z, y, np.exp(lt)), bounds=(-5, 5), method="bounded", options={"xatol": 1e-10}
    )
    return float(np.exp(res.x)), float(res.fun)


# ----------------------------------------------------------------------------------------------------------
# temperature
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.4, 1.0, 3.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fit_temperature_matches_scipy(scale, dtype):
    z, y = _world(3000, c=6, scale=scale, seed=1, dtype=dtype)
    t = fit_temperature(z, y)
    t_ref, nll_ref = _scipy_temperature(z, y)
    assert isinstance(t, float)
    assert abs(t - t_ref) / t_ref < 1e-4
    assert abs(_np_nll(z.double().numpy(), y.numpy(), t) - nll_ref) < 1e-8
    assert abs(t - scale) / scale < 0.15  # and it recovers the planted temperature


def test_fit_temperature_accepts_numpy_and_float_labels():
    z, y = _world(500, seed=2)
    t = fit_temperature(z.numpy(), y.numpy().astype(np.float64))
    assert t == pytest.approx(fit_temperature(z, y), rel=1e-12)


@settings(max_examples=15, deadline=None)
@given(c=st.floats(0.2, 5.0), seed=st.integers(0, 10_000))
def test_fit_temperature_is_scale_equivariant(c, seed):
    z, y = _world(400, c=4, scale=2.0, seed=seed)
    assert fit_temperature(c * z, y) == pytest.approx(c * fit_temperature(z, y), rel=1e-4)


def test_fit_temperature_warns_on_a_separable_split():
    y = torch.arange(6) % 3
    z = 5.0 * torch.nn.functional.one_hot(y, 3).double()
    with pytest.warns(RuntimeWarning, match="separate the calibration labels perfectly"):
        t = fit_temperature(z, y)
    assert 0 < t < 1
    zm = torch.stack([z, z + torch.tensor([0.0, 0.0, 9.0], dtype=z.dtype)])  # member 1 is not separable
    with pytest.warns(RuntimeWarning, match=r"member\(s\) \[0\] \(of 2\)"):
        fit_member_temperatures(zm, y)


def test_member_temperatures_match_fitting_each_member_alone():
    parts = [_world(800, c=4, scale=s, seed=3) for s in (0.5, 1.0, 2.0, 4.0)]
    y = parts[0][1]
    z = torch.stack([p[0] for p in parts])
    z = torch.stack([z[0], z[1] * 1.3, z[2] * 0.7, z[3]])  # same labels, four differently scaled members
    got = fit_member_temperatures(z, y)
    alone = torch.tensor([fit_temperature(z[k], y) for k in range(4)], dtype=got.dtype)
    assert got.shape == (4,)
    assert got.dtype == z.dtype
    torch.testing.assert_close(got, alone, rtol=1e-4, atol=0)
    for k in range(4):
        assert got[k].item() == pytest.approx(_scipy_temperature(z[k], y)[0], rel=1e-4)


def test_apply_temperature():
    z, _ = _world(50, seed=4)
    torch.testing.assert_close(apply_temperature(z, 2.5), torch.softmax(z / 2.5, dim=1))
    assert apply_temperature(z.float(), 1.0).dtype == torch.float32


# ----------------------------------------------------------------------------------------------------------
# vector scaling
# ----------------------------------------------------------------------------------------------------------


def _class_skewed(n, c=5, seed=0):
    """Miscalibrated per class: true logits ``z``, the model reports ``z * a + d`` with class-wise a, d."""
    z, y = _world(n, c=c, scale=1.0, seed=seed)
    a = torch.linspace(0.5, 3.0, c, dtype=torch.float64)
    d = torch.linspace(-1.0, 1.0, c, dtype=torch.float64)
    return z * a + d, y


def test_vector_scaling_matches_scipy_and_reduces_nll_and_ece():
    z, y = _class_skewed(6000, seed=5)
    zc, yc, zt, yt = z[:3000], y[:3000], z[3000:], y[3000:]
    vs = fit_vector_scaling(zc, yc)
    assert isinstance(vs, VectorScaling)
    assert vs.w.shape == vs.b.shape == (5,)
    assert abs(float(vs.b.sum())) < 1e-10

    zn, onehot = zc.numpy(), np.eye(5)[yc.numpy()]

    def obj(theta):  # mean NLL and its gradient in w and b
        w, b = theta[:5], theta[5:]
        lp = log_softmax(zn * w + b, axis=1)
        resid = (np.exp(lp) - onehot) / len(zn)
        return -(lp * onehot).sum(1).mean(), np.r_[(resid * zn).sum(0), resid.sum(0)]

    ref = minimize(
        obj,
        np.r_[np.ones(5), np.zeros(5)],
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 1000},
    )
    ours = obj(np.r_[vs.w.numpy(), vs.b.numpy()])[0]
    assert abs(ours - ref.fun) < 1e-7

    before, after = torch.softmax(zt, 1), torch.softmax(vs.apply(zt), 1)
    assert metrics.nll(after, yt) < metrics.nll(before, yt) - 0.05
    assert metrics.ece(after, yt) < 0.5 * metrics.ece(before, yt)
    # vector scaling beats a single temperature when the miscalibration is class-wise
    t = fit_temperature(zc, yc)
    assert metrics.nll(after, yt) < metrics.nll(apply_temperature(zt, t), yt)


# ----------------------------------------------------------------------------------------------------------
# histogram binning
# ----------------------------------------------------------------------------------------------------------


def _reference_histogram(p_cal, y_cal, p_new, n_bins, strategy):
    """Per-class loops in numpy: edges, bin frequencies, mapping, renormalisation."""
    n, c = p_cal.shape
    out = np.empty_like(p_new)
    for k in range(c):
        col = p_cal[:, k]
        if strategy == "uniform":
            edges = np.arange(n_bins + 1) / n_bins
        else:
            srt = np.sort(col)
            edges = np.r_[0.0, [srt[-(-b * n // n_bins) - 1] for b in range(1, n_bins)], 1.0]
        idx_cal = np.searchsorted(edges[1:-1], col, side="left")
        idx_new = np.searchsorted(edges[1:-1], p_new[:, k], side="left")
        for i, b in enumerate(idx_new):
            members = idx_cal == b
            out[i, k] = (y_cal[members] == k).mean() if members.any() else p_new[i, k]
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.where(total > 0, total, 1), p_new)


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_histogram_binning_matches_reference_and_reduces_ece(strategy):
    z, y = _world(4000, c=4, scale=3.0, seed=6)  # over-confident by a factor 3
    p = torch.softmax(z, 1)
    hb = fit_histogram_binning(p[:2000], y[:2000], n_bins=10, strategy=strategy)
    assert isinstance(hb, HistogramBinning)
    assert hb.values.shape == (4, 10)
    assert int(hb.count.sum()) == 4 * 2000
    q = hb.apply(p[2000:])
    want = _reference_histogram(p[:2000].numpy(), y[:2000].numpy(), p[2000:].numpy(), 10, strategy)
    np.testing.assert_allclose(q.numpy(), want, atol=1e-12)
    torch.testing.assert_close(q.sum(1), torch.ones(2000, dtype=q.dtype))
    assert metrics.ece(q, y[2000:]) < 0.5 * metrics.ece(p[2000:], y[2000:])


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(3, 60),
    c=st.integers(2, 5),
    bins=st.integers(1, 8),
    seed=st.integers(0, 10_000),
    strategy=st.sampled_from(["uniform", "quantile"]),
    sharp=st.floats(0.1, 30.0),
)
def test_histogram_binning_rows_are_probabilities(n, c, bins, seed, strategy, sharp):
    g = torch.Generator().manual_seed(seed)
    n = max(n, c)
    p = torch.softmax(sharp * torch.randn(n, c, generator=g, dtype=torch.float64), 1)
    y = torch.randint(0, c, (n,), generator=g)
    hb = fit_histogram_binning(p, y, n_bins=bins, strategy=strategy)
    q = hb.apply(torch.softmax(sharp * torch.randn(7, c, generator=g, dtype=torch.float64), 1))
    assert bool(torch.isfinite(q).all())
    assert bool((q >= 0).all())
    torch.testing.assert_close(q.sum(1), torch.ones(7, dtype=q.dtype))


# ----------------------------------------------------------------------------------------------------------
# pooling and calibrating
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", POOL_RULES)
@pytest.mark.parametrize("weights", [None, [0.1, 0.6, 0.3]])
def test_pooled_logits_softmax_is_combine(rule, weights):
    z = 3 * torch.randn(3, 40, 6, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    lp = pooled_logits(z, weights, rule)
    torch.testing.assert_close(torch.logsumexp(lp, 1), torch.zeros(40, dtype=lp.dtype))
    torch.testing.assert_close(lp.exp(), combine(z, weights, rule), rtol=1e-10, atol=1e-12)


def test_prob_pooling_stays_finite_where_the_probabilities_underflow():
    z = torch.tensor([[[0.0, 200.0]], [[0.0, 300.0]]])  # class 0 has probability ~e^-200 in float32
    lp = pooled_logits(z, rule="prob")
    assert bool(torch.isfinite(lp).all())
    assert lp[0, 0] < -190


def _members(n, k=5, c=10, seed=0):
    """Over-confident members (logits doubled) that share part of their error and differ in the rest."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    shared = 2.5 * torch.nn.functional.one_hot(y, c).double() + torch.randn(n, c, generator=g, dtype=torch.float64)
    z = torch.stack([2.0 * (shared + torch.randn(n, c, generator=g, dtype=torch.float64)) for _ in range(k)])
    return z, y


@pytest.mark.parametrize("rule", ["prob", "logit"])
def test_wu_gales_calibrate_then_pool_is_under_confident_and_pool_then_calibrate_repairs_it(rule):
    z, y = _members(8000, seed=8)
    cal, test = slice(0, 4000), slice(4000, 8000)
    ctp = calibrate_then_pool(z[:, cal], y[cal], rule=rule)
    ptc = pool_then_calibrate(z[:, cal], y[cal], rule=rule)
    assert ctp.order == "calibrate-then-pool"
    assert ptc.order == "pool-then-calibrate"
    assert ctp.temperature == 1.0
    assert bool((ctp.member_temperatures > 1.3).all())
    assert bool((ptc.member_temperatures == 1).all())
    assert ptc.temperature < 1

    member = torch.softmax(z[0, test], 1)
    assert float(member.max(1).values.mean()) > metrics.accuracy(member, y[test]) + 0.1  # over-confident member

    def gap(p):  # mean confidence - accuracy
        return float(p.max(1).values.mean()) - metrics.accuracy(p, y[test])

    p_ctp, p_ptc = ctp.apply(z[:, test]), ptc.apply(z[:, test])
    assert gap(p_ctp) < -0.1  # calibrated members pool into an under-confident ensemble
    assert abs(gap(p_ptc)) < 0.05
    assert abs(gap(p_ptc)) < 0.3 * abs(gap(p_ctp))
    assert metrics.ece(p_ptc, y[test]) < 0.5 * metrics.ece(p_ctp, y[test])
    assert metrics.nll(p_ptc, y[test]) < metrics.nll(p_ctp, y[test])


@pytest.mark.parametrize("rule", POOL_RULES)
def test_pooled_calibrators_are_the_documented_compositions(rule):
    z, y = _members(600, k=3, c=4, seed=9)
    w = [0.2, 0.5, 0.3]
    ptc = pool_then_calibrate(z, y, rule=rule, weights=w)
    assert ptc.temperature == pytest.approx(fit_temperature(pooled_logits(z, w, rule), y), rel=1e-12)
    torch.testing.assert_close(ptc.apply(z), torch.softmax(pooled_logits(z, w, rule) / ptc.temperature, 1))
    ctp = calibrate_then_pool(z, y, rule=rule, weights=w)
    torch.testing.assert_close(ctp.member_temperatures, fit_member_temperatures(z, y))
    scaled = z / ctp.member_temperatures.view(-1, 1, 1)
    torch.testing.assert_close(ctp.apply(scaled * 0 + z), combine(scaled, w, rule))
    if rule == "logit":  # a temperature after averaging logits is combine's own temperature
        torch.testing.assert_close(ptc.apply(z), combine(z, w, "logit", temperature=ptc.temperature))
    # composable: a PooledCalibrator built by hand with both temperatures
    both = PooledCalibrator(rule=rule, temperature=0.8, member_temperatures=ctp.member_temperatures, weights=w)
    torch.testing.assert_close(both.apply(z), torch.softmax(pooled_logits(scaled, w, rule) / 0.8, 1))


# ----------------------------------------------------------------------------------------------------------
# devices
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_fits_run_on_the_input_device():  # pragma: no cover - needs a GPU
    z, y = _members(500, k=3, c=4, seed=10)
    zc, yc = z.cuda(), y.cuda()
    assert fit_temperature(zc[0], yc) == pytest.approx(fit_temperature(z[0], y), rel=1e-6)
    assert fit_member_temperatures(zc, yc).device.type == "cuda"
    assert pool_then_calibrate(zc, yc).apply(zc).device.type == "cuda"
    assert fit_vector_scaling(zc[0], yc).apply(zc[0]).device.type == "cuda"
    p = torch.softmax(zc[0], 1)
    assert fit_histogram_binning(p, yc).apply(p).device.type == "cuda"
    with pytest.raises(ValueError, match="same device"):
        fit_temperature(zc[0], y)


# ----------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------

_Z = torch.randn(20, 3, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
_Y = torch.arange(20) % 3
_P = torch.softmax(_Z, 1)
_M = torch.stack([_Z, 2 * _Z])
_NAN = _Z.clone()
_NAN[0, 0] = float("nan")
_INF_M = _M.clone()
_INF_M[1, 2, 1] = float("inf")
_BAD = [
    # fit_temperature
    (lambda: fit_temperature(_Z[:2], _Y[:2]), ValueError, "N >= C"),
    (lambda: fit_temperature(_NAN, _Y), ValueError, "logits must be finite"),
    (lambda: fit_temperature(_Z, _Y[:5]), ValueError, "labels must have shape"),
    (lambda: fit_temperature(_Z, _Y + 1), ValueError, r"labels must lie in \[0, 2\]"),
    (lambda: fit_temperature(_Z, _Y * 0.5), ValueError, "labels must be integer"),
    (lambda: fit_temperature(_Z[0], _Y), ValueError, r"logits must have shape \(N, C\)"),
    (lambda: fit_temperature(_Z, _Y, max_iter=0), ValueError, "max_iter"),
    (lambda: fit_temperature("z", _Y), TypeError, "logits"),
    # fit_member_temperatures
    (lambda: fit_member_temperatures(_Z, _Y), ValueError, r"member_logits must have shape \(K, N, C\)"),
    (lambda: fit_member_temperatures(_INF_M, _Y), ValueError, "member_logits must be finite"),
    (lambda: fit_member_temperatures(_M[:, :2], _Y[:2]), ValueError, "member_logits: a calibration split"),
    # apply_temperature
    (lambda: apply_temperature(_Z, 0.0), ValueError, "temperature must be a finite number > 0"),
    (lambda: apply_temperature(_Z, -1.0), ValueError, "temperature"),
    (lambda: apply_temperature(_Z, float("nan")), ValueError, "temperature"),
    (lambda: apply_temperature(_NAN, 1.0), ValueError, "logits must be finite"),
    (lambda: apply_temperature(_Z[:, :1], 1.0), ValueError, "C >= 2"),
    # vector scaling
    (lambda: fit_vector_scaling(_Z[:2], _Y[:2]), ValueError, "N >= C"),
    (lambda: fit_vector_scaling(_NAN, _Y), ValueError, "logits must be finite"),
    (lambda: fit_vector_scaling(_Z, _Y, max_iter=-3), ValueError, "max_iter"),
    (lambda: VectorScaling(torch.ones(3), torch.zeros(4)), ValueError, "w and b must both have shape"),
    (lambda: VectorScaling(torch.ones(3), torch.zeros(3)).apply(torch.zeros(2, 4)), ValueError, "C=3 classes"),
    # histogram binning
    (lambda: fit_histogram_binning(_P, _Y, n_bins=0), ValueError, r"n_bins must be in \[1, 10000000\], got 0"),
    (lambda: fit_histogram_binning(_P, _Y, n_bins=2.5), TypeError, "n_bins must be an int"),
    (lambda: fit_histogram_binning(_P, _Y, strategy="equal"), ValueError, "strategy must be one of"),
    (lambda: fit_histogram_binning(_P[:2], _Y[:2]), ValueError, "probs: a calibration split"),
    (lambda: fit_histogram_binning(_P * 2, _Y), ValueError, "probs"),
    (
        lambda: fit_histogram_binning(_P, _Y).apply(_P[:, :2] / _P[:, :2].sum(1, keepdim=True)),
        ValueError,
        "C=3 classes",
    ),
    (lambda: fit_histogram_binning(_P, _Y).apply(_Z), ValueError, "probs"),
    # pooling
    (lambda: pooled_logits(_M, rule="vote"), ValueError, "got 'vote'"),
    (lambda: pooled_logits(_M, rule="mean"), ValueError, "rule must be one of"),
    (lambda: pooled_logits(_M, weights=[1.0, -1.0]), ValueError, "weights must be finite, non-negative"),
    (lambda: pooled_logits(_M, weights=[1.0]), ValueError, "one entry per member"),
    (lambda: pool_then_calibrate(_M, _Y, rule="vote"), ValueError, "got 'vote'"),
    (lambda: pool_then_calibrate(_M[:, :2], _Y[:2]), ValueError, "N >= C"),
    (lambda: pool_then_calibrate(_INF_M, _Y), ValueError, "member_logits must be finite"),
    (lambda: calibrate_then_pool(_M, _Y[:3]), ValueError, "labels must have shape"),
    (lambda: calibrate_then_pool(_M, _Y, weights=[0, 0]), ValueError, "sum > 0"),
    (lambda: PooledCalibrator("prob", 0.0, torch.ones(2)), ValueError, "temperature must be a finite number > 0"),
    (lambda: PooledCalibrator("prob", 1.0, torch.tensor([1.0, -2.0])), ValueError, "member_temperatures must be"),
    (lambda: PooledCalibrator("prob", 1.0, torch.ones(2), order="sideways"), ValueError, "order must be one of"),
    (lambda: PooledCalibrator("prob", 1.0, torch.ones(3)).apply(_M), ValueError, "K=3 members"),
]


@pytest.mark.parametrize(("call", "exc", "match"), _BAD, ids=[f"bad{i}" for i in range(len(_BAD))])
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(exc, match=match):
            call()


# ----------------------------------------------------------------------------------------------------------
# regression tests of the bad-input fixes
# ----------------------------------------------------------------------------------------------------------


def test_non_contiguous_member_logits_fit_like_contiguous_ones():
    g = torch.Generator().manual_seed(5)
    y = torch.randint(0, 4, (60,), generator=g)
    m = torch.randn(3, 60, 4, generator=g) + 2 * torch.nn.functional.one_hot(y, 4)
    view = m.mT.contiguous().mT  # same values, transposed strides
    assert not view.is_contiguous()
    torch.testing.assert_close(fit_member_temperatures(view, y), fit_member_temperatures(m, y))
    a, b = calibrate_then_pool(view, y), calibrate_then_pool(m, y)
    torch.testing.assert_close(a.member_temperatures, b.member_temperatures)


def test_temperature_that_overflows_the_logits_is_refused():
    with pytest.raises(ValueError, match=r"logits / temperature \(temperature=1e-320\)"):
        apply_temperature(_Z.float(), 1e-320)
    torch.testing.assert_close(apply_temperature(_Z, 1e-3).sum(1), torch.ones(20, dtype=torch.float64))


def test_logits_too_wide_for_temperature_scaling_are_refused_by_name():
    huge = _Z / _Z.abs().max() * 1e308
    with pytest.raises(ValueError, match="^logits span too wide a range"):
        fit_temperature(huge, _Y)
    with pytest.raises(ValueError, match="^member_logits span too wide a range"):
        fit_member_temperatures(torch.stack([huge, huge]), _Y)
    with pytest.raises(ValueError, match="^member_logits span too wide a range"):
        calibrate_then_pool(torch.stack([huge, huge]), _Y)


def test_pool_then_calibrate_names_member_logits():
    wide = (_Z / _Z.abs().max() * 3e38).float()  # rows span more than float32 holds: log_softmax reaches -inf
    with pytest.raises(ValueError, match="^member_logits: the pooled log-probabilities"):
        pool_then_calibrate(torch.stack([wide, wide]), _Y)


def test_pooled_calibrator_refuses_temperatures_that_overflow():
    m = _M.float()
    with pytest.raises(ValueError, match="member_temperatures down to 1e-40"):
        PooledCalibrator("prob", 1.0, torch.full((2,), 1e-40)).apply(m)
    with pytest.raises(ValueError, match="member_temperatures down to 1e-320"):
        PooledCalibrator("prob", 1.0, torch.full((2,), 1e-320, dtype=torch.float64)).apply(m)
    with pytest.raises(ValueError, match=r"temperature \(temperature=1e-320\)"):
        PooledCalibrator("prob", 1e-320, torch.ones(2)).apply(m)


def _hb():
    return fit_histogram_binning(_P, _Y, n_bins=4)


def test_histogram_binning_by_hand_accepts_numpy():
    h = _hb()
    h2 = HistogramBinning(h.edges.numpy(), h.values.numpy(), h.count.numpy())
    torch.testing.assert_close(h2.apply(_P), h.apply(_P))
    assert h2.count.dtype == torch.int64


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h: dict(edges=None), "edges must be a torch.Tensor"),
        (lambda h: dict(edges=h.edges.flip(-1)), "edges must be non-decreasing"),
        (lambda h: dict(edges=h.edges * 3 - 1), r"edges must lie in \[0, 1\]"),
        (lambda h: dict(edges=h.edges[0]), r"edges must have shape \(C, B\+1\)"),
        (lambda h: dict(edges=torch.cat([h.edges, h.edges[:1]])), "to match edges of shape"),
        (lambda h: dict(values=h.values.nan_to_num(0.5) + 2), r"values must be probabilities in \[0, 1\]"),
        (lambda h: dict(values=torch.full((3, 5), 0.5)), r"values must have shape \(C, B\) = \(3, 4\)"),
        (lambda h: dict(values=torch.where(h.values > 0.5, float("inf"), h.values)), "got inf"),
        (lambda h: dict(count=None), "count must be a torch.Tensor"),
        (lambda h: dict(count=h.count - 10), "count must be non-negative"),
        (lambda h: dict(count=h.count[0]), r"count must have shape \(C, B\)"),
        (lambda h: dict(count=h.count + 0.5), "count must hold integer counts"),
    ],
)
def test_histogram_binning_by_hand_checks_its_fields(edit, match):
    h = _hb()
    fields = dict(edges=h.edges, values=h.values, count=h.count) | edit(h)
    with pytest.raises((ValueError, TypeError), match=match):
        HistogramBinning(**fields)
