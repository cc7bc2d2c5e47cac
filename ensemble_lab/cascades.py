"""Early-exit cascades of ensemble members (the selective-classification metrics are in ``ensemble_lab.selective``).

After Xia & Bouganis, "Window-Based Early-Exit Cascades for Uncertainty Estimation: When Deep Ensembles are More
Efficient than Single Models" (ICCV 2023).  Members run one after another (in ``order``); after stage ``j`` the
prediction is the running (weighted) average of the probabilities of the members run so far; a sample leaves the
cascade (exits) as soon as the exit policy says it no longer needs the next member.  The last stage always exits.

Pure, device-agnostic torch routines.  Inputs are torch tensors (numpy arrays and lists are converted); nothing is
moved to another device.  Reported numbers are python floats; per-sample values are tensors on the input's device.

Shapes and units
----------------
- ``member_logits``: ``(K, N, C)`` logits, member axis first.
- ``order``: member indices run one after another, ``K'`` of them (``1 <= K' <= K``, no repeats, default
  ``0..K-1``); stage ``j`` runs member ``order[j]``.  Stage axes below have length ``K'``.
- ``weights``: ``(K,)`` non-negative weights indexed by MEMBER (not by stage), default equal.  The running average
  after stage ``j`` is ``sum_{i<=j} w[order[i]] p[order[i]] / sum_{i<=j} w[order[i]]``, so the first member in
  ``order`` needs a weight > 0.
- ``costs``: ``(K,)`` non-negative cost of running each member on one sample (e.g. multiply-accumulates), indexed by
  member, default all ones (cost = number of members run).  A sample that exits at stage ``j`` costs exactly
  ``sum_{i<=j} costs[order[i]]``.  Costs are accumulated in float64 (float32 on MPS).

Scores (higher = more confident), see :data:`SCORES`
----------------------------------------------------
For one model's logits ``z`` ``(N, C)`` (:func:`confidence_score`): ``msp = max_c softmax(z)_c``,
``neg_entropy = -H(softmax(z)) = sum_c p_c log p_c``, ``max_logit = max_c z_c``, ``neg_energy = logsumexp_c z_c``.

For an ensemble stage (:func:`stage_scores`): ``msp`` and ``neg_entropy`` are those of the running averaged
PROBABILITIES (equivalently of the stage logits ``log pbar``).  ``max_logit`` and ``neg_energy`` are computed on the
running (same-weighted) average of the member LOGITS, ``zbar = sum w z / sum w``: ``max_c zbar_c`` and
``logsumexp_c zbar_c``.  (On ``log pbar`` they would be ``log msp`` and the constant 0, which says nothing.)  The
prediction is always the argmax of the averaged probabilities (ties -> lowest class index).  For a stage with one
member every score equals :func:`confidence_score` of that member's logits (up to rounding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ._numerics import acc_dtype, xlogx
from ._validation import (
    as_tensor,
    check_choice,
    check_finite,
    check_finite_result,
    check_labels_for,
    check_member_logits,
    check_vector,
    check_weights,
)

__all__ = [
    "SCORES",
    "CascadeResult",
    "confidence_score",
    "stage_probs",
    "stage_scores",
    "threshold_cascade",
    "window_cascade",
    "window_edges",
    "window_sweep",
    "expected_cost",
]

SCORES = ("msp", "neg_entropy", "max_logit", "neg_energy")
_PROB_SCORES = ("msp", "neg_entropy")


def _costs(costs, z: torch.Tensor) -> torch.Tensor:
    """Member costs ``(K,)`` in the accumulation dtype on ``z``'s device (default all ones)."""
    k, acc = z.shape[0], acc_dtype(z.device)
    if costs is None:
        return torch.ones(k, dtype=acc, device=z.device)
    c = check_weights(costs, k, "costs", normalise=False, like=z, dtype=acc, need_positive_sum=False)
    # every cost reported (per sample, and summed over the N samples for a mean) is at most N times the sum over
    # the members: check that bound once, so that no sum of costs can overflow later
    check_finite_result(c.sum() * z.shape[1], f"the sum of costs over the members, times N = {z.shape[1]} samples,")
    return c


