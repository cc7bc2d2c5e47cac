"""Selective classification and out-of-distribution detection: risk-coverage curves, AURC, thresholds for a
target risk or coverage, and the OOD scores AUROC and FPR at a TPR.

A threshold ``t`` accepts the samples whose confidence is ``>= t``; coverage is the accepted fraction, selective
risk the error rate among them (NaN when nothing is accepted).  :func:`threshold_for_risk`,
:func:`threshold_for_coverage` and :func:`selective_risk` work with such deterministic thresholds (a tied block is
accepted or rejected as a whole).  :func:`risk_coverage`, :func:`aurc`, :func:`risk_at_coverage` and
:func:`coverage_at_risk` read one risk-coverage curve in which ties are averaged inside a tied block (each risk one
correctly rounded division of exact counts); both conventions agree at every coverage a threshold can produce.

Shapes: ``confidence`` ``(N,)`` any finite score (higher = more confident), ``correct`` ``(N,)`` bool or 0/1,
``scores_in`` ``(N_in,)`` and ``scores_out`` ``(N_out,)``.  Pure torch routines on the inputs' device; reported
numbers are python floats.

>>> import torch
>>> from ensemble_lab.selective import aurc, risk_coverage
>>> rc = risk_coverage(torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([True, True, False, True]))
>>> [round(r, 4) for r in rc.risk.tolist()], round(aurc(torch.tensor([0.9, 0.8]), torch.tensor([1, 0])), 4)
([0.0, 0.0, 0.3333, 0.25], 0.25)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._numerics import acc_dtype, tied_blocks, tied_risk_curve
from ._validation import (
    check_bool,
    check_confidence_correct,
    check_finite,
    check_in_range,
    check_sequence,
    check_vector,
)

__all__ = [
    "RiskCoverage",
    "risk_coverage",
    "aurc",
    "selective_risk",
    "threshold_for_risk",
    "threshold_for_coverage",
    "risk_at_coverage",
    "coverage_at_risk",
    "coverages_at_risks",
    "ood_auroc",
    "fpr_at_tpr",
]


@dataclass(frozen=True)
class RiskCoverage:
    """Risk-coverage curve of selective prediction (Geifman & El-Yaniv 2017).

    Attributes:
        coverage: ``(N,)`` ``i / N`` for ``i = 1..N`` (float64, or float32 on MPS).
        risk: ``(N,)`` error rate among the ``i`` most confident samples (ties averaged, see
            :func:`risk_coverage`).
        threshold: ``(N,)`` the confidence of the i-th most confident sample (non-increasing).
        aurc: mean of ``risk`` (python float), see :func:`aurc`.
    """

    coverage: torch.Tensor
    risk: torch.Tensor
    threshold: torch.Tensor
    aurc: float


def risk_coverage(confidence, correct, *, validate: bool = True) -> RiskCoverage:
    """Risk-coverage curve: keep the ``i`` most confident samples, report their error rate.

    confidence ``(N,)`` any finite score (higher = more confident; e.g. max probability), correct ``(N,)`` bool or
    0/1.  Samples are sorted by decreasing confidence; ``coverage[i-1] = i / N``, ``risk[i-1]`` = errors among
    the i most confident / i, ``threshold[i-1]`` = the i-th largest confidence.

    Ties: samples with equal confidence cannot be told apart by the selector, so within a tied block the
    number of errors among the first j of the block is its expectation over random orders of the block,
    ``j * errors_in_block / block_size``.  The curve is therefore exact at each block end, linear in errors
    inside a block and independent of the input order.

    Example:
        >>> rc = risk_coverage(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True]))
        >>> [round(r, 4) for r in rc.risk.tolist()], rc.coverage.tolist()
        ([0.0, 0.5, 0.3333], [0.3333333333333333, 0.6666666666666666, 1.0])
    """
    conf, ok = check_confidence_correct(confidence, correct, validate=check_bool(validate, "validate"))
    n = conf.shape[0]
    risk, srt = tied_risk_curve(conf, ok)
    i = torch.arange(1, n + 1, dtype=risk.dtype, device=conf.device)
    return RiskCoverage(coverage=i / n, risk=risk, threshold=srt, aurc=float(risk.mean()))


def aurc(confidence, correct, *, validate: bool = True) -> float:
    """Area under the risk-coverage curve (Geifman, Uziel & El-Yaniv 2019, "Bias-reduced uncertainty
    estimation for deep neural classifiers"), as the mean of the risks at coverages 1/N, 2/N, ..., 1
    (tie convention of :func:`risk_coverage`).  Range [0, 1], lower is better.

    Example:
        >>> round(aurc(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True])), 4)
        0.2778
    """
    return risk_coverage(confidence, correct, validate=validate).aurc


def selective_risk(confidence, correct, threshold) -> tuple[float, float]:
    """``(risk, coverage)`` when accepting the samples with ``confidence >= threshold``.

    confidence ``(N,)``, correct ``(N,)`` bool or 0/1.  risk = error rate among the accepted (NaN when none is
    accepted), coverage = accepted fraction.
    """
    conf, ok = check_confidence_correct(confidence, correct)
    tau = check_finite(threshold, "threshold")
    acc = acc_dtype(conf.device)
    accepted = conf.to(acc) >= tau
    n_acc = accepted.sum().to(acc)
    risk = (accepted & ~ok).sum().to(acc) / n_acc
    vals = torch.stack([risk, n_acc / conf.shape[0]]).tolist()
    return vals[0], vals[1]


def threshold_for_risk(confidence, correct, target_risk) -> float:
    """The smallest threshold (largest coverage) whose selective risk on this data is ``<= target_risk``.

    confidence ``(N,)``, correct ``(N,)`` bool or 0/1, target_risk in ``(0, 1]``.  Candidates are the distinct
    confidence values; threshold ``t`` accepts every sample with ``confidence >= t`` (tied samples together).
    Raises ValueError (naming ``target_risk`` and the lowest risk a threshold reaches) when none reaches it.
    """
    conf, ok = check_confidence_correct(confidence, correct)
    target = check_in_range(target_risk, "target_risk", 0.0, 1.0, lo_open=True)
    values, n_acc, n_err = tied_blocks(conf, ok)
    risk = n_err / n_acc
    good = (risk <= target).nonzero()
    if good.numel() == 0:
        raise ValueError(
            f"target_risk {target_risk!r} is not reached by any threshold on this data; the lowest selective risk "
            f"a threshold reaches is {float(risk.min()):.6g}"
        )
    return float(values[good[-1, 0]])


def threshold_for_coverage(confidence, coverage) -> float:
    """The largest threshold that accepts (``confidence >= t``) at least ``coverage`` of the samples.

    confidence ``(N,)``, coverage in ``[0, 1]``.  That is the ``i``-th largest confidence with ``i`` the smallest
    integer with ``i / N >= coverage``; ties can make the accepted fraction larger than asked.  ``coverage = 0``
    returns ``inf`` (accepts nobody).
    """
    conf = check_vector(confidence, "confidence")
    cov = check_in_range(coverage, "coverage", 0.0, 1.0)
    if cov == 0:
        return math.inf
    i = _first_index_reaching(conf.shape[0], cov, conf.device)
    return float(torch.sort(conf, descending=True).values[i])


def _first_index_reaching(n: int, cov: float, device) -> int:
    """0-based ``i - 1`` for the smallest ``i`` in ``1..n`` with ``i / n >= cov`` (``0 < cov <= 1``)."""
    acc = acc_dtype(device)
    levels = torch.arange(1, n + 1, dtype=acc, device=device) / n
    return int(torch.searchsorted(levels, torch.tensor([cov], dtype=acc, device=device))[0].clamp(max=n - 1))


def risk_at_coverage(confidence, correct, coverage) -> float:
    """Selective risk of the ``i`` most confident samples, ``i`` the smallest integer with ``i / N >= coverage``.

    confidence ``(N,)``, correct ``(N,)``, coverage in ``(0, 1]``.  Tie convention of
    :func:`risk_coverage` (same curve up to rounding): a coverage that cuts through a tied
    block gets the expected risk over random orders of that block.
    """
    conf, ok = check_confidence_correct(confidence, correct)
    cov = check_in_range(coverage, "coverage", 0.0, 1.0, lo_open=True)
    i = _first_index_reaching(conf.shape[0], cov, conf.device)
    return float(tied_risk_curve(conf, ok)[0][i])


def coverage_at_risk(confidence, correct, target_risk) -> float:
    """The largest coverage ``i / N`` on the risk-coverage curve whose risk is ``<= target_risk``; 0.0 if none.

    confidence ``(N,)``, correct ``(N,)``, target_risk in ``(0, 1]``.  Uses the curve of
    :func:`risk_coverage` (ties averaged, each risk one correctly rounded division), so it can
    exceed the coverage of :func:`threshold_for_risk` when a tied block straddles the target; without ties the
    two agree.
    """
    conf, ok = check_confidence_correct(confidence, correct)
    target = check_in_range(target_risk, "target_risk", 0.0, 1.0, lo_open=True)
    return _coverages(conf, ok, [target])[0]


def coverages_at_risks(confidence, correct, target_risks) -> list[float]:
    """:func:`coverage_at_risk` for several target risks, building the risk-coverage curve once.

    ``target_risks``: a list or tuple (or 1-D numpy array or tensor) of numbers in ``(0, 1]``; one coverage is
    returned per target, in order (an empty list gives an empty list).
    """
    conf, ok = check_confidence_correct(confidence, correct)
    if isinstance(target_risks, torch.Tensor) and target_risks.ndim == 1:
        target_risks = list(target_risks.unbind(0))  # 0-d tensors: each checked as a number below
    items = check_sequence(target_risks, "target_risks", what="target risks", allow_empty=True)
    targets = [check_in_range(t, f"target_risks[{i}]", 0.0, 1.0, lo_open=True) for i, t in enumerate(items)]
    return _coverages(conf, ok, targets)


def _coverages(conf: torch.Tensor, ok: torch.Tensor, targets: list[float]) -> list[float]:
    curve = tied_risk_curve(conf, ok)[0]
    out = []
    for target in targets:
        good = (curve <= target).nonzero()
        out.append(0.0 if good.numel() == 0 else float((good[-1, 0] + 1).to(acc_dtype(conf.device)) / conf.shape[0]))
    return out


# ----------------------------------------------------------------------------------------------------------
# OOD detection
# ----------------------------------------------------------------------------------------------------------


def _in_out(scores_in, scores_out):
    s_in = check_vector(scores_in, "scores_in")
    s_out = check_vector(scores_out, "scores_out", like=s_in, like_name="scores_in")
    dt = torch.promote_types(s_in.dtype, s_out.dtype)
    if s_in.device.type != "mps":
        dt = torch.promote_types(dt, torch.float64)
    return s_in.to(dt), s_out.to(dt)


def ood_auroc(scores_in, scores_out) -> float:
    """AUROC of telling in-distribution samples (positives, expected higher score) from OOD ones by the score.

    scores_in ``(N_in,)``, scores_out ``(N_out,)``.  ``P(s_in > s_out) + P(s_in == s_out) / 2`` over all pairs
    (ties count 1/2; equals ``sklearn.metrics.roc_auc_score``), by sorting and ``searchsorted``.
    """
    s_in, s_out = _in_out(scores_in, scores_out)
    acc = acc_dtype(s_in.device)
    srt = s_out.sort().values
    below = torch.searchsorted(srt, s_in, right=False).to(acc)
    upto = torch.searchsorted(srt, s_in, right=True).to(acc)
    return float((below.sum() + 0.5 * (upto - below).sum()) / (s_in.shape[0] * s_out.shape[0]))


def fpr_at_tpr(scores_in, scores_out, tpr: float = 0.95) -> float:
    """Fraction of OOD samples accepted at the threshold that accepts ``tpr`` of the in-distribution ones.

    scores_in ``(N_in,)``, scores_out ``(N_out,)``, tpr in ``[0, 1]``.  The threshold is
    ``t = threshold_for_coverage(scores_in, tpr)`` (the largest ``t`` with at least ``tpr`` of the in-distribution
    scores ``>= t``) and the result is the fraction of ``scores_out >= t`` (OOD ties with ``t`` count as accepted).
    """
    s_in, s_out = _in_out(scores_in, scores_out)
    t = threshold_for_coverage(s_in, check_in_range(tpr, "tpr", 0.0, 1.0))
    return float((s_out >= t).sum().to(acc_dtype(s_out.device)) / s_out.shape[0])
