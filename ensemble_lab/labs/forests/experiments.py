"""The guided experiments of notebook 08 (random forests as adaptive smoothers), after Curth, Jeffares & van der
Schaar (2024).  Every number comes from :mod:`ensemble_lab.forests`; comparisons are paired.

1. :func:`smoother_than_trees`: a forest's effective number of parameters against the mean of its trees', at the
   training inputs and at fresh test inputs, for four recipes on both toy worlds and 3 data seeds.  Averaging
   weights can only lower ``||s||^2`` (Jensen), so the question is by how much, and when not at all (trees that do
   not differ).  Paired over the query points (``pointwise_parameters``).
2. :func:`smoothing_with_distance`: the effective parameters of a fully grown bootstrap forest at its training
   inputs and at test points that are the training inputs moved by ``U(-d, d)`` (the authors' design), against
   ``d``; the single trees for comparison.  Paired over the training points (each test point is its training
   point, moved).
3. :func:`mechanisms_by_noise`: the three mechanisms of the forest's gain over a tree (``forest_mechanisms``) at
   low and at high outcome noise; which one dominates, with intervals over the independent input draws.

The forests are ``RandomForestRegressor(n_estimators=100)`` (50 in experiment 3, where every input draw refits
15 of them); worlds ``toy_world(name, noise)`` with :data:`N_TRAIN` training points, data seeds :data:`SEEDS`.
Everything runs with one torch thread (:func:`lab_work`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.ensemble import RandomForestRegressor

from ...forests import Mechanisms, forest_mechanisms, pointwise_parameters, toy_world
from ...stats import ClusterResampler, PairedDifference
from ..base import lab_work
from .lab import N_TRAIN  # the Lab's worlds: 200 points on the sine, 300 on the diagonal

__all__ = [
    "SEEDS",
    "N_TRAIN",
    "N_TREES",
    "NOISE",
    "RECIPES",
    "DISTANCES",
    "MECHANISM_NOISES",
    "SmoothnessRun",
    "smoother_than_trees",
    "DistanceRun",
    "smoothing_with_distance",
    "MechanismRun",
    "mechanisms_by_noise",
]

SEEDS: tuple[int, ...] = (0, 1, 2)
N_TREES = 100
#: the outcome noise of experiments 1 and 2
NOISE = 0.5
N_TEST = 500
#: experiment 1's recipes (keyword arguments of RandomForestRegressor)
RECIPES: dict[str, dict] = {
    "fully grown, bootstrap": {},
    "leaves of 5, bootstrap": {"min_samples_leaf": 5},
    "no bootstrap": {"bootstrap": False},
    "no bootstrap, 1 feature per split": {"bootstrap": False, "max_features": 1},
}
DISTANCES: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)
#: the distance experiment 2 compares with the training inputs
COMPARED_DISTANCE = 0.05
MECHANISM_NOISES: tuple[float, ...] = (0.1, 1.0)
N_RESAMPLES = 1000


def _fit(name: str, seed: int, recipe: dict, n_trees: int = N_TREES, noise: float = NOISE):
    world = toy_world(name, noise)
    x, y = world.sample(N_TRAIN[name], seed=seed)
    forest = RandomForestRegressor(n_estimators=n_trees, random_state=seed, **recipe).fit(x.numpy(), y.numpy())
    return world, x, forest


# ---------------------------------------------------------------------------------------------------- 1


@dataclass(frozen=True)
class SmoothnessRun:
    """One recipe on one world and data seed: effective parameters of the forest and the mean of its trees' at
    the training inputs (``*_train``) and at fresh test inputs (``*_test``), and the paired differences forest -
    trees (negative: the forest is smoother)."""

    problem: str
    recipe: str
    seed: int
    forest_train: float
    trees_train: float
    forest_test: float
    trees_test: float
    train_difference: PairedDifference
    test_difference: PairedDifference


def _smoothness(problems, recipes, seeds) -> list[SmoothnessRun]:
    runs = []
    for name in problems:
        for label in recipes:
            for seed in seeds:
                world, x, forest = _fit(name, seed, RECIPES[label])
                x_test = world.inputs(N_TEST, seed=seed + 1000)
                values = {}
                for where, q in (("train", x), ("test", x_test)):
                    forest_p = pointwise_parameters(forest, x, q)
                    trees_p = pointwise_parameters(forest, x, q, per_tree=True).mean(dim=0)
                    resampler = ClusterResampler(n=q.shape[0], n_resamples=N_RESAMPLES, seed=seed)
                    values[where] = (forest_p, trees_p, resampler.compare_means(forest_p, trees_p))
                runs.append(
                    SmoothnessRun(
                        problem=name,
                        recipe=label,
                        seed=seed,
                        forest_train=float(values["train"][0].mean()),
                        trees_train=float(values["train"][1].mean()),
                        forest_test=float(values["test"][0].mean()),
                        trees_test=float(values["test"][1].mean()),
                        train_difference=values["train"][2],
                        test_difference=values["test"][2],
                    )
                )
    return runs


def smoother_than_trees(problems=("sine", "diagonal"), recipes=tuple(RECIPES), seeds=SEEDS) -> list[SmoothnessRun]:
    """Experiment 1 (about 5 s): one :class:`SmoothnessRun` per (problem, recipe, seed)."""
    with lab_work():
        return _smoothness(tuple(problems), tuple(recipes), tuple(seeds))


# ---------------------------------------------------------------------------------------------------- 2


@dataclass(frozen=True)
class DistanceRun:
    """A fully grown bootstrap forest on one world and seed: effective parameters of the forest and of its mean
    tree at test points :data:`DISTANCES` away from the training inputs ``(len(DISTANCES),)`` (``d = 0``: the
    training inputs), and the paired difference p(0) - p(:data:`COMPARED_DISTANCE`) of the forest."""

    problem: str
    seed: int
    distances: tuple[float, ...]
    forest: torch.Tensor
    trees: torch.Tensor
    difference: PairedDifference


def _distance(problems, seeds, distances) -> list[DistanceRun]:
    runs = []
    for name in problems:
        for seed in seeds:
            world, x, forest = _fit(name, seed, {})
            forest_p, trees_p, per_point = [], [], {}
            for d in distances:
                q = world.near(x, d, seed=seed + 2000)
                p = pointwise_parameters(forest, x, q)
                per_point[d] = p
                forest_p.append(float(p.mean()))
                trees_p.append(float(pointwise_parameters(forest, x, q, per_tree=True).mean()))
            resampler = ClusterResampler(n=x.shape[0], n_resamples=N_RESAMPLES, seed=seed)
            runs.append(
                DistanceRun(
                    problem=name,
                    seed=seed,
                    distances=tuple(distances),
                    forest=torch.tensor(forest_p, dtype=torch.float64),
                    trees=torch.tensor(trees_p, dtype=torch.float64),
                    difference=resampler.compare_means(per_point[0.0], per_point[COMPARED_DISTANCE]),
                )
            )
    return runs


def smoothing_with_distance(problems=("sine", "diagonal"), seeds=SEEDS, distances=DISTANCES) -> list[DistanceRun]:
    """Experiment 2 (about 2 s): one :class:`DistanceRun` per (problem, seed); ``distances`` must hold 0 and
    :data:`COMPARED_DISTANCE`."""
    distances = tuple(float(d) for d in distances)
    if 0.0 not in distances or COMPARED_DISTANCE not in distances:
        raise ValueError(f"distances must include 0 and {COMPARED_DISTANCE}, got {distances}")
    with lab_work():
        return _distance(tuple(problems), tuple(seeds), distances)


# ---------------------------------------------------------------------------------------------------- 3


@dataclass(frozen=True)
class MechanismRun:
    """The three mechanisms on one world at one noise level (:class:`~ensemble_lab.forests.Mechanisms`), and the
    paired difference of the dominant mechanism's gain minus each other mechanism's, over the input draws."""

    problem: str
    noise: float
    mechanisms: Mechanisms
    dominant: str
    margins: dict[str, PairedDifference]


def _mechanisms(problems, noises, n_inputs: int, seed: int) -> list[MechanismRun]:
    runs = []
    for name in problems:
        for noise in noises:
            m = forest_mechanisms(
                toy_world(name, noise),
                RandomForestRegressor(n_estimators=50),
                n_train=N_TRAIN[name],
                n_test=N_TEST,
                n_inputs=n_inputs,
                seed=seed,
            )
            gains = m.tree_parts - m.forest_parts  # (n_inputs, 3): per input draw, columns noise/variability/bias
            parts = ("noise", "variability", "bias")
            dominant = m.dominant
            resampler = ClusterResampler(n=n_inputs, n_resamples=N_RESAMPLES, seed=seed)
            top = gains[:, parts.index(dominant)]
            margins = {
                other: resampler.compare_means(top, gains[:, parts.index(other)])
                for other in parts
                if other != dominant
            }
            runs.append(
                MechanismRun(problem=name, noise=float(noise), mechanisms=m, dominant=dominant, margins=margins)
            )
    return runs


def mechanisms_by_noise(
    problems=("sine", "diagonal"), noises=MECHANISM_NOISES, *, n_inputs: int = 6, seed: int = 0
) -> list[MechanismRun]:
    """Experiment 3 (about 4 s per world and noise level on one thread): one :class:`MechanismRun` per (problem,
    noise).  The input draws (``n_inputs`` independent training sets) are the units of the intervals."""
    with lab_work():
        return _mechanisms(tuple(problems), tuple(noises), n_inputs, seed)
