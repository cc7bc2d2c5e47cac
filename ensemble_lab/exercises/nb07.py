"""The exercises of notebook 07 (ensemble forecasting): the fair CRPS of an ensemble (Ferro 2014) and the rank
histogram (Hamill 2001).  Expected answers come from ``forecast.crps_ensemble(..., fair=True)`` and
``forecast.rank_histogram``."""

from __future__ import annotations

import torch

from .. import forecast
from .checking import as_values, compare_values, describe_result, fmt
from .exercise import Case, Exercise, generator

__all__ = ["EXERCISES"]


def _forecast(
    g: torch.Generator, m: int, n: int, *, spread: float = 1.0, bias: float = 0.0, dtype=torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(M, N)`` members and ``(N,)`` observations of N points: around each point's centre, the observation
    draws a standard normal error, the members ``bias`` plus ``spread`` times one (``spread = 1``, ``bias = 0``:
    the observation behaves like one more member)."""
    centre = torch.randn(n, generator=g, dtype=torch.float64) * 2
    observations = centre + torch.randn(n, generator=g, dtype=torch.float64)
    members = centre + bias + spread * torch.randn(m, n, generator=g, dtype=torch.float64)
    return members.to(dtype), observations.to(dtype)


# ----------------------------------------------------------------------------------------------------------
# 07.1 the fair CRPS
# ----------------------------------------------------------------------------------------------------------


def my_fair_crps(members, observations):
    m = members.shape[0]
    skill = (members - observations).abs().mean(dim=0)  # (N,): mean_i |x_i - y|
    pairs = (members[:, None] - members[None]).abs().sum(dim=(0, 1))  # (N,): sum over ALL pairs (i, j)
    return skill - pairs / (2 * m * (m - 1))  # the fair CRPS; 2 M^2 here would give the standard one


def _crps_case(name: str, members: torch.Tensor, observations: torch.Tensor) -> Case:
    expected = forecast.crps_ensemble(members, observations, fair=True)
    return Case(name, (members, observations), expected, loose=members.dtype == torch.float32)


def _crps_cases(seed: int) -> list[Case]:
    out = []
    for i, (m, n, spread) in enumerate([(5, 200, 1.0), (10, 150, 0.6), (3, 100, 1.5)]):
        x, y = _forecast(generator("07.1", seed, i), m, n, spread=spread)
        out.append(_crps_case(f"random input {i + 1} of 3", x, y))
    g = generator("07.1", seed, 10)
    x, y = _forecast(g, 2, 80)
    out.append(_crps_case("two members (M = 2, the smallest fair ensemble)", x, y))
    _, y = _forecast(g, 1, 50)
    out.append(_crps_case("every member equal to its observation (the CRPS is 0)", y.expand(6, 50).clone(), y))
    x, y = _forecast(g, 1, 50)
    out.append(
        _crps_case(
            "identical members away from the observation (no spread: the CRPS is |x - y|)", x.expand(4, 50).clone(), y
        )
    )
    x, _ = _forecast(g, 5, 60)
    gap = torch.rand(60, generator=g, dtype=torch.float64) + 0.5
    above = torch.arange(60) % 2 == 0  # half the points above their largest member, half below the smallest
    y = torch.where(above, x.max(dim=0).values + gap, x.min(dim=0).values - gap)
    out.append(_crps_case("observations outside all the members (above the largest or below the smallest)", x, y))
    x, y = _forecast(g, 8, 120, dtype=torch.float32)
    out.append(_crps_case("float32 members and observations", x, y))
    return out


def _crps_compare(case: Case, got) -> str | None:
    want = case.expected
    members, observations = case.args
    m, n = members.shape
    per_point = f"a tensor of shape ({n},), one fair CRPS per point"
    t, reason, _ = as_values(got)
    if t is None:
        return f"expected {per_point}, got {reason}"
    if t.numel() == 1 and n > 1:
        value = float(t.reshape(()))
        text = f"expected {per_point}, got a number, {fmt(value)}"
        if compare_values(want.double().mean(), value, loose=case.loose) is None:
            text += (
                " (the mean over the points of the right values): return the CRPS of EVERY point, averaging over "
                "the members only (dim=0)"
            )
        return text
    if tuple(t.shape) == (m,) and m != n:
        return (
            f"expected {per_point}, got shape ({m},), one number per MEMBER: the members are the first axis "
            "(dim=0); average and sum over it, and keep the N points"
        )
    problem = compare_values(want, got, loose=case.loose)
    if problem is None or tuple(t.shape) != (n,):
        return problem
    x, y = members.double(), observations.double()
    skill = (x - y).abs().mean(dim=0)  # mean_i |x_i - y|
    spread = skill - want.double()  # the package's pair term, sum_{i,j} |x_i - x_j| / (2 M (M - 1))
    fair, standard, half = f"2 M (M - 1) = {2 * m * (m - 1)}", f"2 M^2 = {2 * m * m}", f"M (M - 1) = {m * (m - 1)}"
    known = [
        (
            forecast.crps_ensemble(members, observations, fair=False),
            f" (that is the standard CRPS, whose pair term is divided by {standard}; the fair one divides the pair "
            f"term by {fair})",
        ),
        (
            skill - 2 * spread,
            f" (the pair term is twice too large: divide the sum over all pairs (i, j) by {fair}, not by {half}; "
            "mind the 1/2)",
        ),
        (
            skill - spread / 2,
            " (the pair term is half too small: the sum runs over ALL pairs (i, j), so each pair of members counts "
            "twice, |x_i - x_j| and |x_j - x_i|)",
        ),
        (
            skill,
            f" (that is mean_i |x_i - y| alone: subtract the spread term, the sum over all pairs (i, j) of "
            f"|x_i - x_j| divided by {fair})",
        ),
        (skill + spread, " (the spread term is added: the fair CRPS SUBTRACTS it from mean_i |x_i - y|)"),
    ]
    for alternative, why in known:
        if compare_values(alternative, got, loose=case.loose) is None:
            return problem + why
    return problem + f" (per point: mean_i |x_i - y| - sum_(i,j) |x_i - x_j| / ({fair}), over all M members i, j)"


FAIR_CRPS = Exercise(
    id="07.1",
    title="The fair CRPS",
    function="my_fair_crps",
    params=("members", "observations"),
    task=(
        "Given an ensemble forecast members, shape (M, N) (M >= 2 members first, N points), and the observations, "
        "shape (N,), return the fair CRPS of every point, shape (N,): mean_i |x_i - y| - 1/(2 M (M - 1)) "
        "sum_{i,j} |x_i - x_j|, where i and j both run over all M members (each pair of different members counts "
        "twice, a member with itself adds 0).  The standard CRPS divides the pair term by 2 M^2 instead; the fair "
        "one is unbiased for the CRPS of the distribution the members are drawn from (Ferro 2014), which is why "
        "WeatherBench 2 and ECMWF report it.  The checker compares with "
        "ensemble_lab.forecast.crps_ensemble(members, observations, fair=True), point by point."
    ),
    hints=(
        "Two terms per point: how far the members are from the observation, minus half the average distance "
        "between two DIFFERENT members (the ensemble's spread).  Both keep the points axis; only the members "
        "axis is reduced.",
        "members - observations broadcasts (M, N) against (N,): average its absolute value over dim=0.  "
        "members[:, None] - members[None] is (M, M, N), every pair (i, j): sum its absolute value over the first "
        "two axes and divide by 2 M (M - 1) (2 M^2 would give the standard CRPS).",
        "m = members.shape[0]; skill = (members - observations).abs().mean(0); "
        "pairs = (members[:, None] - members[None]).abs().sum((0, 1)); return skill - pairs / (2 * m * (m - 1))",
    ),
    reference=my_fair_crps,
    cases=_crps_cases,
    compare=_crps_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 07.2 the rank histogram
# ----------------------------------------------------------------------------------------------------------


def my_rank_histogram(members, observations):
    m = members.shape[0]
    ranks = (members < observations).sum(dim=0)  # (N,): how many members lie below each observation
    return torch.bincount(ranks, minlength=m + 1)  # (M + 1,): bin k counts the observations of rank k


def _rank_case(name: str, members: torch.Tensor, observations: torch.Tensor) -> Case:
    if bool((members == observations).any()):  # pragma: no cover - the cases are built without ties
        raise ValueError(f"the case {name!r} has a member equal to its observation (a tie)")
    expected = forecast.rank_histogram(members, observations)
    return Case(name, (members, observations), expected, loose=members.dtype == torch.float32)


def _random_rank_case(name: str, seed: int, case: int, m: int, n: int, **kwargs) -> Case:
    for attempt in range(100):  # redraw in the (float32: unlikely, float64: impossible) event of a tie
        x, y = _forecast(generator("07.2", seed, case + 100 * attempt), m, n, **kwargs)
        if not bool((x == y).any()):
            break
    return _rank_case(name, x, y)


def _rank_cases(seed: int) -> list[Case]:
    out = []
    for i, (m, n) in enumerate([(5, 200), (10, 300), (3, 120)]):
        out.append(_random_rank_case(f"random input {i + 1} of 3", seed, i, m, n))
    out.append(_random_rank_case("an under-dispersed ensemble (a U shape)", seed, 10, 6, 200, spread=0.25))
    g = generator("07.2", seed, 11)
    x, _ = _forecast(g, 4, 50)
    y = x.max(dim=0).values + torch.rand(50, generator=g, dtype=torch.float64) + 0.1
    out.append(_rank_case("a biased ensemble (every observation above all its members: all in the last bin)", x, y))
    y = x.min(dim=0).values - torch.rand(50, generator=g, dtype=torch.float64) - 0.1
    out.append(_rank_case("a biased ensemble (every observation below all its members: all in bin 0)", x, y))
    out.append(_random_rank_case("a single member (M = 1)", seed, 12, 1, 80))
    x = torch.tensor([[0.3], [-1.2], [2.5], [0.9], [-0.4]], dtype=torch.float64)
    out.append(_rank_case("a single point (N = 1)", x, torch.tensor([0.5], dtype=torch.float64)))
    out.append(_random_rank_case("float32 members and observations", seed, 13, 7, 250, dtype=torch.float32))
    return out


def _counts(t: torch.Tensor) -> str:
    return "[" + ", ".join(fmt(v) for v in t.tolist()) + "]"


def _numbers(k: int) -> str:
    return "1 number" if k == 1 else f"{k} numbers"


def _rank_compare(case: Case, got) -> str | None:
    want = case.expected
    members, observations = case.args
    m, n = members.shape
    wanted = f"M + 1 = {m + 1} integer counts (shape ({m + 1},)) such as {want.tolist()}"
    t, reason, _ = as_values(got)
    if t is None:
        return f"expected {wanted}, got {reason}"
    if t.ndim != 1:
        return f"expected {wanted}, got {describe_result(got) if t.ndim == 0 else f'shape {tuple(t.shape)}'}"
    t = t.double()
    ranks = (members < observations).sum(dim=0).double()  # no ties: the rank of every observation
    size = t.shape[0]
    if size != m + 1:
        if size == n and torch.equal(t, ranks):
            return (
                f"expected {wanted}, got shape ({n},): the rank of every observation; count them: bin k holds "
                "how many observations have exactly k members below them (torch.bincount(ranks, minlength=M + 1))"
            )
        if size == m:
            return (
                f"expected {wanted}, got {_numbers(m)} {_counts(t)}: M bins instead of M + 1; the ranks run from 0 "
                f"(below all M members) to M = {m} (above all of them), so the histogram has M + 1 bins"
            )
        if size < m + 1 and torch.equal(t, want[:size].double()):
            return (
                f"expected {wanted}, got {_numbers(size)} {_counts(t)}: the last bins are missing because they are "
                "empty; torch.bincount returns max(rank) + 1 bins unless told minlength=M + 1, and the histogram "
                "always has M + 1 bins, empty ones included"
            )
        shown = f" {_counts(t)}" if size <= 12 else ""
        return (
            f"expected {wanted}, got {_numbers(size)}{shown}: one count per rank 0 .. M = {m}, so M + 1 of them "
            "(a rank counts the members below an observation: sum the comparisons over the members, dim=0)"
        )
    if not bool(torch.isfinite(t).all()):
        return f"expected {wanted}, got {_counts(t)}"
    if n > 1 and torch.allclose(t * n, want.double(), rtol=0, atol=1e-6 * n):
        return (
            f"expected {want.tolist()}, got {_counts(t)}: counts, not frequencies (they sum to N = {n}); "
            "return how many observations fall in each bin, without dividing by N"
        )
    if not bool((t == t.round()).all()):
        bad = t[t != t.round()][0]
        return f"expected {wanted}, got values such as {fmt(bad)} (counts are whole numbers)"
    if torch.equal(t, want.double()):
        return None
    if torch.equal(t, want.flip(0).double()):
        return (
            f"expected {want.tolist()}, got {_counts(t)}: the bins are reversed; bin k counts the observations "
            "with exactly k members strictly BELOW them (counting the members above gives M - k)"
        )
    k = int((t != want.double()).nonzero()[0])
    text = f"expected {want.tolist()}, got {_counts(t)}: bin {k} holds {int(want[k])} observations, got {fmt(t[k])}"
    total = float(t.sum())
    if total != n:
        text += f" (the counts sum to {fmt(total)}, not N = {n}: every observation falls in exactly one bin)"
    else:
        text += " (bin k counts the observations with exactly k members strictly below them)"
    return text


RANK_HISTOGRAM = Exercise(
    id="07.2",
    title="The rank histogram",
    function="my_rank_histogram",
    params=("members", "observations"),
    task=(
        "Given an ensemble forecast members, shape (M, N) (M >= 1 members first, N points), and the observations, "
        "shape (N,), return the rank histogram: M + 1 integer counts, shape (M + 1,), where bin k (k = 0 .. M) "
        "counts the observations that have exactly k of their members strictly below them; the counts sum to N.  "
        "The values are continuous and the checker's inputs have NO ties (no member equals its observation), so "
        "< and <= count the same here.  A flat histogram means the observation behaves like one more member, a "
        "U shape an under-dispersed ensemble, a slope a biased one.  The checker compares with "
        "ensemble_lab.forecast.rank_histogram(members, observations) (its random tie-breaking does not enter "
        "without ties)."
    ),
    hints=(
        "First the rank of every observation: how many of its M members lie below it, a number from 0 to M.  "
        "Then count how many observations have each rank, empty ranks included.",
        "(members < observations) broadcasts to an (M, N) True/False tensor; summing it over the members (dim=0) "
        "gives the ranks, shape (N,).  torch.bincount counts them, but returns only max(rank) + 1 bins unless "
        "given minlength.",
        "ranks = (members < observations).sum(dim=0); return torch.bincount(ranks, minlength=members.shape[0] + 1)",
    ),
    reference=my_rank_histogram,
    cases=_rank_cases,
    compare=_rank_compare,
)

EXERCISES = (FAIR_CRPS, RANK_HISTOGRAM)