# ----------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------


def _order(order, k: int, device) -> torch.Tensor:
    """Member order as an int64 tensor ``(K',)`` on ``device``: non-empty, integers in [0, K), no repeats."""
    if order is None:
        return torch.arange(k, device=device)
    if isinstance(order, torch.Tensor):
        arr = order.detach().cpu().numpy()
    elif isinstance(order, (Sequence, range, np.ndarray)) and not isinstance(order, str):
        arr = np.asarray(list(order) if not isinstance(order, np.ndarray) else order)
    else:
        raise TypeError(f"order must be a sequence of member indices, got {type(order).__name__}")
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"order must be a non-empty 1-D sequence of member indices, got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"order must hold integer member indices, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= k:
        raise ValueError(f"order must hold member indices in [0, {k - 1}] for {k} members, got {arr.tolist()}")
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"order must not repeat a member, got {arr.tolist()}")
    return torch.as_tensor(arr.astype(np.int64), device=device)


# ----------------------------------------------------------------------------------------------------------
# scores and stages
# ----------------------------------------------------------------------------------------------------------


def confidence_score(logits, score: str = "msp") -> torch.Tensor:
    """Confidence score ``(N,)`` of one model's logits ``(N, C)`` (higher = more confident).

    ``msp``: max softmax probability; ``neg_entropy``: ``-H(softmax(z))`` in nats (range ``[-log C, 0]``);
    ``max_logit``: ``max_c z_c``; ``neg_energy``: ``logsumexp_c z_c`` (minus the free energy at T = 1).
    Any leading axes are kept: ``(K, N, C)`` -> ``(K, N)``.
    """
    check_choice(score, "score", SCORES)
    z = as_tensor(logits, "logits").detach()
    if z.ndim < 2 or z.shape[-1] < 2 or z.numel() == 0:
        raise ValueError(f"logits must have shape (N, C) with N >= 1 and C >= 2, got shape {tuple(z.shape)}")
    if not bool(torch.isfinite(z).all()):
        raise ValueError(f"logits must be finite, got {int((~torch.isfinite(z)).sum())} NaN/inf value(s)")
    if score == "msp":
        return torch.softmax(z, dim=-1).amax(dim=-1)
    if score == "neg_entropy":
        return (torch.softmax(z, dim=-1) * torch.log_softmax(z, dim=-1)).sum(dim=-1)
    if score == "max_logit":
        return z.amax(dim=-1)
    return torch.logsumexp(z, dim=-1)


def _prepare(member_logits, order, weights):
    z = check_member_logits(member_logits).detach()
    k = z.shape[0]
    idx = _order(order, k, z.device)
    if weights is None:
        w = torch.ones(k, dtype=z.dtype, device=z.device)
    else:
        w = check_weights(weights, k, normalise=False, like=z)
    w_ord = w.index_select(0, idx)
    if not bool(w_ord[0] > 0):
        raise ValueError(
            f"weights of the first member in order (member {int(idx[0])}) must be > 0 so that the first stage "
            f"has a prediction, got {float(w_ord[0])}"
        )
    return z, idx, w_ord


def _running_mean(x: torch.Tensor, w_ord: torch.Tensor) -> torch.Tensor:
    """``(K', N, C)`` running weighted means of ``x`` ``(K', N, C)`` (already in stage order)."""
    num = torch.cumsum(w_ord.view(-1, 1, 1) * x, dim=0)
    return num / torch.cumsum(w_ord, dim=0).view(-1, 1, 1)


