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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ._validation import (
    MAX_COUNT,
    accepts_keyword,
    as_tensor,
    check_finite_tensor,
    check_in_range,
    check_int,
    check_labels,
    check_same_device,
    check_seed,
    on_device_of,
)

__all__ = ["PairedDifference", "paired_bootstrap", "resample_units", "percentile_interval"]


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


def _number(result, what: str) -> float:
    try:
        v = float(result)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"metric must return a number (float or 0-d tensor), got {type(result).__name__}") from exc
    if not np.isfinite(v):
        raise ValueError(f"metric returned {v} on {what}; a difference needs finite values")
    return v


def _cluster_ids(clusters, n: int, like: torch.Tensor) -> torch.Tensor:
    """``clusters`` ``(N,)`` any integer group ids -> dense ids ``0..U-1`` (int64, on ``like``'s device)."""
    c = as_tensor(on_device_of(clusters, "clusters", like, "pred_a"), "clusters", floating=False)
    if c.ndim != 1 or c.shape[0] != n:
        raise ValueError(f"clusters must have shape ({n},), one group id per sample, got shape {tuple(c.shape)}")
    if torch.is_floating_point(c) or c.dtype == torch.bool:
        raise ValueError(f"clusters must hold integer group ids, got dtype {c.dtype}")
    return torch.unique(c, return_inverse=True)[1]


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
    if b.shape[0] != a.shape[0]:
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
    estimate = _number(metric(a, y), "pred_a") - _number(metric(b, y), "pred_b")
    fast = {"validate": False} if accepts_keyword(metric, "validate") else {}

    if clusters is None:
        units, members = n, None
    else:
        ids = _cluster_ids(clusters, n, a)
        units = int(ids.max()) + 1
        order = torch.argsort(ids, stable=True)  # samples grouped by cluster
        sizes = torch.bincount(ids, minlength=units)
        starts = torch.cumsum(sizes, 0) - sizes
        members = (order, sizes, starts)
    draws = resample_units(units, m, s, a.device)
    diffs = []
    for row in draws:
        if members is None:
            idx = row
        else:
            order, sizes, starts = members
            picked_sizes = sizes[row]
            offsets = torch.repeat_interleave(starts[row], picked_sizes)
            within = torch.arange(int(picked_sizes.sum()), device=a.device) - torch.repeat_interleave(
                torch.cumsum(picked_sizes, 0) - picked_sizes, picked_sizes
            )
            idx = order[offsets + within]
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
