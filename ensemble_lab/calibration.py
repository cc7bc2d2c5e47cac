"""Post-hoc calibration: temperature, vector scaling, histogram binning, and the two orders of pooling and
calibrating an ensemble.

Pure, device-agnostic torch routines.  Everything is fitted on the device of the input tensors (numpy labels
are placed there; a label tensor on another device is refused, never moved).  Fits run in float64 (float32 on
MPS, which has no float64) whatever the input dtype; fitted parameters are returned in the input's dtype.

What is fitted, and how
-----------------------
- :func:`fit_temperature` (Guo et al. 2017): one ``T > 0`` minimising the mean NLL of ``softmax(z / T)``.
- :func:`fit_member_temperatures`: one ``T_k`` per member of ``(K, N, C)`` logits, all K at once (the summed
  NLL is separable in the ``T_k``, so its minimiser is each member's own minimiser).
- :func:`fit_vector_scaling` (Guo et al. 2017): ``z * w + b`` with ``w, b`` of shape ``(C,)``, minimising NLL.
- :func:`fit_histogram_binning` (Zadrozny & Elkan 2001; Guo et al. 2017 Sec. 4.1-4.2): one-vs-rest
  histogram binning of every class column, then each row renormalised (details in its docstring).

Temperatures are optimised over ``log T`` with L-BFGS and a strong-Wolfe line search.  The search is bounded
to ``|log T| < 10`` (T in about [4.5e-5, 2.2e4], the range scikit-learn searches too) through the smooth
reparametrisation ``log T = 10 tanh(u / 10)``.  When no finite temperature minimises the NLL (every label is
the unique argmax of its logits, as on the training split, so the NLL keeps falling as ``T -> 0``) or the fit
ends at the edge of the range, a ``RuntimeWarning`` says so and the T where L-BFGS stopped is returned.
Nothing is clipped silently.

Pooling and calibrating an ensemble
-----------------------------------
Wu & Gales (2021) and Rahaman & Thiery (2021): calibrating each member and then averaging the calibrated
probabilities gives an *under*-confident ensemble (averaging diverse members already spreads the mass);
pooling first and calibrating the pooled prediction repairs it.  One temperature after pooling never changes a
class; member temperatures applied before probability averaging (even one shared T) can.  Both orders are the
same map with different parameters fitted, see :class:`PooledCalibrator`::

    apply(z) = softmax( pool(z_1 / T_1, ..., z_K / T_K; w, rule) / T )

where ``pool`` (:func:`pooled_logits`) returns the log-probabilities of the pooled ensemble, i.e.
``softmax(pooled_logits(z, w, rule)) == combine(z, w, rule)``:

========  ==========================================  ====================================================
rule      ``pooled_logits``                           temperature ``T`` after pooling acts on
========  ==========================================  ====================================================
``prob``  ``log sum_k w_k softmax(z_k)``              the log of the averaged probabilities: the result is
                                                      ``pbar ** (1/T)`` renormalised
``logit`` ``log_softmax(sum_k w_k z_k)``              the averaged logits (same as ``combine(z, w, "logit",
                                                      temperature=T)``)
``geo``   ``log_softmax(sum_k w_k log softmax(z_k))`` the summed member log-probabilities: ``prod_k
                                                      p_k ** (w_k / T)`` renormalised (not the same as
                                                      ``combine(..., "geo", temperature=T)``, which scales
                                                      each member before its softmax)
========  ==========================================  ====================================================

``rule="vote"`` is refused: vote shares have exact zeros, whose log is ``-inf``, and a temperature does not
change a member's vote.

- :func:`pool_then_calibrate`: ``T_k = 1``, ``T`` fitted on the pooled log-probabilities.
- :func:`calibrate_then_pool`: ``T_k`` fitted per member (:func:`fit_member_temperatures`), ``T = 1``.

Both take a calibration split ``(K, N, C)`` logits + labels and return a :class:`PooledCalibrator` to apply to
other member logits (fit on one split, evaluate on another).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._numerics import acc_dtype, bin_index, quantile_edges
from ._validation import (
    MAX_COUNT,
    as_tensor,
    check_choice,
    check_finite_result,
    check_finite_tensor,
    check_int,
    check_labels_for,
    check_logits,
    check_member_logits,
    check_positive,
    check_probs,
    check_weights,
    divide_by_temperature,
    on_device_of,
)

__all__ = [
    "POOL_RULES",
    "fit_temperature",
    "fit_member_temperatures",
    "apply_temperature",
    "VectorScaling",
    "fit_vector_scaling",
    "HistogramBinning",
    "fit_histogram_binning",
    "pooled_logits",
    "PooledCalibrator",
    "pool_then_calibrate",
    "calibrate_then_pool",
]

POOL_RULES = ("prob", "logit", "geo")
_LOG_T_MAX = 10.0  # search |log T| < 10, as scikit-learn's temperature scaling does (bounds on log beta)
_STRATEGIES = ("uniform", "quantile")


# ----------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------


def _check_split(n: int, c: int, name: str) -> None:
    if n < c:
        raise ValueError(
            f"{name}: a calibration split needs at least as many samples as classes (N >= C), "
            f"got N={n} samples for C={c} classes"
        )


def _check_same_classes(t: torch.Tensor, c: int, name: str, fitted: str) -> None:
    if t.shape[-1] != c:
        raise ValueError(f"{name} must have C={c} classes (the {fitted} was fitted on {c}), got shape {tuple(t.shape)}")


def _member_temperatures(x, k: int | None = None, name: str = "member_temperatures") -> torch.Tensor:
    t = as_tensor(x, name).detach()
    if t.ndim != 1 or t.shape[0] < 1 or (k is not None and t.shape[0] != k):
        want = f"({k},)" if k is not None else "(K,)"
        raise ValueError(f"{name} must have shape {want}, one temperature per member, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ValueError(f"{name} must be finite and > 0, got {t.flatten()[:6].tolist()}")
    return t


# ----------------------------------------------------------------------------------------------------------
# temperature scaling
# ----------------------------------------------------------------------------------------------------------


def _log_t(u: torch.Tensor) -> torch.Tensor:
    """Bounded reparametrisation ``log T = 10 tanh(u / 10)`` (identity to first order near T = 1)."""
    return _LOG_T_MAX * torch.tanh(u / _LOG_T_MAX)


def _lbfgs(params, closure, max_iter: int) -> None:
    opt = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-10,
        tolerance_change=1e-14,
    )
    with torch.enable_grad():
        opt.step(closure)


def _fit_log_temperatures(z: torch.Tensor, y: torch.Tensor, max_iter: int, name: str) -> torch.Tensor:
    """``log T_k`` minimising ``sum_k mean_n NLL(softmax(z_k / T_k))`` for ``z`` ``(K, N, C)`` in the fit dtype.

    ``name`` is the argument the caller wrote (for messages).  Logits whose rows span so wide a range that the
    NLL or its derivative could overflow at the smallest searched temperature are refused (a bound on
    ``max - min`` of a row, ``N`` and ``1 / T``), as is a fit that ends non-finite.

    The NLL and its derivative are computed in closed form (no autograd graph): with ``d = z - max_c z``
    (``<= 0``) and ``beta = 1 / T``, ``NLL = mean_n [log sum_c exp(beta d_nc) - beta d_ny]`` and
    ``dNLL / dbeta = mean_n [sum_c softmax(beta d_n)_c d_nc - d_ny]``.  One preallocated ``(K, N, C)`` buffer,
    row sums as matrix-vector products; about 3x faster than autograd through ``cross_entropy`` on CPU.
    """
    k, n, c = z.shape
    d = (z - z.amax(dim=-1, keepdim=True)).contiguous()  # (K, N, C), <= 0: exp(beta d) never overflows
    _check_span(d, n, name)
    d_y = d.gather(2, y.view(1, n, 1).expand(k, n, 1)).squeeze(2)  # (K, N)
    sum_dy = d_y.sum(dim=1)  # (K,)
    ones = torch.ones(c, dtype=z.dtype, device=z.device)
    buf = torch.empty_like(d)
    flat, flat_d = buf.view(k * n, c), d.view(k * n, c)  # 2-D views: a matrix-vector product is fastest
    u = torch.zeros(k, dtype=z.dtype, device=z.device, requires_grad=True)

    def closure():
        with torch.no_grad():
            th = torch.tanh(u / _LOG_T_MAX)
            beta = torch.exp(-_LOG_T_MAX * th)  # 1 / T, (K,)
            torch.mul(d, beta.view(k, 1, 1), out=buf).exp_()
            s = (flat @ ones).view(k, n)  # sum_c exp(beta d)
            num = (flat.mul_(flat_d) @ ones).view(k, n)  # sum_c exp(beta d) d
            loss = (torch.log(s).sum(dim=1) - beta * sum_dy) / n  # (K,) mean NLL per member
            dbeta = ((num / s).sum(dim=1) - sum_dy) / n
            # d beta / d u = -beta * d(log T)/du = -beta * (1 - tanh^2)
            u.grad = dbeta * (-beta) * (1 - th * th)
        return loss.sum()

    _lbfgs([u], closure, max_iter)
    log_t = _log_t(u.detach())
    if not bool(torch.isfinite(log_t).all()):  # pragma: no cover - the span check keeps the NLL finite
        raise ValueError(f"{name}: temperature scaling diverged (non-finite temperature); rescale the logits")
    # every sample's label is the unique argmax: the NLL falls towards 0 as T -> 0, there is no finite optimum
    separable = ((d_y == 0) & ((d == 0).sum(dim=2) == 1)).all(dim=1)
    edge = log_t.abs() > _LOG_T_MAX - 0.05
    if bool((separable | edge).any()):
        which = (separable | edge).nonzero().flatten().tolist()
        warnings.warn(
            f"no finite temperature minimises the NLL for member(s) {which[:6]} (of {k}): the logits separate the "
            "calibration labels perfectly (every label is the unique argmax; a training split?), so the NLL keeps "
            "falling as T -> 0, or the fit reached the edge of the search range T in "
            f"[{math.exp(-_LOG_T_MAX):.3g}, {math.exp(_LOG_T_MAX):.3g}]; the T returned is where L-BFGS stopped",
            RuntimeWarning,
            stacklevel=3,
        )
    return log_t


def _check_span(d: torch.Tensor, n: int, name: str) -> None:
    """Refuse logits whose widest row ``max - min`` (``-d.min()``, ``d = z - max z``) times ``2 N e^10`` (N samples,
    ``1 / T`` up to ``e^10``) is not finite in ``d``'s dtype: the NLL (``beta * sum_n d_ny``) and its derivative
    could then overflow during the search."""
    span = float(-d.amin())
    bound = span * 2 * n * math.exp(_LOG_T_MAX)
    if not bound < torch.finfo(d.dtype).max:
        raise ValueError(
            f"{name} span too wide a range for temperature scaling: a row's max - min is {span:.3g}, and the NLL "
            f"at the smallest searched temperature ({math.exp(-_LOG_T_MAX):.3g}) over N={n} samples overflows "
            f"{d.dtype}; rescale the logits"
        )


def _fit_temperature(z: torch.Tensor, y: torch.Tensor, max_iter: int, name: str) -> float:
    zf = z.detach().to(acc_dtype(z.device))
    return float(torch.exp(_fit_log_temperatures(zf.unsqueeze(0), y, max_iter, name))[0])


def fit_temperature(logits, labels, max_iter: int = 100) -> float:
    """Temperature ``T > 0`` minimising the mean NLL of ``softmax(logits / T)`` (Guo et al. 2017).

    Args:
        logits: ``(N, C)`` finite logits of a calibration split, ``N >= C``.
        labels: ``(N,)`` int labels.
        max_iter: L-BFGS iterations (each may evaluate the NLL several times in its line search).

    Returns:
        ``T`` as a python float.  Optimised over ``log T`` (bounded to ``|log T| < 10``, see the module
        docstring) with L-BFGS and a strong-Wolfe line search, in float64 on the logits' device, from ``T = 1``.
        Temperature scaling never changes the argmax, so accuracy is unchanged.
    """
    z = check_logits(logits)
    y = check_labels_for(labels, z)
    _check_split(z.shape[0], z.shape[1], "logits")
    it = check_int(max_iter, "max_iter", minimum=1)
    return _fit_temperature(z, y, it, "logits")


def fit_member_temperatures(member_logits, labels, max_iter: int = 100) -> torch.Tensor:
    """One temperature per member: ``T_k`` minimising the NLL of ``softmax(member_logits[k] / T_k)``.

    Vectorised: one L-BFGS run over the K parameters ``log T_k`` minimising the SUM of the members' mean NLLs.
    The sum is separable, so its minimiser is every member's own minimiser (the same fit as
    :func:`fit_temperature` on each member, up to the optimiser's tolerance: ~1e-8 relative in the benchmark).
    The joint run needs a few more NLL evaluations than one member alone (9 against 6 for K = 16 in
    ``benchmarks/bench_calibration.py``), each over all K members, so on one CPU thread it costs about what a
    loop over K costs; it saves the per-call overhead (kernel launches, device syncs, small-op threading).

    Args:
        member_logits: ``(K, N, C)`` logits of a calibration split, ``N >= C``.
        labels: ``(N,)`` int labels.
        max_iter: L-BFGS iterations.

    Returns:
        ``(K,)`` temperatures on the device and in the (floating) dtype of ``member_logits``.
    """
    z = check_member_logits(member_logits)
    y = check_labels_for(labels, z)
    _check_split(z.shape[1], z.shape[2], "member_logits")
    it = check_int(max_iter, "max_iter", minimum=1)
    log_t = _fit_log_temperatures(z.detach().to(acc_dtype(z.device)), y, it, "member_logits")
    return torch.exp(log_t).to(z.dtype)


def apply_temperature(logits, temperature: float) -> torch.Tensor:
    """``softmax(logits / temperature)``: ``(N, C)`` (or any ``(..., C)``) logits to probabilities.

    ``temperature`` must be a finite number > 0; one so small that ``logits / temperature`` overflows the logits'
    dtype is refused (naming it).  Output on the logits' device and in their dtype.
    """
    t = check_positive(temperature, "temperature")
    z = as_tensor(logits, "logits")
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"logits must have shape (..., C) with C >= 2, got shape {tuple(z.shape)}")
    check_finite_tensor(z, "logits")
    return torch.softmax(divide_by_temperature(z, t, "logits", temperature), dim=-1)


# ----------------------------------------------------------------------------------------------------------
# vector scaling
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorScaling:
    """Per-class affine map of logits, ``z * w + b`` (Guo et al. 2017).

    Attributes:
        w: ``(C,)`` per-class scales.
        b: ``(C,)`` per-class biases, centred to sum to zero (a constant shift of all logits changes nothing).
    """

    w: torch.Tensor
    b: torch.Tensor

    def __post_init__(self):
        w, b = as_tensor(self.w, "w"), as_tensor(self.b, "b")
        if w.ndim != 1 or w.shape != b.shape or w.shape[0] < 2:
            raise ValueError(
                f"w and b must both have shape (C,) with C >= 2, got {tuple(w.shape)} and {tuple(b.shape)}"
            )
        if not bool(torch.isfinite(w).all() & torch.isfinite(b).all()):
            raise ValueError("w and b must be finite")
        object.__setattr__(self, "w", w)
        object.__setattr__(self, "b", b)

    def apply(self, logits) -> torch.Tensor:
        """Calibrated logits ``logits * w + b``, ``(N, C)`` on the logits' device and in their dtype (softmax
        them for probabilities)."""
        z = check_logits(logits)
        _check_same_classes(z, self.w.shape[0], "logits", "vector scaling")
        return z * self.w.to(z.device, z.dtype) + self.b.to(z.device, z.dtype)


def fit_vector_scaling(logits, labels, max_iter: int = 500) -> VectorScaling:
    """Vector scaling: ``w, b`` of shape ``(C,)`` minimising the mean NLL of ``softmax(logits * w + b)``.

    Fitted with L-BFGS (strong-Wolfe line search) from ``w = 1, b = 0`` in float64 on the logits' device, no
    regularisation (as in Guo et al. 2017); ``b`` is centred afterwards.  2C parameters can overfit a small
    split and, unlike temperature scaling, can change the argmax.

    Args:
        logits: ``(N, C)`` logits of a calibration split, ``N >= C``.
        labels: ``(N,)`` int labels.
        max_iter: L-BFGS iterations.
    """
    z = check_logits(logits)
    y = check_labels_for(labels, z)
    n, c = z.shape
    _check_split(n, c, "logits")
    it = check_int(max_iter, "max_iter", minimum=1)
    zf = z.detach().to(acc_dtype(z.device))
    w = torch.ones(c, dtype=zf.dtype, device=zf.device, requires_grad=True)
    b = torch.zeros(c, dtype=zf.dtype, device=zf.device, requires_grad=True)

    def closure():
        w.grad = b.grad = None
        loss = F.cross_entropy(zf * w + b, y)
        loss.backward()
        return loss

    _lbfgs([w, b], closure, it)
    wd, bd = w.detach(), b.detach()
    if not bool(torch.isfinite(wd).all() & torch.isfinite(bd).all()):  # pragma: no cover - defensive
        raise ValueError("logits: vector scaling diverged (non-finite parameters); is the split separable?")
    return VectorScaling(w=wd.to(z.dtype), b=(bd - bd.mean()).to(z.dtype))


# ----------------------------------------------------------------------------------------------------------
# histogram binning
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistogramBinning:
    """One-vs-rest histogram binning of every class column, then rows renormalised.

    Attributes:
        edges: ``(C, B+1)`` bin edges per class (bins ``(lo, hi]``, the first closed at 0).
        values: ``(C, B)`` calibrated probability per bin: the fraction of calibration samples in the bin whose
            label is the class; NaN for a bin that held no calibration sample.
        count: ``(C, B)`` int64 calibration samples per bin.

    Built by hand, the three are checked (tensors or numpy arrays; ``values`` and ``count`` go to ``edges``'
    device, a tensor on another device is refused): ``edges`` finite, in [0, 1], non-decreasing along each row,
    C >= 2 and B >= 1; ``values`` in [0, 1] or NaN; ``count`` non-negative integers.
    """

    edges: torch.Tensor
    values: torch.Tensor
    count: torch.Tensor

    def __post_init__(self):
        edges = as_tensor(self.edges, "edges").detach()
        if edges.ndim != 2 or edges.shape[0] < 2 or edges.shape[1] < 2:
            raise ValueError(
                f"edges must have shape (C, B+1) with C >= 2 classes and B >= 1 bins, got shape {tuple(edges.shape)}"
            )
        check_finite_tensor(edges, "edges")
        lo, hi = torch.aminmax(edges)
        if bool((lo < 0) | (hi > 1)):
            raise ValueError(f"edges must lie in [0, 1] (they cut probabilities), got values in [{lo:.4g}, {hi:.4g}]")
        if bool((edges[:, 1:] < edges[:, :-1]).any()):
            raise ValueError("edges must be non-decreasing along each row (bins (lo, hi]), got a row that decreases")
        c, b = edges.shape[0], edges.shape[1] - 1
        values = as_tensor(on_device_of(self.values, "values", edges, "edges"), "values").detach()
        if tuple(values.shape) != (c, b):
            raise ValueError(
                f"values must have shape (C, B) = ({c}, {b}) to match edges of shape {tuple(edges.shape)} "
                f"(C, B+1), got shape {tuple(values.shape)}"
            )
        if bool(torch.isinf(values).any()):
            raise ValueError("values must be probabilities in [0, 1] or NaN (an empty bin), got inf")
        if bool(((values < 0) | (values > 1)).any()):
            seen = values[~torch.isnan(values)]
            raise ValueError(
                "values must be probabilities in [0, 1] or NaN (an empty bin), got values in "
                f"[{float(seen.min()):.4g}, {float(seen.max()):.4g}]"
            )
        count = as_tensor(on_device_of(self.count, "count", edges, "edges"), "count", floating=False).detach()
        if count.dtype == torch.bool or (
            torch.is_floating_point(count) and not bool((torch.isfinite(count) & (count == count.round())).all())
        ):
            raise ValueError(f"count must hold integer counts, got dtype {count.dtype}")
        if tuple(count.shape) != (c, b):
            raise ValueError(
                f"count must have shape (C, B) = ({c}, {b}) to match edges of shape {tuple(edges.shape)} "
                f"(C, B+1), got shape {tuple(count.shape)}"
            )
        if bool((count < 0).any()):
            raise ValueError(f"count must be non-negative, got a minimum of {int(count.min())}")
        object.__setattr__(self, "edges", edges)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "count", count.to(torch.int64))

    def apply(self, probs) -> torch.Tensor:
        """Calibrated probabilities ``(N, C)``, rows on the simplex.

        Each ``p[i, c]`` is replaced by ``values[c, bin]`` of its bin; a bin that was empty at fit time keeps
        ``p[i, c]`` unchanged (no data, no correction).  Rows are then divided by their sum; a row whose binned
        values are all 0 (every class fell in a bin with no positive) keeps its original probabilities.
        The argmax can change.  Output on the probs' device and in their dtype.
        """
        p = check_probs(probs)
        c = self.edges.shape[0]
        _check_same_classes(p, c, "probs", "histogram binning")
        acc = acc_dtype(p.device)
        pt = p.detach().t().to(acc)  # (C, N)
        edges = self.edges.to(p.device, acc)
        vals = self.values.to(p.device, acc)
        idx = bin_index(pt, edges)
        mapped = vals.gather(1, idx)
        mapped = torch.where(torch.isnan(mapped), pt, mapped).t()  # (N, C)
        total = mapped.sum(dim=1, keepdim=True)
        dead = total <= 0
        out = torch.where(dead, p.detach().to(acc), mapped / torch.where(dead, 1.0, total))
        return out.to(p.dtype)


def fit_histogram_binning(probs, labels, n_bins: int = 15, strategy: str = "quantile") -> HistogramBinning:
    """Histogram binning (Zadrozny & Elkan 2001), one-vs-rest per class as in Guo et al. 2017 (Sec. 4.2).

    For every class c the column ``p[:, c]`` is cut into ``n_bins`` bins and each bin gets the fraction of
    its calibration samples whose label is c.  At apply time every entry is replaced by its bin's value and each
    row is renormalised to sum to one (see :meth:`HistogramBinning.apply`).  One-vs-rest, rather than binning
    only the top-label confidence, keeps a full probability vector (usable for NLL, Brier, classwise ECE);
    the price is that the renormalisation can move the argmax.

    A bin with no positive calibration sample maps to probability exactly 0, so a test sample of that class
    gets an NLL of ``-log(tiny)``: the non-parametric method can be well calibrated in ECE and terrible in NLL,
    the contrast with temperature scaling that the course draws.

    Args:
        probs: ``(N, C)`` probabilities of a calibration split, ``N >= C``.
        labels: ``(N,)`` int labels.
        n_bins: bins per class, an int in ``[1, 10**7]`` (``MAX_COUNT``).
        strategy: ``"quantile"`` (default; equal-mass bins per class, the edges of
            ``metrics.ece(strategy="quantile")``, so that the many near-zero entries of non-top classes are spread
            over bins) or ``"uniform"`` (edges ``k / B``).
    """
    p = check_probs(probs)
    y = check_labels_for(labels, p)
    n, c = p.shape
    _check_split(n, c, "probs")
    b = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_COUNT)
    check_choice(strategy, "strategy", _STRATEGIES)
    acc = acc_dtype(p.device)
    pt = p.detach().t().contiguous().to(acc)  # (C, N)
    if strategy == "uniform":
        edges = (torch.arange(b + 1, dtype=acc, device=p.device) / b).expand(c, b + 1).contiguous()
    else:
        edges = quantile_edges(pt, b)
    idx = bin_index(pt, edges)  # (C, N)
    flat = (idx + torch.arange(c, device=p.device).unsqueeze(1) * b).reshape(-1)
    count = torch.zeros(c * b, dtype=acc, device=p.device).index_add_(0, flat, torch.ones_like(flat, dtype=acc))
    hit = F.one_hot(y, c).t().to(acc).reshape(-1)
    pos = torch.zeros(c * b, dtype=acc, device=p.device).index_add_(0, flat, hit)
    values = torch.where(count > 0, pos / count.clamp(min=1), float("nan")).view(c, b)
    return HistogramBinning(edges=edges, values=values, count=count.view(c, b).to(torch.int64))


# ----------------------------------------------------------------------------------------------------------
# pooling and calibrating an ensemble
# ----------------------------------------------------------------------------------------------------------


def _check_pool_rule(rule) -> str:
    if rule == "vote":
        raise ValueError(
            "rule must be one of 'prob', 'logit', 'geo' for calibration; got 'vote' (vote shares have "
            "exact zeros, log 0 = -inf, and a temperature does not change a member's vote)"
        )
    return check_choice(rule, "rule", POOL_RULES)


def _pool(z: torch.Tensor, w: torch.Tensor | None, rule: str) -> torch.Tensor:
    k = z.shape[0]
    if w is None:
        w = torch.full((k,), 1.0 / k, dtype=z.dtype, device=z.device)
    wk = w.view(-1, 1, 1)
    if rule == "prob":
        return torch.logsumexp(torch.log(wk) + torch.log_softmax(z, dim=-1), dim=0)
    if rule == "logit":
        return torch.log_softmax((wk * z).sum(dim=0), dim=-1)
    return torch.log_softmax((wk * torch.log_softmax(z, dim=-1)).sum(dim=0), dim=-1)


def _check_pooled(pooled: torch.Tensor, rule: str) -> torch.Tensor:
    """Refuse pooled log-probabilities that are not finite (the logits of a row span more than the dtype holds,
    so a log-softmax reaches -inf), naming the caller's ``member_logits``."""
    if not bool(torch.isfinite(pooled).all()):
        raise ValueError(
            f"member_logits: the pooled log-probabilities (rule={rule!r}) are not finite in {pooled.dtype}: the "
            "logits of a row span more than the dtype can hold; rescale the logits"
        )
    return pooled


