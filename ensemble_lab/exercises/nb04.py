"""The exercises of notebook 04 (cascades): the window's edges and who is passed on.  Expected answers come from
``cascades.window_edges`` and ``cascades.window_cascade``."""

from __future__ import annotations

import math

import torch

from .. import cascades
from .checking import as_values, compare_scalar, fmt
from .exercise import Case, Exercise, generator

__all__ = ["EXERCISES"]


# ----------------------------------------------------------------------------------------------------------
# 04.1 the window
# ----------------------------------------------------------------------------------------------------------


def my_window(val_scores, tau, q):
    s = torch.sort(val_scores.double()).values
    m = len(s)
    levels = torch.arange(1, m + 1, dtype=torch.float64) / m  # F at each sorted score: the fraction <= it
    u = float((s <= tau).sum()) / m  # F(tau)

    def quantile(p):  # Q(p): the smallest score whose level reaches p; the ends of the line beyond (0, 1)
        if p <= 0:
            return -math.inf
        if p >= 1:
            return math.inf
        return float(s[int((levels < p).sum())])

    return quantile(u - q), quantile(u + q)


def _window_expected(v: torch.Tensor, tau: float, q: float) -> tuple[float, float]:
    lo, hi = cascades.window_edges(tau, q, val_scores=v)
    return float(lo[0]), float(hi[0])


def _window_cases(seed: int) -> list[Case]:
    out = []
    # q * M is never an integer here, so no quantile level lands exactly on k / M (no rounding question)
    for i, (tau, q) in enumerate([(0.7, 0.1234), (0.55, 0.0777), (0.85, 0.2111)]):
        g = generator("04.1", seed, i)
        v = torch.rand(200, generator=g, dtype=torch.float64) ** 0.4  # skewed towards 1, like confidences
        out.append(Case(f"random input {i + 1} of 3", (v, tau, q), _window_expected(v, tau, q)))
    g = generator("04.1", seed, 10)
    v = torch.rand(200, generator=g, dtype=torch.float64)
    tau = float(v[17])
    out.append(Case("a threshold equal to a validation score", (v, tau, 0.1234), _window_expected(v, tau, 0.1234)))
    vt = torch.round(torch.rand(200, generator=g, dtype=torch.float64) * 20) / 20  # multiples of 0.05: ties
    out.append(Case("tied validation scores", (vt, 0.6, 0.0777), _window_expected(vt, 0.6, 0.0777)))
    out.append(Case("a window reaching above the top score", (v, 0.95, 0.1234), _window_expected(v, 0.95, 0.1234)))
    out.append(Case("a window reaching below the lowest score", (v, 0.04, 0.1234), _window_expected(v, 0.04, 0.1234)))
    out.append(Case("half-width q = 0 (an empty window)", (v, 0.5, 0.0), _window_expected(v, 0.5, 0.0)))
    return out


def _window_compare(case: Case, got) -> str | None:
    if isinstance(got, (tuple, list)) and len(got) == 2:
        parts = got
    else:
        t, reason, _ = as_values(got)
        if t is None or t.numel() != 2:
            shown = reason if t is None else "a number" if t.ndim == 0 else f"shape {tuple(t.shape)}"
            return f"expected a pair (lo, hi) of numbers, got {shown}"
        parts = t.reshape(-1)
    for name, want, value in zip(("lo", "hi"), case.expected, parts, strict=True):
        problem = compare_scalar(want, value, what=name)
        if problem is not None:
            if math.isinf(want) and "expected" in problem:
                problem += (
                    f" (the window reaches beyond the validation scores: {name} is {fmt(want)}, the window is open "
                    "on that side)"
                )
            return problem
    return None


