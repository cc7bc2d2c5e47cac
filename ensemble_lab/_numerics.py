"""Shared numerics of the routines: the accumulation dtype, top-label confidence, bins and the tied-block
risk-coverage curve.  One copy of each; the routines in ``metrics``, ``calibration_error``, ``calibration``,
``selective``, ``prompts`` and ``cascades`` call these.

Inputs here are already checked (see :mod:`ensemble_lab._validation`); nothing in this module validates.

>>> import torch
>>> from ensemble_lab._numerics import bin_index, uniform_edges
>>> bin_index(torch.tensor([0.0, 0.5, 0.51, 1.0]), uniform_edges(2, torch.zeros(1))).tolist()
[0, 0, 1, 1]
"""

from __future__ import annotations

import torch

__all__ = [
    "acc_dtype",
    "order_view",
    "top_label",
    "xlogx",
    "uniform_edges",
    "quantile_edges",
    "bin_index",
    "uniform_bins",
    "tied_risk_curve",
    "tied_blocks",
]


def acc_dtype(device: torch.device) -> torch.dtype:
    """Accumulation dtype for sums over samples: float64, except on MPS (which has no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


_BITS = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.float16: torch.int16,
    torch.bfloat16: torch.int16,
}


def order_view(t: torch.Tensor) -> torch.Tensor:
    """``t`` viewed as integers with the same order for entries >= 0 (the IEEE bit patterns), for a fast argmax or
    max-comparison on CPU; ``t`` itself for dtypes without such a view."""
    return t.view(_BITS[t.dtype]) if t.dtype in _BITS else t


def top_label(p: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-label confidence ``(N,)`` and correctness ``(N,)`` bool of probabilities ``p`` ``(N, C)``,
    ``correct = argmax(p) == y`` with ties going to the lowest class index.

    The argmax is taken on the IEEE bit patterns viewed as integers (about 3x faster than float ``max(dim=1)``
    on CPU) and the confidence gathered at it.  For floats >= 0 the integer order is the float order, and negative
    entries (at most ``atol`` below 0 after validation) map to negative integers, so the result is exact whenever
    each row's maximum is positive, which holds for every row on the simplex.
    """
    bits = p.view(_BITS[p.dtype]) if p.dtype in _BITS and p.is_contiguous() else None
    if bits is None:
        conf, pred = p.max(dim=1)
        return conf, pred == y
    pred = bits.argmax(dim=1)
    conf = p.gather(1, pred[:, None]).squeeze(1)
    return conf, pred == y


def xlogx(p: torch.Tensor) -> torch.Tensor:
    """``p log p`` elementwise with ``0 log 0 = 0``: ``p * log(max(p, tiny))`` (exact for p = 0 and p >= tiny;
    about 3x cheaper than ``torch.special.xlogy`` on CPU)."""
    return p * torch.log(p.clamp(min=torch.finfo(p.dtype).tiny))


def uniform_edges(n_bins: int, like: torch.Tensor) -> torch.Tensor:
    """``arange(B + 1) / B`` in the accumulation dtype (float64; float32 on MPS) on ``like``'s device."""
    return torch.arange(n_bins + 1, dtype=acc_dtype(like.device), device=like.device) / n_bins


