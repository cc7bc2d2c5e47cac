"""The forests Lab: why does a forest beat its trees?  A fitted forest predicts a weighted average of the training
outcomes (Curth, Jeffares & van der Schaar 2024, "Why do Random Forests Work?"); the learner moves a query point
and sees the weights (the adaptive kernel) of one tree and of the forest, and how much the forest smooths
(effective parameters) at the training inputs and away from them.

Headless use::

    lab = ForestsLab()                                   # the sine, 10 of 100 trees, fully grown, bootstrap
    lab.set(query_x=0.6);  lab.result.support_forest     # training points the forest's prediction there uses
    lab.set(n_trees=100);  lab.result.p_forest           # effective parameters at each distance (smoother)
    lab.set(mechanisms=True);  lab.result.mechanisms.gains

The forest: ``RandomForestRegressor(n_estimators=100, min_samples_leaf, max_features, bootstrap,
random_state=seed)`` fit on ``toy_world(problem, noise).sample(N_TRAIN[problem], seed=seed)``.  :data:`N_TRAIN`
is 200 on the 1-D sine and 300 on the 2-D diagonal: enough points that a fully grown tree's staircase follows the
truth and the noise (so that there is something to smooth), few enough that every weight of every grid point is
a small matrix (the 2-D grid has 1,681 points) and a refit takes a fraction of a second on one thread.

Latency: a forest is fit ONCE per recipe (problem, noise, leaf size, max_features, bootstrap, seed; max_features
is left out of the 1-D key: one feature), and its leaves are found once at every point the Lab shows
(:func:`~ensemble_lab.forests.forest_leaves`): the prediction grid, and the training inputs moved by each of
:data:`DISTANCES`.  ``n_trees`` takes the first k trees of that forest (a prefix: no refit), whose weights at every
point are one sparse product (:func:`~ensemble_lab.forests.smoother.weights_of_leaves`), cached per (recipe, k);
a query move picks one row of them; the highlighted distance indexes a curve.  The three mechanisms
(:func:`~ensemble_lab.forests.forest_mechanisms`, seconds) run only with ``mechanisms`` on, once per recipe.

The query grid is :data:`AXIS` (41 positions on [0, 1] per axis).  In 1-D the prediction curve has 401 points,
the query positions among them; in 2-D the prediction field is the 41 x 41 query grid itself.  Excess errors are
against the truth (a toy world knows it): ``mean (fhat(x0) - f(x0))^2`` over the test points; "everywhere" is
the mean over the prediction grid (a regular grid on [0, 1]^d, so an estimate of the integrated excess error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import RandomForestRegressor

from ...forests import (
    TOYS,
    Mechanisms,
    ToyWorld,
    effective_parameters_of,
    forest_leaves,
    forest_mechanisms,
    toy_world,
    tree_parameters_of_leaves,
    weights_of_leaves,
)
from ...forests.smoother import ForestLeaves
from ..base import Lab, cached
from ..challenges import Target, challenge
from ..state import SEED, LabState, Setting

__all__ = [
    "ForestsState",
    "ForestsResult",
    "ForestsLab",
    "ForestFit",
    "N_TRAIN",
    "N_TREES",
    "AXIS",
    "CURVE_POINTS",
    "NOISES",
    "LEAF_SIZES",
    "DISTANCES",
    "MECHANISM_TREES",
    "MECHANISM_RUNS",
    "CHALLENGE_ERROR",
    "CHALLENGE_RATIO",
    "CHALLENGE_DISTANCE",
    "CHALLENGE_TREES",
    "fit_key",
    "ignored_settings",
]

#: training points per problem (see the module's docstring for why)
N_TRAIN = {"sine": 200, "diagonal": 300}
#: the trees of the one fitted forest; ``n_trees`` takes a prefix of them
N_TREES = 100
#: the query positions per axis: 41 on [0, 1] (steps of 0.025)
AXIS: tuple[float, ...] = tuple(round(i / 40, 6) for i in range(41))
#: points of the 1-D prediction curve (steps of 0.0025): query position i is its point 10 i
CURVE_POINTS = 401
NOISES: tuple[float, ...] = (0.1, 0.3, 1.0)
LEAF_SIZES: tuple[int, ...] = (1, 2, 5, 10, 20)
#: how far the test points are from the training inputs (each moved by U(-d, d) per coordinate; 0: themselves)
DISTANCES: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
#: the seed offset of the moved test points (notebook 08's experiments use the same)
NEAR_SEED = 2000
#: trees of each forest the mechanisms simulation fits (50: it fits about 75 of them per recipe)
MECHANISM_TREES = 50
#: the simulation's sizes (:func:`forest_mechanisms` keywords): 5 input draws x (10 noiseless + 5 noisy) forests
MECHANISM_RUNS: dict[str, int] = {"n_inputs": 5, "n_noise": 5, "n_seeds": 10, "n_test": 500}
#: challenge "smooth-the-noise": the bound on the forest's excess error over [0, 1] on the sine with noise 1.0.
#: Measured (seeds 0 / 1 / 2): the default recipe (10 fully grown trees) 0.554 / 0.395 / 0.453; 100 fully grown
#: trees 0.522 / 0.378 / 0.434 (more trees alone do not smooth a forest of interpolating trees); leaves of 10 with
#: 10 trees 0.108 / 0.065 / 0.077, with 100 trees (the known solution) 0.086 / 0.052 / 0.089; leaves of 20:
#: 0.076 / 0.065 / 0.056 (10 trees), 0.065 / 0.064 / 0.044 (100 trees)
CHALLENGE_ERROR = 0.10
#: challenge "identical-trees": the forest's effective parameters over its mean tree's, at test points
#: CHALLENGE_DISTANCE from the training inputs, with at least CHALLENGE_TREES trees.  Measured (50 trees, seed 0,
#: noise 0.3): bootstrap on 0.47 (sine), 0.23 (diagonal); bootstrap off on the sine 1.000 (any leaf: every tree is
#: the same tree); on the diagonal 0.80 for fully grown trees (ties between the two features in tiny nodes are
#: broken at random, so the trees differ away from the data), 1.000 with leaves of 5 and both features, 0.41 with
#: one feature per split
CHALLENGE_RATIO = 0.99
CHALLENGE_DISTANCE = 0.05
CHALLENGE_TREES = 50


class ForestsState(LabState):
    """Settings of the forests Lab."""

    SETTINGS = {
        "problem": Setting(str, "sine", "the toy world: 'sine' (1-D) or 'diagonal' (2-D)", choices=tuple(TOYS)),
        "n_trees": Setting(
            int, 10, "trees in the forest: the first k of one fitted forest of 100", low=1, high=N_TREES
        ),
        "max_features": Setting(int, 2, "features tried at each split (2-D only; 2 = all)", choices=(1, 2)),
        "min_samples_leaf": Setting(int, 1, "the smallest leaf (1 = fully grown trees)", choices=LEAF_SIZES),
        "bootstrap": Setting(bool, True, "each tree sees a bootstrap sample of the training points"),
        "noise": Setting(float, 0.3, "the outcome noise of the training data (standard deviation)", choices=NOISES),
        "query_x": Setting(float, 0.25, "the query point's first coordinate", choices=AXIS),
        "query_y": Setting(float, 0.75, "the query point's second coordinate (2-D only)", choices=AXIS),
        "distance": Setting(
            float, 0.05, "the distance of the highlighted test points from the training inputs", choices=DISTANCES
        ),
        "mechanisms": Setting(bool, False, "simulate the three mechanisms of the forest's gain (seconds)"),
        "seed": SEED,
    }


def fit_key(state) -> tuple:
    """The recipe of ``state``'s forest: ``(problem, noise, min_samples_leaf, max_features, bootstrap, seed)``,
    with ``max_features`` None in 1-D (one feature: nothing to choose).

    >>> fit_key(ForestsState(max_features=1))
    ('sine', 0.3, 1, None, True, 0)
    >>> fit_key(ForestsState(problem="diagonal", max_features=1))
    ('diagonal', 0.3, 1, 1, True, 0)
    """
    max_features = state.max_features if TOYS[state.problem] > 1 else None
    return (state.problem, state.noise, state.min_samples_leaf, max_features, state.bootstrap, state.seed)


def ignored_settings(state) -> tuple[str, ...]:
    """The settings that do not change ``state``'s result (the 1-D world has one feature and one coordinate).

    >>> ignored_settings(ForestsState()), ignored_settings(ForestsState(problem="diagonal"))
    (('max_features', 'query_y'), ())
    """
    return ("max_features", "query_y") if TOYS[state.problem] == 1 else ()


@dataclass(frozen=True, eq=False)
class ForestFit:
    """One fitted forest and what is computed once for it (every tensor float64 on the cpu).

    ``points``: every point the Lab shows, ``(G + len(DISTANCES) * n, d)``: the prediction grid (G = 401 in 1-D,
    41 x 41 in 2-D, x fastest), then the training inputs moved by each distance (:meth:`ToyWorld.near`, seed
    ``seed + NEAR_SEED``); ``leaves``: their :class:`~ensemble_lab.forests.ForestLeaves`; ``truth`` ``f(points)``;
    ``tree_parameters`` ``(T, len(DISTANCES) * n)``: each tree's effective parameters at each moved point
    (:func:`~ensemble_lab.forests.tree_parameters_of_leaves`); ``tree_errors`` ``(T, len(DISTANCES) + 1)``: each
    tree's excess error at each distance and, last, over the grid.
    """

    key: tuple
    world: ToyWorld
    x: torch.Tensor
    y: torch.Tensor
    forest: RandomForestRegressor
    points: torch.Tensor
    leaves: ForestLeaves
    truth: torch.Tensor
    n_grid: int
    tree_parameters: torch.Tensor
    tree_errors: torch.Tensor

    def rows(self, j: int) -> slice:
        """The rows of ``points`` of distance ``DISTANCES[j]`` (``j = len(DISTANCES)``: the grid)."""
        if j == len(DISTANCES):
            return slice(0, self.n_grid)
        n = self.x.shape[0]
        return slice(self.n_grid + j * n, self.n_grid + (j + 1) * n)


@dataclass(frozen=True)
class ForestsResult:
    """What the Lab shows for one State (tensors float64 on the cpu; numbers python floats, rounded by the View).

    The data: ``x_train`` ``(n, d)``, ``y_train`` ``(n,)`` (``d`` = 1 or 2).  The query: ``query`` (its
    coordinates, ``(x,)`` or ``(x, y)``), its weights over the training points for tree 0 (``weights_tree``) and
    for the forest of the first ``n_trees`` trees (``weights_forest``), both ``(n,)`` summing to 1, their
    predictions there (``query_tree``, ``query_forest``: the weights times ``y_train``) and ``query_truth``; the
    kernel's width: ``top_share_*`` (the largest weight, a share of 1) and ``support_*`` (the training points with
    a non-zero weight).
    The fit: ``grid`` (the curve's 401 x positions in 1-D, the 41 axis positions in 2-D), ``prediction_tree``,
    ``prediction_forest`` and ``truth`` on it (``(401,)`` in 1-D; ``(41, 41)`` in 2-D, indexed ``[iy, ix]``).
    Smoothness: ``distances``; ``p_forest`` and ``p_trees`` ``(len(distances),)``, the effective parameters of the
    forest and of its mean tree (the mean over its trees of each tree's) at the test points of each distance (0:
    the training inputs); ``error_forest``, ``error_tree`` (tree 0) and ``error_trees`` (the mean tree's) excess
    test errors there; ``*_at``: the same at the highlighted ``distance``; ``*_grid``: the excess errors over the
    prediction grid ("everywhere").  ``mechanisms``: :class:`~ensemble_lab.forests.Mechanisms` when on, else None.
    ``ignored``: the settings that do not change this result.
    """

    problem: str
    n_trees: int
    noise: float
    n_train: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    query: tuple[float, ...]
    weights_tree: torch.Tensor
    weights_forest: torch.Tensor
    query_tree: float
    query_forest: float
    query_truth: float
    top_share_tree: float
    top_share_forest: float
    support_tree: int
    support_forest: int
    grid: torch.Tensor
    prediction_tree: torch.Tensor
    prediction_forest: torch.Tensor
    truth: torch.Tensor
    distances: tuple[float, ...]
    distance: float
    p_forest: torch.Tensor
    p_trees: torch.Tensor
    error_forest: torch.Tensor
    error_tree: torch.Tensor
    error_trees: torch.Tensor
    p_forest_at: float
    p_trees_at: float
    error_forest_at: float
    error_tree_at: float
    error_trees_at: float
    error_forest_grid: float
    error_tree_grid: float
    error_trees_grid: float
    mechanisms: Mechanisms | None
    ignored: tuple[str, ...]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def _grid_points(d: int) -> torch.Tensor:
    if d == 1:
        return torch.linspace(0, 1, CURVE_POINTS, dtype=torch.float64)[:, None]
    axis = torch.tensor(AXIS, dtype=torch.float64)
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")  # row iy * 41 + ix
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def _index(value: float) -> int:
    return int(round(value * (len(AXIS) - 1)))


def _fmt2(x: float) -> str:
    return f"{x:.3f}"


def _parameter_ratio(result, state) -> float:
    j = result.distances.index(CHALLENGE_DISTANCE)
    return float(result.p_forest[j] / result.p_trees[j])


class ForestsLab(Lab):
    """Random forests as adaptive smoothers on the toy worlds of :mod:`ensemble_lab.forests`.

    Args:
        mechanism_runs: the sizes of the mechanisms' simulation (keywords of :func:`forest_mechanisms`:
            ``n_inputs``, ``n_noise``, ``n_seeds``, ``n_test``); default :data:`MECHANISM_RUNS`.
        progress: show a progress bar while the mechanisms are simulated.
        state: initial settings.
    """

    State = ForestsState
    KEY = "forests"
    CHALLENGES = (
        challenge(
            "smooth-the-noise",
            "Smooth the noise",
            "on the sine with outcome noise 1.0, a fully grown forest follows the noise: find a recipe whose "
            f"forest's excess error over [0, 1] is below {CHALLENGE_ERROR:.2f}",
            Target("problem", lambda r, s: s.problem, "==", "sine", fmt=str),
            Target("noise", lambda r, s: s.noise, "==", 1.0, fmt=lambda x: f"{x:g}"),
            Target("forest's excess error everywhere", lambda r, s: r.error_forest_grid, "<", CHALLENGE_ERROR, _fmt2),
        ),
        challenge(
            "identical-trees",
            "Take the randomness away",
            f"with at least {CHALLENGE_TREES} trees, find a recipe whose forest is no smoother than its trees (its "
            f"effective parameters {CHALLENGE_DISTANCE:g} from the training inputs at least {CHALLENGE_RATIO:.0%} of "
            "its mean tree's): what makes a forest smooth?",
            Target("trees", lambda r, s: s.n_trees, ">=", CHALLENGE_TREES, fmt=lambda x: f"{x:d}"),
            Target(
                f"forest / mean tree {CHALLENGE_DISTANCE:g} away",
                _parameter_ratio,
                ">=",
                CHALLENGE_RATIO,
                fmt=lambda x: f"{x:.3f}",
            ),
        ),
    )

    def __init__(
        self, *, mechanism_runs: dict[str, int] | None = None, progress: bool = True, state: ForestsState | None = None
    ):
        runs = dict(MECHANISM_RUNS)
        if mechanism_runs is not None:
            if not isinstance(mechanism_runs, dict):
                raise TypeError(f"mechanism_runs must be a dict, got {type(mechanism_runs).__name__}")
            unknown = sorted(set(mechanism_runs) - set(MECHANISM_RUNS))
            if unknown:
                raise ValueError(f"mechanism_runs has unknown key(s) {unknown}; known: {sorted(MECHANISM_RUNS)}")
            runs.update(mechanism_runs)
        self.mechanism_runs = runs
        self.progress = bool(progress)
        super().__init__(state)

    # -- the fitted forests ---------------------------------------------------------------------------------
    @cached(maxsize=8)
    def fit(self, key: tuple) -> ForestFit:
        """The forest of recipe ``key`` (:func:`fit_key`), fit once, with its leaves at every point the Lab shows,
        each tree's effective parameters at the moved points and each tree's excess errors."""
        problem, noise, leaf, max_features, bootstrap, seed = key
        world = toy_world(problem, noise)
        x, y = world.sample(N_TRAIN[problem], seed=seed)
        forest = RandomForestRegressor(
            n_estimators=N_TREES,
            min_samples_leaf=leaf,
            max_features=1.0 if max_features is None else max_features,
            bootstrap=bootstrap,
            random_state=seed,
        ).fit(x.numpy(), y.numpy())
        grid = _grid_points(world.n_features)
        near = torch.cat([world.near(x, d, seed=seed + NEAR_SEED) for d in DISTANCES])
        points = torch.cat([grid, near])
        leaves = forest_leaves(forest, x, points)
        truth = world.truth(points)
        n_grid, n = grid.shape[0], x.shape[0]
        tree_p = tree_parameters_of_leaves(leaves)[:, n_grid:]  # at the moved points, from the leaves built above
        sets = [slice(n_grid + j * n, n_grid + (j + 1) * n) for j in range(len(DISTANCES))] + [slice(0, n_grid)]
        y_np, f_np = y.numpy(), truth.numpy()
        errors = np.empty((N_TREES, len(sets)))
        for t in range(N_TREES):
            err = np.square(weights_of_leaves(leaves, tree=t, sparse=True) @ y_np - f_np)
            errors[t] = [err[s].mean() for s in sets]
        return ForestFit(
            key=key,
            world=world,
            x=x,
            y=y,
            forest=forest,
            points=points,
            leaves=leaves,
            truth=truth,
            n_grid=n_grid,
            tree_parameters=tree_p,
            tree_errors=torch.from_numpy(errors),
        )

    @cached(maxsize=24)
    def prefix(self, key: tuple, n_trees: int) -> dict[str, Any]:
        """The forest of the first ``n_trees`` trees of recipe ``key``: its weights at every point (sparse),
        its predictions, and its and its mean tree's effective parameters and excess errors at each distance."""
        f = self.fit(key)
        s = weights_of_leaves(f.leaves, n_trees, sparse=True)
        prediction = torch.from_numpy(s @ f.y.numpy())
        err = (prediction - f.truth).square()
        k = len(DISTANCES)
        p_forest = [effective_parameters_of(torch.from_numpy(s[f.rows(j)].toarray())) for j in range(k)]
        n = f.x.shape[0]
        trees = f.tree_parameters[:n_trees]
        p_trees = [float(trees[:, j * n : (j + 1) * n].mean(dim=1).mean()) for j in range(k)]
        errors = [float(err[f.rows(j)].mean()) for j in range(k + 1)]
        return {
            "weights": s,
            "prediction": prediction[: f.n_grid],
            "p_forest": torch.tensor(p_forest, dtype=torch.float64),
            "p_trees": torch.tensor(p_trees, dtype=torch.float64),
            "errors": torch.tensor(errors, dtype=torch.float64),
            "tree_errors": f.tree_errors[:n_trees].mean(dim=0),
        }

    @cached(maxsize=8)
    def mechanisms(self, key: tuple) -> Mechanisms:
        """:func:`forest_mechanisms` of recipe ``key``'s forest (of :data:`MECHANISM_TREES` trees) against one of
        its trees, at fresh test inputs, once per recipe (seconds: shown in the busy line)."""
        problem, noise, leaf, max_features, bootstrap, seed = key
        runs = self.mechanism_runs
        what = (
            f"simulating the three mechanisms: {runs['n_inputs']} training sets x {runs['n_seeds']} noiseless and "
            f"{runs['n_noise']} noisy forests of {MECHANISM_TREES} trees…"
        )
        recipe = RandomForestRegressor(
            n_estimators=MECHANISM_TREES,
            min_samples_leaf=leaf,
            max_features=1.0 if max_features is None else max_features,
            bootstrap=bootstrap,
        )
        with self.working(what, progress=self.progress):
            return forest_mechanisms(toy_world(problem, noise), recipe, n_train=N_TRAIN[problem], seed=seed, **runs)

    # -- the computation ------------------------------------------------------------------------------------
    def query_row(self, state) -> int:
        """The row of ``state``'s query point among the Lab's points (its grid)."""
        ix = _index(state.query_x)
        if TOYS[state.problem] == 1:
            return ix * (CURVE_POINTS - 1) // (len(AXIS) - 1)
        return _index(state.query_y) * len(AXIS) + ix

    def compute(self, state: ForestsState) -> ForestsResult:
        key = fit_key(state)
        f = self.fit(key)
        forest = self.prefix(key, state.n_trees)
        tree = self.prefix(key, 1)
        row = self.query_row(state)
        w_forest = torch.from_numpy(forest["weights"][row].toarray()[0])
        w_tree = torch.from_numpy(tree["weights"][row].toarray()[0])
        two_d = f.world.n_features == 2
        side = len(AXIS)
        if two_d:
            grid = torch.tensor(AXIS, dtype=torch.float64)
            shape = (side, side)
        else:
            grid = f.points[: f.n_grid, 0].clone()
            shape = (f.n_grid,)
        j = DISTANCES.index(state.distance)
        mechanisms = self.mechanisms(key) if state.mechanisms else None
        errors, tree_errors, trees_errors = forest["errors"], tree["errors"], forest["tree_errors"]
        return ForestsResult(
            problem=state.problem,
            n_trees=state.n_trees,
            noise=state.noise,
            n_train=int(f.x.shape[0]),
            x_train=f.x,
            y_train=f.y,
            query=(state.query_x, state.query_y) if two_d else (state.query_x,),
            weights_tree=w_tree,
            weights_forest=w_forest,
            query_tree=float(w_tree @ f.y),
            query_forest=float(w_forest @ f.y),
            query_truth=float(f.truth[row]),
            top_share_tree=float(w_tree.max()),
            top_share_forest=float(w_forest.max()),
            support_tree=int((w_tree > 0).sum()),
            support_forest=int((w_forest > 0).sum()),
            grid=grid,
            prediction_tree=tree["prediction"].reshape(shape),
            prediction_forest=forest["prediction"].reshape(shape),
            truth=f.truth[: f.n_grid].reshape(shape),
            distances=DISTANCES,
            distance=state.distance,
            p_forest=forest["p_forest"],
            p_trees=forest["p_trees"],
            error_forest=errors[:-1],
            error_tree=tree_errors[:-1],
            error_trees=trees_errors[:-1],
            p_forest_at=float(forest["p_forest"][j]),
            p_trees_at=float(forest["p_trees"][j]),
            error_forest_at=float(errors[j]),
            error_tree_at=float(tree_errors[j]),
            error_trees_at=float(trees_errors[j]),
            error_forest_grid=float(errors[-1]),
            error_tree_grid=float(tree_errors[-1]),
            error_trees_grid=float(trees_errors[-1]),
            mechanisms=mechanisms,
            ignored=ignored_settings(state),
        )
