"""Scores of ensemble forecasts of a continuous variable: CRPS (ensemble, Gaussian, Gaussian mixture), the energy
score, spread-skill, the rank histogram and the scores of a threshold event (exceedance probability, Brier,
reliability).

Shapes and units
----------------
- ``members``: ``(M, ...)``, the M ensemble members along the FIRST axis (the house convention of
  ``(K, N, C)`` member outputs); ``observations``: ``(...)``, the trailing shape of ``members[0]``.  For the energy
  score the last axis is the state vector: ``members`` ``(M, ..., D)``, ``observations`` ``(..., D)`` (e.g. the
  J variables of Lorenz-96).
- Scores come per point, shaped ``(...)``, in the units of the variable (CRPS, energy score), or unitless
  (probabilities, Brier, ratios); the caller averages them (``.mean()``) as the question needs.
- Numpy arrays and python lists are converted; tensors stay on their device and the results are on it.  Sums are
  accumulated in float64 (float32 on MPS) and the result is returned in the inputs' dtype (float64 in, float64
  out; float32 in, float32 out; integers are read as float32).  The CRPS, energy and Gaussian scores are
  differentiable (autograd flows through the sort), so they can be trained on.
- Refused, by name: NaN/inf values, a shape that does not match, M = 0 (M = 1 for the fair estimators and the
  spread), bool or complex dtypes, tensors on different devices, and a result that overflows.

The finite-ensemble conventions (the one thing that trips people)
-----------------------------------------------------------------
A score of an M-member ensemble can mean two things.  The "standard" estimator scores the empirical distribution
of the members, a step function with M jumps (scoringrules ``estimator="nrg"``, properscoring's
``crps_ensemble``); it rewards a small ensemble for looking sharper than the distribution it samples.  The "fair"
estimator (Ferro 2014; scoringrules ``estimator="fair"``) is unbiased for the score of the distribution the
members are drawn from, whatever M, so ensembles of different sizes can be compared.  ``fair=False`` is the
default here, as in properscoring and in the papers that train on CRPS (FuXi-ENS); WeatherBench 2 and ECMWF report
the fair CRPS of their finite ensembles.  For the Brier score of a threshold event the same choice is
``brier_threshold(..., fair=...)``.

>>> import torch
>>> from ensemble_lab.forecast.scores import crps_ensemble
>>> members = torch.tensor([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]], dtype=torch.float64)  # M = 3, two points
>>> crps_ensemble(members, torch.tensor([1.0, 1.0], dtype=torch.float64)).tolist()
[0.2222222222222222, 0.0]
>>> crps_ensemble(members, torch.tensor([1.0, 1.0], dtype=torch.float64), fair=True).tolist()
[0.0, 0.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._numerics import acc_dtype
from .._validation import (
    as_tensor,
    check_bool,
    check_finite,
    check_finite_result,
    check_finite_tensor,
    check_same_device,
    check_seed,
    check_weights,
)

__all__ = [
    "crps_ensemble",
    "crps_gaussian",
    "crps_gaussian_mixture",
    "energy_score",
    "SpreadSkill",
    "spread_skill",
    "spread_skill_ratio",
    "prefix_scores",
    "rank_histogram",
    "RankFlatness",
    "rank_histogram_flatness",
    "exceedance_probability",
    "brier_threshold",
    "ThresholdReliability",
    "threshold_reliability",
]

_CHUNK = 1 << 22  # entries of one block of pairwise distances (energy score) or pairwise terms (mixture CRPS)
_SQRT_PI = math.sqrt(math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------


def _real(x, name: str, like: torch.Tensor | None = None, like_name: str = "") -> torch.Tensor:
    """``x`` as a real tensor (bool refused; integers as float32); numpy/lists/numbers placed on ``like``'s device,
    a tensor on another device refused."""
    if like is not None and isinstance(x, torch.Tensor):
        check_same_device(x, name, like, like_name)
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must hold real numbers, got bool")
    t = as_tensor(x, name, floating=False)
    if t.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype torch.bool")
    if not torch.is_floating_point(t):
        t = t.to(torch.float32)
    if like is not None and not isinstance(x, torch.Tensor):
        t = t.to(like.device)
    return t


def _ensemble(members, observations, *, min_members: int = 1, why: str = "", state: bool = False, validate=True):
    """Checked ``(members, observations, result dtype)``: members ``(M, ...)`` (``state``: ``(M, ..., D)``),
    observations of the trailing shape, on the same device."""
    validate = check_bool(validate, "validate")
    x = _real(members, "members")
    if x.ndim < (2 if state else 1):
        want = "(M, ..., D) (members first, the state last)" if state else "(M, ...) (members first)"
        raise ValueError(f"members must have shape {want}, got shape {tuple(x.shape)}")
    m = x.shape[0]
    if m < min_members:
        raise ValueError(f"members needs at least {min_members} member(s) along its first axis{why}, got M = {m}")
    if state and x.shape[-1] < 1:
        raise ValueError(f"members needs at least one state variable on its last axis, got shape {tuple(x.shape)}")
    y = _real(observations, "observations", x, "members")
    if tuple(y.shape) != tuple(x.shape[1:]):
        raise ValueError(
            f"observations must have the shape of one member, {tuple(x.shape[1:])} for members shaped "
            f"{tuple(x.shape)}, got shape {tuple(y.shape)}"
        )
    if validate:
        check_finite_tensor(x, "members")
        check_finite_tensor(y, "observations")
    return x, y, torch.promote_types(x.dtype, y.dtype)


def _finish(t: torch.Tensor, dtype: torch.dtype, what: str) -> torch.Tensor:
    """``t`` (accumulation dtype) checked finite, then in ``dtype`` and checked again (a float32 overflow)."""
    check_finite_result(t, what)
    if t.dtype != dtype:
        t = check_finite_result(t.to(dtype), f"{what} in {str(dtype).removeprefix('torch.')}")
    return t


def _threshold(threshold, points: tuple[int, ...], like: torch.Tensor):
    """A finite number (a python float), or a finite tensor broadcastable to ``points`` (per-point thresholds,
    e.g. a climatological quantile per grid point) on ``like``'s device."""
    is_array = isinstance(threshold, (torch.Tensor, np.ndarray)) and threshold.ndim > 0
    if is_array or isinstance(threshold, (list, tuple)):
        t = _real(threshold, "threshold", like, "members")
        try:
            shape = torch.broadcast_shapes(tuple(t.shape), points)
        except RuntimeError:
            shape = None
        if shape != points:
            raise ValueError(
                f"threshold must be a number or broadcast to the points' shape {points}, got shape {tuple(t.shape)}"
            )
        check_finite_tensor(t, "threshold")
        return t.detach()
    return check_finite(threshold, "threshold")


