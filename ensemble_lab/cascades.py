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
``neg_entropy = -H(softmax(z)) = sum_c p_c log p_c``, ``max_logit = max_c z_c``, ``neg_energy = logsumexp_c z_c``;
``max_logit_of_mean`` and ``neg_energy_of_mean`` are ``max_logit`` and ``neg_energy`` again (one model: nothing to
average).

For an ensemble stage (:func:`stage_scores`, the members run so far, with the running weights ``w``):

- ``msp``, ``neg_entropy``: those of the running averaged PROBABILITIES ``pbar`` (equivalently of the stage logits
  ``log pbar``), as the authors' ``confidence_ens`` / ``entropy_ens`` (``add_adjusted_uncs`` in
  ``cascade_results.py``; ``plot_policy_comparison.py`` plots these).
- ``max_logit``, ``neg_energy`` (the authors' rule): the running (same-weighted) MEAN of the members' own scores,
  ``sum_m w_m max_c z_mc / sum_m w_m`` and ``sum_m w_m logsumexp_c z_mc / sum_m w_m`` (``cascade_results.py``:
  ``av_unc_metrics``, "just average the uncertainty scores themselves").  (On ``log pbar`` they would be
  ``log msp`` and the constant 0, which says nothing.)
- ``max_logit_of_mean``, ``neg_energy_of_mean``: of the running average of the member LOGITS,
  ``zbar = sum w z / sum w``: ``max_c zbar_c`` and ``logsumexp_c zbar_c`` (this module's rule for ``max_logit``
  and ``neg_energy`` before it followed the authors).  Both are convex in the logits, so they never exceed the
  mean-of-members scores (Jensen).

The prediction is always the argmax of the averaged probabilities (ties -> lowest class index).  For a stage with
one member every score equals :func:`confidence_score` of that member's logits (up to rounding).

Windows fitted the authors' way
-------------------------------
Xia & Bouganis's code, https://github.com/Guoxoug/window-early-exit: ``cascade_results.py`` (two stages: tau from
``get_threshold`` in ``utils/eval_utils.py`` on the FIRST member's val scores and correctness, the window
``torch.quantile(val, [u - q, u + q])`` around ``u = percentileofscore(val, tau)``, and the "adjusted" window, the
same recipe on unlabelled deployment scores with tau kept), ``plot_msdnet_unc_cascade.py`` (three exits: a tau and
a window per exit, each in that exit's own val quantile space) and ``utils/cascade_utils.py``
(``window_threshold_strategy``: exit unless the score is inside the window).  Here: :func:`fit_windows` (tau and
window of every stage from its val scores), :func:`adjust_windows` (the edges re-estimated on deployment scores)
and :func:`fitted_cascade` (run them).  Our conventions differ in these places:

- tau for a target risk is :func:`ensemble_lab.selective.threshold_for_risk`: the smallest threshold (largest
  coverage) whose val selective risk is ``<= target``, tied scores accepted together.  ``get_threshold`` takes the
  point of the risk-coverage curve NEAREST the target (its risk can be above it) among coverages of at least 500
  samples, and reads the threshold one sample past that point.  For a target coverage tau is
  :func:`ensemble_lab.selective.threshold_for_coverage` (the ``ceil(c M)``-th largest score); ``get_threshold``
  takes the ``(round(c M) + 1)``-th.
- tau's level is ``F(tau)`` = the fraction of scores ``<= tau``; ``percentileofscore`` (``kind="rank"``) is the
  same number unless tau ties with more than one score.
- the edges are order statistics ``Q(p) = inf{x : F(x) >= p}``; ``torch.quantile`` interpolates linearly between
  the two order statistics around ``p (M - 1)``, one of which is ours.
- levels beyond ``[0, 1]`` give edges at ``-inf`` / ``+inf`` (the window is open on that side); the authors clamp
  them to the smallest / largest val score, so there a score beyond the val range exits.
- the window is open (``lo < score < hi`` passes on); theirs is closed (``lo <= score <= hi``).  The two differ only
  for a score equal to an edge.
- a stage is the running ensemble of the members so far (its correctness is that of the stage's prediction); in the
  authors' three-exit experiment a stage is one exit of an early-exit network (MSDNet).
- :func:`adjust_windows` takes whichever unlabelled scores the caller deploys on, one row per stage; the authors
  pool in-distribution test and OOD data 1:1 (``get_id_ood_mixture``) and adjust two-stage cascades only.
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
    check_confidence_correct,
    check_finite,
    check_finite_result,
    check_finite_tensor,
    check_in_range,
    check_labels_for,
    check_member_logits,
    check_vector,
    check_weights,
    on_device_of,
)
from .selective import threshold_for_coverage, threshold_for_risk

__all__ = [
    "SCORES",
    "POLICIES",
    "CascadeResult",
    "CascadeWindows",
    "confidence_score",
    "stage_probs",
    "stage_scores",
    "threshold_cascade",
    "window_cascade",
    "window_edges",
    "window_sweep",
    "fit_windows",
    "adjust_windows",
    "fitted_cascade",
    "expected_cost",
]

#: exit scores: the first four as the authors define them for an ensemble stage, then the two scores of the
#: averaged logits (see the module docstring)
SCORES = ("msp", "neg_entropy", "max_logit", "neg_energy", "max_logit_of_mean", "neg_energy_of_mean")
#: exit policies of :func:`fitted_cascade`
POLICIES = ("window", "threshold")
_MEMBER_MEAN = {"max_logit": "max_logit", "neg_energy": "neg_energy"}  # stage score = mean of the members' scores
_OF_MEAN = {"max_logit_of_mean": "max_logit", "neg_energy_of_mean": "neg_energy"}  # score of the mean logits


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
    ``max_logit``: ``max_c z_c``; ``neg_energy``: ``logsumexp_c z_c`` (minus the free energy at T = 1);
    ``max_logit_of_mean`` / ``neg_energy_of_mean``: the same as ``max_logit`` / ``neg_energy`` (one model).
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
    score = _OF_MEAN.get(score, score)
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


def _running_mean(x: torch.Tensor, w_ord: torch.Tensor, *, huge_ok: bool = False) -> torch.Tensor:
    """Running weighted means along the stage axis of ``x`` ``(K', N, ...)`` (already in stage order), same shape.

    ``huge_ok`` (logits and logit scores): a weighted mean is no larger in magnitude than its largest term, but the
    running sums can overflow for huge finite terms (logits near the float maximum); then each sample's terms are
    summed in the accumulation dtype divided by a power of two no smaller than their largest magnitude (an exact
    rescaling) and multiplied back."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    w, den = w_ord.view(shape), torch.cumsum(w_ord, dim=0).view(shape)
    num = torch.cumsum(w * x, dim=0)
    if not huge_ok or bool(torch.isfinite(num).all()):
        return num / den
    acc = acc_dtype(x.device)
    xa, w, den = x.to(acc), w.to(acc), den.to(acc)
    e = torch.frexp(xa.abs().amax(dim=(0, *range(2, x.dim())), keepdim=True))[1]  # max |x| < 2**e, per sample
    e1, e2 = e // 2, e - e // 2  # 2**e itself may overflow: scale in two exact steps
    num = torch.cumsum(w * torch.ldexp(torch.ldexp(xa, -e1), -e2), dim=0)
    return torch.ldexp(torch.ldexp(num / den, e1), e2).to(x.dtype)


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
    elif score in _MEMBER_MEAN:  # the authors' rule: the running mean of the members' own scores
        s = _running_mean(zo.amax(dim=-1) if score == "max_logit" else torch.logsumexp(zo, dim=-1), w_ord, huge_ok=True)
    else:  # the score of the running mean of the logits
        zbar = _running_mean(zo, w_ord, huge_ok=True)
        s = zbar.amax(dim=-1) if _OF_MEAN[score] == "max_logit" else torch.logsumexp(zbar, dim=-1)
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


def _half_widths(
    half_width, quantile: bool, name: str, units: str = "quantile units, val_scores given"
) -> torch.Tensor:
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
        raise ValueError(f"{name} must be in [0, 0.5] ({units}), got {arr.tolist()[:6]}")
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
    stage always exits.  (The authors fit a tau and a window per stage, each in its own stage's val quantile
    space: :func:`fit_windows` and :func:`fitted_cascade`; for two stages the two agree.)  ``half_width = 0`` ->
    everyone exits at stage 0 (single-model cost); a window covering all scores -> everyone runs all ``K'`` members
    (the full ensemble).

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


# ----------------------------------------------------------------------------------------------------------
# windows fitted per stage, the authors' way
# ----------------------------------------------------------------------------------------------------------


def _floats(values, name: str) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}") from exc
    if any(isinstance(v, (bool, np.bool_, str, bytes)) for v in values):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}")
    return out


@dataclass(frozen=True)
class CascadeWindows:
    """Exit windows of ``S`` stages, one per row of the scores they were estimated on (python floats).

    Attributes:
        tau: ``(S,)`` each stage's operating threshold (score units), fitted on its val scores.
        lo, hi: ``(S,)`` the window edges (score units, ``-inf`` / ``+inf`` where the window reaches an end of the
            scores): a sample at that stage is passed on while ``lo < score < hi``.
        half_width: ``(S,)`` the half-widths, in quantile units of the scores the edges were estimated on.
        level: ``(S,)`` ``F(tau)``, the fraction of those scores ``<= tau``: the edges are ``Q(level - half_width)``
            and ``Q(level + half_width)`` (see :func:`window_edges`).

    Built by :func:`fit_windows` (on val) and :func:`adjust_windows` (on deployment scores); read by
    :func:`fitted_cascade`.
    """

    tau: tuple[float, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    half_width: tuple[float, ...]
    level: tuple[float, ...]

    def __post_init__(self):
        fields = {}
        for name in ("tau", "lo", "hi", "half_width", "level"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray, torch.Tensor)):
                raise TypeError(f"{name} must be a sequence of numbers, got {type(value).__name__}")
            fields[name] = _floats(value.tolist() if hasattr(value, "tolist") else value, name)
            object.__setattr__(self, name, fields[name])
        n = {len(v) for v in fields.values()}
        if len(n) != 1 or 0 in n:
            raise ValueError(
                f"tau, lo, hi, half_width and level must have one equal length >= 1, got lengths "
                f"{[len(v) for v in fields.values()]}"
            )
        if not all(math.isfinite(t) for t in self.tau):
            raise ValueError(f"tau must be finite, got {list(self.tau)}")
        if any(math.isnan(a) or math.isnan(b) or a > b for a, b in zip(self.lo, self.hi, strict=True)):
            raise ValueError(f"lo and hi must be edges with lo <= hi, got lo={list(self.lo)}, hi={list(self.hi)}")
        if any(not 0.0 <= q <= 0.5 for q in self.half_width):
            raise ValueError(f"half_width must be in [0, 0.5] (quantile units), got {list(self.half_width)}")
        if any(not 0.0 <= u <= 1.0 for u in self.level):
            raise ValueError(f"level must be in [0, 1], got {list(self.level)}")

    def __len__(self) -> int:
        return len(self.tau)


def _stage_rows(x, name: str) -> torch.Tensor:
    """Scores ``(S, M)`` (a ``(M,)`` vector is one row), finite, ``S, M >= 1``."""
    t = as_tensor(x, name).detach()
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 1:
        shape = tuple(as_tensor(x, name).shape)
        raise ValueError(f"{name} must have shape (M,) or (S, M) (stages, samples) with S, M >= 1, got shape {shape}")
    check_finite_tensor(t, name)
    return t


def _stage_correct(correct, s: torch.Tensor, given_shape) -> torch.Tensor:
    """``correct`` with the shape of the scores ``s`` ``(S, M)``, bool, on their device."""
    ok = as_tensor(on_device_of(correct, "correct", s, "scores"), "correct", floating=False).detach()
    if ok.ndim == 1:
        ok = ok.unsqueeze(0)
    if ok.shape != s.shape:
        raise ValueError(f"correct must have the shape of scores {given_shape}, got shape {tuple(np.shape(correct))}")
    return torch.stack([check_confidence_correct(s[j], ok[j])[1] for j in range(s.shape[0])])


def _estimate(taus: Sequence[float], hw: torch.Tensor, s: torch.Tensor) -> CascadeWindows:
    """Edges and levels of the windows around ``taus`` with half-widths ``hw`` ``(S,)`` on the rows of ``s``."""
    acc = acc_dtype(s.device)
    lo, hi, level = [], [], []
    for j, tau in enumerate(taus):
        v = s[j]
        a, b = _edges(tau, hw[j : j + 1], v, v.device)
        lo.append(float(a[0]))
        hi.append(float(b[0]))
        level.append(float((v.to(acc) <= tau).sum().to(acc) / v.shape[0]))
    return CascadeWindows(
        tau=tuple(taus), lo=tuple(lo), hi=tuple(hi), half_width=tuple(hw.tolist()), level=tuple(level)
    )


def _stage_half_widths(half_width, n: int) -> torch.Tensor:
    hw = _half_widths(half_width, True, "half_width", units="quantile units")
    if hw.shape[0] == 1:
        return hw.expand(n).clone()
    if hw.shape[0] != n:
        raise ValueError(
            f"half_width must be one number or {n} numbers (one per row of scores), got {hw.shape[0]} numbers"
        )
    return hw


def fit_windows(scores, correct, half_width, *, target_risk=None, target_coverage=None) -> CascadeWindows:
    """Each stage's operating threshold tau and its exit window, fitted on validation scores (the authors' way).

    scores ``(S, M)`` (or ``(M,)`` for one stage): each row one stage's val scores, e.g.
    ``stage_scores(val_logits, score, order)[:-1]`` (every stage but the last, which always exits; the first row
    alone for a two-stage cascade); correct ``(S, M)`` bool or 0/1: whether that stage's prediction is right, e.g.
    ``stage_probs(val_logits, order)[:-1].argmax(-1) == val_labels`` (may be None with ``target_coverage``);
    half_width: a number, or one per row, in ``[0, 0.5]`` quantile units.  Give exactly one target:

    - ``target_risk`` in ``(0, 1]``: ``tau_j = threshold_for_risk(scores[j], correct[j], target_risk)``, the
      smallest threshold whose selective risk on that stage's val scores is ``<= target_risk``;
    - ``target_coverage`` in ``(0, 1]``: ``tau_j = threshold_for_coverage(scores[j], target_coverage)``.

    Each window lies around ``tau_j`` in quantile space of ``scores[j]``: ``u = F_j(tau_j)`` (fraction ``<=``),
    edges ``Q_j(u - q_j)`` and ``Q_j(u + q_j)`` as in :func:`window_edges`.  The first row's tau is the
    authors' tau: the first stage's val scores and correctness (``cascade_results.py``); one tau and window per
    stage, each in its own stage's quantile space, is their multi-exit rule (``plot_msdnet_unc_cascade.py``).  See
    the module docstring for where our conventions differ from theirs.

    Example:
        >>> scores = torch.arange(11, dtype=torch.float64) / 10  # one stage's val scores 0.0, 0.1, ..., 1.0
        >>> w = fit_windows(scores, scores >= 0.35, 0.2, target_risk=0.1)  # right from 0.4 up
        >>> w.tau, [round(u, 4) for u in w.level], w.lo, w.hi
        ((0.4,), [0.4545], (0.2,), (0.7,))
    """
    s = _stage_rows(scores, "scores")
    n_rows = s.shape[0]
    if (target_risk is None) == (target_coverage is None):
        raise ValueError(
            f"give exactly one of target_risk and target_coverage, got target_risk={target_risk!r}, "
            f"target_coverage={target_coverage!r}"
        )
    if target_risk is not None:
        risk = check_in_range(target_risk, "target_risk", 0.0, 1.0, lo_open=True)
        if correct is None:
            raise ValueError("correct is needed with target_risk (whether each stage's val prediction is right)")
    else:
        cov = check_in_range(target_coverage, "target_coverage", 0.0, 1.0, lo_open=True)
    ok = None if correct is None else _stage_correct(correct, s, tuple(np.shape(scores)))
    hw = _stage_half_widths(half_width, n_rows)
    taus = []
    for j in range(n_rows):
        if target_risk is None:
            taus.append(threshold_for_coverage(s[j], cov))
            continue
        try:
            taus.append(threshold_for_risk(s[j], ok[j], risk))
        except ValueError as exc:
            where = f" (row {j} of scores)" if n_rows > 1 else ""
            raise ValueError(f"{exc}{where}") from None
    return _estimate(taus, hw, s)


def adjust_windows(windows: CascadeWindows, scores) -> CascadeWindows:
    """The "adjusted" windows: the same taus and half-widths, the edges re-estimated on unlabelled scores.

    windows: from :func:`fit_windows` (``S`` stages); scores ``(S, M')`` (or ``(M',)`` for one stage): each stage's
    scores on the deployment data, e.g. ``stage_scores(shifted_logits, score, order)[:-1]``.  No labels are used:
    with ``F'_j`` the fraction of ``scores[j]`` ``<=`` a value, the window is ``Q'_j(F'_j(tau_j) -+ q_j)``.  Under a
    shift the val quantiles no longer say how many deployment samples fall in the window; the re-estimated one
    again passes on about ``2 q_j`` of them at each stage (as the authors' ``adjusted_window`` in
    ``cascade_results.py``, which uses the first-stage scores of in-distribution and OOD test data pooled 1:1).

    Example:
        >>> val = torch.arange(11, dtype=torch.float64) / 10
        >>> w = fit_windows(val, val >= 0.35, 0.2, target_risk=0.1)
        >>> a = adjust_windows(w, val / 2)  # deployment scores 0.0, 0.05, ..., 0.5: tau = 0.4 is now high up
        >>> a.tau, [round(u, 4) for u in a.level], a.lo, a.hi
        ((0.4,), [0.8182], (0.3,), (inf,))
    """
    if not isinstance(windows, CascadeWindows):
        raise TypeError(f"windows must be CascadeWindows (from fit_windows), got {type(windows).__name__}")
    s = _stage_rows(scores, "scores")
    if s.shape[0] != len(windows):
        raise ValueError(f"scores must have one row per window ({len(windows)}), got shape {tuple(np.shape(scores))}")
    return _estimate(windows.tau, torch.tensor(windows.half_width, dtype=torch.float64), s)


def fitted_cascade(
    member_logits, windows, score: str = "msp", costs=None, order=None, weights=None, *, policy: str = "window"
) -> CascadeResult:
    """Run a cascade with per-stage windows (or thresholds) from :func:`fit_windows` / :func:`adjust_windows`.

    member_logits ``(K, N, C)``; windows: ``K' - 1`` windows (one per stage but the last, which always exits) or
    ``K'`` (the last one is then unused), fitted on scores of the same ``score``, ``order`` and ``weights``.
    ``policy="window"``: at stage ``j`` a sample is passed on while ``lo_j < score_j < hi_j`` (the authors'
    ``window_threshold_strategy``, ``utils/cascade_utils.py``, one window per exit); ``policy="threshold"``: while
    ``score_j < tau_j`` (a single exit threshold per stage, their ``single_threshold_strategy`` baseline).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> z_val, z_test = 3 * torch.randn(2, 300, 3, generator=g), 3 * torch.randn(2, 6, 3, generator=g)
        >>> val = stage_scores(z_val)[:1]  # the first stage's val scores (two stages: one window)
        >>> w = fit_windows(val, None, 0.1, target_coverage=0.8)
        >>> r = fitted_cascade(z_test, w, costs=[1.0, 4.0])
        >>> r.exit_stage.tolist(), r.cost.tolist()
        ([0, 0, 0, 0, 1, 1], [1.0, 1.0, 1.0, 1.0, 5.0, 5.0])
    """
    if not isinstance(windows, CascadeWindows):
        raise TypeError(f"windows must be CascadeWindows (from fit_windows), got {type(windows).__name__}")
    check_choice(policy, "policy", POLICIES)
    probs, s, idx, z = _stages(member_logits, order, weights, score)
    cst = _costs(costs, z)
    n_stages = s.shape[0]
    if len(windows) not in (n_stages - 1, n_stages):
        raise ValueError(
            f"windows must hold {max(n_stages - 1, 1)} window(s) for {n_stages} stage(s) (one per stage but the last"
            f"{', or one per stage' if n_stages > 1 else ''}), got {len(windows)}"
        )
    acc = acc_dtype(z.device)
    used = n_stages - 1
    if policy == "window":
        lo, hi = windows.lo[:used], windows.hi[:used]
    else:
        lo, hi = (-math.inf,) * used, windows.tau[:used]
    lo_t = torch.tensor([*lo, math.inf], dtype=acc, device=z.device).view(-1, 1)  # the last stage: never passes
    hi_t = torch.tensor([*hi, math.inf], dtype=acc, device=z.device).view(-1, 1)
    sa = s.to(acc)
    return _result(probs, s, idx, cst, _exit_from_pass((lo_t < sa) & (sa < hi_t)))
