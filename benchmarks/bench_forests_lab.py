"""Forests Lab update latency (one torch thread, ``lab_work()``): the Lab's compute for a control move against the
bare smoother-weights work it needs, side by side in one run.

- a move of ``query_x`` (and ``query_y`` in 2-D): one row of the cached weights of every grid point;
- a move of ``n_trees`` (1..100 at random) with the per-(recipe, k) cache cleared before every timed move (the
  worst case; a revisited k is a cache hit): the weights of the first k trees at every point the Lab shows (one
  sparse product), the predictions, the effective parameters at each distance, the excess errors;
- a move of ``distance``: indexing;
- all of them again with the View built (matplotlib Agg: the observer redraws synchronously);
- the bare work: ``weights_of_leaves(leaves, k, sparse=True)`` of the cached leaves (what an n_trees move needs at
  least) and ``smoother_weights(forest, x_train, query, n_trees=k)`` for one query from scratch (what a Lab
  without the cached leaves would do per query move);
- the one-off cost of a refit (a new recipe: fit, leaves, per-tree numbers) and of the mechanisms.

Target (issue 19): p95 <= 50 ms for a query or n_trees move, without redraw.
"""

from __future__ import annotations

import random
import time

import matplotlib

matplotlib.use("Agg")

from benchmarks._timing import median, p95, time_calls  # noqa: E402
from ensemble_lab.forests import smoother_weights  # noqa: E402
from ensemble_lab.forests.smoother import weights_of_leaves  # noqa: E402
from ensemble_lab.labs.base import lab_work  # noqa: E402
from ensemble_lab.labs.forests import AXIS, DISTANCES, ForestsLab, fit_key  # noqa: E402

MOVES = 100


def _timed_set(lab, **settings) -> float:
    start = time.perf_counter()
    ok = lab.set(**settings)
    elapsed = time.perf_counter() - start
    assert ok, lab.status
    return elapsed


def _moves(lab, name: str, values, seed: int, clear: bool = False) -> list[float]:
    rng = random.Random(seed)
    out = []
    while len(out) < MOVES:
        v = rng.choice(values)
        if v == getattr(lab.state, name):
            continue
        if clear:
            lab.__dict__["prefix"].cache_clear()  # the per-instance lru_cache (labs/base.py ``cached``)
            lab.prefix(fit_key(lab.state), 1)  # tree 0 stays cached in use: it does not depend on n_trees
        out.append(_timed_set(lab, **{name: v}))
    return out


def _all_moves(lab) -> dict[str, list[float]]:
    out = {
        "query_x": _moves(lab, "query_x", AXIS, 1),
        "n_trees": _moves(lab, "n_trees", list(range(1, 101)), 2, clear=True),
        "distance": _moves(lab, "distance", DISTANCES, 3),
    }
    if lab.state.problem == "diagonal":
        out["query_y"] = _moves(lab, "query_y", AXIS, 4)
    return out


def _bare(lab) -> dict[str, float]:
    f = lab.fit(fit_key(lab.state))
    rng = random.Random(5)
    q = f.points[:1].numpy()
    with lab_work():
        prefix = median(time_calls(lambda: weights_of_leaves(f.leaves, rng.randint(1, 100), sparse=True), repeat=50))
        one = median(time_calls(lambda: smoother_weights(f.forest, f.x, q, n_trees=rng.randint(1, 100)), repeat=50))
    return {"prefix": prefix, "one query": one}


def _row(what: str, xs: list[float], target: str) -> str:
    return f"| {what} | {1e3 * median(xs):.2f} ms | {1e3 * p95(xs):.2f} ms | {target} |"


def main() -> str:
    lines = [f"## Forests Lab (a 100-tree forest fit once per recipe; n_trees a prefix; {MOVES} moves each)", ""]
    lines += ["| what | median | p95 | target p95 |", "|---|---|---|---|"]
    once = []
    for problem in ("sine", "diagonal"):
        start = time.perf_counter()
        lab = ForestsLab(progress=False, state=None)
        if problem == "diagonal":
            assert lab.set(problem="diagonal"), lab.status
        opened = time.perf_counter() - start
        moves = _all_moves(lab)
        bare = _bare(lab)
        viewed = ForestsLab(progress=False)
        assert viewed.set(problem=problem), viewed.status
        viewed.view  # noqa: B018 - build the widgets and the figure once
        drawn = _all_moves(viewed)
        refit = [_timed_set(lab, min_samples_leaf=leaf) for leaf in (2, 5, 10, 20)]
        start = time.perf_counter()
        assert lab.set(mechanisms=True), lab.status
        mech = time.perf_counter() - start
        n = lab.result.n_train
        for name in moves:
            what = {"query_x": "query x", "query_y": "query y", "n_trees": "n_trees (1..100, cache cleared)"}
            lines.append(_row(f"{problem}: {what.get(name, name)} -> result", moves[name], "50 ms"))
        for name in drawn:
            lines.append(_row(f"{problem}: {name} ... plus the View redrawn (Agg)", drawn[name], "-"))
        lines.append(
            f"| {problem}: bare weights_of_leaves(leaves, k) at all {lab.fit(fit_key(lab.state)).points.shape[0]} "
            f"points | {1e3 * bare['prefix']:.2f} ms | n_trees move median / it: "
            f"{median(moves['n_trees']) / bare['prefix']:.2f}x | - |"
        )
        lines.append(
            f"| {problem}: bare smoother_weights(forest, x, one query, n_trees=k) from scratch | "
            f"{1e3 * bare['one query']:.2f} ms | it / query move median: "
            f"{bare['one query'] / median(moves['query_x']):.1f}x | - |"
        )
        once.append(
            f"{problem} (n = {n}): Lab opened in {opened:.2f} s; a refit (new leaf size) median "
            f"{median(refit):.2f} s, max {max(refit):.2f} s; the mechanisms (once per recipe) {mech:.1f} s."
        )
    lines += ["", *once]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