def pooled_logits(member_logits, weights=None, rule: str = "prob") -> torch.Tensor:
    """Log-probabilities ``(N, C)`` of the pooled ensemble: ``softmax(pooled_logits(z, w, rule)) ==
    combine(z, w, rule)``, computed in log space (no ``log`` of an underflowed 0 for ``rule="prob"``).

    See the module docstring for each rule.  ``weights``: ``K`` non-negative numbers with a positive sum
    (normalised), ``None`` for uniform; a zero weight drops that member.
    """
    z = check_member_logits(member_logits)
    r = _check_pool_rule(rule)
    w = None if weights is None else check_weights(weights, z.shape[0], like=z)
    return _pool(z, w, r)


@dataclass(frozen=True)
class PooledCalibrator:
    """``apply(z) = softmax(pooled_logits(z / member_temperatures, weights, rule) / temperature)``.

    Attributes:
        rule: ``"prob"``, ``"logit"`` or ``"geo"`` (see the module docstring).
        temperature: ``T > 0`` applied to the pooled log-probabilities (1.0: none).
        member_temperatures: ``(K,)`` temperatures, each > 0, dividing each member's logits before pooling
            (all ones: none).
        weights: ``(K,)`` member weights on the simplex, or ``None`` for uniform.
        order: ``"pool-then-calibrate"`` or ``"calibrate-then-pool"``: how it was fitted (documentation only;
            the map is the formula above either way).
    """

    rule: str
    temperature: float
    member_temperatures: torch.Tensor
    weights: torch.Tensor | None = None
    order: str = "pool-then-calibrate"

    def __post_init__(self):
        _check_pool_rule(self.rule)
        object.__setattr__(self, "temperature", check_positive(self.temperature, "temperature"))
        mt = _member_temperatures(self.member_temperatures)
        object.__setattr__(self, "member_temperatures", mt)
        if self.weights is not None:
            object.__setattr__(self, "weights", check_weights(self.weights, mt.shape[0], like=mt))
        check_choice(self.order, "order", ("pool-then-calibrate", "calibrate-then-pool"))

    @property
    def k(self) -> int:
        return int(self.member_temperatures.shape[0])

    def log_probs(self, member_logits) -> torch.Tensor:
        """``(N, C)`` calibrated log-probabilities for member logits ``(K, N, C)``."""
        z = check_member_logits(member_logits)
        if z.shape[0] != self.k:
            raise ValueError(f"member_logits must have K={self.k} members (as fitted), got shape {tuple(z.shape)}")
        mt = self.member_temperatures.to(z.device, z.dtype).view(-1, 1, 1)
        w = None if self.weights is None else self.weights.to(z.device, z.dtype)
        scaled = z / mt
        pooled = _pool(scaled, w, self.rule)
        out = torch.log_softmax(pooled / self.temperature, dim=-1)
        if not bool(torch.isfinite(out).all()):  # one check of the result; find the overflowing step only then
            self._refuse_overflow(scaled, mt, pooled, out)
        return out

    def _refuse_overflow(self, scaled, mt, pooled, out) -> None:
        smallest = float(self.member_temperatures.min())
        check_finite_result(
            scaled,
            f"member_logits / member_temperatures (member_temperatures down to {smallest:.3g}, "
            f"{float(mt.min()):.3g} in {scaled.dtype})",
        )
        _check_pooled(pooled, self.rule)
        check_finite_result(out, f"the pooled log-probabilities / temperature (temperature={self.temperature!r})")

    def apply(self, member_logits) -> torch.Tensor:
        """``(N, C)`` calibrated ensemble probabilities for member logits ``(K, N, C)``, on their device and in
        their dtype."""
        return self.log_probs(member_logits).exp()


