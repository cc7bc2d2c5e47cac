"""A synthetic world of top-label predictions whose true calibration error is known exactly.

An estimator of calibration error can only be judged against the truth, and on real predictions the truth is
unknown.  Here it is set by construction.  A :class:`CalibrationWorld` draws, for ``C`` classes:

- a top-label confidence ``c = 1/C + (1 - 1/C) u`` with ``u ~ Beta(a, b)``, so ``c`` lies in ``(1/C, 1]``
  (the range of a top-label probability);
- whether the top label is right, with ``P(correct | c) = accuracy(c)``, a known calibration curve:

  - ``"linear"``: ``accuracy(c) = intercept + slope * c`` (``slope < 1`` with ``intercept = (1 - slope) / C``
    is over-confident by a share of the excess over chance; ``slope = 1, intercept = 0`` is calibrated);
  - ``"wave"``: ``accuracy(c) = c + amplitude * min(c, 1 - c) * sin(2 pi * periods * v)`` with
    ``v = (c - 1/C) / (1 - 1/C)``: a curve that crosses the diagonal ``2 * periods - 1`` times inside the
    range (for whole ``periods``), so that coarse bins average gaps of both signs and cancel them.

The true top-label calibration errors are integrals against the known density of ``c``:

- l1 (the quantity the binned ECE estimates): ``E|accuracy(c) - c|``;
- l2 (the quantity the debiased estimator of Kumar et al. 2019 estimates, squared): ``sqrt(E (accuracy(c) - c)^2)``.

:meth:`CalibrationWorld.true_error` computes them by midpoint quadrature on a fine grid (no scipy);
:meth:`CalibrationWorld.binned_error` the value a binned estimator converges to with infinitely many samples
(uniform bins ``(k/B, (k+1)/B]``, as :func:`ensemble_lab.metrics.ece`), which is at most the true value: the
gap of coarse bins is the average of the gaps inside them, and averaging gaps of both signs cancels part of them
(the downward bias of binning).  :meth:`CalibrationWorld.sample` draws full ``(N, C)`` probabilities and labels
that the package's estimators take as they are; the finite-sample noise then adds the upward bias.
:meth:`CalibrationWorld.sample_top_label` draws many samples' confidences and correctness at once, and
:func:`binned_errors` estimates all of them in one pass (the same numbers as the package's estimators).

>>> w = linear_world(slope=0.8, n_classes=10, a=4.0, b=1.5)
>>> round(w.true_error("l1"), 6) == round(w.closed_form_error("l1"), 6)
True
>>> s = w.sample(1000, seed=0)
>>> tuple(s.probs.shape), tuple(s.labels.shape)
((1000, 10), (1000,))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._numerics import uniform_bins
from ._validation import MAX_COUNT, check_choice, check_finite, check_in_range, check_int, check_seed

__all__ = ["CURVES", "NORMS", "CalibrationWorld", "SimulatedSample", "binned_errors", "linear_world", "wave_world"]

CURVES = ("linear", "wave")
NORMS = ("l1", "l2")
_DEFAULT_GRID = 1 << 16  # quadrature nodes: midpoint error ~ 1e-9 for the bounded densities allowed here
_MAX_SHAPE = 1e3  # Beta shapes above this concentrate the density in a spike the grid cannot resolve


@dataclass(frozen=True)
class SimulatedSample:
    """One draw from a :class:`CalibrationWorld`.

    Attributes:
        probs: ``(N, C)`` float64 top-label probabilities: the top class holds ``confidence``, every other class
            ``(1 - confidence) / (C - 1)``; the top class is drawn uniformly (ties, possible only at
            ``confidence = 1/C``, put it at class 0, where ``argmax`` looks first).
        labels: ``(N,)`` int64: the top class when ``correct``, else one of the other classes uniformly.
        confidence: ``(N,)`` float64, the row maxima of ``probs``.
        correct: ``(N,)`` bool, ``argmax(probs) == labels``.
    """

    probs: torch.Tensor
    labels: torch.Tensor
    confidence: torch.Tensor
    correct: torch.Tensor


@dataclass(frozen=True)
class CalibrationWorld:
    """Confidences ``c = 1/C + (1 - 1/C) u``, ``u ~ Beta(a, b)``, correct with probability ``accuracy(c)``.

    Attributes:
        n_classes: ``C >= 2``.
        a, b: the Beta shapes, each in ``[1, 1000]`` (a bounded density, so that the quadrature is accurate;
            ``a > b`` puts most confidences near 1, as trained classifiers do).
        curve: ``"linear"`` or ``"wave"`` (see the module docstring).
        intercept, slope: the ``"linear"`` curve ``intercept + slope * c``; it must stay in [0, 1] on
            ``[1/C, 1]``.
        amplitude, periods: the ``"wave"`` curve; ``amplitude`` in [-1, 1] keeps it in [0, 1], ``periods`` > 0.
    """

    n_classes: int = 10
    a: float = 4.0
    b: float = 1.5
    curve: str = "linear"
    intercept: float = 0.0
    slope: float = 1.0
    amplitude: float = 0.0
    periods: float = 2.0

    def __post_init__(self):
        c = check_int(self.n_classes, "n_classes", minimum=2, maximum=MAX_COUNT)
        object.__setattr__(self, "n_classes", c)
        for name in ("a", "b"):
            object.__setattr__(self, name, check_in_range(getattr(self, name), name, 1.0, _MAX_SHAPE))
        check_choice(self.curve, "curve", CURVES)
        object.__setattr__(self, "intercept", check_finite(self.intercept, "intercept"))
        object.__setattr__(self, "slope", check_finite(self.slope, "slope"))
        object.__setattr__(self, "amplitude", check_in_range(self.amplitude, "amplitude", -1.0, 1.0))
        object.__setattr__(self, "periods", check_in_range(self.periods, "periods", 0.0, 1e3, lo_open=True))
        if self.curve == "linear":  # linear: its extremes on [1/C, 1] are at the ends
            ends = [self.intercept + self.slope * x for x in (1.0 / c, 1.0)]
            if min(ends) < 0 or max(ends) > 1:
                raise ValueError(
                    "intercept and slope must keep accuracy(c) = intercept + slope * c in [0, 1] for c in "
                    f"[1/{c}, 1], got accuracy {ends[0]:.4g} at c = 1/{c} and {ends[1]:.4g} at c = 1"
                )

    # -- the known curve and density --------------------------------------------------------------------
    @property
    def chance(self) -> float:
        """``1 / C``, the lowest top-label confidence."""
        return 1.0 / self.n_classes

    def accuracy(self, confidence) -> torch.Tensor:
        """``P(correct | confidence)`` for confidences in ``[1/C, 1]`` (a float64 tensor of the input's shape).

        >>> linear_world(slope=0.5, n_classes=2).accuracy(torch.tensor([0.5, 1.0])).tolist()
        [0.5, 0.75]
        """
        c = _confidences(confidence, self.chance)
        return self._accuracy(c)

    def _accuracy(self, c: torch.Tensor) -> torch.Tensor:
        if self.curve == "linear":
            return (self.intercept + self.slope * c).clamp(0.0, 1.0)  # exact: the ends were checked; rounding only
        v = (c - self.chance) / (1.0 - self.chance)
        wave = torch.sin(2.0 * math.pi * self.periods * v)
        return (c + self.amplitude * torch.minimum(c, 1.0 - c) * wave).clamp(0.0, 1.0)

    def gap(self, confidence) -> torch.Tensor:
        """``accuracy(c) - c``: positive where the model is under-confident, negative where over-confident."""
        c = _confidences(confidence, self.chance)
        return self._accuracy(c) - c

    def density(self, confidence) -> torch.Tensor:
        """The density of the confidence at ``confidence`` in ``[1/C, 1]``: ``Beta(u; a, b) / (1 - 1/C)``."""
        c = _confidences(confidence, self.chance)
        return self._density_u((c - self.chance) / (1.0 - self.chance)) / (1.0 - self.chance)

    def _density_u(self, u: torch.Tensor) -> torch.Tensor:
        log_norm = math.lgamma(self.a + self.b) - math.lgamma(self.a) - math.lgamma(self.b)
        logs = torch.zeros_like(u)
        if self.a != 1.0:
            logs = logs + (self.a - 1.0) * torch.log(u)
        if self.b != 1.0:
            logs = logs + (self.b - 1.0) * torch.log1p(-u)
        return torch.exp(logs + log_norm)

    # -- exact errors ------------------------------------------------------------------------------------
    def _nodes(self, breaks_c, grid: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Midpoint nodes in confidence and their probability weights (summing to 1), with every value of
        ``breaks_c`` a cell edge (so a cell never straddles a bin edge)."""
        lo = self.chance
        cuts = sorted({0.0, 1.0, *((x - lo) / (1.0 - lo) for x in breaks_c if lo < x < 1.0)})
        us, ws = [], []
        for left, right in zip(cuts[:-1], cuts[1:], strict=True):
            m = max(8, math.ceil(grid * (right - left)))
            h = (right - left) / m
            u = left + h * (torch.arange(m, dtype=torch.float64) + 0.5)
            us.append(u)
            ws.append(self._density_u(u) * h)
        u, w = torch.cat(us), torch.cat(ws)
        return lo + (1.0 - lo) * u, w / w.sum()  # normalised: the weights integrate 1 exactly

    def true_error(self, norm: str = "l1", grid: int = _DEFAULT_GRID) -> float:
        """The true top-label calibration error: ``E|gap(c)|`` (``"l1"``) or ``sqrt(E gap(c)^2)`` (``"l2"``).

        Midpoint quadrature over ``u = (c - 1/C) / (1 - 1/C)`` on ``grid`` cells against the Beta density
        (weights normalised to sum to 1).  With ``a, b >= 1`` the density is bounded and the error of the
        quadrature is about ``grid ** -2`` (``grid ** -a`` for ``1 <= a < 2``, from the density's kink at 0).
        """
        norm = check_choice(norm, "norm", NORMS)
        g = check_int(grid, "grid", minimum=16, maximum=MAX_COUNT)
        c, w = self._nodes((), g)
        gap = self._accuracy(c) - c
        return float((w * gap.abs()).sum()) if norm == "l1" else math.sqrt(float((w * gap * gap).sum()))

    def binned_error(self, n_bins: int = 15, norm: str = "l1", grid: int = _DEFAULT_GRID) -> float:
        """What a binned estimator with uniform bins ``(k/B, (k+1)/B]`` converges to as N grows: with ``P_b`` the
        probability of bin b and ``gap_b = E[accuracy(c) - c | c in b]``, ``sum_b P_b |gap_b|`` (``"l1"``, the
        limit of ``metrics.ece``) or ``sqrt(sum_b P_b gap_b^2)`` (``"l2"``, the limit of ``metrics.ece(...,
        norm="l2")`` and of the rooted :func:`~ensemble_lab.calibration_error.debiased_ece` with
        ``strategy="uniform"``).

        Never above :meth:`true_error` (Jensen: ``|E[gap | b]| <= E[|gap| | b]``); equal to it when the gap keeps
        one sign inside every bin.  The grid puts every bin edge on a cell edge.

        >>> w = wave_world(amplitude=0.8, periods=2)
        >>> w.binned_error(1) < w.binned_error(20) < w.true_error()
        True
        """
        b = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_COUNT)
        norm = check_choice(norm, "norm", NORMS)
        g = check_int(grid, "grid", minimum=16, maximum=MAX_COUNT)
        if b > g:
            raise ValueError(f"n_bins must be at most grid ({g}) to resolve every bin, got {b}")
        c, w = self._nodes([k / b for k in range(1, b)], g)
        gap = self._accuracy(c) - c
        bins = torch.clamp(torch.ceil(c * b) - 1, 0, b - 1).to(torch.int64)  # (lo, hi] bins, as metrics.ece
        mass = torch.zeros(b, dtype=torch.float64).index_add_(0, bins, w)
        gap_mass = torch.zeros(b, dtype=torch.float64).index_add_(0, bins, w * gap)  # P_b * gap_b
        if norm == "l1":
            return float(gap_mass.abs().sum())
        filled = mass > 0
        return math.sqrt(float((gap_mass[filled] ** 2 / mass[filled]).sum()))

    def closed_form_error(self, norm: str = "l1") -> float:
        """The exact error of a ``"linear"`` world from the Beta moments (an oracle for :meth:`true_error`).

        With ``gap(c) = intercept + (slope - 1) c``: ``l2^2 = E gap^2`` from ``E c`` and ``E c^2``; ``l1 =
        |E gap|`` when the gap keeps one sign on ``[1/C, 1]`` (otherwise refused: the l1 error then needs an
        incomplete Beta function).
        """
        norm = check_choice(norm, "norm", NORMS)
        if self.curve != "linear":
            raise ValueError(f"closed_form_error needs curve='linear', got curve={self.curve!r}")
        lo, a, b = self.chance, self.a, self.b
        eu = a / (a + b)
        eu2 = a * (a + 1) / ((a + b) * (a + b + 1))
        ec = lo + (1 - lo) * eu
        ec2 = lo * lo + 2 * lo * (1 - lo) * eu + (1 - lo) ** 2 * eu2
        i, s = self.intercept, self.slope - 1.0
        if norm == "l2":
            return math.sqrt(max(i * i + 2 * i * s * ec + s * s * ec2, 0.0))
        ends = (i + s * lo, i + s)
        if min(ends) < -1e-12 and max(ends) > 1e-12:  # (a zero at an end, up to rounding, is one sign)
            raise ValueError(
                "closed_form_error(norm='l1') needs a gap of one sign on [1/C, 1]; this world's gap goes from "
                f"{ends[0]:.4g} to {ends[1]:.4g}"
            )
        return abs(i + s * ec)

    # -- samples -----------------------------------------------------------------------------------------
    def sample_top_label(self, n: int, repeats: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``repeats`` independent samples of ``n`` top-label predictions: ``(confidence, correct)``, each
        ``(repeats, n)`` (float64, bool), from one ``numpy.random.Generator`` seeded with ``seed`` (same seed,
        same sample on every machine).  Vectorised: one Beta draw and one uniform draw for all of them.

        :meth:`sample` with the same ``seed`` and ``repeats=1`` draws the same confidences and correctness.
        """
        n = check_int(n, "n", minimum=1, maximum=MAX_COUNT)
        r = check_int(repeats, "repeats", minimum=1, maximum=MAX_COUNT)
        if n * r > 4 * MAX_COUNT:
            raise ValueError(f"n * repeats must be at most {4 * MAX_COUNT}, got {n * r}")
        rng = np.random.default_rng(check_seed(seed))
        return self._draw(rng, (r, n))[1:]

    def _draw(self, rng, shape) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(u, confidence, correct)``: the Beta draw, ``c = (1 + (C - 1) u) / C`` and ``U < accuracy(c)``."""
        u = torch.from_numpy(rng.beta(self.a, self.b, size=shape))
        hit = torch.from_numpy(rng.random(shape))
        conf = (1.0 + (self.n_classes - 1) * u) / self.n_classes
        return u, conf, hit < self._accuracy(conf)

    def sample(self, n: int, seed: int = 0) -> SimulatedSample:
        """``n`` independent predictions with their labels (see :class:`SimulatedSample`), from one
        ``numpy.random.Generator`` seeded with ``seed``: same seed, same sample on every machine.

        Vectorised: one Beta draw, one uniform draw for correctness, two integer draws for the classes.
        """
        n = check_int(n, "n", minimum=1, maximum=MAX_COUNT)
        s = check_seed(seed)
        k = self.n_classes
        if n * k > 4 * MAX_COUNT:
            raise ValueError(f"n * n_classes must be at most {4 * MAX_COUNT} (the (n, C) probabilities), got {n * k}")
        rng = np.random.default_rng(s)
        u, conf, correct = (t[0] for t in self._draw(rng, (1, n)))
        top = torch.from_numpy(rng.integers(0, k, size=n))
        other = torch.from_numpy(rng.integers(1, k, size=n))
        rest = (1.0 - u) / k  # = (1 - c) / (C - 1), and <= c in floating point too: fl(1 + (C-1) u) >= 1 >= fl(1 - u)
        top = torch.where(conf > rest, top, torch.zeros_like(top))  # a tie: argmax picks class 0
        labels = torch.where(correct, top, (top + other) % k)
        probs = rest[:, None].expand(n, k).clone()
        probs.scatter_(1, top[:, None], conf[:, None])
        return SimulatedSample(probs=probs, labels=labels, confidence=conf, correct=correct)


def binned_errors(confidence, correct, n_bins: int = 15) -> dict[str, torch.Tensor]:
    """The binned estimators of many samples at once, from their top-label confidences and correctness.

    ``confidence`` ``(R, N)`` in [0, 1] and ``correct`` ``(R, N)`` (bool or 0/1): R samples of N predictions.
    Uniform bins ``(k/B, (k+1)/B]`` (the first closed at 0) as :func:`ensemble_lab.metrics.ece` bins them.  With
    ``n_b``, ``acc_b``, ``conf_b`` per bin and sample, returns ``(R,)`` float64 tensors:

    - ``"l1"``: ``sum_b (n_b / N) |acc_b - conf_b|``, equal to ``metrics.ece(probs, labels, n_bins)``;
    - ``"l2"``: ``sqrt(sum_b (n_b / N) (acc_b - conf_b)^2)``, equal to ``metrics.ece(..., norm="l2")``;
    - ``"l2_debiased"``: ``sqrt(max(d, 0))`` with ``d = sum_{b: n_b >= 2} (n_b / N) [(acc_b - conf_b)^2 -
      acc_b (1 - acc_b) / (n_b - 1)]``, equal to ``calibration_error.debiased_ece(..., strategy="uniform",
      squared=False)``; ``"l2_debiased_squared"``: ``d`` itself (unbiased for the binned squared error).

    One pass for all R samples (a scatter into ``(R, B)`` sums), which is what makes a simulation of thousands
    of samples fast; the tests check each row against the package's estimators on the same predictions.

    >>> conf = torch.tensor([[0.9, 0.8, 0.6, 0.3]])
    >>> round(float(binned_errors(conf, torch.tensor([[1, 1, 0, 1]]), n_bins=2)["l1"][0]), 4)
    0.25
    """
    c = torch.as_tensor(confidence)
    if c.ndim != 2 or c.shape[1] < 1 or not torch.is_floating_point(c):
        raise ValueError(f"confidence must be a float (R, N) tensor with N >= 1, got shape {tuple(c.shape)}")
    if not bool(torch.isfinite(c).all()) or float(c.min()) < 0 or float(c.max()) > 1:
        raise ValueError("confidence must hold finite values in [0, 1]")
    ok = torch.as_tensor(correct)
    if ok.shape != c.shape:
        raise ValueError(f"correct must have the shape of confidence {tuple(c.shape)}, got {tuple(ok.shape)}")
    if ok.dtype != torch.bool:
        if ok.is_complex() or not bool(((ok == 0) | (ok == 1)).all()):
            raise ValueError("correct must be boolean or 0/1")
        ok = ok != 0
    b = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_COUNT)
    r, n = c.shape
    bins = uniform_bins(c, b)[0].to(torch.int64)
    shape = (r, b)
    count = torch.zeros(shape, dtype=torch.float64).scatter_add_(1, bins, torch.ones_like(c, dtype=torch.float64))
    s_conf = torch.zeros(shape, dtype=torch.float64).scatter_add_(1, bins, c.to(torch.float64))
    s_hit = torch.zeros(shape, dtype=torch.float64).scatter_add_(1, bins, ok.to(torch.float64))
    diff = s_hit - s_conf  # n_b (acc_b - conf_b)
    filled = count > 0
    safe = torch.where(filled, count, 1.0)
    l1 = diff.abs().sum(dim=1) / n
    l2 = torch.sqrt(torch.where(filled, diff * diff / safe, 0.0).sum(dim=1) / n)
    two = count >= 2
    acc, conf_b = s_hit / safe, s_conf / safe
    per_bin = (acc - conf_b) ** 2 - acc * (1 - acc) / torch.where(two, count - 1, 1.0)
    d = torch.where(two, count * per_bin, 0.0).sum(dim=1) / n
    return {"l1": l1, "l2": l2, "l2_debiased": torch.sqrt(d.clamp(min=0.0)), "l2_debiased_squared": d}


