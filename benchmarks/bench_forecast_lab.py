"""Forecasting Lab update latency on its default world (Lorenz-96, 60 cases x 11 leads x 40 variables; the
ensembles of 31 members computed once per setting and kept).

- a move of the ``members`` slider (2..31 at random) takes a prefix of the cached physics ensemble and scores it
  at every lead (fair and standard CRPS, spread-skill, 11 rank histograms, 11 threshold reliabilities and Brier
  scores) for the forecaster and for the physics reference; the per-(ensemble, M) caches are cleared before
  every timed move, so each one computes (the worst case: a revisited M is a cache hit);
- a move of the ``lead`` slider (0..10) and of the ``variable`` slider (0..39): pure indexing of cached scores;
- all three again with the View built (matplotlib Agg: the observer redraws synchronously);
- the same members moves with a learned forecaster (gaussian-members): its scores and the physics reference's;
- the one-off cost of each forecaster's first visit (its ensemble of 31 members on the 60 cases, one torch
  thread, and its curves of every size);
- the physical floor of a lead move: the bare indexing of one lead and one fair CRPS over its points.

Target (issue 18): a Lab update without redraw, p95 <= 50 ms for members, lead and variable moves.
"""

from __future__ import annotations

import random
import time

import matplotlib

matplotlib.use("Agg")


from benchmarks._timing import median, p95, time_calls  # noqa: E402
from ensemble_lab.forecast import FORECASTERS, crps_ensemble  # noqa: E402
from ensemble_lab.labs.base import lab_work  # noqa: E402
from ensemble_lab.labs.forecast import MAX_MEMBERS, ForecastLab, ensemble_key  # noqa: E402

MOVES = 100
SCORE_CACHES = ("curves", "extremes")  # the Lab's per-(ensemble, M) @cached scores


def _timed_set(lab, **settings) -> float:
    start = time.perf_counter()
    ok = lab.set(**settings)
    elapsed = time.perf_counter() - start
    assert ok, lab.status
    return elapsed


def _moves(lab, name: str, low: int, high: int, seed: int, clear: bool = False) -> list[float]:
    rng = random.Random(seed)
    out = []
    while len(out) < MOVES:
        v = rng.randint(low, high)
        if v == getattr(lab.state, name):
            continue
        if clear:
            for cache in SCORE_CACHES:
                fn = lab.__dict__.get(cache)  # the per-instance lru_cache (labs/base.py ``cached``)
                if fn is not None:
                    fn.cache_clear()
        out.append(_timed_set(lab, **{name: v}))
    return out


def _all_moves(lab) -> dict[str, list[float]]:
    n_leads, n_vars = lab.world.n_leads, lab.world.n_variables
    return {
        "members": _moves(lab, "members", 2, MAX_MEMBERS, 1, clear=True),
        "lead": _moves(lab, "lead", 0, n_leads, 2),
        "variable": _moves(lab, "variable", 0, n_vars - 1, 3),
    }


def _first_visits(world) -> dict[str, tuple[float, float]]:
    """Per forecaster: (seconds of its first visit: its ensemble, its curves of every size and this size's scores,
    the physics reference cached once the physics was visited; the seconds per member the Lab measured)."""
    lab = ForecastLab(world, progress=False)  # opens on the physics at amplitude 0.1
    out = {"physics": (_timed_set(lab, amplitude=0.5), lab.result.costs["physics"]["seconds"])}
    for name in FORECASTERS[1:]:
        out[name] = (_timed_set(lab, forecaster=name), lab.result.costs[name]["seconds"])
    return out


def _floor(lab) -> float:
    """Median seconds of one lead's bare work: index the lead of a 20-member prefix, one fair CRPS mean."""
    x = lab.ensemble(ensemble_key("physics", "random", 0.1, -0.5, 0))
    y = lab.world.truth
    with lab_work():

        def one():
            return float(crps_ensemble(x[:20, :, 3], y[:, 3], fair=True, validate=False).mean())

        return median(time_calls(one, repeat=200, warmup=5))


def _row(what: str, xs: list[float], target: str) -> str:
    return f"| {what} | {1e3 * median(xs):.1f} ms | {1e3 * p95(xs):.1f} ms | {target} |"


def main() -> str:
    start = time.perf_counter()
    lab = ForecastLab(progress=False)
    opened = time.perf_counter() - start
    bare = _all_moves(lab)

    viewed = ForecastLab(lab.world, progress=False)
    built = time.perf_counter()
    viewed.view  # noqa: B018 - build the widgets and the figure once
    built = time.perf_counter() - built
    drawn = _all_moves(viewed)

    other = ForecastLab(lab.world, progress=False)
    assert other.set(forecaster="gaussian-members"), other.status
    learned = _moves(other, "members", 2, MAX_MEMBERS, 4, clear=True)
    first = _first_visits(lab.world)
    floor = _floor(lab)
    w = lab.world
    lines = [
        f"## Forecasting Lab (Lorenz-96 world: {w.n_cases} cases x {w.n_leads + 1} leads x {w.n_variables} "
        f"variables; ensembles of {MAX_MEMBERS} members cached; {MOVES} moves each)",
        "",
        "| what | median | p95 | target p95 |",
        "|---|---|---|---|",
        _row(
            "members (2..31) -> every lead's scores, forecaster and physics reference (caches cleared)",
            bare["members"],
            "50 ms",
        ),
        _row("members, gaussian-members -> its scores and the physics reference's (caches cleared)", learned, "50 ms"),
        _row("lead (0..10) -> numbers (indexing)", bare["lead"], "50 ms"),
        _row("variable (0..39) -> plume (indexing)", bare["variable"], "50 ms"),
        _row("members ... plus the View redrawn (Agg render)", drawn["members"], "-"),
        _row("lead ... plus the View redrawn (blit)", drawn["lead"], "-"),
        _row("variable ... plus the View redrawn (blit)", drawn["variable"], "-"),
        "",
        f"First visit of each forecaster (its ensemble of {MAX_MEMBERS} members on {w.n_cases} cases, random "
        "perturbations of 0.5, plus its CRPS and spread-skill curves of every size and this size's scores; one "
        "torch thread), once:",
        "",
        "| forecaster | first visit | its ensemble, seconds per member (measured by the Lab) |",
        "|---|---|---|",
        *(f"| {n} | {first[n][0]:.2f} s | {1e3 * first[n][1]:.1f} ms |" for n in FORECASTERS),
        "",
        "Physical floor of a lead move (one torch thread, float64): index one lead of a 20-member prefix and one "
        f"fair CRPS over its {w.n_cases * w.n_variables} points:",
        "",
        "| what | median | lead move median / it |",
        "|---|---|---|",
        f"| ens[:20, :, lead] + crps_ensemble(fair).mean() | {1e3 * floor:.2f} ms | "
        f"{median(bare['lead']) / floor:.2f}x |",
        "",
        f"Lab opened (world built, first ensemble and scores) in {opened:.2f} s; the View built in {built:.2f} s.",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
