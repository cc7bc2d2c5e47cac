"""Estimators of calibration error beside the binned ECE of :mod:`ensemble_lab.metrics`, and bootstrap intervals.

- :func:`debiased_ece`: Kumar, Liang & Ma (2019), "Verified Uncertainty Calibration", the debiased estimator of
  the squared l2 top-label calibration error.
- :func:`bootstrap_ci`: percentile bootstrap interval for any metric ``f(probs, labels) -> float``;
  :func:`bootstrap_ece`: the same interval for the three ECE estimators, all resamples in one batch (what a
  Lab uses to stay live).
- :func:`smooth_ece`, :func:`smooth_reliability`, :func:`smooth_ece_bandwidth`: Blasiok & Nakkiran (2023),
  "Smooth ECE: Principled Reliability Diagrams via Kernel Smoothing".

Everything is top-label, like ``metrics.ece``: confidence = row max of ``probs`` ``(N, C)``, correct =
``argmax == label`` (ties to the lowest class index).  Numbers are python floats; curves are tensors on the
input's device (float64, float32 on MPS).  Pure torch, no plotting.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch

from . import metrics
from ._numerics import acc_dtype, top_label, uniform_bins
from ._validation import (
    MAX_COUNT,
    accepts_keyword,
    check_bool,
    check_choice,
    check_int,
    check_labels_for,
    check_positive,
    check_probs,
    check_seed,
)
from .stats import percentile_interval

__all__ = [
    "debiased_ece",
    "bootstrap_ci",
    "bootstrap_ece",
    "ECE_ESTIMATORS",
    "smooth_ece",
    "smooth_ece_bandwidth",
    "smooth_reliability",
]

_MIN_BANDWIDTH = 1e-3  # lower end of the automatic bandwidth search (relplot uses the same)
_BANDWIDTH_RANGE = (1e-4, 10.0)  # accepted explicit bandwidths
_MIN_CELLS = 1024  # fine grid for the kernel smoothing: at least this many cells ...
_CELLS_PER_SIGMA = 8  # ... and at least 8 per bandwidth
_TAIL = 6.0  # kernel truncated at 6 bandwidths (relative mass left out < 2e-9)


def _top_label(probs, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked ``(confidence, correct)``, both ``(N,)`` in the accumulation dtype."""
    p = check_probs(probs).detach()
    y = check_labels_for(labels, p)
    conf, correct = top_label(p, y)  # ties -> lowest index
    acc = acc_dtype(p.device)
    return conf.to(acc), correct.to(acc)


# ----------------------------------------------------------------------------------------------------------
# debiased ECE
# ----------------------------------------------------------------------------------------------------------


def debiased_ece(probs, labels, n_bins: int = 15, strategy: str = "quantile", squared: bool = True) -> float:
    """Kumar et al. (2019)'s debiased estimator of the squared l2 top-label calibration error.

    probs ``(N, C)``, labels ``(N,)``.  Bins exactly as :func:`metrics.ece` (``(lo, hi]``, first closed at 0;
    ``strategy="quantile"``, the default here as in the paper, gives equal-mass bins).  With ``n_b`` samples,
    fraction correct ``acc_b`` and mean confidence ``conf_b`` in bin b::

        debiased = sum_b (n_b / N) [ (acc_b - conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1) ]

    The plug-in ``sum_b (n_b / N) (acc_b - conf_b)^2`` (= ``metrics.ece(..., norm="l2") ** 2``) is biased upward:
    even a perfectly calibrated model gets ``E[(acc_b - conf_b)^2] = Var(acc_b) > 0``.  The subtracted term is
    the unbiased estimate of that variance (the sample variance of the correctness indicators over
    ``n_b``), so the result is unbiased for the binned squared error.  Bins with fewer than 2 samples contribute
    nothing (as in the authors' ``uncertainty-calibration`` package, ``unbiased_square_ce``).

    Returns:
        ``squared=True`` (default): the debiased SQUARED l2 error, a python float that can be negative (an
        unbiased estimator of 0 must be negative sometimes; this is reported as is, not clipped).
        ``squared=False``: ``sqrt(max(debiased, 0))``, the rooted l2 error as in the paper's code
        (``unbiased_l2_ce``); the clip at 0 is part of that definition and makes it biased again near 0.
    """
    squared = check_bool(squared, "squared")
    b = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_COUNT)
    check_choice(strategy, "strategy", ("uniform", "quantile"))
    p = check_probs(probs)
    y = check_labels_for(labels, p)
    rel = metrics.reliability(p, y, n_bins=b, strategy=strategy, validate=False)
    n = p.shape[0]
    cnt = rel.count.to(rel.accuracy.dtype)
    ok = rel.count >= 2
    acc = torch.where(ok, rel.accuracy, 0.0)
    conf = torch.where(ok, rel.confidence, 0.0)
    per_bin = (acc - conf) ** 2 - acc * (1 - acc) / torch.where(ok, cnt - 1, 1.0)
    value = float(torch.where(ok, cnt * per_bin, 0.0).sum() / n)
    return value if squared else math.sqrt(max(value, 0.0))


