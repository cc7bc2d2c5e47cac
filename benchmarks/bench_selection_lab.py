"""Selection Lab update latency on the REAL model library (32 models x 5,000 validation and 5,000 test images x
10 classes) and winning-team world (12 sources, 3 targets, 298 teams), both read from the cache (built once if
missing: about 15 s and 30 s).

- a move of the ``steps`` slider (1..50 at random) slides along the one cached 50-step path
  (``SelectionResult.prefix``), then scores the prefix, the top-k/uniform/best-single rows (cached per k) and the
  decomposition on the test split (the Lab keeps each step's result; the per-step cache is cleared before every
  timed move, so each one computes);
- a move among ``estimator``/``target``/``team_size``/``label_seed`` (one of them, to another value, at random)
  reads the winning-team tables, all visited once first (cached, as after a minute of use), and reuses the
  library half, which it does not change;
- both again with the View built (matplotlib Agg: the observer redraws synchronously);
- the one-off cost of the first update for a new (metric, bagging) at 5,000 hill-climbing images: the Lab's caches
  cleared before each of 3 runs (median), so forward selection, the baselines and the uniform decomposition run;
- the physical floor of a steps move: the bare tensor work of one update, the count-weighted ensemble
  ``tensordot(counts, (K, N, C) test probabilities)`` in float64 and one NLL, on one torch thread as the Lab runs.

Target (issue 17): a Lab update without redraw, p95 <= 50 ms.
"""

from __future__ import annotations

import random
import time

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from benchmarks._timing import median, p95, time_calls  # noqa: E402
from ensemble_lab.artefacts.library import model_library  # noqa: E402
from ensemble_lab.artefacts.transfer_world import ESTIMATORS, LABEL_SEEDS, TEAM_SIZES, transfer_world  # noqa: E402
from ensemble_lab.labs import SelectionLab  # noqa: E402

MOVES, RUNS, HILL = 100, 3, 5000
CACHES = (
    "_path",
    "_baselines",
    "_fixed_rows",
    "_uniform_decomposition",
    "_library_part",
)  # the Lab's @cached library half


def _timed_set(lab, **settings) -> float:
    start = time.perf_counter()
    ok = lab.set(**settings)
    elapsed = time.perf_counter() - start
    assert ok, lab.status
    return elapsed


def _steps_moves(lab) -> list[float]:
    rng = random.Random(1)
    out = []
    while len(out) < MOVES:
        v = rng.randint(1, 50)
        if v != lab.state.steps:
            part = lab.__dict__.get("_library_part")
            if part is not None:  # every move computes its step (a revisited step would be a cache hit)
                part.cache_clear()
            out.append(_timed_set(lab, steps=v))
    return out


def _team_choices(lab) -> dict[str, tuple]:
    return {
        "estimator": tuple(ESTIMATORS),
        "target": tuple(lab.world.targets),
        "team_size": TEAM_SIZES,
        "label_seed": LABEL_SEEDS,
    }


def _warm_team_tables(lab) -> None:
    for target in lab.world.targets:
        for seed in LABEL_SEEDS:
            for size in TEAM_SIZES:
                assert lab.set(target=target, label_seed=seed, team_size=size), lab.status
    assert lab.set(target=lab.world.targets[0], label_seed=0, team_size=2), lab.status


def _team_moves(lab) -> list[float]:
    rng = random.Random(2)
    choices = _team_choices(lab)
    out = []
    for _ in range(MOVES):
        name = rng.choice(sorted(choices))
        value = rng.choice([v for v in choices[name] if v != getattr(lab.state, name)])
        out.append(_timed_set(lab, **{name: value}))
    return out


def _clear(lab) -> None:
    for name in CACHES:
        fn = lab.__dict__.get(name)  # the per-instance lru_cache (see labs/base.py ``cached``)
        if fn is not None:
            fn.cache_clear()