def pool_then_calibrate(
    member_logits, labels, rule: str = "prob", weights=None, max_iter: int = 100
) -> PooledCalibrator:
    """Pool the members, then fit one temperature on the pooled log-probabilities (Wu & Gales 2021's fix).

    ``T = fit_temperature(pooled_logits(member_logits, weights, rule), labels)``; for ``rule="prob"`` this is a
    temperature on ``log mean_k p_k``.  ``member_logits`` ``(K, N, C)`` and ``labels`` ``(N,)`` are the calibration
    split (``N >= C``).  Returns a :class:`PooledCalibrator` with ``member_temperatures`` all ones.
    """
    z = check_member_logits(member_logits)
    r = _check_pool_rule(rule)
    y = check_labels_for(labels, z)
    _check_split(z.shape[1], z.shape[2], "member_logits")
    w = None if weights is None else check_weights(weights, z.shape[0], like=z)
    it = check_int(max_iter, "max_iter", minimum=1)
    pooled = _check_pooled(_pool(z, w, r), r)
    t = _fit_temperature(pooled, y, it, "member_logits")
    return PooledCalibrator(
        rule=r,
        temperature=t,
        member_temperatures=torch.ones(z.shape[0], dtype=z.dtype, device=z.device),
        weights=w,
        order="pool-then-calibrate",
    )


def calibrate_then_pool(
    member_logits, labels, rule: str = "prob", weights=None, max_iter: int = 100
) -> PooledCalibrator:
    """Fit one temperature per member, then pool the calibrated members (the order that under-shoots).

    ``T_k = fit_member_temperatures(member_logits, labels)``; applying pools ``z_k / T_k`` with ``rule`` and no
    further temperature.  Returns a :class:`PooledCalibrator` with ``temperature = 1``.
    """
    z = check_member_logits(member_logits)
    r = _check_pool_rule(rule)
    y = check_labels_for(labels, z)
    w = None if weights is None else check_weights(weights, z.shape[0], like=z)
    mt = fit_member_temperatures(z, y, max_iter=max_iter)
    return PooledCalibrator(rule=r, temperature=1.0, member_temperatures=mt, weights=w, order="calibrate-then-pool")
