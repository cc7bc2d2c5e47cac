"""The guided experiments of notebook 06 (choosing the team): every comparison paired, clustered and over seeds.

1. :func:`overfitting`: does forward selection overfit a small hill-climbing set, and does bagging fix it?  For
   each hill-climbing size and seed (the seed draws the subset of validation images and the bags), the held-out
   NLL of plain and of bagged selection on the 5,000 test images, and their paired difference, clustered by the
   source digit behind each image (:class:`~ensemble_lab.stats.ClusterResampler`).
2. :func:`gain_is_diversity`: is an ensemble's gain over its members exactly its diversity?  The NLL and Brier
   decompositions (:mod:`ensemble_lab.decompositions`) of the forward selection, the top-5 and the uniform
   average, with what rounding leaves of the identity, and the paired differences of diversity and of loss
   between the selection and the uniform average.
3. :func:`team_ranking`: does counting cohesiveness rank teams better?  Kendall's tau between each estimator's
   scores and the probed accuracy of every team, for 3 targets x 3 label draws, and paired differences of tau
   between estimators; the 9 (target, draw) units are clustered by target (the draws of one target share its
   test images), so the intervals are over 3 clusters and honest about it.

Each runs with one torch thread (:func:`~ensemble_lab.labs.base.lab_work`, as the Labs do): these are many small
tensor operations, which a second thread slows down (on a busy 2-core machine, several times over).

Units: NLL in nats, Brier in its own units (sum over classes), tau in [-1, 1], accuracy as a fraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import metrics
from ...artefacts.library import ModelLibrary
from ...artefacts.transfer_world import ESTIMATORS, TransferWorld
from ...decompositions import Decomposition, brier_decomposition, nll_decomposition
from ...selection import forward_select, top_k, uniform
from ...stats import ClusterResampler, PairedDifference
from ..base import lab_work
from .lab import MAX_STEPS, N_BAGS, hill_set, kendall_tau

__all__ = [
    "SEEDS",
    "OVERFIT_SIZES",
    "OverfitRun",
    "overfitting",
    "SelectionPath",
    "selection_path",
    "GainIsDiversity",
    "gain_is_diversity",
    "Ranking",
    "team_ranking",
    "RANKING_PAIRS",
]

SEEDS: tuple[int, ...] = (0, 1, 2)
OVERFIT_SIZES: tuple[int, ...] = (100, 500, 5000)
#: the paired comparisons of experiment 3: (a, b) -> tau(a) - tau(b)
RANKING_PAIRS: tuple[tuple[str, str], ...] = (
    ("OSBORN", "MS-LEEP"),
    ("OSBORN", "E-LEEP"),
    ("OSBORN", "OSBORN w/o cohesion"),
)


def _hill(library: ModelLibrary, size: int, seed: int):
    return hill_set(library.probs["val"].double(), library.labels["val"], size, seed)


def _test(library: ModelLibrary):
    return library.probs["test"].double(), library.labels["test"]


# ----------------------------------------------------------------------------------------------------------
# 1. overfitting the hill-climbing set
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OverfitRun:
    """One (hill-climbing size, seed): the NLL of plain and bagged selection on the hill-climbing set and held
    out, and ``difference`` = held-out NLL of plain minus bagged selection (positive: bagging helps)."""

    hill_size: int
    seed: int
    plain_hill: float
    plain_held_out: float
    bagged_hill: float
    bagged_held_out: float
    difference: PairedDifference

    @property
    def plain_gap(self) -> float:
        """How much worse plain selection does on held-out data than on the set it climbed on (nats)."""
        return self.plain_held_out - self.plain_hill

    @property
    def bagged_gap(self) -> float:
        return self.bagged_held_out - self.bagged_hill


def _overfitting(
    library: ModelLibrary,
    sizes=OVERFIT_SIZES,
    seeds=SEEDS,
    *,
    steps: int = MAX_STEPS,
    bags: int = N_BAGS,
    n_resamples: int = 1000,
) -> list[OverfitRun]:
    """Plain against bagged forward selection on NLL, for every hill-climbing size and seed (see the module
    docstring); the test split is held out and its intervals are clustered by source digit."""
    p_test, y_test = _test(library)
    resampler = ClusterResampler(library.sources["test"], n_resamples=n_resamples, seed=0)
    runs = []
    for size in sizes:
        for seed in seeds:
            p, y = _hill(library, size, seed)
            plain = forward_select(p, y, "nll", steps=steps, seed=seed)
            bagged = forward_select(p, y, "nll", steps=steps, bags=bags, seed=seed)
            a, b = plain.ensemble(p_test), bagged.ensemble(p_test)
            runs.append(
                OverfitRun(
                    hill_size=int(size),
                    seed=int(seed),
                    plain_hill=float(plain.score),
                    plain_held_out=metrics.nll(a, y_test),
                    bagged_hill=float(bagged.score),
                    bagged_held_out=metrics.nll(b, y_test),
                    difference=resampler.compare("nll", a, b, y_test),
                )
            )
    return runs


@dataclass(frozen=True)
class SelectionPath:
    """A plain selection's path: ``steps`` ``(S,)`` ensemble sizes, ``hill`` and ``held_out`` ``(S,)`` NLL,
    ``best_step`` (the paper's stopping point: the best hill-climbing score)."""

    hill_size: int
    steps: torch.Tensor
    hill: torch.Tensor
    held_out: torch.Tensor
    best_step: int


def _selection_path(library: ModelLibrary, hill_size: int, seed: int = 0, steps: int = MAX_STEPS) -> SelectionPath:
    """The NLL path of plain forward selection on ``hill_size`` validation images, scored on the test split."""
    p, y = _hill(library, hill_size, seed)
    r = forward_select(p, y, "nll", steps=steps, seed=seed, held_out=_test(library))
    return SelectionPath(
        hill_size=int(hill_size),
        steps=torch.tensor([s.step for s in r.path]),
        hill=torch.tensor([s.score for s in r.path], dtype=torch.float64),
        held_out=torch.tensor([s.held_out for s in r.path], dtype=torch.float64),
        best_step=int(r.best_step),
    )


# ----------------------------------------------------------------------------------------------------------
# 2. the gain is the diversity
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GainIsDiversity:
    """Decompositions on the test split of three ensembles chosen on the whole validation split.

    ``nll``/``brier``: row -> :class:`Decomposition` for ``"forward selection"``, ``"top-5"`` and ``"uniform"``;
    ``best_member``: row -> (NLL, Brier) of the row's best member on the test split (a member it uses);
    ``max_residual``: the largest ``|ensemble - (mean member - diversity)|`` over all six;
    ``diversity_difference``: selection minus uniform, per-sample NLL diversity; ``loss_differences``: the
    selection's test NLL minus that of ``"top-5"``, ``"uniform"`` and ``"best single model"`` (the best model on
    the validation split); all paired and clustered by source digit.
    """

    nll: dict[str, Decomposition]
    brier: dict[str, Decomposition]
    best_member: dict[str, tuple[float, float]]
    max_residual: float
    diversity_difference: PairedDifference
    loss_differences: dict[str, PairedDifference]


def _gain_is_diversity(library: ModelLibrary, *, steps: int = MAX_STEPS, n_resamples: int = 1000) -> GainIsDiversity:
    """See :class:`GainIsDiversity`."""
    p_val, y_val = library.probs["val"].double(), library.labels["val"]
    p_test, y_test = _test(library)
    selections = {
        "forward selection": forward_select(p_val, y_val, "nll", steps=steps),
        "top-5": top_k(p_val, y_val, 5, "nll"),
        "uniform": uniform(p_val),
    }
    weights = {k: s.counts for k, s in selections.items()}
    nll = {k: nll_decomposition(p_test, y_test, weights=w.double()) for k, w in weights.items()}
    brier = {k: brier_decomposition(p_test, y_test, weights=w.double()) for k, w in weights.items()}
    best = {}
    for k, w in weights.items():
        used = (w > 0).nonzero().squeeze(1)
        best[k] = (float(nll[k].per_member[used].min()), float(brier[k].per_member[used].min()))
    residual = max(abs(d.residual) for d in (*nll.values(), *brier.values()))
    resampler = ClusterResampler(library.sources["test"], n_resamples=n_resamples, seed=0)
    sel, uni = nll["forward selection"], nll["uniform"]
    selections["best single model"] = top_k(p_val, y_val, 1, "nll")
    ensembles = {k: s.ensemble(p_test) for k, s in selections.items()}
    return GainIsDiversity(
        nll=nll,
        brier=brier,
        best_member=best,
        max_residual=float(residual),
        diversity_difference=resampler.compare_means(sel.per_sample_diversity, uni.per_sample_diversity),
        loss_differences={
            k: resampler.compare("nll", ensembles["forward selection"], ensembles[k], y_test)
            for k in ("top-5", "uniform", "best single model")
        },
    )


# ----------------------------------------------------------------------------------------------------------
# 3. ranking teams of source models
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranking:
    """Kendall's tau of every estimator over the (target, label draw) units, per team size.

    ``units``: the ``U`` (target, seed) pairs in order; ``tau``: size -> estimator -> ``(U,)`` float64;
    ``regret``: size -> estimator -> ``(U,)`` accuracy of the best team minus that of the estimator's top team;
    ``differences``: size -> (a, b) -> :class:`PairedDifference` of mean tau, a minus b, over the units clustered
    by target (:data:`RANKING_PAIRS`).
    """

    units: tuple[tuple[str, int], ...]
    tau: dict[int, dict[str, torch.Tensor]]
    regret: dict[int, dict[str, torch.Tensor]]
    differences: dict[int, dict[tuple[str, str], PairedDifference]]

    def mean_tau(self, size: int, estimator: str) -> float:
        return float(self.tau[size][estimator].mean())


def _team_ranking(world: TransferWorld, sizes=(2, 3), *, n_resamples: int = 2000) -> Ranking:
    """See :class:`Ranking`."""
    units = tuple((t, s) for t in world.targets for s in sorted({s for (tt, s) in world.accuracy if tt == t}))
    clusters = torch.tensor([world.targets.index(t) for t, _ in units])
    resampler = ClusterResampler(clusters, n_resamples=n_resamples, seed=0)
    tau, regret, differences = {}, {}, {}
    for size in sizes:
        tau[size], regret[size] = {}, {}
        for e in ESTIMATORS:
            values, losses = [], []
            for unit in units:
                truth = world.accuracy[unit][size]
                scores = world.scores[unit][e][size]
                values.append(kendall_tau(scores, truth))
                losses.append(float(truth.max() - truth[int(torch.argmax(scores))]))
            tau[size][e] = torch.tensor(values, dtype=torch.float64)
            regret[size][e] = torch.tensor(losses, dtype=torch.float64)
        differences[size] = {(a, b): resampler.compare_means(tau[size][a], tau[size][b]) for a, b in RANKING_PAIRS}
    return Ranking(units=units, tau=tau, regret=regret, differences=differences)


def overfitting(library: ModelLibrary, sizes=OVERFIT_SIZES, seeds=SEEDS, **kwargs) -> list[OverfitRun]:
    """Plain against bagged forward selection on NLL, for every hill-climbing size and seed (see the module
    docstring); the test split is held out and its intervals are clustered by source digit.  Keywords:
    ``steps`` (50), ``bags`` (20), ``n_resamples`` (1000)."""
    with lab_work():
        return _overfitting(library, sizes, seeds, **kwargs)


def selection_path(library: ModelLibrary, hill_size: int, seed: int = 0, steps: int = MAX_STEPS) -> SelectionPath:
    """The NLL path of plain forward selection on ``hill_size`` validation images, scored on the test split."""
    with lab_work():
        return _selection_path(library, hill_size, seed, steps)


def gain_is_diversity(library: ModelLibrary, **kwargs) -> GainIsDiversity:
    """See :class:`GainIsDiversity`; keywords ``steps`` (50) and ``n_resamples`` (1000)."""
    with lab_work():
        return _gain_is_diversity(library, **kwargs)


def team_ranking(world: TransferWorld, sizes=(2, 3), **kwargs) -> Ranking:
    """See :class:`Ranking`; keyword ``n_resamples`` (2000)."""
    with lab_work():
        return _team_ranking(world, sizes, **kwargs)