def _stages(member_logits, order, weights, score: str):
    """Stage probabilities ``(K', N, C)``, stage scores ``(K', N)``, the order ``(K',)`` and the logits."""
    check_choice(score, "score", SCORES)
    z, idx, w_ord = _prepare(member_logits, order, weights)
    zo = z.index_select(0, idx)
    probs = _running_mean(torch.softmax(zo, dim=-1), w_ord)
    if score == "msp":
        s = probs.amax(dim=-1)
    elif score == "neg_entropy":
        s = xlogx(probs).sum(dim=-1)
    else:
        zbar = _running_mean(zo, w_ord)
        s = zbar.amax(dim=-1) if score == "max_logit" else torch.logsumexp(zbar, dim=-1)
    return probs, s, idx, z


def stage_probs(member_logits, order=None, weights=None) -> torch.Tensor:
    """Running (weighted) average of the members' softmax probabilities after each stage.

    member_logits ``(K, N, C)``; order: ``K'`` member indices (default ``0..K-1``); weights ``(K,)`` by member.
    Returns ``(K', N, C)``: entry ``j`` is ``sum_{i<=j} w[order[i]] softmax(z[order[i]]) / sum_{i<=j} w[order[i]]``.
    """
    return _stages(member_logits, order, weights, "msp")[0]


def stage_scores(member_logits, score: str = "msp", order=None, weights=None) -> torch.Tensor:
    """Confidence score of every stage, ``(K', N)`` (see the module docstring for the ensemble convention).

    ``stage_scores(val_logits, score)[0]`` gives the first-stage validation scores that :func:`window_cascade`
    takes as ``val_scores``.
    """
    return _stages(member_logits, order, weights, score)[1]


# ----------------------------------------------------------------------------------------------------------
# policies
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CascadeResult:
    """Outcome of a cascade on ``N`` samples with ``K'`` stages.

    Attributes:
        predictions: ``(N,)`` int64, argmax of the exit stage's averaged probabilities (ties -> lowest class).
        exit_stage: ``(N,)`` int64 in ``0..K'-1``, the stage at which the sample left (it ran ``exit_stage + 1``
            members).
        confidence: ``(N,)`` the exit stage's score (the one the policy used), for selective classification.
        cost: ``(N,)`` float64 (float32 on MPS), the sum of ``costs`` of the members run for that sample.
        probs: ``(N, C)`` the exit stage's averaged probabilities.
    """

    predictions: torch.Tensor
    exit_stage: torch.Tensor
    confidence: torch.Tensor
    cost: torch.Tensor
    probs: torch.Tensor

    @property
    def mean_cost(self) -> float:
        """Mean cost per sample (python float)."""
        return float(self.cost.mean())


def expected_cost(result: CascadeResult) -> float:
    """Mean cost per sample of a cascade result (python float)."""
    if not isinstance(result, CascadeResult):
        raise TypeError(f"result must be a CascadeResult, got {type(result).__name__}")
    return result.mean_cost


def _exit_from_pass(passes: torch.Tensor) -> torch.Tensor:
    """Exit stage from ``passes`` ``(..., K', N)`` bool (True = pass on to the next stage): the number of leading
    True among the first ``K' - 1`` stages (the last stage always exits).  Returns ``(..., N)`` int64."""
    lead = passes[..., :-1, :].to(torch.int64).cumprod(dim=-2)
    return lead.sum(dim=-2)


def _result(probs, scores, idx, costs, exit_stage) -> CascadeResult:
    n, c = probs.shape[1], probs.shape[2]
    stage_cost = torch.cumsum(costs.index_select(0, idx), dim=0)
    p = probs.gather(0, exit_stage.view(1, n, 1).expand(1, n, c))[0]
    return CascadeResult(
        predictions=p.argmax(dim=-1),
        exit_stage=exit_stage,
        confidence=scores.gather(0, exit_stage.view(1, n))[0],
        cost=stage_cost[exit_stage],
        probs=p,
    )