# ----------------------------------------------------------------------------------------------------------
# bootstrap
# ----------------------------------------------------------------------------------------------------------


def bootstrap_ci(
    metric: Callable[..., float],
    probs,
    labels,
    n_boot: int = 200,
    level: float = 0.9,
    seed: int = 0,
    **kwargs,
) -> tuple[float, float, float]:
    """Percentile bootstrap interval for ``metric(probs, labels, **kwargs) -> float``.

    Args:
        metric: any function of ``(probs, labels, **kwargs)`` returning a number, e.g. ``metrics.ece``.
        probs: ``(N, C)`` probabilities; labels: ``(N,)`` int labels.
        n_boot: bootstrap replicates, an int in ``[2, 10**7]`` (``MAX_COUNT``).
        level: coverage of the interval, in (0, 1).
        seed: an int in ``[0, 2**63 - 1]``; seeds a ``torch.Generator`` on the probs' device; same seed, same
            device, same interval.
        **kwargs: passed to ``metric`` (e.g. ``n_bins=10``).

    Returns:
        ``(estimate, low, high)`` python floats: ``estimate`` is the metric on the full data; ``low``/``high`` are
        the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the metric over ``n_boot`` resamples of
        the N rows with replacement (Efron's percentile method, quantiles interpolated linearly between order
        statistics as ``numpy.quantile`` does by default).  No bias correction: for a biased estimator, such as
        the binned ECE near 0, the interval is centred on the biased value and undercovers the true one.

    The resampling is vectorised: the row indices of a batch of replicates are drawn in one ``randint`` and
    gathered in one ``index_select``; only the metric itself is called once per replicate.  The inputs are
    validated once, and a metric that takes ``validate=`` (the :mod:`ensemble_lab.metrics` functions) is then
    called with ``validate=False`` on the resamples (rows of valid probabilities are valid).
    """
    if not callable(metric):
        raise TypeError(f"metric must be a callable f(probs, labels) -> float, got {type(metric).__name__}")
    b, lv, s = _check_boot(n_boot, level, seed)
    p = check_probs(probs).detach()
    y = check_labels_for(labels, p)
    result = metric(p, y, **kwargs)
    try:
        estimate = float(result)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"metric must return a number (float or 0-d tensor), got {type(result).__name__}") from exc
    fast = dict(kwargs)
    if "validate" not in fast and accepts_keyword(metric, "validate"):
        fast["validate"] = False
    n = p.shape[0]
    values = []
    for idx in _resamples(n, p.shape[1], b, s, p.device):
        m = idx.shape[0]
        ps = p.index_select(0, idx.reshape(-1)).view(m, n, -1)
        ys = y.index_select(0, idx.reshape(-1)).view(m, n)
        values.extend(float(metric(ps[j], ys[j], **fast)) for j in range(m))
    return (estimate, *percentile_interval(values, lv))


def _check_boot(n_boot, level, seed) -> tuple[int, float, int]:
    b = check_int(n_boot, "n_boot", minimum=2, maximum=MAX_COUNT)
    lv = check_positive(level, "level")
    if not 0 < lv < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return b, lv, check_seed(seed)