def _confidences(confidence, lo: float) -> torch.Tensor:
    c = torch.as_tensor(confidence, dtype=torch.float64)
    if c.is_complex() or not bool(torch.isfinite(c).all()):
        raise ValueError("confidence must hold finite real numbers")
    if c.numel() and (float(c.min()) < lo - 1e-12 or float(c.max()) > 1.0 + 1e-12):
        raise ValueError(
            f"confidence must lie in [1/C, 1] = [{lo:.4g}, 1], got values from {float(c.min()):.4g} to "
            f"{float(c.max()):.4g}"
        )
    return c


def linear_world(
    slope: float = 0.8, intercept: float | None = None, *, n_classes: int = 10, a: float = 4.0, b: float = 1.5
) -> CalibrationWorld:
    """A world with ``accuracy(c) = intercept + slope * c``; by default ``intercept = (1 - slope) / C``, so that
    ``accuracy(1/C) = 1/C``: chance-level predictions are calibrated and the over-confidence (``slope < 1``)
    grows with the confidence.

    >>> w = linear_world(slope=0.9, n_classes=10)
    >>> round(float(w.accuracy(torch.tensor(1.0))), 4)
    0.91
    """
    s = check_finite(slope, "slope")
    i = (1.0 - s) / check_int(n_classes, "n_classes", minimum=2, maximum=MAX_COUNT) if intercept is None else intercept
    return CalibrationWorld(n_classes=n_classes, a=a, b=b, curve="linear", intercept=i, slope=s)


def wave_world(
    amplitude: float = 0.6, periods: float = 2.0, *, n_classes: int = 10, a: float = 4.0, b: float = 1.5
) -> CalibrationWorld:
    """A world whose calibration curve winds around the diagonal (see the module docstring): the binned ECE of
    a few wide bins averages gaps of both signs and underestimates the true error, however many samples.

    >>> w = wave_world(amplitude=0.6, periods=4)
    >>> w.binned_error(5) < 0.5 * w.true_error()
    True
    """
    return CalibrationWorld(n_classes=n_classes, a=a, b=b, curve="wave", amplitude=amplitude, periods=periods)