def threshold_cascade(
    member_logits, threshold, score: str = "msp", costs=None, order=None, weights=None
) -> CascadeResult:
    """Confidence-threshold cascade: a sample is passed on while its stage score is BELOW ``threshold``.

    member_logits ``(K, N, C)``; threshold a finite number in score units; it exits at the first stage ``j``
    with ``score_j >= threshold`` (or at the last stage).  See the module docstring for order, weights, costs.
    """
    tau = check_finite(threshold, "threshold")
    probs, s, idx, z = _stages(member_logits, order, weights, score)
    cst = _costs(costs, z)
    passes = s.to(acc_dtype(s.device)) < tau
    return _result(probs, s, idx, cst, _exit_from_pass(passes))


def _half_widths(half_width, quantile: bool, name: str) -> torch.Tensor:
    """Half-widths as a float64 CPU tensor ``(W,)`` after the range checks of the mode."""
    if isinstance(half_width, torch.Tensor):
        if half_width.dtype == torch.bool or torch.is_complex(half_width):
            raise TypeError(f"{name} must hold real numbers, got a tensor of dtype {half_width.dtype}")
        arr = half_width.detach().cpu().to(torch.float64).reshape(-1).numpy()
        if half_width.ndim > 1:
            raise ValueError(f"{name} must be a number or a 1-D sequence, got shape {tuple(half_width.shape)}")
    else:
        # np.asarray(..., dtype=float64) would read False as 0 and "0.5" as 0.5: refuse bools and strings first
        items = half_width if isinstance(half_width, (list, tuple)) else [half_width]
        if any(isinstance(v, (bool, np.bool_, str, bytes)) for v in items):
            raise TypeError(f"{name} must be a number or a sequence of numbers, got {half_width!r}")
        try:
            arr = np.asarray(half_width)
            if arr.dtype.kind not in "iuf":
                raise TypeError(f"dtype {arr.dtype}")
            arr = arr.astype(np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"{name} must be a number or a sequence of numbers, got {half_width!r}") from exc
        if arr.ndim > 1:
            raise ValueError(f"{name} must be a number or a 1-D sequence, got shape {arr.shape}")
        arr = arr.reshape(-1)
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got {arr.tolist()[:6]}")
    if quantile and ((arr < 0).any() or (arr > 0.5).any()):
        raise ValueError(f"{name} must be in [0, 0.5] (quantile units, val_scores given), got {arr.tolist()[:6]}")
    if not quantile and (arr < 0).any():
        raise ValueError(f"{name} must be >= 0 (score units, no val_scores), got {arr.tolist()[:6]}")
    return torch.as_tensor(arr)