# ----------------------------------------------------------------------------------------------------------
# CRPS
# ----------------------------------------------------------------------------------------------------------


def _pair_sum(x: torch.Tensor) -> torch.Tensor:
    """``sum_{i<j} |x_i - x_j|`` over the first axis of ``x`` ``(M, ...)``, by sorting: with the sorted members
    ``x_(1) <= ... <= x_(M)`` it is ``sum_k (2k - M - 1) x_(k)`` = ``sum_{k<M} k (M - k) (x_(k+1) - x_(k))``;
    the second form (used) adds non-negative terms only, so it has no cancellation and is exactly 0 for tied
    members."""
    m = x.shape[0]
    if m == 1:
        return torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
    s = torch.sort(x, dim=0).values
    gaps = (s[1:] - s[:-1]).reshape(m - 1, -1)
    k = torch.arange(1, m, dtype=x.dtype, device=x.device)
    return (k * (m - k) @ gaps).reshape(x.shape[1:])


def crps_ensemble(members, observations, fair: bool = False, *, validate: bool = True) -> torch.Tensor:
    """Per-point CRPS of an ensemble: ``(M, ...)`` members and ``(...)`` observations -> ``(...)``, in the units
    of the variable (lower is better; 0 for M members all equal to the observation).

    - standard (``fair=False``): ``mean_i |x_i - y| - 1/(2 M^2) sum_{i,j} |x_i - x_j|``, the CRPS of the members'
      empirical distribution (scoringrules ``crps_ensemble(..., estimator="nrg")``, properscoring's
      ``crps_ensemble``); for M = 1 it is ``|x - y|``.  FuXi-ENS trains on this one.
    - fair (``fair=True``, M >= 2): the second term divided by ``2 M (M - 1)`` instead (scoringrules
      ``estimator="fair"``; Ferro 2014), unbiased for the CRPS of the distribution the members are drawn from; it
      is the mean of the standard-form score of every pair of members, so it is >= 0 too.  WeatherBench 2 and
      ECMWF report this one for finite ensembles.

    O(M log M) per point: the pairwise sum is read off the sorted members (:func:`_pair_sum`), in float64.
    Differences from the oracles: the members axis is FIRST here (scoringrules and properscoring default to the
    last); properscoring's ``weights`` and scoringrules' ``ens_w`` are not offered.  ``validate=False`` skips the
    NaN/inf scan of the values (shapes are always checked).

    >>> import torch
    >>> crps_ensemble(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0])).tolist()  # mean |x - y| = 1, spread 2/4
    [0.5]
    >>> crps_ensemble(torch.tensor([[1.0], [3.0]]), torch.tensor([2.0]), fair=True).tolist()
    [0.0]
    """
    fair = check_bool(fair, "fair")
    need = 2 if fair else 1
    x, y, dtype = _ensemble(
        members,
        observations,
        min_members=need,
        why=" (the fair CRPS divides by M - 1)" if fair else "",
        validate=validate,
    )
    acc = acc_dtype(x.device)
    x, y = x.to(acc), y.to(acc)
    m = x.shape[0]
    skill = (x - y).abs().mean(dim=0)
    spread = _pair_sum(x) / (m * (m - 1) if fair else m * m)
    return _finish(skill - spread, dtype, "the CRPS of members against observations")