def _first_update(lab, metric: str, bagging: bool) -> float:
    """Median over RUNS of the first update to (metric, bagging) with the Lab's caches cleared."""
    times = []
    for _ in range(RUNS):
        assert lab.set(metric="nll", bagging=False, hill_size=100), lab.status  # off the measured setting
        _clear(lab)
        times.append(_timed_set(lab, metric=metric, bagging=bagging, hill_size=HILL))
    return median(times)


def _floor(library) -> tuple[float, float]:
    """Median seconds of the bare work of one steps move: (count-weighted ensemble, + one NLL)."""
    p = library.probs["test"].double().contiguous()
    y = library.labels["test"]
    counts = torch.zeros(p.shape[0], dtype=torch.int64)
    counts[torch.arange(0, p.shape[0], 3)] = torch.arange(1, 12)  # 11 distinct models, 66 additions
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:

        def ensemble():
            c = counts.double()
            return torch.tensordot(c, p, dims=1) / c.sum()

        def ensemble_and_nll():
            e = ensemble()
            return float(-torch.log(e.gather(1, y[:, None]).clamp_min(1e-300)).mean())

        only = median(time_calls(ensemble, repeat=200, warmup=5))
        both = median(time_calls(ensemble_and_nll, repeat=200, warmup=5))
    finally:
        torch.set_num_threads(threads)
    return only, both


def _row(what: str, xs: list[float], target: str) -> str:
    return f"| {what} | {1e3 * median(xs):.1f} ms | {1e3 * p95(xs):.1f} ms | {target} |"


def main() -> str:
    start = time.perf_counter()
    library, world = model_library(progress=False), transfer_world(progress=False)
    loaded = time.perf_counter() - start

    lab = SelectionLab(library, world)
    steps = _steps_moves(lab)
    _warm_team_tables(lab)
    team = _team_moves(lab)

    viewed = SelectionLab(library, world)
    built = time.perf_counter()
    viewed.view  # noqa: B018 - build the widgets and the figure once
    built = time.perf_counter() - built
    steps_view = _steps_moves(viewed)
    _warm_team_tables(viewed)
    team_view = _team_moves(viewed)

    fresh = SelectionLab(library, world)
    first = {(m, b): _first_update(fresh, m, b) for m in ("nll", "brier", "ece", "error") for b in (False, True)}

    only, both = _floor(library)
    k, n, c = library.probs["test"].shape
    lines = [
        f"## Selection Lab (real library: K = {k} models, {HILL} hill-climbing and {n} test images, C = {c}; "
        f"real winning-team world: {len(world.sources)} sources, {len(world.targets)} targets; {MOVES} moves each)",
        "",
        "| what | median | p95 | target p95 |",
        "|---|---|---|---|",
        _row("steps slider (1..50) -> numbers, table, decomposition", steps, "50 ms"),
        _row("estimator / target / team size / label draw -> numbers (tables cached)", team, "50 ms"),
        _row("steps slider ... plus the View redrawn (Agg render)", steps_view, "-"),
        _row("estimator / target / team size / label draw ... plus the View redrawn", team_view, "-"),
        "",
        f"First update for a new (metric, bagging) at {HILL} hill-climbing images, the Lab's caches cleared "
        f"(forward selection, {50} steps, test split scored along the path; baselines; uniform decomposition), "
        f"median of {RUNS}:",
        "",
        "| metric | one path | 20 bags of half the library |",
        "|---|---|---|",
        *(
            f"| {m} | {1e3 * first[(m, False)]:.0f} ms | {1e3 * first[(m, True)]:.0f} ms |"
            for m in ("nll", "brier", "ece", "error")
        ),
        "",
        "Physical floor of a steps move (one torch thread, float64): the count-weighted ensemble of the "
        f"({k}, {n}, {c}) test probabilities, and one NLL on it:",
        "",
        "| what | median | steps move median / it |",
        "|---|---|---|",
        f"| tensordot(counts, probs) | {1e3 * only:.2f} ms | {median(steps) / only:.0f}x |",
        f"| ... + NLL | {1e3 * both:.2f} ms | {median(steps) / both:.0f}x |",
        "",
        f"Library and world loaded from the cache in {loaded:.2f} s; the View built in {built:.2f} s.",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
