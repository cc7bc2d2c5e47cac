"""Smoother weights of a random forest (ensemble_lab.forests.smoother_weights): 500 trees, 2,000 training inputs,
2,000 queries, d = 5, float64 weights.

Side by side in one run:

- ours: :func:`smoother_weights` (one pass over the trees for the leaves, then ONE sparse product: a
  ``(queries, leaves of all trees)`` one-hot times a ``(leaves, training points)`` matrix of ``count / leaf
  weight``), for fully grown trees and for trees with leaves of >= 20 points (denser weights);
- the per-tree Python loop the authors' code uses (``create_S_from_tree``/``create_S_from_forest`` in
  github.com/AliciaCurth/understanding-random-forests): per tree, the dense ``(queries, training)`` matrix of leaf
  co-membership times the bootstrap counts, row-normalised, summed over the trees;
- the floor: the bare ``forest.apply`` of the training inputs and of the queries (the leaves any method needs).

Values are compared (max abs difference of the weight matrices), and ``S @ y`` with ``forest.predict``.  One
thread everywhere (``n_jobs=1`` for ``apply``, one torch thread), so the ratios compare algorithms.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from sklearn.ensemble import RandomForestRegressor

from benchmarks._timing import median, time_calls
from ensemble_lab.forests import smoother_weights

T, N, Q, D = 500, 2_000, 2_000, 5


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(N, D))
    y = np.sin(4 * x[:, 0]) + x[:, 1] ** 2 + 0.5 * rng.normal(size=N)
    return x, y, rng.uniform(size=(Q, D))


def _per_tree_loop(forest, x, xq):
    """The authors' construction, dense per tree (counts from the public estimators_samples_)."""
    total = np.zeros((len(xq), len(x)))
    for tree, idx in zip(forest.estimators_, forest.estimators_samples_, strict=True):
        counts = np.bincount(idx, minlength=len(x))
        leaf_train = tree.apply(x.astype(np.float32))
        leaf_query = tree.apply(xq.astype(np.float32))
        s = (leaf_query[:, None] == leaf_train[None, :]) * counts
        total += s / s.sum(axis=1, keepdims=True)
    return total / len(forest.estimators_)


def _floor(forest, x, xq):
    forest.apply(x)
    forest.apply(xq)


def _row(name, t, ref, diff, note=""):
    ratio = "1" if ref is None else f"{t / ref:.2f}"
    d = "-" if diff is None else f"{diff:.1e}"
    return f"| {name} | {t:.2f} s | {ratio} | {d} | {note} |"


def main() -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _main()
    finally:
        torch.set_num_threads(threads)


def _main() -> str:
    load = os.getloadavg()[0]
    x, y, xq = _data()
    rows = []
    for label, kw in (("fully grown", {}), ("min_samples_leaf=20", {"min_samples_leaf": 20})):
        forest = RandomForestRegressor(n_estimators=T, random_state=0, n_jobs=1, **kw).fit(x, y)
        ours = smoother_weights(forest, x, xq).numpy()
        pred_diff = float(np.abs(ours @ y - forest.predict(xq)).max())
        t_ours = median(time_calls(lambda f=forest: smoother_weights(f, x, xq), repeat=3))
        t_floor = median(time_calls(lambda f=forest: _floor(f, x, xq), repeat=3))
        t_loop = median(time_calls(lambda f=forest: _per_tree_loop(f, x, xq), repeat=1, warmup=0))
        loop = _per_tree_loop(forest, x, xq)
        rows += [
            (f"ours, {label}", t_ours, None, None, f"S @ y vs predict: {pred_diff:.1e}"),
            (f"per-tree dense loop, {label}", t_loop, t_ours, float(np.abs(loop - ours).max()), "the authors' way"),
            (f"floor: forest.apply(train) + apply(queries), {label}", t_floor, t_ours, None, "leaves only"),
        ]
    for name, t, _, d, note in rows:
        print(name, f"{t:.2f} s", "" if d is None else f"max abs diff {d:.1e}", note)
    lines = [
        f"## Forests: smoother weights of {T} trees x {N // 1000}k training inputs x {Q // 1000}k queries (d = {D})",
        "",
        "`smoother_weights` (sparse one-hot of the queries' leaves times a sparse matrix of count / leaf weight) "
        "against the per-tree dense loop of the authors' code and the floor of the bare `forest.apply` calls, "
        "for a fully grown forest and one with leaves of >= 20 points.  One thread (`n_jobs=1`).  Medians of 3 "
        f"(ours, floor) or one run (the loop).  1-min load average at start: {load:.2f}.",
        "",
        "| implementation | median | time / ours | max abs diff vs ours | note |",
        "|---|---|---|---|---|",
        *(_row(*r) for r in rows),
        "",
        "time / ours: above 1, ours is faster; for the floor rows, the share of ours that is the unavoidable leaf "
        "lookup.  Weights are unitless; the S @ y check is in the outcome's units.",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