def _normal_terms(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(2 Phi(z) - 1, phi(z))`` of the standard normal, for finite or infinite ``z``."""
    return 2 * torch.special.ndtr(z) - 1, torch.exp(-0.5 * z * z) * _INV_SQRT_2PI


def crps_gaussian(mean, std, observations) -> torch.Tensor:
    """CRPS of a normal forecast ``N(mean, std^2)`` for ``observations``, in closed form (Gneiting et al. 2005):
    ``s (z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi))`` with ``z = (y - mean) / s``; units of the variable.

    ``mean``, ``std`` and ``observations`` broadcast against each other (numbers, arrays or tensors on one
    device); ``std > 0`` everywhere.  Computed as ``(y - mean)(2 Phi(z) - 1) + s (2 phi(z) - 1/sqrt(pi))`` in
    float64, which stays finite for a tiny ``std`` (it tends to ``|y - mean|``).  Same as scoringrules
    ``crps_normal(y, mean, std)`` (argument order differs: the observations come last here).

    >>> import torch
    >>> round(float(crps_gaussian(0.0, 1.0, 0.0)), 6)  # (sqrt 2 - 1) / sqrt(pi)
    0.233695
    """
    names = ("mean", "std", "observations")
    given = (mean, std, observations)
    first = next((i for i, t in enumerate(given) if isinstance(t, torch.Tensor)), None)
    like = None if first is None else given[first]
    mu, s, y = (_real(v, n, like, "" if first is None else names[first]) for v, n in zip(given, names, strict=True))
    try:
        shape = torch.broadcast_shapes(mu.shape, s.shape, y.shape)
    except RuntimeError:
        raise ValueError(
            f"mean, std and observations must broadcast against each other, got shapes {tuple(mu.shape)}, "
            f"{tuple(s.shape)} and {tuple(y.shape)}"
        ) from None
    for t, n in zip((mu, s, y), names, strict=True):
        check_finite_tensor(t, n)
    if bool((s <= 0).any()):
        raise ValueError(f"std must be > 0 everywhere, got a minimum of {float(s.min()):.4g}")
    dtype = torch.promote_types(torch.promote_types(mu.dtype, s.dtype), y.dtype)
    acc = acc_dtype(mu.device)
    mu, s, y = mu.to(acc), s.to(acc), y.to(acc)
    d = y - mu
    two_phi, dens = _normal_terms(d / s)
    out = (d * two_phi + s * (2 * dens - 1 / _SQRT_PI)).expand(shape)
    return _finish(out, dtype, "the CRPS of the normal(mean, std) forecast against observations")


def _a(m: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """``A(m, v) = 2 sqrt(v) phi(m / sqrt(v)) + m (2 Phi(m / sqrt(v)) - 1)`` = ``E|m + sqrt(v) Z|``, from ``sd =
    sqrt(v)``."""
    two_phi, dens = _normal_terms(m / sd)
    return 2 * sd * dens + m * two_phi


def crps_gaussian_mixture(means, stds, observations, weights=None) -> torch.Tensor:
    """CRPS of a mixture of normals (a deep ensemble of Gaussian members: Lakshminarayanan et al. 2017, the
    regression half) for ``observations``, in closed form (Grimit et al. 2006); units of the variable.

    ``means`` and ``stds`` ``(M, ...)`` (members first, ``stds > 0``), ``observations`` ``(...)``; ``weights``
    ``(M,)`` non-negative, normalised to sum 1 here (default uniform ``1/M``):
    ``sum_i w_i A(y - mu_i, s_i^2) - 1/2 sum_{i,j} w_i w_j A(mu_i - mu_j, s_i^2 + s_j^2)`` with
    ``A(m, v) = 2 sqrt(v) phi(m / sqrt v) + m (2 Phi(m / sqrt v) - 1)`` (= ``E|m + sqrt(v) Z|``).  The pairwise
    term is built one member at a time, ``(M, ...)`` memory, in float64.  Same as scoringrules
    ``crps_mixnorm(y, means, stds, w, m_axis=0)`` (which takes ``w`` shaped like ``means`` and does not
    normalise it).  With M = 1 it is :func:`crps_gaussian`.

    >>> import torch
    >>> means, stds = torch.tensor([[0.1], [-0.3], [1.0]]), torch.tensor([[0.4], [2.1], [0.7]])
    >>> round(float(crps_gaussian_mixture(means, stds, torch.tensor([0.0]), weights=[0.1, 0.2, 0.7])[0]), 6)
    0.468069
    """
    mu = _real(means, "means")
    if mu.ndim < 1 or mu.shape[0] < 1:
        raise ValueError(f"means must have shape (M, ...) with M >= 1 members first, got shape {tuple(mu.shape)}")
    s = _real(stds, "stds", mu, "means")
    if tuple(s.shape) != tuple(mu.shape):
        raise ValueError(f"stds must have the shape of means, {tuple(mu.shape)}, got shape {tuple(s.shape)}")
    y = _real(observations, "observations", mu, "means")
    if tuple(y.shape) != tuple(mu.shape[1:]):
        raise ValueError(
            f"observations must have the shape of one member, {tuple(mu.shape[1:])} for means shaped "
            f"{tuple(mu.shape)}, got shape {tuple(y.shape)}"
        )
    for t, n in ((mu, "means"), (s, "stds"), (y, "observations")):
        check_finite_tensor(t, n)
    if bool((s <= 0).any()):
        raise ValueError(f"stds must be > 0 everywhere, got a minimum of {float(s.min()):.4g}")
    m = mu.shape[0]
    acc = acc_dtype(mu.device)
    w = (
        torch.full((m,), 1.0 / m, dtype=acc, device=mu.device)
        if weights is None
        else check_weights(weights, m, "weights", like=mu, dtype=acc)
    )
    dtype = torch.promote_types(torch.promote_types(mu.dtype, s.dtype), y.dtype)
    mu, s, y = mu.to(acc), s.to(acc), y.to(acc)
    wv = w.view(m, *([1] * (mu.ndim - 1)))
    first = (wv * _a(y - mu, s)).sum(dim=0)
    second = torch.zeros_like(first)
    for i in range(m):  # one row of the (M, M, ...) pairwise term at a time
        second = second + w[i] * (wv * _a(mu[i] - mu, torch.hypot(s[i], s))).sum(dim=0)
    return _finish(first - 0.5 * second, dtype, "the CRPS of the mixture of normal(means, stds) against observations")


# ----------------------------------------------------------------------------------------------------------
# energy score
# ----------------------------------------------------------------------------------------------------------


def energy_score(members, observations, fair: bool = False, *, validate: bool = True) -> torch.Tensor:
    """Per-point energy score of an ensemble of state vectors (Gneiting and Raftery 2007): members
    ``(M, ..., D)``, observations ``(..., D)`` -> ``(...)``, in the units of the state (Euclidean norm over the
    last axis, so its variables should share a unit, as Lorenz-96's J variables do).

    standard: ``mean_i ||x_i - y|| - 1/(2 M^2) sum_{i,j} ||x_i - x_j||``; fair (M >= 2): the second term divided
    by ``2 M (M - 1)`` (as for :func:`crps_ensemble`, which it equals for D = 1).  Same as scoringrules
    ``energy_score(y, x, m_axis=0, v_axis=-1, estimator="nrg" | "fair")``.

    Memory: the pairwise distances are computed in float64 blocks of points (``torch.cdist`` without the
    matrix-product shortcut, which loses digits), so no ``(M, M, points, D)`` tensor is ever built; a block holds
    at most about 4 M entries.

    >>> import torch
    >>> x = torch.tensor([[[0.0, 0.0]], [[3.0, 4.0]]])  # M = 2 members, one point, D = 2
    >>> energy_score(x, torch.tensor([[0.0, 0.0]])).tolist()  # (0 + 5) / 2 - (5 + 5) / 8
    [1.25]
    """
    fair = check_bool(fair, "fair")
    x, y, dtype = _ensemble(
        members,
        observations,
        min_members=2 if fair else 1,
        why=" (the fair energy score divides by M - 1)" if fair else "",
        state=True,
        validate=validate,
    )
    acc = acc_dtype(x.device)
    m, d = x.shape[0], x.shape[-1]
    points = tuple(x.shape[1:-1])
    xf = x.reshape(m, -1, d)
    yf = y.reshape(-1, d)
    n = xf.shape[1]
    step = max(1, _CHUNK // (m * max(m, d)))
    parts = []
    for lo in range(0, n, step):
        xc = xf[:, lo : lo + step].to(acc)  # (M, c, D)
        skill = torch.linalg.vector_norm(xc - yf[lo : lo + step].to(acc), dim=-1).mean(dim=0)
        xt = xc.transpose(0, 1)  # (c, M, D)
        pair = torch.cdist(xt, xt, compute_mode="donot_use_mm_for_euclid_dist").sum(dim=(1, 2))
        parts.append(skill - pair / (2 * m * (m - 1) if fair else 2 * m * m))
    out = torch.cat(parts) if parts else torch.zeros(0, dtype=acc, device=x.device)
    return _finish(out.reshape(points), dtype, "the energy score of members against observations")


# ----------------------------------------------------------------------------------------------------------
# spread and skill
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpreadSkill:
    """What :func:`spread_skill` returns, each a tensor of the shape left after averaging over ``dim``:

    - ``spread``: ``sqrt(mean of the unbiased (M - 1) ensemble variance)``;
    - ``skill``: the RMSE of the ensemble mean, ``sqrt(mean (mean_i x_i - y)^2)``;
    - ``ratio``: ``sqrt((M + 1) / M) * spread / skill`` (about 1 for a reliable ensemble, < 1 under-dispersed).
    """

    spread: torch.Tensor
    skill: torch.Tensor
    ratio: torch.Tensor


def _dims(dim, ndim: int) -> tuple[int, ...] | None:
    """``dim`` (None, an int or a tuple/list of ints) as sorted non-negative dims of an ``ndim``-d tensor."""
    if dim is None:
        return None
    items = list(dim) if isinstance(dim, (tuple, list)) else [dim]
    if not items:
        raise ValueError("dim must name at least one dimension of observations, or be None for all, got ()")
    out = []
    for d in items:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)):
            raise TypeError(f"dim must be an int or a tuple of ints (dimensions of observations), got {d!r}")
        if not -ndim <= int(d) < ndim:
            raise ValueError(
                f"dim must name dimensions of observations, which has {ndim}, so lie in [{-ndim}, {ndim - 1}], "
                f"got {int(d)}"
            )
        out.append(int(d) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"dim must not repeat a dimension, got {dim!r}")
    return tuple(sorted(out))


def spread_skill(members, observations, dim=None) -> SpreadSkill:
    """Spread, skill and their ratio for ``(M, ...)`` members (M >= 2) and ``(...)`` observations.

    - spread = ``sqrt(mean_dim var_i(x_i))`` with the unbiased variance (divisor M - 1) over members;
    - skill = ``sqrt(mean_dim (xbar - y)^2)``, the RMSE of the ensemble mean ``xbar``;
    - ratio = ``sqrt((M + 1) / M) * spread / skill``: the finite-ensemble correction of Fortin et al. (2014).  For a
      perfectly reliable ensemble (observation and members exchangeable) the mean squared error of the ensemble
      mean is ``(M + 1) / M`` times the mean ensemble variance in expectation, so the ratio tends to 1 over many
      points whatever M.  Some authors (WeatherBench 2) report ``spread / skill`` without it; multiply ours by
      ``sqrt(M / (M + 1))`` to compare.

    ``dim``: the dimensions OF ``observations`` to average over, an int or a tuple (e.g. ``dim=1`` of
    ``(leads, points)`` observations gives one value per lead time), None for all (0-d results).  Means are
    taken in float64 before the square roots (RMSEs of the means, not means of RMSEs).  An ensemble mean that
    equals the observations exactly everywhere in a group leaves the ratio undefined and is refused.

    >>> import torch
    >>> r = spread_skill(torch.tensor([[0.0, 2.0], [2.0, 0.0]]), torch.tensor([0.0, 0.0]))
    >>> round(r.spread.item(), 4), r.skill.item(), round(r.ratio.item(), 4)  # var 2, error 1: sqrt(3/2) sqrt(2)
    (1.4142, 1.0, 1.7321)
    """
    x, y, dtype = _ensemble(members, observations, min_members=2, why=" (the spread is a variance over members)")
    dims = _dims(dim, y.ndim)
    if y.numel() == 0:
        raise ValueError(f"observations must hold at least one point, got shape {tuple(y.shape)}")
    acc = acc_dtype(x.device)
    x, y = x.to(acc), y.to(acc)
    m = x.shape[0]
    var = x.var(dim=0, correction=1)
    err = (x.mean(dim=0) - y).square()
    mean_var = var.mean() if dims is None else var.mean(dim=dims)
    mse = err.mean() if dims is None else err.mean(dim=dims)
    check_finite_result(mean_var, "the ensemble variance of members")
    check_finite_result(mse, "the squared error of the members' mean against observations")
    if bool((mse == 0).any()):
        raise ValueError(
            "spread_skill is undefined: the ensemble mean equals the observations exactly (members' mean minus "
            "observations is 0 everywhere over dim), so the skill is 0 and the ratio would be infinite"
        )
    spread, skill = mean_var.sqrt(), mse.sqrt()
    ratio = math.sqrt((m + 1) / m) * spread / skill
    what = "spread_skill of members against observations"
    return SpreadSkill(
        spread=_finish(spread, dtype, what), skill=_finish(skill, dtype, what), ratio=_finish(ratio, dtype, what)
    )


def spread_skill_ratio(members, observations, dim=None) -> torch.Tensor:
    """``spread_skill(members, observations, dim).ratio``: ``sqrt((M + 1) / M) * spread / skill`` (see
    :func:`spread_skill` for the convention), about 1 for a reliable ensemble, below 1 for an under-dispersed one.

    >>> import torch
    >>> round(spread_skill_ratio(torch.tensor([[0.0, 2.0], [2.0, 0.0]]), torch.tensor([0.0, 0.0])).item(), 4)
    1.7321
    """
    return spread_skill(members, observations, dim).ratio


def prefix_scores(members, observations, dim=None, *, validate: bool = True) -> dict[str, torch.Tensor]:
    """The CRPS (both estimators) and spread-skill of EVERY prefix of an ensemble at once.

    ``members`` ``(M, ...)`` and ``observations`` ``(...)`` -> ``"crps"``, ``"crps_fair"``, ``"spread"``,
    ``"skill"``, ``"ratio"``, each ``(M + 1, *kept)`` float64: row ``m`` holds, for the first ``m`` members, the
    mean over ``dim`` (dimensions OF ``observations``, as :func:`spread_skill`; None = all) of
    ``crps_ensemble(members[:m], observations, fair=...)``, and ``spread_skill(members[:m], observations, dim)``.
    Row 0 is NaN, and row 1 too for the fair CRPS, the spread and the ratio (they need two members).

    Why: a Lab whose ensemble-size slider moves along one ensemble would call :func:`crps_ensemble` once per size,
    a sort each; here the pair sums ``sum_{i<j<=m} |x_i - x_j|`` and the moments are accumulated member by member
    (O(M^2) per point, once), and a size is a row.  The moments are taken about the first member, so a tight
    ensemble loses no digits to cancellation.  Equal to the routines to float64 round-off (tested).

    >>> import torch
    >>> x = torch.tensor([[0.0], [2.0], [1.0]], dtype=torch.float64)
    >>> r = prefix_scores(x, torch.tensor([1.0], dtype=torch.float64))
    >>> r["crps"][1:].tolist(), r["crps_fair"][2:].tolist()  # sizes 1, 2, 3 (fair: 2, 3)
    ([1.0, 0.5, 0.2222222222222222], [0.0, 0.0])
    """
    x, y, _dtype = _ensemble(members, observations, validate=validate)
    dims = _dims(dim, y.ndim)
    acc = acc_dtype(x.device)
    x, y = x.detach().to(acc), y.detach().to(acc)
    m_max = x.shape[0]
    m = torch.arange(1, m_max + 1, dtype=acc, device=x.device).view(-1, *([1] * (x.ndim - 1)))
    abs_error = (x - y).abs().cumsum(dim=0) / m  # mean |x_i - y| over the first m members
    pairs = torch.zeros_like(x)  # pairs[m - 1]: sum over i < j <= m of |x_i - x_j|
    running = torch.zeros_like(x[0])
    for j in range(1, m_max):
        running = running + (x[j] - x[:j]).abs().sum(dim=0)
        pairs[j] = running
    d = x - x[0]
    s1, s2 = d.cumsum(dim=0), d.square().cumsum(dim=0)
    var = (s2 - s1.square() / m) / (m - 1)  # row 0 divides by 0 (NaN), dropped below
    error = (x[0] + s1 / m - y).square()
    reduce = tuple(range(1, x.ndim)) if dims is None else tuple(d_ + 1 for d_ in dims)

    def by_size(t: torch.Tensor) -> torch.Tensor:
        kept = t.mean(dim=reduce) if reduce else t
        out = torch.full((m_max + 1, *kept.shape[1:]), math.nan, dtype=acc, device=x.device)
        out[1:] = kept
        return out

    crps = by_size(abs_error - pairs / m.square())
    crps_fair = by_size(abs_error - pairs / (m * (m - 1)))
    spread, skill = by_size(var).sqrt(), by_size(error).sqrt()
    k = torch.arange(m_max + 1, dtype=acc, device=x.device).view(-1, *([1] * (crps.ndim - 1)))
    ratio = ((k + 1) / k).sqrt() * spread / skill
    for t in (crps_fair, spread, ratio):
        t[:2] = math.nan
    return {"crps": crps, "crps_fair": crps_fair, "spread": spread, "skill": skill, "ratio": ratio}


# ----------------------------------------------------------------------------------------------------------
# rank histogram
# ----------------------------------------------------------------------------------------------------------


def rank_histogram(members, observations, *, seed: int = 0) -> torch.Tensor:
    """Counts ``(M + 1,)`` int64 of the rank of each observation among its M members, over ALL points.

    The rank of ``y`` is the number of members strictly below it, plus, when members tie with ``y``, a number
    drawn uniformly from ``0 .. ties`` (Hamill 2001's recommendation, so that a discrete or rounded variable does
    not pile up in the lowest bin).  The draws come from a cpu ``torch.Generator`` seeded with ``seed`` (one per
    point, drawn whether or not it ties), so counts are the same on every device.  Bin k counts observations
    above exactly k members: a U shape means under-dispersion, a dome over-dispersion, a slope a bias.

    >>> import torch
    >>> rank_histogram(torch.tensor([[0.0, 0.0, 5.0], [1.0, 1.0, 6.0]]), torch.tensor([-1.0, 2.0, 5.5])).tolist()
    [1, 1, 1]
    """
    x, y, dtype = _ensemble(members, observations)
    seed = check_seed(seed)
    m = x.shape[0]
    x, y = x.detach().to(dtype).reshape(m, -1), y.detach().to(dtype).reshape(-1)
    below = (x < y).sum(dim=0)
    ties = (x == y).sum(dim=0)
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(y.shape[0], generator=g, dtype=torch.float64).to(x.device)
    extra = torch.minimum((u * (ties + 1)).floor().to(torch.int64), ties)
    return torch.bincount(below + extra, minlength=m + 1)


@dataclass(frozen=True)
class RankFlatness:
    """How flat a rank histogram is (:func:`rank_histogram_flatness`): ``chi2`` (against uniform counts),
    ``p_value`` (chi-square with ``df = n_members`` degrees of freedom), ``delta`` (Candille and Talagrand's
    reliability index; 1 expected for a flat histogram of independent points, ``delta = chi2 / M``), and
    ``n_points``, ``n_members``."""

    chi2: float
    p_value: float
    delta: float
    n_points: int
    n_members: int


def rank_histogram_flatness(counts) -> RankFlatness:
    """Flatness statistics of rank-histogram ``counts`` ``(M + 1,)`` (non-negative integers, at least one point).

    With ``N`` points and expected count ``e = N / (M + 1)``: ``chi2 = sum_k (s_k - e)^2 / e``, its p-value
    ``scipy.stats.chi2.sf(chi2, df=M)``, and ``delta = sum_k (s_k - e)^2 / (N M / (M + 1))`` (Candille and
    Talagrand 2005).  Both assume independent points: the points of one forecast (neighbouring grid points, the
    variables of one state, consecutive times) are correlated, so the p-value overstates the evidence against
    flatness, often by orders of magnitude.  Read ``delta`` (how far from flat, with intervals over independent
    forecasts) rather than the p-value.

    >>> r = rank_histogram_flatness([10, 10, 10])
    >>> r.chi2, r.p_value, r.delta, r.n_points, r.n_members
    (0.0, 1.0, 0.0, 30, 2)
    """
    c = _real(counts, "counts")
    if c.ndim != 1 or c.shape[0] < 2:
        raise ValueError(f"counts must have shape (M + 1,) with M >= 1 (one count per rank), got {tuple(c.shape)}")
    check_finite_tensor(c, "counts")
    c = c.detach().to(torch.float64)
    if bool((c < 0).any()) or not bool(torch.equal(c, c.round())):
        raise ValueError(f"counts must be non-negative integers, got {c[:6].cpu().tolist()}")
    n = float(c.sum())
    if n == 0:
        raise ValueError("counts must hold at least one point, got all zeros")
    m = c.shape[0] - 1
    e = n / (m + 1)
    ss = float(((c - e) ** 2).sum())
    chi2 = ss / e
    from scipy import stats

    return RankFlatness(
        chi2=chi2, p_value=float(stats.chi2.sf(chi2, m)), delta=ss / (n * m / (m + 1)), n_points=int(n), n_members=m
    )


# ----------------------------------------------------------------------------------------------------------
# a threshold event
# ----------------------------------------------------------------------------------------------------------


def _exceed(members, threshold):
    x = _real(members, "members")
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"members must have shape (M, ...) with M >= 1 members first, got shape {tuple(x.shape)}")
    t = _threshold(threshold, tuple(x.shape[1:]), x)
    check_finite_tensor(x, "members")
    return x, t, (x.detach() > t).sum(dim=0)


def exceedance_probability(members, threshold) -> torch.Tensor:
    """The fraction of the M members above ``threshold`` (strictly), per point: ``(M, ...)`` -> ``(...)``, in
    ``members``' floating dtype; values ``k / M``.  ``threshold``: a number in the variable's units, or a tensor
    that broadcasts to the points' shape (e.g. a climatological quantile per grid point).

    >>> import torch
    >>> exceedance_probability(torch.tensor([[0.0, 3.0], [2.0, 3.0], [5.0, 1.0], [6.0, 0.0]]), 1.5).tolist()
    [0.75, 0.5]
    """
    x, _, k = _exceed(members, threshold)
    return k.to(x.dtype) / x.shape[0]


def brier_threshold(members, observations, threshold, fair: bool = False) -> torch.Tensor:
    """Per-point Brier score of the event ``y > threshold`` forecast by the fraction of members above it:
    ``(p - o)^2`` with ``p = k / M`` and ``o = 1[y > threshold]``; ``(...)``, unitless, in [0, 1].

    ``fair=True`` (Ferro 2014, M >= 2): ``(p - o)^2 - p (1 - p) / (M - 1)``, unbiased for the Brier score of the
    probability the members are drawn with; it equals ``c (c - 1) / (M (M - 1))`` with ``c`` the members on the
    wrong side of the threshold, which is how it is computed (exactly, and never negative).  The standard score is
    scoringrules ``brier_score(o, p)``; one Brier number for a class-probability forecast
    (:func:`ensemble_lab.metrics.brier`) sums over classes, this one is the binary event's.

    >>> import torch
    >>> x = torch.tensor([[0.0], [2.0], [5.0], [6.0]])
    >>> y = torch.tensor([0.0])
    >>> brier_threshold(x, y, 1.5).tolist(), brier_threshold(x, y, 1.5, fair=True).tolist()
    ([0.5625], [0.5])
    """
    fair = check_bool(fair, "fair")
    x, y, dtype = _ensemble(
        members, observations, min_members=2 if fair else 1, why=" (the fair Brier divides by M - 1)" if fair else ""
    )
    t = _threshold(threshold, tuple(y.shape), x)
    m = x.shape[0]
    k = (x.detach() > t).sum(dim=0)
    o = y.detach() > t
    wrong = torch.where(o, m - k, k)  # members on the other side of the threshold from the observation
    acc = acc_dtype(x.device)
    out = (wrong * (wrong - 1)).to(acc) / (m * (m - 1)) if fair else (wrong.to(acc) / m).square()
    return out.to(dtype)


@dataclass(frozen=True)
class ThresholdReliability:
    """The reliability diagram of a threshold event forecast by an M-member ensemble
    (:func:`threshold_reliability`), one entry per possible forecast probability ``k / M``, ``k = 0 .. M``:

    - ``probability`` ``(M + 1,)``: ``k / M``;
    - ``count`` ``(M + 1,)`` int64: points forecast with that probability;
    - ``hits`` ``(M + 1,)`` int64: how many of them saw the event;
    - ``observed_frequency`` ``(M + 1,)``: ``hits / count``, and 0 where ``count`` is 0 (never NaN: read
      ``present``);
    - ``present`` ``(M + 1,)`` bool: ``count > 0``;
    - ``base_rate``: the event's frequency over all points (a python float);
    - ``n_points``: the number of points.
    """

    probability: torch.Tensor
    count: torch.Tensor
    hits: torch.Tensor
    observed_frequency: torch.Tensor
    present: torch.Tensor
    base_rate: float
    n_points: int


def threshold_reliability(members, observations, threshold) -> ThresholdReliability:
    """Reliability of the event ``y > threshold`` forecast by ``p = k / M`` (the fraction of members above it)
    over all points: for each of the M + 1 possible probabilities, how often it was forecast (``count``) and how
    often the event then happened (``observed_frequency``).  A reliable forecast has ``observed_frequency ~
    probability`` wherever ``count`` is large; for an extreme event most points sit at ``k = 0``.  Probabilities
    and frequencies are float64 (float32 on MPS) on the members' device; empty bins have frequency 0 and
    ``present`` False (see :class:`ThresholdReliability`).

    >>> import torch
    >>> r = threshold_reliability(torch.tensor([[0.0, 3.0, 0.0], [2.0, 3.0, 0.0]]), torch.tensor([1.0, 4.0, 0.0]), 1.5)
    >>> r.count.tolist(), r.hits.tolist(), r.observed_frequency.tolist(), r.base_rate
    ([1, 1, 1], [0, 0, 1], [0.0, 0.0, 1.0], 0.3333333333333333)
    """
    x, y, _ = _ensemble(members, observations)
    t = _threshold(threshold, tuple(y.shape), x)
    m = x.shape[0]
    if y.numel() == 0:
        raise ValueError(f"observations must hold at least one point, got shape {tuple(y.shape)}")
    k = (x.detach() > t).sum(dim=0).reshape(-1)
    o = (y.detach() > t).reshape(-1)
    count = torch.bincount(k, minlength=m + 1)
    hits = torch.bincount(k[o], minlength=m + 1)
    acc = acc_dtype(x.device)
    present = count > 0
    freq = torch.where(present, hits.to(acc) / count.clamp(min=1).to(acc), torch.zeros((), dtype=acc, device=x.device))
    n = int(o.numel())
    return ThresholdReliability(
        probability=torch.arange(m + 1, dtype=acc, device=x.device) / m,
        count=count,
        hits=hits,
        observed_frequency=freq,
        present=present,
        base_rate=float(o.sum()) / n,
        n_points=n,
    )