def _resamples(n: int, c: int, n_boot: int, seed: int, device: torch.device):
    """Row indices of ``n_boot`` resamples of ``n`` rows with replacement, as ``(m, n)`` int64 batches.

    One ``torch.Generator`` seeded with ``seed`` on ``device``, batches of at most ~4M gathered ``(n, c)``
    entries.  :func:`bootstrap_ci` and :func:`bootstrap_ece` draw through this, so with the same seed they see
    the same resamples.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    chunk = _chunk(n, c, n_boot)
    done = 0
    while done < n_boot:
        m = min(chunk, n_boot - done)
        yield torch.randint(0, n, (m, n), generator=gen, device=device)
        done += m


def _chunk(n: int, c: int, n_boot: int) -> int:
    """Resamples per batch of :func:`_resamples`: at most ~4M gathered ``(n, c)`` entries."""
    return max(1, min(n_boot, (1 << 22) // max(1, n * c)))


ECE_ESTIMATORS = ("binned", "debiased", "smooth")


def _resample_counts(idx: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """How often each row was drawn in each resample: ``(m, n)`` row indices -> ``(m, n)`` counts (sum n)."""
    counts = torch.zeros(idx.shape, dtype=dtype, device=idx.device)
    return counts.scatter_add_(1, idx, torch.ones(1, dtype=dtype, device=idx.device).expand(idx.shape))


_CACHED_COUNTS = 1 << 22  # resample count matrices up to 4M entries (32 MB) are kept for the next call


@functools.lru_cache(maxsize=4)
def _cached_counts(n: int, c: int, n_boot: int, seed: int, device: torch.device, dtype: torch.dtype):
    return tuple(_resample_counts(idx, dtype) for idx in _resamples(n, c, n_boot, seed, device))


def _counts_batches(n: int, c: int, n_boot: int, seed: int, device: torch.device, dtype: torch.dtype):
    """The resamples of :func:`_resamples` as count matrices.  They depend only on the sizes and the seed, not on
    the data, so small ones are cached: a Lab that recomputes an interval after every slider move draws them
    once (read-only; never modified)."""
    if n * n_boot <= _CACHED_COUNTS:
        return _cached_counts(n, c, n_boot, seed, device, dtype)
    return (_resample_counts(idx, dtype) for idx in _resamples(n, c, n_boot, seed, device))


def _binned_sums(conf: torch.Tensor, hit: torch.Tensor, counts: torch.Tensor, n_bins: int, strategy: str):
    """Per-resample bin count, confidence sum and hit count, each ``(m, B)`` float64.

    ``conf``/``hit`` ``(N,)`` are the full sample (``conf`` in the probs' dtype), ``counts`` ``(m, N)`` the
    resample multiplicities.  Bins exactly as :func:`metrics.ece` bins a resample: uniform edges ``k / B`` (each
    sample's bin is computed once), or quantile edges at each resample's own order statistics (read off the
    cumulative counts in sorted order: the r-th smallest value of a resample is the first sorted value whose
    cumulative count reaches r).
    """
    m, n = counts.shape
    acc = counts.dtype
    if strategy == "uniform":  # one bin per sample: the sums are counts @ (one-hot bins, scaled by 1, conf, hit)
        bins = uniform_bins(conf, n_bins)[0].to(torch.int64)  # (N,)
        rows = torch.arange(n, device=conf.device)
        table = torch.zeros(n, 3, n_bins, dtype=acc, device=conf.device)
        for k, v in enumerate((1.0, conf.to(acc), hit)):
            table[rows, k, bins] = v
        return (counts @ table.view(n, 3 * n_bins)).view(m, 3, n_bins).unbind(1)
    order = conf.argsort(stable=True)
    srt = conf[order]
    cum = counts[:, order].cumsum(dim=1)  # (m, N), exact integers
    b = torch.arange(1, n_bins, device=conf.device)
    ranks = torch.div(b * n + n_bins - 1, n_bins, rounding_mode="floor")  # ceil(b N / B), 1-based
    pos = torch.searchsorted(cum, ranks.to(acc).expand(m, -1).contiguous())  # first cumulative count >= rank
    inner = srt[pos.clamp(max=n - 1)]  # (m, B - 1) interior edges
    bins = torch.searchsorted(inner.contiguous(), conf.expand(m, n).contiguous(), right=False)  # (lo, hi] bins
    out = torch.zeros(3, m, n_bins, dtype=acc, device=conf.device)
    for k, src in enumerate((counts, counts * conf.to(acc), counts * hit)):
        out[k].scatter_add_(1, bins, src)
    return out.unbind(0)


_MAX_TABLE = 1 << 30  # entries of the per-batch bin tables of bootstrap_ece (8 GB in float64)


def _check_table_size(n: int, c: int, n_bins: int, n_boot: int, strategy: str) -> None:
    """Refuse ``n_bins`` whose bin tables in :func:`_binned_sums` would not fit: ``(3, m, B)`` sums per batch of m
    resamples, plus the ``(N, 3, B)`` one-hot table of uniform bins."""
    entries = 3 * _chunk(n, c, n_boot) * n_bins + (3 * n * n_bins if strategy == "uniform" else 0)
    if entries > _MAX_TABLE:
        raise ValueError(
            f"n_bins={n_bins} is too many bins for bootstrap_ece on N={n} samples: its bin tables would hold "
            f"{entries:.3g} entries (at most {_MAX_TABLE:.3g}); use fewer bins"
        )


def _binned_batch(conf, hit, counts, n_bins: int, strategy: str) -> torch.Tensor:
    """l1 binned ECE of each resample ``(m,)``."""
    _, s_conf, s_hit = _binned_sums(conf, hit, counts, n_bins, strategy)
    return (s_hit - s_conf).abs().sum(dim=1) / counts.shape[1]


def _debiased_batch(conf, hit, counts, n_bins: int, strategy: str) -> torch.Tensor:
    """Debiased squared ECE (:func:`debiased_ece`) of each resample ``(m,)``."""
    cnt, s_conf, s_hit = _binned_sums(conf, hit, counts, n_bins, strategy)
    ok = cnt >= 2
    safe = torch.where(ok, cnt, 2.0)
    a, c = s_hit / safe, s_conf / safe
    per_bin = (a - c) ** 2 - a * (1 - a) / (safe - 1)
    return torch.where(ok, cnt * per_bin, 0.0).sum(dim=1) / counts.shape[1]


def bootstrap_ece(
    probs,
    labels,
    estimator: str = "binned",
    n_bins: int = 15,
    strategy: str = "uniform",
    bandwidth: float | None = None,
    n_boot: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile bootstrap interval of a calibration-error estimator, every resample computed at once.

    The same interval as :func:`bootstrap_ci` with the matching metric and the same ``seed`` (same resamples,
    equal to float rounding), much faster: a resample is represented by how often it drew each row, an
    ``(m, N)`` count matrix, and every estimator is a weighted sum over the rows, so the full sample is binned
    (or spread onto the smoothing grid) once and all m resamples are summed in one ``index_add`` instead of
    one metric call each.

    Args:
        probs: ``(N, C)`` probabilities; labels: ``(N,)`` int labels.
        estimator: ``"binned"`` (:func:`metrics.ece`, l1, ``n_bins``/``strategy``), ``"debiased"``
            (:func:`debiased_ece`, squared, ``n_bins``/``strategy``) or ``"smooth"`` (:func:`smooth_ece`).
        bandwidth: for ``"smooth"``: the kernel width; ``None`` picks the automatic (fixed-point) bandwidth of
            the full sample and holds it for every resample, so the interval shows the sampling variability of
            the estimate at that resolution.  (``bootstrap_ci(smooth_ece, ...)`` re-solves the fixed point on
            every resample instead.)  Refused with the other estimators, which have no bandwidth.
        n_bins: bins, an int in ``[1, 10**7]``; refused when the bin tables of all resamples would exceed
            ``2**30`` entries (e.g. millions of bins on a large sample).
        n_boot, level, seed: as in :func:`bootstrap_ci`.

    Returns:
        ``(estimate, low, high)`` python floats, ``estimate`` on the full sample.
    """
    est = check_choice(estimator, "estimator", ECE_ESTIMATORS)
    nb = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_COUNT)
    check_choice(strategy, "strategy", ("uniform", "quantile"))
    sigma = _bandwidth(bandwidth)
    if sigma is not None and est != "smooth":
        raise ValueError(
            f"bandwidth applies only to estimator='smooth', got bandwidth={bandwidth!r} with estimator={est!r}; "
            "leave bandwidth None"
        )
    b, lv, s = _check_boot(n_boot, level, seed)
    p = check_probs(probs).detach()
    y = check_labels_for(labels, p)
    if est != "smooth":
        _check_table_size(p.shape[0], p.shape[1], nb, b, strategy)
    conf_p, pred = p.max(dim=1)  # in the probs' dtype: quantile edges are order statistics of these
    acc = acc_dtype(p.device)
    hit = (pred == y).to(acc)
    if est == "smooth":
        conf = conf_p.to(acc)
        if sigma is None:
            sigma = _fixed_point(conf, hit - conf)

        def batch(counts):
            _, dens, res = _smoothed(conf, hit - conf, sigma, counts)
            return res.abs().sum(dim=-1) / dens.sum(dim=-1)
    else:
        kernel = _binned_batch if est == "binned" else _debiased_batch

        def batch(counts):
            return kernel(conf_p, hit, counts, nb, strategy)

    n = p.shape[0]
    estimate = float(batch(torch.ones(1, n, dtype=acc, device=p.device))[0])
    values = []
    for counts in _counts_batches(n, p.shape[1], b, s, p.device, acc):
        values.extend(batch(counts).tolist())
    return (estimate, *percentile_interval(values, lv))


# ----------------------------------------------------------------------------------------------------------
# smooth ECE
# ----------------------------------------------------------------------------------------------------------


def _reflect(idx: torch.Tensor, g: int) -> torch.Tensor:
    """Map cell indices of the real line (cells of width 1/g, cell j = [j/g, (j+1)/g)) into [0, g) by reflecting
    at 0 and 1 (even reflection of the unit interval, repeated): ..., 1, 0 | 0, 1, ..., g-1 | g-1, ..."""
    m = torch.remainder(idx, 2 * g)
    return torch.where(m >= g, 2 * g - 1 - m, m)


def _smoothed(conf: torch.Tensor, resid: torch.Tensor, sigma: float, counts: torch.Tensor | None = None):
    """Reflected-Gaussian kernel smoothing of the sample masses ``1/N`` and ``resid/N`` located at ``conf``.

    ``conf`` and ``resid`` are ``(N,)``.  Returns ``(h, D, R)``: the cell width and, at the G cell centres
    ``(j + 1/2) h``, the smoothed density ``D(t) = (1/N) sum_i K(t, f_i)`` and smoothed residual
    ``R(t) = (1/N) sum_i K(t, f_i) r_i`` (both up to one common constant factor), with ``K`` the Gaussian kernel
    of width ``sigma`` reflected at 0 and 1.  With ``counts`` ``(m, N)`` (bootstrap multiplicities) sample i
    weighs ``counts[:, i]`` instead of 1 and ``D``, ``R`` are ``(m, G)``, one row per resample.

    The samples are first spread onto the fine grid by linear interpolation between neighbouring cell centres
    (below the first centre or above the last, all mass goes to the edge cell: its mirror image is the same
    cell), then convolved with the sampled Gaussian through a reflected, padded copy of the grid (FFT).
    """
    g = max(_MIN_CELLS, math.ceil(_CELLS_PER_SIGMA / sigma))
    h = 1.0 / g
    dev, dt = conf.device, conf.dtype
    n = conf.shape[0]
    pos = conf * g - 0.5  # in units of cells, centre j at position j
    lo = torch.floor(pos)
    frac = pos - lo
    lo = lo.to(torch.int64)
    i0 = _reflect(lo, g)
    i1 = _reflect(lo + 1, g)
    c = torch.ones(1, n, dtype=dt, device=dev) if counts is None else counts.to(dt)
    w = torch.stack([c, c * resid]) / n  # (2, m, N): masses for D and R
    grid = torch.zeros(2, c.shape[0], g, dtype=dt, device=dev)
    grid.index_add_(2, i0, w * (1 - frac))
    grid.index_add_(2, i1, w * frac)
    half = math.ceil(_TAIL * sigma / h)
    offsets = torch.arange(-half, half + 1, device=dev)
    kernel = torch.exp(-0.5 * (offsets.to(dt) * (h / sigma)) ** 2)  # symmetric, un-normalised
    padded = grid[..., _reflect(torch.arange(-half, g + half, device=dev), g)]  # (2, m, G + 2 half)
    size = padded.shape[-1] + kernel.shape[0] - 1
    spec = torch.fft.rfft(padded, n=size) * torch.fft.rfft(kernel, n=size)
    full = torch.fft.irfft(spec, n=size)
    out = full[..., 2 * half : 2 * half + g]  # the "valid" part: one value per cell centre
    if counts is None:
        out = out[:, 0]
    return h, out[0], out[1]


def _smece_at(conf: torch.Tensor, resid: torch.Tensor, sigma: float) -> float:
    """``smECE_sigma = int |R(t)| dt / int D(t) dt`` on [0, 1] (midpoint rule on the fine grid)."""
    _, dens, res = _smoothed(conf, resid, sigma)
    return float(res.abs().sum() / dens.sum())


def _fixed_point(conf: torch.Tensor, resid: torch.Tensor, tol: float = 1e-6) -> float:
    """The bandwidth ``sigma*`` with ``smECE_sigma* = sigma*``.

    ``g(sigma) = smECE_sigma - sigma`` is strictly decreasing (smECE_sigma is non-increasing in sigma for the
    reflected Gaussian kernel, whose widths compose like the heat semigroup), so it has one root in
    ``[1e-3, 1]`` unless ``g(1e-3) <= 0``.  Found by a bracketed secant search (Illinois variant of regula
    falsi) until ``|g| <= tol`` or the bracket is narrower than ``tol``: ``g`` is nearly linear with slope
    about -1, so this takes a handful of evaluations where bisection would take ~20.
    """
    lo, hi = _MIN_BANDWIDTH, 1.0
    g_lo = _smece_at(conf, resid, lo) - lo
    if g_lo <= 0:
        return lo
    g_hi = _smece_at(conf, resid, hi) - hi
    if g_hi >= 0:  # pragma: no cover - smECE <= 1/2 < 1
        return hi
    side = 0
    mid = hi
    for _ in range(100):
        mid = hi - g_hi * (hi - lo) / (g_hi - g_lo)
        if not lo < mid < hi:  # pragma: no cover - rounding at a tiny bracket
            mid = 0.5 * (lo + hi)
        g_mid = _smece_at(conf, resid, mid) - mid
        if abs(g_mid) <= tol:
            return mid
        if g_mid > 0:
            lo, g_lo = mid, g_mid
            if side == 1:
                g_hi *= 0.5
            side = 1
        else:
            hi, g_hi = mid, g_mid
            if side == -1:
                g_lo *= 0.5
            side = -1
        if hi - lo <= tol:
            break
    return mid


def _bandwidth(bandwidth) -> float | None:
    if bandwidth is None:
        return None
    s = check_positive(bandwidth, "bandwidth")
    if not _BANDWIDTH_RANGE[0] <= s <= _BANDWIDTH_RANGE[1]:
        raise ValueError(
            f"bandwidth must be in [{_BANDWIDTH_RANGE[0]:g}, {_BANDWIDTH_RANGE[1]:g}] (or None for the "
            f"automatic choice), got {bandwidth!r}"
        )
    return s


def smooth_ece_bandwidth(probs, labels) -> float:
    """The automatic bandwidth of Blasiok & Nakkiran (2023): the fixed point ``sigma*`` where
    ``smECE_sigma* = sigma*`` (top-label), found on ``[1e-3, 1]`` by a bracketed secant search to
    ``|smECE_sigma - sigma| <= 1e-6``.

    If ``smECE`` is already below ``1e-3`` at ``sigma = 1e-3`` (almost perfectly calibrated at that resolution)
    the search stops there and returns ``1e-3``, as relplot does.
    """
    conf, correct = _top_label(probs, labels)
    return _fixed_point(conf, correct - conf)


def smooth_ece(probs, labels, bandwidth: float | None = None) -> float:
    """Smooth ECE (Blasiok & Nakkiran 2023), top-label, in probability units.

    probs ``(N, C)``, labels ``(N,)``.  With confidence ``f_i`` (row max), residual ``r_i = correct_i - f_i`` and
    the Gaussian kernel ``K_sigma`` reflected at 0 and 1 (so no mass leaves [0, 1])::

        smECE_sigma = int_0^1 | (1/N) sum_i K_sigma(t, f_i) r_i | dt

    i.e. the kernel-smoothed residual ``r_hat(t)`` weighted by the kernel density ``delta_hat(t)`` of the
    confidences, integrated: ``int |r_hat| delta_hat``.  Computed on a fine grid (>= 1024 cells and >= 8 per
    ``sigma``; samples spread onto it linearly, FFT convolution, midpoint rule, divided by the integral of the
    smoothed density so that discretisation constants cancel).

    ``bandwidth=None`` (default) uses the paper's automatic choice, the fixed point ``smECE_sigma = sigma``
    (:func:`smooth_ece_bandwidth`), at which the returned value equals the bandwidth (to 1e-6).  An explicit
    ``bandwidth`` must lie in [1e-4, 10].

    0 for a perfectly calibrated population; on a finite calibrated sample the fixed point sits at the noise
    level, roughly ``N ** (-1/3)`` to ``N ** (-1/2)``.  A model whose accuracy is its confidence minus a
    constant ``delta`` has ``smECE_sigma = delta`` at every ``sigma``.
    """
    s = _bandwidth(bandwidth)
    conf, correct = _top_label(probs, labels)
    resid = correct - conf
    if s is None:
        s = _fixed_point(conf, resid)
    return _smece_at(conf, resid, s)


def smooth_reliability(
    probs, labels, bandwidth: float | None = None, grid: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smoothed reliability curve (Blasiok & Nakkiran 2023): ``(x, y)`` with ``x`` = ``grid`` evenly spaced
    confidences in [0, 1] and ``y(x) = x + r_hat(x)``, the kernel-smoothed accuracy at confidence x
    (``r_hat = R / D``, the Nadaraya-Watson estimate of ``E[correct - conf | conf = x]`` with the reflected
    Gaussian kernel of :func:`smooth_ece`; ``bandwidth=None`` picks the same automatic bandwidth).

    Far from every sample the smoothed density can underflow to 0; ``y`` is NaN there (no data, no estimate).
    Both tensors are float64 (float32 on MPS) on the probs' device.
    """
    s = _bandwidth(bandwidth)
    m = check_int(grid, "grid", minimum=2, maximum=MAX_COUNT)
    conf, correct = _top_label(probs, labels)
    resid = correct - conf
    if s is None:
        s = _fixed_point(conf, resid)
    h, dens, res = _smoothed(conf, resid, s)
    g = dens.shape[0]
    x = torch.linspace(0, 1, m, dtype=conf.dtype, device=conf.device)
    pos = (x / h - 0.5).clamp(0, g - 1)  # flat beyond the outer centres (reflection makes the slope 0 at 0 and 1)
    i0 = torch.floor(pos).to(torch.int64).clamp(max=g - 2)
    frac = pos - i0
    d = dens[i0] * (1 - frac) + dens[i0 + 1] * frac
    r = res[i0] * (1 - frac) + res[i0 + 1] * frac
    y = torch.where(d > 0, x + r / torch.where(d > 0, d, 1.0), float("nan"))
    return x, y