WINDOW = Exercise(
    id="04.1",
    title="The window",
    function="my_window",
    params=("val_scores", "tau", "q"),
    task=(
        "Given the first stage's validation scores val_scores, shape (M,), the threshold tau and the half-width "
        "q (in quantile units, 0 <= q <= 0.5), return the window's edges (lo, hi) as two numbers.  With F(t) the "
        "fraction of validation scores <= t and Q(p) the smallest validation score s with F(s) >= p (an order "
        "statistic, no interpolation): u = F(tau), lo = Q(u - q), hi = Q(u + q); a level p <= 0 gives "
        "-inf and p >= 1 gives +inf (the window is then open on that side).  The checker compares with "
        "ensemble_lab.cascades.window_edges(tau, q, val_scores)."
    ),
    hints=(
        "Work in quantile space: find tau's level u (a fraction of the validation scores), move q down and up "
        "from it, and read the validation scores at those two levels.",
        "Sort the scores; the k-th smallest (k = 1 .. M) sits at level k / M.  u counts the scores <= tau (ties "
        "included).  Q(p) is the first sorted score whose level k / M is >= p; torch.quantile interpolates "
        "between scores, which is not this rule.",
        "s = sort(val_scores); levels = arange(1, M + 1) / M; u = (s <= tau).sum() / M; "
        "Q(p) = -inf if p <= 0, inf if p >= 1, else s[(levels < p).sum()]; return Q(u - q), Q(u + q)",
    ),
    reference=my_window,
    cases=_window_cases,
    compare=_window_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 04.2 who is passed on
# ----------------------------------------------------------------------------------------------------------


def my_passed_on(scores, lo, hi):
    return (lo < scores) & (scores < hi)  # the window is open: a score on an edge exits


def _passed_expected(s: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Who the package's two-stage window cascade passes on, for stage scores ``s`` (``lo``, ``hi`` dyadic, so
    that ``threshold -+ half_width`` gives them back exactly)."""
    n = s.shape[0]
    first = torch.stack([s, s - 1.0], dim=1)  # max logit = s exactly
    z = torch.stack([first, torch.zeros(n, 2, dtype=s.dtype)])  # (K=2, N, C=2)
    r = cascades.window_cascade(z, threshold=(lo + hi) / 2, half_width=(hi - lo) / 2, score="max_logit")
    return r.exit_stage == 1


def _passed_cases(seed: int) -> list[Case]:
    out = []
    for i, (lo, hi) in enumerate([(0.25, 0.75), (0.375, 0.625), (0.5, 0.9375)]):
        g = generator("04.2", seed, i)
        s = torch.rand(200, generator=g, dtype=torch.float64)
        out.append(Case(f"random input {i + 1} of 3", (s, lo, hi), _passed_expected(s, lo, hi)))
    g = generator("04.2", seed, 10)
    s = torch.tensor([0.1, 0.25, 0.3, 0.5, 0.75, 0.8, 0.25, 0.75], dtype=torch.float64)
    out.append(Case("scores exactly on the window's edges", (s, 0.25, 0.75), _passed_expected(s, 0.25, 0.75)))
    s = torch.tensor([0.2, 0.5, 0.5, 0.7], dtype=torch.float64)
    out.append(Case("an empty window (lo == hi)", (s, 0.5, 0.5), _passed_expected(s, 0.5, 0.5)))
    s = torch.rand(50, generator=g, dtype=torch.float64) * 0.5 + 0.25
    out.append(Case("a window that holds every score", (s, 0.125, 0.875), _passed_expected(s, 0.125, 0.875)))
    return out


def _passed_compare(case: Case, got) -> str | None:
    want = case.expected
    t, reason, _ = as_values(got)
    if t is None:
        return f"expected a True/False tensor of shape {tuple(want.shape)}, got {reason}"
    if tuple(t.shape) != tuple(want.shape):
        shown = "a number" if t.ndim == 0 else f"shape {tuple(t.shape)}"
        return f"expected a True/False tensor of shape {tuple(want.shape)}, got {shown}"
    if t.dtype != torch.bool:
        if not bool(((t == 0) | (t == 1)).all()):
            return f"expected True/False (or 0/1) for every sample, got values such as {fmt(t[(t != 0) & (t != 1)][0])}"
        t = t == 1
    wrong = (t != want).nonzero().flatten()
    if wrong.numel() == 0:
        return None
    i = int(wrong[0])
    s, lo, hi = case.args
    score = float(s[i])
    where = " (a score on an edge exits: the window is open)" if score in (lo, hi) else ""
    return (
        f"{wrong.numel()} of {want.shape[0]} samples differ, the first at [{i}]: score {fmt(score)} with "
        f"lo = {fmt(lo)}, hi = {fmt(hi)}: expected {bool(want[i])}, got {bool(t[i])}{where}"
    )


PASSED_ON = Exercise(
    id="04.2",
    title="Who is passed on",
    function="my_passed_on",
    params=("scores", "lo", "hi"),
    task=(
        "Given the stage scores of N samples, shape (N,), and the window's edges lo <= hi, return a True/False "
        "tensor, shape (N,), True for the samples passed on to the next member: those whose score lies strictly "
        "inside the window, lo < score < hi (the window is open: a score equal to an edge exits, and lo == hi "
        "passes no one on).  The checker compares with who ensemble_lab.cascades.window_cascade passes on."
    ),
    hints=(
        "A sample is passed on when its accept/reject decision is uncertain: its score is inside the window.",
        "Two comparisons combined with & (elementwise and); mind whether each comparison is strict.",
        "return (lo < scores) & (scores < hi)",
    ),
    reference=my_passed_on,
    cases=_passed_cases,
    compare=_passed_compare,
)

EXERCISES = (WINDOW, PASSED_ON)