def _edges(tau: float, hw: torch.Tensor, val: torch.Tensor | None, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Window edges ``lo, hi`` ``(W,)`` in the accumulation dtype on ``device`` (see :func:`window_edges`)."""
    acc = acc_dtype(device)
    hw = hw.to(device=device, dtype=acc)
    if val is None:
        return tau - hw, tau + hw
    v = val.to(acc)
    m = v.shape[0]
    srt = v.sort().values
    u = (v <= tau).sum().to(acc) / m  # F(tau)
    levels = torch.arange(1, m + 1, dtype=acc, device=device) / m  # F at the order statistics (lower bound)

    def q_inv(p: torch.Tensor) -> torch.Tensor:
        # inf{x: F(x) >= p} for p in (0, 1); p <= 0 -> -inf, p >= 1 -> +inf (the ends of the score line)
        k = torch.searchsorted(levels, p.contiguous()).clamp(max=m - 1)
        out = srt[k]
        out = torch.where(p <= 0, torch.full_like(out, -math.inf), out)
        return torch.where(p >= 1, torch.full_like(out, math.inf), out)

    return q_inv(u - hw), q_inv(u + hw)


def window_edges(threshold, half_width, val_scores=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges ``(lo, hi)`` of the open window ``lo < score < hi`` in which a sample is passed on.

    half_width is a number or a 1-D sequence of ``W`` numbers; returns two tensors of shape ``(W,)`` (``(1,)`` for
    a number), float64 (float32 on MPS).

    - ``val_scores is None`` (score units): ``lo = threshold - half_width``, ``hi = threshold + half_width``,
      half_width ``>= 0``.
    - ``val_scores`` ``(M,)`` given (quantile units, as in the paper): with ``F`` the empirical CDF of the
      validation scores (``F(t)`` = fraction ``<= t``) and ``Q(p) = inf{x : F(x) >= p}`` its generalised inverse
      (an order statistic of ``val_scores``), ``lo = Q(F(threshold) - q)`` and ``hi = Q(F(threshold) + q)`` with
      ``q = half_width`` in ``[0, 0.5]``.  Quantile levels are clamped to ``[0, 1]`` and the levels ``0`` and
      ``1`` stand for the ends of the score line: ``Q(<= 0) = -inf``, ``Q(>= 1) = +inf``, so a window that reaches
      an end of the validation distribution is open on that side (test scores beyond the validation range are
      passed on too).  ``q = 0.5`` with ``F(threshold) = 0.5`` passes on everyone.

    ``half_width = 0`` gives ``lo == hi``: an empty window in both modes.  Edges are monotone in half_width.
    """
    tau = check_finite(threshold, "threshold")
    val = None if val_scores is None else check_vector(val_scores, "val_scores")
    hw = _half_widths(half_width, val is not None, "half_width")
    device = val.device if val is not None else torch.device("cpu")
    return _edges(tau, hw, val, device)


def window_cascade(
    member_logits, threshold, half_width, score: str = "msp", costs=None, order=None, weights=None, val_scores=None
) -> CascadeResult:
    """Window-based early-exit cascade (Xia & Bouganis 2023).

    member_logits ``(K, N, C)``; threshold ``tau``: the operating threshold of selective classification (score
    units); half_width: the window's half-width, in quantile units of ``val_scores`` ``(M,)`` (first-stage scores on
    a validation split, e.g. ``stage_scores(val_logits, score)[0]``) when given, else in score units (see
    :func:`window_edges`).  The same window is used at every stage: a sample is passed on while ``lo < score < hi``
    (open window), i.e. only samples whose accept/reject decision is uncertain pay for the next member; the last
    stage always exits.  ``half_width = 0`` -> everyone exits at stage 0 (single-model cost); a window covering all
    scores -> everyone runs all ``K'`` members (the full ensemble).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(2, 6, 3, generator=g) * 3  # (K=2 members, N=6, C=3)
        >>> r = window_cascade(z, threshold=0.8, half_width=0.1, costs=[1.0, 4.0])
        >>> r.predictions.shape, r.exit_stage.tolist(), r.cost.tolist()
        (torch.Size([6]), [1, 0, 1, 0, 0, 0], [5.0, 1.0, 5.0, 1.0, 1.0, 1.0])
    """
    tau = check_finite(threshold, "threshold")
    probs, s, idx, z = _stages(member_logits, order, weights, score)
    cst = _costs(costs, z)
    val = None if val_scores is None else check_vector(val_scores, "val_scores", like=z, like_name="member_logits")
    if isinstance(half_width, (torch.Tensor, np.ndarray, Sequence)) and np.ndim(half_width) > 0:
        raise ValueError(
            f"half_width must be a single number (window_sweep takes many), got shape {tuple(np.shape(half_width))}"
        )
    hw = _half_widths(half_width, val is not None, "half_width")
    lo, hi = _edges(tau, hw, val, z.device)
    sa = s.to(lo.dtype)
    passes = (lo < sa) & (sa < hi)
    return _result(probs, s, idx, cst, _exit_from_pass(passes))


def window_sweep(
    member_logits,
    threshold,
    half_widths,
    score: str = "msp",
    costs=None,
    val_scores=None,
    *,
    labels,
    order=None,
    weights=None,
):
    """Mean cost, selective risk and coverage of :func:`window_cascade` for many half-widths at once.

    member_logits ``(K, N, C)``; half_widths ``(W,)`` (quantile units with ``val_scores``, else score units);
    labels ``(N,)`` (keyword, required: risk needs them).  For each half-width the cascade's exit-stage confidence
    is thresholded at the operating threshold: accepted = ``confidence >= threshold``.

    Returns ``(mean_cost, risk, coverage)``, each ``(W,)`` float64 (float32 on MPS): mean cost per sample, error
    rate among the accepted samples (NaN where none is accepted) and the accepted fraction.  Equal to calling
    :func:`window_cascade` and :func:`selective_risk` per half-width, in ``O(K' N log W)`` time and ``O(K' N)``
    memory (see the comments in the code).
    """
    tau = check_finite(threshold, "threshold")
    probs, s, idx, z = _stages(member_logits, order, weights, score)
    n = z.shape[1]
    y = check_labels_for(labels, z)
    cst = _costs(costs, z)
    val = None if val_scores is None else check_vector(val_scores, "val_scores", like=z, like_name="member_logits")
    hw = _half_widths(half_widths, val is not None, "half_widths")
    # Windows grow with the half-width (both edges move outward), so a score that is inside the window at one
    # half-width stays inside at every larger one.  Sort the half-widths; for every sample and stage find the
    # first half-width whose window holds the score (two searchsorted calls); a sample passes stage j at every
    # half-width from M_j = max(first_0, ..., first_j) on.  Each sample then changes state at most K' - 1 times
    # along the sweep, so the per-half-width totals are cumulative sums of those changes: O(K' N log W), never
    # a (W, K', N) tensor.
    order_w = torch.argsort(hw, stable=True)
    lo, hi = _edges(tau, hw.index_select(0, order_w), val, z.device)  # (W,) sorted: lo falls, hi rises
    acc = lo.dtype
    n_w = lo.shape[0]
    sa = s.to(acc)  # (K', N)
    a = torch.searchsorted(-lo.contiguous(), -sa.contiguous(), right=True)  # first w with lo[w] < s
    b = torch.searchsorted(hi.contiguous(), sa.contiguous(), right=True)  # first w with s < hi[w]
    first = torch.maximum(a, b)[:-1]  # (K'-1, N): the last stage always exits
    m = torch.cummax(first, dim=0).values if first.shape[0] else first  # (K'-1, N) in 0..W (W: never)
    stage_cost = torch.cumsum(cst.index_select(0, idx), dim=0).to(acc)  # cost of exiting at each stage
    conf_ok = (sa >= tau).to(acc)  # accepted if exiting at that stage
    wrong_ok = conf_ok * (probs.argmax(dim=-1) != y).to(acc)  # accepted and wrong

    def totals(per_stage: torch.Tensor) -> torch.Tensor:
        """sum over samples of ``per_stage[exit stage]`` at each (sorted) half-width, ``(W,)``."""
        base = per_stage[0].sum() if per_stage.dim() == 2 else per_stage[0] * n
        out = torch.full((n_w + 1,), 0.0, dtype=acc, device=z.device)
        for j in range(m.shape[0]):
            step = per_stage[j + 1] - per_stage[j]
            if step.dim() == 0:
                step = step.expand(n)
            out.index_add_(0, m[j], step)
        return base + torch.cumsum(out, 0)[:n_w]

    mean_cost = totals(stage_cost) / n
    n_acc = totals(conf_ok)
    risk = totals(wrong_ok) / n_acc  # 0/0 -> NaN
    unsort = torch.empty_like(order_w).scatter_(0, order_w, torch.arange(n_w))
    unsort = unsort.to(z.device)
    return mean_cost[unsort], risk[unsort], (n_acc / n)[unsort]
