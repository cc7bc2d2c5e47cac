"""Paired comparisons with a bootstrap interval: is ensemble A really better than ensemble B on this data?

:func:`paired_bootstrap` resamples the evaluation set with replacement -- the same resample for both predictions,
so what they share (the hard and the easy samples) cancels -- and reports ``metric(A) - metric(B)`` on the full
data with a percentile interval over the resamples.  The difference is *resolved* when the interval excludes 0.

When samples are not independent -- several distorted images drawn from one source digit, several prompts of one
class -- resampling single samples makes the interval too narrow.  ``clusters`` names the group of each sample
(the source digit behind each image); whole groups are then resampled (the cluster bootstrap, Davison & Hinkley
1997, sec. 3.8), each group keeping all its samples.

Conventions: a resample draws as many units (samples, or clusters) as there are, with replacement, from one
``torch.Generator`` seeded with ``seed`` on the predictions' device; the interval is the ``(1 - level) / 2`` and
``(1 + level) / 2`` quantiles of the resampled differences (Efron's percentile method, quantiles interpolated as
``numpy.quantile`` does by default).  Reported numbers are python floats.

>>> import torch
>>> from ensemble_lab.metrics import accuracy
>>> y = torch.arange(200) % 2
>>> good, bad = torch.nn.functional.one_hot(y, 2).float(), torch.full((200, 2), 0.5)
>>> r = paired_bootstrap(accuracy, good, bad, y, n_resamples=200)
>>> r.difference, r.resolved
(0.5, True)

:class:`ClusterResampler` draws the same resamples once and gets every resample of a metric that is a mean of
per-sample terms (accuracy, NLL, Brier, a mean score) from per-cluster sums: one matrix product per comparison
instead of two metric calls per resample.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from . import metrics
from ._numerics import top_label
from ._validation import (
    MAX_COUNT,
    accepts_keyword,
    as_tensor,
    check_choice,
    check_finite_tensor,
    check_in_range,
    check_int,
    check_labels,
    check_probs,
    check_same_device,
    check_seed,
    check_vector,
    on_device_of,
)

__all__ = [
    "PairedDifference",
    "paired_bootstrap",
    "two_sample_bootstrap",
    "resample_units",
    "percentile_interval",
    "MEAN_METRICS",
    "per_sample_terms",
    "ClusterResampler",
    "OverSeeds",
    "over_seeds",
]


@dataclass(frozen=True)
class PairedDifference:
    """``metric(pred_a) - metric(pred_b)`` with its paired bootstrap interval.

    Attributes:
        difference: the difference on the full data (python float, the metric's units).
        low, high: the percentile interval of the resampled differences at ``level``.
        level: the interval's nominal coverage, in (0, 1).
        resolved: True when the interval excludes 0 (``low > 0`` or ``high < 0``).
        n_units: how many units were resampled: samples, or clusters when ``clusters`` was given.
        n_resamples: bootstrap resamples.
    """

    difference: float
    low: float
    high: float
    level: float
    resolved: bool
    n_units: int
    n_resamples: int

    def __str__(self) -> str:
        verdict = "resolved" if self.resolved else "not resolved"
        return (
            f"A - B = {self.difference:.4g} [{self.low:.4g}, {self.high:.4g}] "
            f"({self.level:.0%} interval over {self.n_units} units), {verdict}"
        )

    def verdict(self, a: str = "A", b: str = "B", *, scale: float = 1.0, digits: int = 3, unit: str = "") -> str:
        """One line for a notebook: ``"a - b = x [lo, hi] unit, resolved"`` (or ``"not resolved"``), the numbers
        multiplied by ``scale`` (100 for accuracy in points) and rounded to ``digits`` decimals, so that the
        printed text is stable across machines.

        >>> PairedDifference(0.01234, 0.0051, 0.0199, 0.9, True, 1700, 1000).verdict(
        ...     "ensemble", "member", scale=100, digits=1, unit=" points")
        'ensemble - member = 1.2 [0.5, 2.0] points, resolved'
        """
        digits = check_int(digits, "digits", minimum=0, maximum=12)
        f = lambda v: f"{v * scale:.{digits}f}"  # noqa: E731
        verdict = "resolved" if self.resolved else "not resolved"
        return f"{a} - {b} = {f(self.difference)} [{f(self.low)}, {f(self.high)}]{unit}, {verdict}"


def percentile_interval(values, level: float) -> tuple[float, float]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of ``values`` (numpy's linear interpolation).

    >>> percentile_interval([0.0, 1.0, 2.0, 3.0, 4.0], 0.5)
    (1.0, 3.0)
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("values must hold at least one number, got none")
    if not np.isfinite(arr).all():
        raise ValueError(
            f"metric returned {int((~np.isfinite(arr)).sum())} non-finite value(s) on bootstrap "
            "resamples; the percentile interval needs finite values"
        )
    level = check_in_range(level, "level", 0.0, 1.0, lo_open=True, hi_open=True)
    low, high = np.quantile(arr, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def resample_units(n_units: int, n_resamples: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """The units drawn by each resample: ``(n_resamples, n_units)`` int64 indices in ``[0, n_units)``, drawn with
    replacement from one ``torch.Generator`` seeded with ``seed`` on ``device`` (what :func:`paired_bootstrap`
    draws, exposed so that a reference can be checked against it)."""
    n_units = check_int(n_units, "n_units", minimum=1, maximum=MAX_COUNT)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=2, maximum=MAX_COUNT)
    gen = torch.Generator(device=device).manual_seed(check_seed(seed))
    return torch.randint(0, n_units, (n_resamples, n_units), generator=gen, device=device)


def _number(result, what: str, who: str = "metric") -> float:
    try:
        v = float(result)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{who} must return a number (float or 0-d tensor), got {type(result).__name__}") from exc
    if not np.isfinite(v):
        raise ValueError(f"{who} returned {v} on {what}; a summary needs finite values")
    return v


def _on_full_data(metric, pred: torch.Tensor, labels: torch.Tensor, name: str, labels_name: str = "labels") -> float:
    """``metric(pred, labels)`` as a float; a metric's refusal is re-raised naming the caller's arguments (the
    metric calls them ``probs`` and ``labels``)."""
    try:
        value = metric(pred, labels)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"metric refused {name} (with {labels_name}): {exc}") from exc
    return _number(value, name)


def _check_group_ids(c: torch.Tensor, n: int | None, name: str) -> torch.Tensor:
    """``c`` as ``(N,)`` integer group ids: ``N = n`` when given, else any ``N >= 1``."""
    if n is None and (c.ndim != 1 or c.shape[0] < 1):
        raise ValueError(f"{name} must have shape (N,) with N >= 1, got shape {tuple(c.shape)}")
    if n is not None and (c.ndim != 1 or c.shape[0] != n):
        raise ValueError(f"{name} must have shape ({n},), one group id per sample, got shape {tuple(c.shape)}")
    if torch.is_floating_point(c) or c.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer group ids, got dtype {c.dtype}")
    return c


def _cluster_ids(clusters, n: int, like: torch.Tensor, name: str = "clusters") -> torch.Tensor:
    """``clusters`` ``(N,)`` any integer group ids -> dense ids ``0..U-1`` (int64, on ``like``'s device)."""
    c = as_tensor(on_device_of(clusters, name, like, "pred_a"), name, floating=False)
    return torch.unique(_check_group_ids(c, n, name), return_inverse=True)[1]


def _groups(clusters, n: int, like: torch.Tensor, name: str = "clusters"):
    """(number of units, grouping) for resampling ``n`` samples: samples themselves, or whole clusters."""
    if clusters is None:
        return n, None
    ids = _cluster_ids(clusters, n, like, name)
    units = int(ids.max()) + 1
    order = torch.argsort(ids, stable=True)  # samples grouped by cluster
    sizes = torch.bincount(ids, minlength=units)
    starts = torch.cumsum(sizes, 0) - sizes
    return units, (order, sizes, starts)


def _expand(row: torch.Tensor, groups) -> torch.Tensor:
    """The sample indices of one resample of units ``row`` (each drawn cluster with all its samples)."""
    if groups is None:
        return row
    order, sizes, starts = groups
    picked = sizes[row]
    offsets = torch.repeat_interleave(starts[row], picked)
    within = torch.arange(int(picked.sum()), device=row.device) - torch.repeat_interleave(
        torch.cumsum(picked, 0) - picked, picked
    )
    return order[offsets + within]


def paired_bootstrap(
    metric: Callable[..., float],
    pred_a,
    pred_b,
    labels,
    *,
    clusters=None,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> PairedDifference:
    """``metric(pred_a, labels) - metric(pred_b, labels)`` with a paired (optionally clustered) bootstrap interval.

    Args:
        metric: any function ``(pred, labels) -> number``, e.g. ``metrics.accuracy``, ``metrics.nll``,
            ``metrics.ece`` (bind options with ``functools.partial``).  A metric that takes ``validate=`` is
            called with ``validate=False`` on the resamples (rows of checked predictions stay valid).
        pred_a, pred_b: predictions of the two models on the same N samples, ``(N, ...)`` (probabilities
            ``(N, C)`` for the package's metrics), finite, on one device.
        labels: ``(N,)`` integer labels.
        clusters: ``(N,)`` integer group ids (e.g. the source digit of each image), or None: whole groups are
            resampled, each with all its samples.
        n_resamples: bootstrap resamples, an int in ``[2, 10**7]``.
        level: the interval's coverage, in (0, 1).
        seed: an int in ``[0, 2**63 - 1]``; same seed, same device, same interval.

    Returns:
        A :class:`PairedDifference`: ``difference`` on the full data, ``low``/``high``, ``resolved``.

    Example:
        >>> from ensemble_lab.metrics import nll
        >>> y = torch.tensor([0, 1, 0, 1])
        >>> a, b = torch.tensor([[0.9, 0.1], [0.2, 0.8]] * 2), torch.full((4, 2), 0.5)
        >>> r = paired_bootstrap(nll, a, b, y, clusters=[0, 0, 1, 1], n_resamples=100)
        >>> round(r.difference, 4), r.n_units
        (-0.5289, 2)
    """
    if not callable(metric):
        raise TypeError(f"metric must be a callable f(pred, labels) -> float, got {type(metric).__name__}")
    a = as_tensor(pred_a, "pred_a").detach()
    b = as_tensor(on_device_of(pred_b, "pred_b", a, "pred_a"), "pred_b").detach()
    check_same_device(b, "pred_b", a, "pred_a")
    if a.ndim < 1 or a.shape[0] < 1:
        raise ValueError(f"pred_a must have shape (N, ...) with N >= 1, got shape {tuple(a.shape)}")
    if b.ndim < 1 or b.shape[0] != a.shape[0]:
        raise ValueError(
            f"pred_b must have the same number of samples as pred_a ({a.shape[0]}), got shape {tuple(b.shape)}"
        )
    check_finite_tensor(a, "pred_a")
    check_finite_tensor(b, "pred_b")
    n = a.shape[0]
    n_classes = a.shape[1] if a.ndim == 2 else MAX_COUNT  # (N, C) predictions bound the labels
    y = check_labels(on_device_of(labels, "labels", a, "pred_a"), n, n_classes, "labels")
    m = check_int(n_resamples, "n_resamples", minimum=2, maximum=MAX_COUNT)
    lv = check_in_range(level, "level", 0.0, 1.0, lo_open=True, hi_open=True)
    s = check_seed(seed)
    estimate = _on_full_data(metric, a, y, "pred_a") - _on_full_data(metric, b, y, "pred_b")
    fast = {"validate": False} if accepts_keyword(metric, "validate") else {}

    units, groups = _groups(clusters, n, a)
    diffs = []
    for row in resample_units(units, m, s, a.device):
        idx = _expand(row, groups)
        ys = y.index_select(0, idx)
        da = _number(metric(a.index_select(0, idx), ys, **fast), "a resample of pred_a")
        db = _number(metric(b.index_select(0, idx), ys, **fast), "a resample of pred_b")
        diffs.append(da - db)
    low, high = percentile_interval(diffs, lv)
    return PairedDifference(
        difference=estimate,
        low=low,
        high=high,
        level=lv,
        resolved=bool(low > 0 or high < 0),
        n_units=units,
        n_resamples=m,
    )


#: the metrics that are means of per-sample terms (:func:`per_sample_terms`), which :class:`ClusterResampler`
#: resamples from per-cluster sums; each equals the function of ``ensemble_lab.metrics`` of that name
MEAN_METRICS = ("accuracy", "nll", "brier")
_MEAN_METRIC_FUNCTIONS = {"accuracy": metrics.accuracy, "nll": metrics.nll, "brier": metrics.brier}


def _terms(metric: str, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """:func:`per_sample_terms` of checked ``p`` ``(N, C)`` and ``y`` ``(N,)``."""
    if metric == "accuracy":
        return top_label(p.contiguous(), y)[1].to(torch.float64)
    p_y = p.gather(1, y[:, None]).squeeze(1)
    if metric == "nll":
        return -torch.log(p_y.clamp(min=torch.finfo(p.dtype).tiny)).to(torch.float64)
    q = p.to(torch.float64)  # brier: sum_c (p_c - 1[c = y])^2
    return (q * q).sum(dim=1) - 2 * p_y.to(torch.float64) + 1


def per_sample_terms(metric: str, probs, labels, *, validate: bool = True) -> torch.Tensor:
    """``(N,)`` float64 per-sample terms whose mean is ``metrics.<metric>(probs, labels)``, for ``metric`` in
    :data:`MEAN_METRICS`: ``1[argmax p = y]`` (ties to the lowest class), ``-log max(p_y, tiny)``, and
    ``sum_c (p_c - 1[c = y])^2``; ``probs`` ``(N, C)``, ``labels`` ``(N,)``.  ``validate=False`` skips the checks
    of ``probs`` and ``labels`` (for rows already checked), as the metrics' own flag does.

    >>> t = per_sample_terms("brier", torch.tensor([[0.9, 0.1], [0.4, 0.6]], dtype=torch.float64), [0, 0])
    >>> [round(v, 6) for v in t.tolist()]
    [0.02, 0.72]
    """
    check_choice(metric, "metric", MEAN_METRICS)
    if not validate:
        return _terms(metric, probs, labels)
    p = check_probs(probs).detach()
    return _terms(metric, p, check_labels(on_device_of(labels, "labels", p, "probs"), p.shape[0], p.shape[1]))


class ClusterResampler:
    """The resamples of a paired (cluster) bootstrap, drawn once and shared by many comparisons on one evaluation
    set.

    The draws are those of ``paired_bootstrap(metric, a, b, labels, clusters=clusters, n_resamples=n_resamples,
    seed=seed)``: :func:`resample_units` over the ``U`` distinct cluster ids in sorted order (or over the ``N``
    samples when ``clusters`` is None), each drawn cluster with all its samples.  A metric that is a mean of
    per-sample terms ``t`` ``(N,)`` is, on resample ``r``, ``counts[r] @ unit_sums(t) / totals[r]``, so all the
    resamples of a comparison are one matrix product; :meth:`interval` turns resampled differences into the
    percentile interval of :func:`paired_bootstrap`, and equals it on the same draws (to float rounding).

    Args:
        clusters: ``(N,)`` integer group ids (e.g. the source digit of each image), or None: every sample is its
            own unit, and ``n`` must be given.
        n_resamples: bootstrap resamples, an int in ``[2, 10**7]``.
        level: the intervals' coverage, in (0, 1).
        seed: the draws' seed, an int in ``[0, 2**63 - 1]``.
        n: the number of samples ``N``; checked against ``clusters`` when both are given.
        device: where the draws live when ``clusters`` is None (default cpu); otherwise the clusters' device.

    Attributes:
        n: ``N``.  n_units: ``U`` (``N`` without clusters).  n_resamples, level, seed: as given.
        values: ``(U,)`` the distinct cluster ids, sorted.  ids: ``(N,)`` int64 unit of each sample, ``0 .. U-1``.
        sizes: ``(U,)`` float64 samples per unit.  counts: ``(n_resamples, U)`` float64, how often each resample
        draws each unit.  totals: ``(n_resamples,)`` float64 samples in each resample (``counts @ sizes``).

    Example:
        >>> y = torch.arange(40) % 2
        >>> good, flat = torch.nn.functional.one_hot(y, 2).double(), torch.full((40, 2), 0.5, dtype=torch.float64)
        >>> r = ClusterResampler(torch.arange(40) // 2, n_resamples=200)
        >>> r.counts.shape, r.n_units
        (torch.Size([200, 20]), 20)
        >>> d = r.compare("accuracy", good, flat, y)  # ties go to class 0: flat is right on half
        >>> d.difference, d.resolved, d.n_units
        (0.5, True, 20)
        >>> s = paired_bootstrap(metrics.accuracy, good, flat, y, clusters=torch.arange(40) // 2, n_resamples=200)
        >>> abs(s.low - d.low) < 1e-12 and abs(s.high - d.high) < 1e-12
        True
    """

    def __init__(
        self, clusters=None, n_resamples: int = 1000, level: float = 0.9, seed: int = 0, *, n=None, device=None
    ):
        if n is not None:
            n = check_int(n, "n", minimum=1, maximum=MAX_COUNT)
        if clusters is None:
            if n is None:
                raise ValueError("n must be given when clusters is None (every sample its own unit), got None")
            c = torch.arange(n, device="cpu" if device is None else device)
        else:
            c = _check_group_ids(as_tensor(clusters, "clusters", floating=False), n, "clusters")
            if device is not None and torch.device(device) != c.device:
                raise ValueError(f"device must be the clusters' device ({c.device}) or None, got {device}")
        self.n_resamples = check_int(n_resamples, "n_resamples", minimum=2, maximum=MAX_COUNT)
        self.level = check_in_range(level, "level", 0.0, 1.0, lo_open=True, hi_open=True)
        self.seed = check_seed(seed)
        self.values, self.ids = torch.unique(c, return_inverse=True)
        self.n = int(c.shape[0])
        self.n_units = int(self.values.shape[0])
        draws = resample_units(self.n_units, self.n_resamples, self.seed, c.device)
        self.counts = torch.zeros(self.n_resamples, self.n_units, dtype=torch.float64, device=c.device)
        self.counts.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
        self.sizes = torch.bincount(self.ids, minlength=self.n_units).to(torch.float64)
        self.totals = self.counts @ self.sizes

    def same_clusters(self, clusters) -> bool:
        """Whether ``clusters`` group the samples as this resampler's do (so its draws can be reused)."""
        c = as_tensor(clusters, "clusters", floating=False)
        return c.shape == (self.n,) and bool(torch.equal(torch.unique(c, return_inverse=True)[1], self.ids))

    def units_of(self, clusters, name: str = "clusters", n: int | None = None) -> torch.Tensor:
        """``(M,)`` int64 unit index of other samples' cluster ids ``clusters`` ``(M,)`` (``M = n`` when given),
        e.g. shifted copies of the resampled images; each id must be one of :attr:`values`."""
        c = _check_group_ids(as_tensor(clusters, name, floating=False), n, name)
        idx = torch.searchsorted(self.values, c).clamp(max=self.n_units - 1)
        if not bool((self.values[idx] == c).all()):
            raise ValueError(
                f"{name} must name clusters of the in-distribution set (the samples these resamples draw), got "
                f"{int((self.values[idx] != c).sum())} id(s) not among its {self.n_units} clusters"
            )
        return idx

    def unit_sums(self, per_sample: torch.Tensor) -> torch.Tensor:
        """Per-sample terms ``(N,)`` or ``(N, S)`` -> their sums per unit, ``(U,)`` or ``(U, S)`` float64."""
        t = torch.as_tensor(per_sample)
        if t.ndim not in (1, 2) or t.shape[0] != self.n:
            raise ValueError(f"per_sample must have shape ({self.n},) or ({self.n}, S), got {tuple(t.shape)}")
        out = torch.zeros((self.n_units, *t.shape[1:]), dtype=torch.float64, device=t.device)
        return out.index_add_(0, self.ids, t.to(torch.float64))

    def resampled_sums(self, per_sample: torch.Tensor) -> torch.Tensor:
        """``(n_resamples,)`` or ``(n_resamples, S)``: the sum of per-sample terms ``(N,)``/``(N, S)`` on every
        resample (a drawn cluster counts as often as it is drawn)."""
        return self.counts @ self.unit_sums(per_sample)

    def resampled_means(self, per_sample: torch.Tensor) -> torch.Tensor:
        """``(n_resamples,)`` or ``(n_resamples, S)``: the mean of per-sample terms on every resample."""
        sums = self.resampled_sums(per_sample)
        return sums / (self.totals if sums.ndim == 1 else self.totals[:, None])

    def interval(self, estimate: float, resampled) -> PairedDifference:
        """A :class:`PairedDifference` from a difference ``estimate`` on the full data and ``resampled``, its
        ``(n_resamples,)`` values on these resamples (resampled differences): the interval of
        :func:`percentile_interval` at :attr:`level`, resolved when it excludes 0."""
        d = as_tensor(resampled, "resampled").detach()
        if d.shape != (self.n_resamples,):
            raise ValueError(
                f"resampled must have shape ({self.n_resamples},), one value per resample, got {tuple(d.shape)}"
            )
        check_finite_tensor(d, "resampled")
        low, high = percentile_interval(d.cpu().numpy(), self.level)
        return PairedDifference(
            difference=_number(estimate, "the full data", "estimate"),
            low=low,
            high=high,
            level=self.level,
            resolved=bool(low > 0 or high < 0),
            n_units=self.n_units,
            n_resamples=self.n_resamples,
        )

    def compare_means(self, values_a, values_b) -> PairedDifference:
        """``mean(values_a) - mean(values_b)`` of per-sample values ``(N,)`` with its paired interval."""
        va, vb = check_vector(values_a, "values_a"), check_vector(values_b, "values_b", like=values_a)
        for name, v in (("values_a", va), ("values_b", vb)):
            if v.shape[0] != self.n:
                raise ValueError(f"{name} must have shape ({self.n},), one value per sample, got {tuple(v.shape)}")
        d = va.to(torch.float64) - vb.to(torch.float64)
        return self.interval(float(d.mean()), self.resampled_means(d))

    def compare(self, metric: str, pred_a, pred_b, labels) -> PairedDifference:
        """``metric(pred_a) - metric(pred_b)`` for ``metric`` in :data:`MEAN_METRICS`, with its paired interval:
        ``pred_a``, ``pred_b`` ``(N, C)`` probabilities of this resampler's N samples, ``labels`` ``(N,)``.  The
        difference is ``ensemble_lab.metrics``' on the full data; the resamples are means of
        :func:`per_sample_terms`."""
        check_choice(metric, "metric", MEAN_METRICS)
        a, b = check_probs(pred_a, "pred_a").detach(), check_probs(pred_b, "pred_b").detach()
        if a.shape[0] != self.n:
            raise ValueError(f"pred_a must have shape ({self.n}, C), one row per sample, got {tuple(a.shape)}")
        if b.shape != a.shape:
            raise ValueError(f"pred_b must have the shape of pred_a {tuple(a.shape)}, got {tuple(b.shape)}")
        y = check_labels(on_device_of(labels, "labels", a, "pred_a"), self.n, a.shape[1], "labels")
        full = _MEAN_METRIC_FUNCTIONS[metric]
        estimate = full(a, y, validate=False) - full(b, y, validate=False)
        return self.interval(estimate, self.resampled_means(_terms(metric, a, y) - _terms(metric, b, y)))


def _checked_sample(pred, labels, name: str, labels_name: str, like=None):
    p = as_tensor(pred if like is None else on_device_of(pred, name, like, "pred_a"), name).detach()
    if like is not None:
        check_same_device(p, name, like, "pred_a")
    if p.ndim < 1 or p.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N, ...) with N >= 1, got shape {tuple(p.shape)}")
    check_finite_tensor(p, name)
    n_classes = p.shape[1] if p.ndim == 2 else MAX_COUNT
    y = as_tensor(on_device_of(labels, labels_name, p, name), labels_name, floating=False)
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise ValueError(
            f"{labels_name} must hold one label per sample of {name} (shape {tuple(p.shape)}, N = {p.shape[0]}), "
            f"got shape {tuple(y.shape)}"
        )
    return p, check_labels(y, p.shape[0], n_classes, labels_name)


def two_sample_bootstrap(
    metric: Callable[..., float],
    pred_a,
    labels_a,
    pred_b,
    labels_b,
    *,
    clusters_a=None,
    clusters_b=None,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> PairedDifference:
    """``metric(pred_a, labels_a) - metric(pred_b, labels_b)`` on two *different* samples, with a bootstrap
    interval that resamples each sample on its own (optionally by clusters): e.g. one model's accuracy on the
    validation split against its accuracy on the test split, which share no image and cannot be paired.

    Arguments as in :func:`paired_bootstrap`, given once per sample (``pred_b`` may have another N than
    ``pred_a``).  Each resample draws ``pred_a``'s units and then ``pred_b``'s from one generator seeded with
    ``seed``.  Returns a :class:`PairedDifference` whose ``n_units`` counts the units of both samples.

    Example:
        >>> from ensemble_lab.metrics import accuracy
        >>> ya, yb = torch.arange(100) % 2, torch.arange(60) % 2
        >>> pa, pb = torch.nn.functional.one_hot(ya, 2).float(), torch.full((60, 2), 0.5)
        >>> r = two_sample_bootstrap(accuracy, pa, ya, pb, yb, n_resamples=100)
        >>> r.difference, r.resolved, r.n_units
        (0.5, True, 160)
    """
    if not callable(metric):
        raise TypeError(f"metric must be a callable f(pred, labels) -> float, got {type(metric).__name__}")
    a, ya = _checked_sample(pred_a, labels_a, "pred_a", "labels_a")
    b, yb = _checked_sample(pred_b, labels_b, "pred_b", "labels_b", like=a)
    m = check_int(n_resamples, "n_resamples", minimum=2, maximum=MAX_COUNT)
    lv = check_in_range(level, "level", 0.0, 1.0, lo_open=True, hi_open=True)
    s = check_seed(seed)
    estimate = _on_full_data(metric, a, ya, "pred_a", "labels_a") - _on_full_data(metric, b, yb, "pred_b", "labels_b")
    fast = {"validate": False} if accepts_keyword(metric, "validate") else {}
    units_a, groups_a = _groups(clusters_a, a.shape[0], a, "clusters_a")
    units_b, groups_b = _groups(clusters_b, b.shape[0], a, "clusters_b")
    gen = torch.Generator(device=a.device).manual_seed(s)
    draws_a = torch.randint(0, units_a, (m, units_a), generator=gen, device=a.device)
    draws_b = torch.randint(0, units_b, (m, units_b), generator=gen, device=a.device)
    diffs = []
    for row_a, row_b in zip(draws_a, draws_b, strict=True):
        ia, ib = _expand(row_a, groups_a), _expand(row_b, groups_b)
        da = _number(metric(a.index_select(0, ia), ya.index_select(0, ia), **fast), "a resample of pred_a")
        db = _number(metric(b.index_select(0, ib), yb.index_select(0, ib), **fast), "a resample of pred_b")
        diffs.append(da - db)
    low, high = percentile_interval(diffs, lv)
    return PairedDifference(estimate, low, high, lv, bool(low > 0 or high < 0), units_a + units_b, m)


@dataclass(frozen=True)
class OverSeeds:
    """One number of an experiment repeated over seeds (e.g. the members' training seeds).

    Attributes:
        seeds: the seeds, in the order run.
        values: the experiment's number for each seed (python floats).
        mean: their mean.  std: their sample standard deviation (``ddof=1``; 0.0 for one seed).
        low, high: the smallest and the largest value.
    """

    seeds: tuple[int, ...]
    values: tuple[float, ...]
    mean: float
    std: float
    low: float
    high: float

    def __str__(self) -> str:
        return (
            f"{self.mean:.4g} +- {self.std:.2g} over {len(self.seeds)} seeds (min {self.low:.4g}, max {self.high:.4g})"
        )


def _summary(seeds: tuple[int, ...], values: list[float]) -> OverSeeds:
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return OverSeeds(seeds, tuple(float(v) for v in arr), float(arr.mean()), std, float(arr.min()), float(arr.max()))


def over_seeds(experiment: Callable[[int], float | Mapping[str, float]], seeds=(0, 1, 2)):
    """Run ``experiment(seed)`` for each seed and summarise: a headline result should hold over several seeds.

    ``experiment`` returns a number, or a mapping of names to numbers (the same names for every seed).  Pass the
    seed on to whatever is random in it, e.g. ``lambda s: metrics.nll(... zoo.ensemble_predictions(seed=s) ...)``
    (the trained ensembles are cached per seed, so a second run only reads them).

    Returns:
        An :class:`OverSeeds` for a number, or a dict of name -> :class:`OverSeeds` for a mapping.

    Example:
        >>> r = over_seeds(lambda s: float(s * s), seeds=(0, 1, 2))
        >>> r.values, round(r.mean, 4), round(r.std, 4)
        ((0.0, 1.0, 4.0), 1.6667, 2.0817)
    """
    if not callable(experiment):
        raise TypeError(f"experiment must be a callable f(seed) -> number, got {type(experiment).__name__}")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (list, tuple, range, np.ndarray)):
        raise TypeError(f"seeds must be a list, tuple or range of ints, got {type(seeds).__name__}")
    seeds = tuple(check_seed(s, f"seeds[{i}]") for i, s in enumerate(list(seeds)))
    if not seeds:
        raise ValueError("seeds must hold at least one seed, got none")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat a seed (a repeat is not a new draw), got {list(seeds)}")
    results = [experiment(s) for s in seeds]
    if all(isinstance(r, Mapping) for r in results):
        names = list(results[0])
        for s, r in zip(seeds, results, strict=True):
            if list(r) != names:
                raise ValueError(
                    f"experiment must return the same names for every seed: {names} vs {list(r)} (seed {s})"
                )
        return {
            name: _summary(
                seeds, [_number(r[name], f"seed {s} ({name!r})") for s, r in zip(seeds, results, strict=True)]
            )
            for name in names
        }
    if any(isinstance(r, Mapping) for r in results):
        raise TypeError("experiment must return a number for every seed, or a mapping for every seed, not a mix")
    return _summary(seeds, [_number(r, f"seed {s}", "experiment") for s, r in zip(seeds, results, strict=True)])