def quantile_edges(values: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Equal-mass edges along the last axis of ``values`` (``(N,)`` -> ``(B+1,)``, ``(C, N)`` -> ``(C, B+1)``).

    Edge 0 is 0, edge B is 1 and interior edge b (1 <= b < B) is the ceil(b N / B)-th smallest value (an order
    statistic, no interpolation).  With (lo, hi] bins and no ties, bin b then holds the samples ranked
    (ceil(b N / B), ceil((b + 1) N / B)], so bin sizes differ by at most one.
    """
    n = values.shape[-1]
    srt = values.sort(dim=-1).values
    b = torch.arange(1, n_bins, device=values.device)
    ranks = torch.div(b * n + n_bins - 1, n_bins, rounding_mode="floor") - 1  # ceil(b N / B) - 1, 0-based
    inner = srt.index_select(-1, ranks)
    shape = values.shape[:-1] + (1,)
    zero = torch.zeros(shape, dtype=values.dtype, device=values.device)
    return torch.cat([zero, inner, zero + 1], dim=-1)


def bin_index(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Bin of each value for (lo, hi] bins, the first closed at its low end: 0 .. B-1 (int64, shape of values).

    Values <= edges[1] go to bin 0, values > edges[B-1] to bin B-1.  ``edges`` is ``(B+1,)`` (shared) or
    ``(C, B+1)`` with ``values`` ``(C, N)`` (one set of edges per row).
    """
    inner = edges[..., 1:-1].contiguous().to(values.dtype)
    if inner.shape[-1] == 0:
        return torch.zeros(values.shape, dtype=torch.int64, device=values.device)
    if inner.ndim > 1:
        return torch.searchsorted(inner, values.contiguous(), right=False)
    return torch.bucketize(values, inner, right=False)


_EXACT_IN_FLOAT64 = (torch.float32, torch.float16, torch.bfloat16)


def uniform_bins(values: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform (lo, hi] bins of ``values`` against the edges ``k / B`` (float64), by arithmetic.

    bin = clamp(ceil(v B) - 1, 0, B - 1): the same result as ``bucketize`` against :func:`uniform_edges`.  For
    float32/float16/bfloat16 input the float64 product ``v B`` is exact (a <= 24-bit mantissa times an integer
    < 2^29) and no such value equals a non-dyadic k / B, so the ceil is exact.  For float64 input the product is
    rounded; values whose ``v B`` lies within a few ulps of an integer are re-binned with ``bucketize``.

    Returns ``(bins, scaled)``: the bins as a FLOAT tensor in the accumulation dtype (so callers can fold more
    into the key before one integer conversion) and ``scaled = v * B`` in the accumulation dtype (sums of it,
    divided by B, are the sums of ``v``).  ``values`` is never modified.
    """
    acc = acc_dtype(values.device)
    exact = values.dtype in _EXACT_IN_FLOAT64 and acc == torch.float64
    scaled = values.to(acc).mul_(n_bins) if values.dtype != acc else values * n_bins  # fresh tensor either way
    bins = torch.ceil(scaled)
    near = None
    if not exact:  # rounded product: settle the near-integer cases exactly
        tol = 4 * torch.finfo(acc).eps * n_bins
        near = ((bins - scaled).sub_(0.5).abs_() >= 0.5 - tol).reshape(-1).nonzero().squeeze(1)
    bins.sub_(1).clamp_(0, n_bins - 1)
    if near is not None and near.numel():
        inner = uniform_edges(n_bins, values)[1:-1].contiguous()
        exact_bins = torch.bucketize(values.reshape(-1).index_select(0, near).to(acc), inner, right=False)
        bins.view(-1)[near] = exact_bins.to(acc)
    return bins, scaled


def tied_blocks(conf: torch.Tensor, ok: torch.Tensor):
    """Distinct confidences in decreasing order ``(B,)``, the number accepted ``(B,)`` and errors among them
    ``(B,)`` when thresholding at each (a threshold accepts whole tied blocks); counts in the accumulation dtype."""
    acc = acc_dtype(conf.device)
    srt, perm = torch.sort(conf, descending=True, stable=True)
    cum_err = (~ok)[perm].to(acc).cumsum(0)
    values, counts = torch.unique_consecutive(srt, return_counts=True)
    ends = counts.cumsum(0)
    return values, ends.to(acc), cum_err[ends - 1]


def tied_risk_curve(conf: torch.Tensor, ok: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The risk-coverage curve with ties averaged: ``(risk, threshold)``, both ``(N,)``.

    ``threshold[i-1]`` is the i-th largest confidence and ``risk[i-1]`` the expected error rate of the ``i`` most
    confident samples, where inside a tied block of size ``b`` the errors among its first ``j`` are their
    expectation over random orders of the block, ``j * errors_in_block / b``.  Each risk is ONE correctly rounded
    division of exact integers, ``(errors_before * b + j * errors_in_block) / (b * i)`` (counts are exact in the
    accumulation dtype), so a risk that equals a target exactly compares as equal.
    """
    acc = acc_dtype(conf.device)
    n = conf.shape[0]
    srt, perm = torch.sort(conf, descending=True, stable=True)
    cum = (~ok)[perm].to(acc).cumsum(0)
    _, counts = torch.unique_consecutive(srt, return_counts=True)
    ends = counts.cumsum(0)
    starts = ends - counts
    cum_end = cum[ends - 1]
    cum_before = torch.cat([torch.zeros(1, dtype=acc, device=conf.device), cum_end[:-1]])
    block = torch.repeat_interleave(torch.arange(counts.shape[0], device=conf.device), counts)
    b = counts.to(acc)[block]
    i = torch.arange(1, n + 1, dtype=acc, device=conf.device)
    j = i - starts.to(acc)[block]
    return (cum_before[block] * b + j * (cum_end - cum_before)[block]) / (b * i), srt
