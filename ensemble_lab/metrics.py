"""Scores for probabilistic classifiers and their ensembles: accuracy, NLL, Brier, calibration and diversity
(selective prediction is in ``ensemble_lab.selective``, calibration-error estimators in
``ensemble_lab.calibration_error``).

Pure, device-agnostic torch routines.  Inputs are torch tensors (numpy arrays and lists are converted; numpy
labels/masks are placed on the device of the predictions they go with) and never leave the device they came on.

Shapes and units
----------------
- ``probs``: ``(N, C)`` probabilities, each row on the simplex (checked within ``atol = 1e-4``).
- ``member_probs``: ``(K, N, C)``, member axis first.
- ``labels``: ``(N,)`` integer class indices in ``[0, C)`` (returned/used as int64).
- Every reported number is a python ``float``; per-sample or per-bin values are tensors on the input's device.
- Logarithms are natural (NLL, entropy, KL and mutual information are in nats).
- These are evaluation metrics: inputs are detached, nothing returned carries an autograd graph.

Conventions (see each docstring for the details)
------------------------------------------------
- The predicted class is ``argmax`` with ties going to the *lowest* class index (``torch.max`` convention, same
  as ``numpy.argmax``); the top-label confidence is the row maximum.
- ECE is top-label.  Bins are ``(lo, hi]`` except the first, which is ``[0, hi]``; uniform edges are
  ``arange(B + 1) / B`` in float64 (float32 on MPS), and float32 confidences are binned against them exactly.
  Empty bins contribute nothing.
- Bin statistics are accumulated in float64 (float32 on MPS, which has no float64).
- ``validate=True`` (every public routine) checks the inputs: shapes, finiteness, rows on the simplex (one
  ``aminmax`` plus one matrix-vector row-sum pass), labels in range.  Internal callers (Labs) that already
  validated the same tensors may pass ``validate=False``; shapes and dtypes are still checked (cheap), values
  are not, and garbage in then gives garbage out.  ``validate`` itself must be ``True`` or ``False``.
- ``n_bins`` is an int in ``[1, MAX_COUNT]`` (``MAX_COUNT = 10**7``, the shared ceiling for counts that size
  an allocation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._numerics import acc_dtype, bin_index, order_view, quantile_edges, top_label, uniform_bins, uniform_edges, xlogx
from ._validation import (
    MAX_COUNT,
    as_tensor,
    check_bool,
    check_choice,
    check_finite_tensor,
    check_int,
    check_labels,
    check_labels_for,
    check_member_probs,
    check_probs,
    on_device_of,
)

__all__ = [
    "accuracy",
    "top1_accuracy",
    "nll",
    "brier",
    "ece",
    "classwise_ece",
    "Reliability",
    "reliability",
    "entropy",
    "disagreement",
    "kl_to_ensemble",
    "mutual_information",
    "diversity",
    "summary",
]

_ATOL = 1e-4
_STRATEGIES = ("uniform", "quantile")
_NORMS = ("l1", "l2", "max")


# ----------------------------------------------------------------------------------------------------------
# private checks (fast paths; on failure the shared checks in _validation produce the detailed message)
# ----------------------------------------------------------------------------------------------------------


def _simplex_ok(flat: torch.Tensor) -> bool:
    """True when all entries of ``flat`` (rows of length C) are finite, in [-atol, 1+atol] and rows sum to 1.

    Two passes over the data: ``aminmax`` (NaN propagates, +-inf shows up as a bound) and a matrix-vector
    product for the row sums (much faster than ``sum(dim=1)`` over a short last axis); one device sync.
    """
    lo, hi = torch.aminmax(flat)
    if flat.dtype in (torch.float32, torch.float64) and flat.device.type == "cpu":
        sums = flat @ torch.ones(flat.shape[-1], dtype=flat.dtype, device=flat.device)
    else:
        sums = flat.sum(dim=-1)
    s_lo, s_hi = torch.aminmax(sums)
    ok = (lo >= -_ATOL) & (hi <= 1 + _ATOL) & (s_lo >= 1 - _ATOL) & (s_hi <= 1 + _ATOL)  # NaN -> False
    return bool(ok)


def _probs(x, name: str = "probs", validate: bool = True) -> torch.Tensor:
    t = as_tensor(x, name).detach()
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, C) with N >= 1 and C >= 2, got shape {tuple(t.shape)}")
    if validate and not _simplex_ok(t):
        check_probs(t, name, _ATOL)  # raises with the detailed message
        raise ValueError(f"{name} rows must be finite probabilities on the simplex")  # pragma: no cover
    return t


def _member_probs(x, name: str = "member_probs", validate: bool = True) -> torch.Tensor:
    t = as_tensor(x, name).detach()
    if t.ndim != 3 or min(t.shape) < 1 or t.shape[2] < 2:
        raise ValueError(
            f"{name} must have shape (K, N, C) (members, samples, classes) with K, N >= 1 and C >= 2, "
            f"got shape {tuple(t.shape)}"
        )
    if validate and not _simplex_ok(t.reshape(-1, t.shape[2])):
        check_member_probs(t, name, _ATOL)
        raise ValueError(f"{name} rows must be finite probabilities on the simplex")  # pragma: no cover
    return t


def _labels(x, probs: torch.Tensor, validate: bool = True, name: str = "labels") -> torch.Tensor:
    n, c = probs.shape[-2], probs.shape[-1]
    x = on_device_of(x, name, probs, "probs")
    if isinstance(x, torch.Tensor) and x.dtype in (torch.int64, torch.int32) and x.shape == (n,):
        if validate:  # fast path: one aminmax; the shared check words the error
            lo, hi = torch.aminmax(x)
            if not bool((lo >= 0) & (hi < c)):
                check_labels(x, n, c, name)
        return x.to(torch.int64)
    if validate:
        return check_labels(x, n, c, name)
    t = as_tensor(x, name, floating=False)
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the predictions, got shape {tuple(t.shape)}")
    return t.to(torch.int64)


def _bins(n_bins, strategy: str) -> int:
    b = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_COUNT)
    check_choice(strategy, "strategy", _STRATEGIES)
    return b


# ----------------------------------------------------------------------------------------------------------
# shared numerics
# ----------------------------------------------------------------------------------------------------------


def _split_sums(key: torch.Tensor, weight: torch.Tensor, n_bins: int, scale: float = 1.0):
    """Per-bin count (int64), sum of ``weight / scale`` and number of hits, each ``(n_bins,)``, from keys
    ``bin + B * hit`` in ``[0, 2B)``: two ``index_add_`` passes, sums in the accumulation dtype."""
    acc = acc_dtype(weight.device)
    key = key.reshape(-1)
    ones = torch.ones(1, dtype=acc, device=weight.device).expand(key.shape[0])
    cnt = torch.zeros(2 * n_bins, dtype=acc, device=weight.device).index_add_(0, key, ones)
    s_w = torch.zeros(2 * n_bins, dtype=acc, device=weight.device).index_add_(0, key, weight.reshape(-1).to(acc))
    count = (cnt[:n_bins] + cnt[n_bins:]).to(torch.int64)
    s_conf = (s_w[:n_bins] + s_w[n_bins:]) / scale
    return count, s_conf, cnt[n_bins:]


def _ce_from_sums(count, s_conf, s_hit, n: int, norm: str) -> torch.Tensor:
    """Calibration error from per-bin sums; empty bins contribute nothing.  Returns a 0-d tensor."""
    diff = s_hit - s_conf  # = n_b (acc_b - conf_b)
    if norm == "l1":
        return diff.abs().sum() / n
    nonempty = count > 0
    if norm == "l2":
        return torch.sqrt(torch.where(nonempty, diff * diff / count.clamp(min=1), 0).sum() / n)
    return torch.where(nonempty, diff.abs() / count.clamp(min=1), 0).max()  # count: int64 -> promoted


def _top_label_ce(conf, correct, n_bins: int, strategy: str, norm: str):
    """Bins, per-bin sums and calibration error of top-label ``conf`` ``(N,)`` / ``correct`` ``(N,)`` bool."""
    if strategy == "uniform":
        edges = uniform_edges(n_bins, conf)
        bins, scaled = uniform_bins(conf, n_bins)
        key = bins.add_(correct, alpha=n_bins).to(torch.int64)
        count, s_conf, s_hit = _split_sums(key, scaled, n_bins, scale=n_bins)
    else:
        edges = quantile_edges(conf, n_bins)
        key = torch.add(bin_index(conf, edges), correct, alpha=n_bins)
        count, s_conf, s_hit = _split_sums(key, conf, n_bins)
    return edges, count, s_conf, s_hit, _ce_from_sums(count, s_conf, s_hit, conf.shape[0], norm)


def _sum_sq(t: torch.Tensor, acc: torch.dtype, chunk: int = 1024) -> torch.Tensor:
    """``sum(t ** 2)`` accurate to ~1e-10 relative without a float64 copy: float32 norms of 1024-element chunks,
    squared and summed in ``acc`` (a plain float32 ``dot`` over 1e7 entries is off by ~3e-4)."""
    flat = t.reshape(-1)
    m = flat.shape[0] // chunk * chunk
    total = torch.linalg.vector_norm(flat[m:]).to(acc).square()
    if m:
        total = total + torch.linalg.vector_norm(flat[:m].view(-1, chunk), dim=1).to(acc).square().sum()
    return total


def _nll_brier(p: torch.Tensor, y: torch.Tensor):
    """Mean NLL and mean Brier as 0-d tensors (see :func:`nll` and :func:`brier`)."""
    n = p.shape[0]
    p_y = p.gather(1, y[:, None]).squeeze(1)
    acc = acc_dtype(p.device)
    tiny = torch.finfo(p.dtype).tiny
    nll_ = -torch.log(p_y.clamp(min=tiny)).sum(dtype=acc) / n
    # sum_i sum_c (p_ic - 1[c = y_i])^2 = sum p^2 - 2 sum_i p_iy + N, all sums accumulated in float64
    brier_ = (_sum_sq(p, acc) - 2 * p_y.sum(dtype=acc) + n) / n
    return nll_, brier_


# ----------------------------------------------------------------------------------------------------------
# scores
# ----------------------------------------------------------------------------------------------------------


def accuracy(probs, labels, *, validate: bool = True) -> float:
    """Fraction of samples whose argmax class equals the label.

    probs ``(N, C)``, labels ``(N,)``.  Ties in a row go to the lowest class index.  Returns a float in [0, 1].

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
        >>> accuracy(p, torch.tensor([0, 1, 1]))
        0.6666666666666666
    """
    validate = check_bool(validate, "validate")
    p = _probs(probs, validate=validate)
    y = _labels(labels, p, validate)
    return float(torch.count_nonzero(top_label(p, y)[1])) / p.shape[0]


def top1_accuracy(scores, labels):
    """Fraction of samples whose highest-scoring class equals the label, for any scores (logits or probabilities).

    scores ``(..., N, C)`` finite, labels ``(N,)``.  Ties go to the lowest class index.  Returns a python float
    for ``(N, C)`` scores, and a float64 tensor shaped ``(...)`` (one accuracy per leading index, on the scores'
    device) for batched scores such as member logits ``(K, N, C)``.

    >>> import torch
    >>> top1_accuracy(torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 1.0]]), torch.tensor([0, 0, 0]))
    0.6666666666666666
    """
    z = as_tensor(scores, "scores").detach()
    if z.ndim < 2 or z.shape[-2] < 1 or z.shape[-1] < 2:
        raise ValueError(f"scores must have shape (..., N, C) with N >= 1 and C >= 2, got shape {tuple(z.shape)}")
    check_finite_tensor(z, "scores")
    y = check_labels_for(labels, z)
    hits = (z.argmax(-1) == y).to(acc_dtype(z.device)).mean(-1)
    return float(hits) if z.ndim == 2 else hits


def nll(probs, labels, *, validate: bool = True) -> float:
    """Mean negative log-likelihood ``-mean_i log p_i[y_i]`` in nats.

    probs ``(N, C)``, labels ``(N,)``.  A true-class probability of exactly 0 would give ``+inf``; instead
    ``p_y`` is floored at ``torch.finfo(probs.dtype).tiny`` (1.2e-38 for float32, 2.2e-308 for float64), so
    such a sample costs ``-log(tiny)`` (87.3 nats in float32, 708.4 in float64) and the mean stays finite.
    That floor is the only change made to the input: no other clipping (scikit-learn's ``log_loss`` instead
    clips every probability to ``[eps, 1 - eps]``).

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.4, 0.6]])
        >>> round(nll(p, torch.tensor([0, 1])), 4)
        0.3081
    """
    validate = check_bool(validate, "validate")
    p = _probs(probs, validate=validate)
    y = _labels(labels, p, validate)
    return float(_nll_brier(p, y)[0])


def brier(probs, labels, *, validate: bool = True) -> float:
    """Multiclass Brier score: mean over samples of the SUM over classes of ``(p_c - 1[c = y])^2``.

    probs ``(N, C)``, labels ``(N,)``.  Range [0, 2] (not halved; scikit-learn's ``brier_score_loss`` halves it
    for two classes under ``scale_by_half="auto"``).  Computed as ``(sum p^2 - 2 sum_i p_iy + N) / N`` with the
    sums accumulated in float64 (float32 input: absolute error ~1e-9).

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.4, 0.6]])
        >>> round(brier(p, torch.tensor([0, 1])), 4)
        0.17
    """
    validate = check_bool(validate, "validate")
    p = _probs(probs, validate=validate)
    y = _labels(labels, p, validate)
    return float(_nll_brier(p, y)[1])


def ece(
    probs, labels, n_bins: int = 15, strategy: str = "uniform", norm: str = "l1", *, validate: bool = True
) -> float:
    """Top-label expected calibration error (Guo et al. 2017), in probability units, range [0, 1].

    probs ``(N, C)``, labels ``(N,)``.  Confidence = row max, correct = (argmax == label).  Bins ``b`` are
    ``(lo, hi]``, the first ``[0, hi]``, so a confidence of exactly 0 is in bin 0 and exactly 1 in the last
    bin.  With ``n_b`` samples, accuracy ``acc_b`` and mean confidence ``conf_b`` in bin b:

    - ``norm="l1"`` (ECE): ``sum_b (n_b / N) |acc_b - conf_b|``
    - ``norm="l2"`` (RMSCE): ``sqrt(sum_b (n_b / N) (acc_b - conf_b)^2)``
    - ``norm="max"`` (MCE): ``max_b |acc_b - conf_b|`` over non-empty bins.

    ``strategy="uniform"``: edges ``k / B`` (float64).  ``strategy="quantile"``: equal-mass bins whose interior
    edges are order statistics of the confidences (edge b is the ceil(b N / B)-th smallest; edges 0 and B are
    0 and 1).  Tied confidences always share a bin, so with ties the masses are unequal and duplicate edges
    give empty bins, which contribute nothing.

    Differences from torchmetrics' ``multiclass_calibration_error``: it uses ``[lo, hi)`` bins plus an extra bin
    for confidence exactly 1, float32 ``linspace`` edges and float32 accumulation (about 1e-6 off on 1M samples);
    away from edges the two agree.

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
        >>> round(ece(p, torch.tensor([0, 1, 0]), n_bins=2), 4)
        0.1
    """
    validate = check_bool(validate, "validate")
    b = _bins(n_bins, strategy)
    check_choice(norm, "norm", _NORMS)
    p = _probs(probs, validate=validate)
    y = _labels(labels, p, validate)
    conf, correct = top_label(p, y)
    return float(_top_label_ce(conf, correct, b, strategy, norm)[-1])


def classwise_ece(probs, labels, n_bins: int = 15, strategy: str = "uniform", *, validate: bool = True) -> float:
    """Classwise ECE (Kull et al. 2019): mean over ALL C classes of the binned l1 calibration error of the
    column ``p[:, c]`` against the indicator ``1[y == c]``.

    probs ``(N, C)``, labels ``(N,)``.  For class c, with bins over ``p[:, c]`` (same (lo, hi] convention and
    strategies as :func:`ece`; quantile edges are computed per class)::

        ce_c = sum_b (n_bc / N) |mean_{i in b} 1[y_i = c] - mean_{i in b} p_ic|
        classwise_ece = (1 / C) sum_c ce_c

    Classes absent from ``labels`` are included (their error is their binned mean predicted mass).  Range [0, 1].

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
        >>> round(classwise_ece(p, torch.tensor([0, 1, 0]), n_bins=2), 4)
        0.1
    """
    validate = check_bool(validate, "validate")
    b = _bins(n_bins, strategy)
    p = _probs(probs, validate=validate)
    y = _labels(labels, p, validate)
    n, c = p.shape
    dt = acc_dtype(p.device)
    offsets = torch.arange(c, device=p.device) * b  # class-major bin ids: c * B + bin
    if strategy == "uniform":
        bins, scaled = uniform_bins(p, b)  # (N, C)
        flat = bins.add_(offsets.to(dt)).to(torch.int64).reshape(-1)
        s_conf = torch.zeros(c * b, dtype=dt, device=p.device).index_add_(0, flat, scaled.reshape(-1)) / b
    else:
        pt = p.t().contiguous()  # (C, N): one sort and one set of edges per class
        flat = (bin_index(pt, quantile_edges(pt, b)).t() + offsets).reshape(-1)  # (N, C) order
        s_conf = torch.zeros(c * b, dtype=dt, device=p.device).index_add_(0, flat, p.reshape(-1).to(dt))
    ones = torch.ones(1, dtype=dt, device=p.device)
    hit_idx = flat.view(n, c).gather(1, y[:, None]).squeeze(1)  # the bin of p[i, y_i] in class y_i
    s_hit = torch.zeros(c * b, dtype=dt, device=p.device).index_add_(0, hit_idx, ones.expand(n))
    per_class = (s_hit - s_conf).abs().reshape(c, b).sum(dim=1) / n
    return float(per_class.mean())


@dataclass(frozen=True)
class Reliability:
    """Data for a reliability diagram and a confidence histogram (top-label, ``B`` bins).

    Attributes:
        edges: ``(B+1,)`` bin edges (bins (lo, hi], the first closed at 0); float64 ``k / B`` for uniform bins
            (float32 on MPS), confidence order statistics in the probs' dtype for quantile bins.
        confidence: ``(B,)`` mean top-label confidence per bin; NaN for empty bins.
        accuracy: ``(B,)`` fraction correct per bin; NaN for empty bins.
        count: ``(B,)`` int64 number of samples per bin.
        ece: the l1 ECE of these bins, ``sum_b count_b / N * |accuracy_b - confidence_b|`` (python float).
    """

    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor
    ece: float


def reliability(probs, labels, n_bins: int = 15, strategy: str = "uniform", *, validate: bool = True) -> Reliability:
    """Per-bin confidence, accuracy and count for a reliability diagram; see :class:`Reliability` and
    :func:`ece` for bins and strategies.  probs ``(N, C)``, labels ``(N,)``.  Tensors stay on the input's device;
    confidence/accuracy are float64 (float32 on MPS).

    Example:
        >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
        >>> r = reliability(p, torch.tensor([0, 1, 0]), n_bins=2)
        >>> r.count.tolist(), r.accuracy.tolist(), round(r.ece, 4)
        ([0, 3], [nan, 0.6666666666666666], 0.1)
    """
    validate = check_bool(validate, "validate")
    b = _bins(n_bins, strategy)
    p = _probs(probs, validate=validate)
    y = _labels(labels, p, validate)
    conf, correct = top_label(p, y)
    return _reliability(conf, correct, b, strategy)


def _reliability(conf, correct, n_bins: int, strategy: str) -> Reliability:
    edges, count, s_conf, s_hit, ce = _top_label_ce(conf, correct, n_bins, strategy, "l1")
    nonempty = count > 0
    return Reliability(
        edges=edges,
        confidence=torch.where(nonempty, s_conf / count, float("nan")),
        accuracy=torch.where(nonempty, s_hit / count, float("nan")),
        count=count,
        ece=float(ce),
    )


# ----------------------------------------------------------------------------------------------------------
# uncertainty and diversity
# ----------------------------------------------------------------------------------------------------------


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -xlogx(p).sum(dim=-1)


def _mean_entropy(p: torch.Tensor) -> torch.Tensor:
    """Mean over all rows of the row entropies (0-d), one global sum instead of a short-axis reduction."""
    return -xlogx(p).sum() / (p.numel() // p.shape[-1])


def entropy(probs, *, validate: bool = True) -> torch.Tensor:
    """Shannon entropy per row in nats, ``-sum_c p_c log p_c`` with ``0 log 0 = 0``.

    probs ``(N, C)`` -> ``(N,)``; member probabilities ``(K, N, C)`` -> ``(K, N)``.  Range [0, log C].
    """
    validate = check_bool(validate, "validate")
    t = as_tensor(probs, "probs")
    t = _member_probs(t, "probs", validate) if t.ndim == 3 else _probs(t, "probs", validate)
    return _entropy(t)


def _votes(mp: torch.Tensor) -> torch.Tensor:
    """``(N, C)`` number of members whose argmax (ties -> lowest index) is class c, for ``mp`` ``(K, N, C)``."""
    k, n, c = mp.shape
    v = order_view(mp)  # integer view: see _numerics.top_label
    hits = v == v.amax(dim=2, keepdim=True)  # one-hot of the row maxima (several where a row ties)
    votes = hits.sum(dim=0, dtype=torch.int32)  # int32: 3x cheaper than the default int64 here
    if int(votes.sum()) != k * n:  # a tie somewhere: count true argmaxes instead
        pred = mp.argmax(dim=2)
        flat = (pred + torch.arange(n, device=mp.device) * c).reshape(-1)
        votes = torch.bincount(flat, minlength=n * c).view(n, c)
    return votes


def _disagreement(mp: torch.Tensor) -> torch.Tensor:
    k, n, _ = mp.shape
    acc = acc_dtype(mp.device)
    if k == 1:
        return torch.zeros((), dtype=acc, device=mp.device)
    votes = _votes(mp).to(acc)
    agree = (votes * (votes - 1)).sum() / 2  # agreeing pairs, summed over samples
    pairs = n * k * (k - 1) / 2
    return (pairs - agree) / pairs


def disagreement(member_probs, *, validate: bool = True) -> float:
    """Mean pairwise disagreement of the members' argmax predictions.

    member_probs ``(K, N, C)``.  ``mean over pairs i < j and samples of 1[argmax_i != argmax_j]``, computed from
    per-sample vote counts (agreeing pairs = sum_c v_c (v_c - 1) / 2), no loop over pairs.  0 when K == 1.
    Range [0, 1]; ties in a row go to the lowest class index.

    Example:
        >>> members = torch.tensor([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.7, 0.3]]])  # (K=2, N=2, C=2)
        >>> disagreement(members)
        0.5
    """
    validate = check_bool(validate, "validate")
    return float(_disagreement(_member_probs(member_probs, validate=validate)))


def _mutual_information(mp: torch.Tensor) -> torch.Tensor:
    return _mean_entropy(mp.mean(dim=0)) - _mean_entropy(mp)


def kl_to_ensemble(member_probs, *, validate: bool = True) -> float:
    """Mean over members and samples of ``KL(p_k || pbar)`` in nats, ``pbar = mean_k p_k``, with ``0 log 0 = 0``.

    member_probs ``(K, N, C)``.  ``KL(p || q) = sum_c p_c (log p_c - log q_c)``; a class with ``p_c = 0`` adds
    nothing (``pbar_c = 0`` implies every ``p_kc = 0``).  Note the identity
    ``mean_k KL(p_k || pbar) = H(pbar) - mean_k H(p_k)``: this is the same number as
    :func:`mutual_information` (up to rounding), computed here from its own formula.
    """
    validate = check_bool(validate, "validate")
    mp = _member_probs(member_probs, validate=validate)
    tiny = torch.finfo(mp.dtype).tiny
    log_bar = torch.log(mp.mean(dim=0).clamp(min=tiny))
    kl = xlogx(mp) - mp * log_bar
    return float(kl.sum() / (mp.shape[0] * mp.shape[1]))


def mutual_information(member_probs, *, validate: bool = True) -> float:
    """Mean over samples of ``H(mean_k p_k) - mean_k H(p_k)`` in nats (BALD / epistemic uncertainty).

    member_probs ``(K, N, C)``.  Range [0, log min(K, C)] up to rounding (identical members can give a tiny
    negative value, ~1e-7 in float32, which is reported as is).  Equals :func:`kl_to_ensemble`
    mathematically.

    Example:
        >>> members = torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]])  # two confident members that disagree
        >>> round(mutual_information(members), 4)
        0.3681
    """
    validate = check_bool(validate, "validate")
    return float(_mutual_information(_member_probs(member_probs, validate=validate)))


def diversity(member_probs, *, validate: bool = True) -> dict[str, float]:
    """``{"disagreement", "kl_to_ensemble", "mutual_information"}`` for ``member_probs (K, N, C)`` with one
    validation and one device sync.

    ``kl_to_ensemble`` is reported through the identity ``mean_k KL(p_k || pbar) = H(pbar) - mean_k H(p_k)``,
    so here it is exactly ``mutual_information``.
    """
    validate = check_bool(validate, "validate")
    mp = _member_probs(member_probs, validate=validate)
    mi = _mutual_information(mp)
    vals = torch.stack([_disagreement(mp), mi.to(acc_dtype(mp.device))]).tolist()
    return {"disagreement": vals[0], "kl_to_ensemble": vals[1], "mutual_information": vals[1]}


# ----------------------------------------------------------------------------------------------------------
# everything the Labs show on each slider move
# ----------------------------------------------------------------------------------------------------------


def summary(probs, labels, n_bins: int = 15, strategy: str = "uniform", *, validate: bool = True) -> dict[str, float]:
    """``{"accuracy", "nll", "brier", "ece"}`` for probs ``(N, C)`` and labels ``(N,)`` with one validation and one
    row-max pass shared by all four.  Definitions as in :func:`accuracy`, :func:`nll`, :func:`brier` and
    :func:`ece` (l1 norm)."""
    validate = check_bool(validate, "validate")
    b = _bins(n_bins, strategy)
    p = _probs(probs, validate=validate)
    y = _labels(labels, p, validate)
    conf, correct = top_label(p, y)
    ce = _top_label_ce(conf, correct, b, strategy, "l1")[-1]
    nll_, brier_ = _nll_brier(p, y)
    dt = acc_dtype(p.device)
    acc = torch.count_nonzero(correct).to(dt) / p.shape[0]
    vals = torch.stack([acc, nll_.to(dt), brier_.to(dt), ce.to(dt)]).tolist()
    return dict(zip(("accuracy", "nll", "brier", "ece"), vals, strict=False))
