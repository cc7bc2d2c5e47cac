"""The selection Lab: choose a team from a library of trained models (Caruana's forward selection), see where it
overfits its hill-climbing set, how much of its gain is diversity, and whether transferability estimators pick
the winning team of pre-trained source models for a new task.

Headless use::

    lab = SelectionLab(model_library(), transfer_world())
    lab.set(hill_size=100, bagging=True);  lab.result.table["forward selection"]["held_out"]
    lab.set(target="faint + noise", team_size=3);  lab.result.tau

Two halves, two worlds:

* **The library** (:class:`~ensemble_lab.artefacts.library.ModelLibrary`): forward selection with replacement
  on the first ``hill_size`` validation images (a random subset drawn with ``seed``), scored along the way on the
  whole test split (held out).  One path of :data:`MAX_STEPS` additions is computed per (metric, hill-climbing
  set, init, bagging) and kept; the ``steps`` slider slides along it
  (:meth:`~ensemble_lab.selection.SelectionResult.prefix`), so it costs milliseconds.  The team is compared with
  the top-k models (k = the team's number of distinct models), the uniform average of the library and the best
  single model, all chosen on the same hill-climbing set and scored on the test split; and its loss is split
  into mean member loss and diversity (:mod:`ensemble_lab.decompositions`: NLL for the NLL metric, Brier else).
  The greedy soup does not apply here: the library's models do not share an initialisation, and averaging the
  weights of independently trained networks does not give a working network (notebook 05).
* **The winning team** (:class:`~ensemble_lab.artefacts.transfer_world.TransferWorld`): for a target task, a
  label draw and a team size, every team's estimator score against its probed accuracy, Kendall's tau for each
  estimator, the team each estimator ranks first (and OSBORN's greedy team, the paper's procedure) against the
  best team.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import metrics
from ..._validation import check_member_probs
from ...artefacts.library import ModelLibrary
from ...artefacts.transfer_world import ESTIMATORS, LABEL_SEEDS, TEAM_SIZES, TransferWorld
from ...decompositions import Decomposition, brier_decomposition, nll_decomposition
from ...selection import METRICS, SelectionResult, forward_select, select_team, top_k, uniform
from ..base import Lab, cached
from ..challenges import Target, challenge
from ..state import LabState, Setting

__all__ = [
    "SelectionState",
    "SelectionLabResult",
    "SelectionLab",
    "HILL_SIZES",
    "MAX_STEPS",
    "N_BAGS",
    "kendall_tau",
    "hill_indices",
    "hill_set",
]

HILL_SIZES: tuple[int, ...] = (100, 250, 500, 1000, 2500, 5000)
MAX_STEPS = 50
N_BAGS = 20  # Caruana et al. use 20 bags of half the library
MAX_INIT = 5


def kendall_tau(scores, truth) -> float:
    """Kendall's tau-b between an estimator's scores and the true results of the same teams (scipy's
    ``kendalltau``, ties counted as tau-b counts them): 1 = the same order, 0 = unrelated, -1 = reversed."""
    from scipy.stats import kendalltau

    value = kendalltau(torch.as_tensor(scores).tolist(), torch.as_tensor(truth).tolist()).statistic
    return float(value)


def hill_indices(n_total: int, size: int, seed: int) -> torch.Tensor:
    """The ``size`` validation images of the hill-climbing set: all of them when ``size >= n_total``, else a
    random subset drawn with ``seed`` (sorted)."""
    if size >= n_total:
        return torch.arange(n_total)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[:size].sort().values


def hill_set(
    member_probs: torch.Tensor, labels: torch.Tensor, size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The hill-climbing set of :func:`hill_indices` cut from validation ``member_probs`` ``(K, N, C)`` and
    ``labels`` ``(N,)``: ``(K, n, C)`` and ``(n,)``."""
    idx = hill_indices(labels.shape[0], size, seed)
    return member_probs[:, idx], labels[idx]


class SelectionState(LabState):
    """Settings of the selection Lab."""

    SETTINGS = {
        "metric": Setting(str, "nll", "the metric selection climbs on (lower is better)", choices=METRICS),
        "hill_size": Setting(int, 5000, "validation images in the hill-climbing set", choices=HILL_SIZES),
        "bagging": Setting(bool, False, f"bagged selection: {N_BAGS} runs on random halves of the library"),
        "init": Setting(int, 0, "sorted initialisation: the best single models added first", low=0, high=MAX_INIT),
        "steps": Setting(int, 25, "additions after the initialisation", low=1, high=MAX_STEPS),
        "target": Setting(str, "rotated + sticker", "the target task of the winning-team part"),
        "team_size": Setting(int, 2, "models in a team of source models", choices=TEAM_SIZES),
        "estimator": Setting(str, "OSBORN", "the transferability estimator shown", choices=tuple(ESTIMATORS)),
        "label_seed": Setting(int, 0, "which draw of the target's few labelled images", choices=LABEL_SEEDS),
    }


@dataclass(frozen=True)
class SelectionLabResult:
    """What the Lab shows for one State (named ``SelectionLabResult``, not ``SelectionResult`` as the Labs' naming
    rule would have it: that name is forward selection's own result, :class:`ensemble_lab.selection.SelectionResult`).

    Library part:
      ``path``: ``"step"`` ``(S,)`` ensemble sizes and ``"hill"``, ``"held_out"`` ``(S,)`` scores of the metric
      along the whole computed path (the mean over bags with bagging); ``steps``: the current number of additions
      after the initialisation; ``best_step``: where the hill-climbing score is lowest within them (None with
      bagging); ``team``: library name -> count in the selected ensemble (the largest first);
      ``table``: row -> ``{"hill", "held_out", "nll", "accuracy", "ece", "brier", "models"}`` on the held-out
      test split (``hill`` on the hill-climbing set), rows ``"forward selection"``, ``"top-k"`` (k in its name),
      ``"uniform (all K)"`` and ``"best single model"``; ``decomposition``: row -> :class:`Decomposition` on
      the test split for the forward selection and the uniform average; ``soup``: why the greedy soup is absent.
    Winning-team part:
      ``teams``: the candidate teams (tuples of source indices); ``scores``, ``truth``: ``(T,)`` the chosen
      estimator's scores and the teams' probed test accuracy; ``tau``: estimator -> Kendall's tau;
      ``picks``: estimator -> (team, its accuracy) of the team it scores highest, plus ``"OSBORN greedy"``;
      ``best``: (team, accuracy) of the best team; ``pick_index``, ``best_index``: the positions in ``teams`` of
      the chosen estimator's pick and of the best team.
    """

    path: dict[str, torch.Tensor]
    steps: int
    best_step: int | None
    team: dict[str, int]
    table: dict[str, dict[str, float]]
    decomposition: dict[str, Decomposition]
    metric: str
    soup: str
    teams: list[tuple[int, ...]]
    scores: torch.Tensor
    truth: torch.Tensor
    tau: dict[str, float]
    picks: dict[str, tuple[tuple[int, ...], float]]
    best: tuple[tuple[int, ...], float]
    sources: tuple[str, ...]
    pick_index: int
    best_index: int


def _row(selection: SelectionResult, p_test, y_test, hill: float | None) -> dict[str, float]:
    ens = selection.ensemble(p_test, validate=False)  # the Lab checked the library's probabilities once
    return {
        "hill": float("nan") if hill is None else hill,
        "held_out": float(selection.held_out_score),
        "nll": metrics.nll(ens, y_test, validate=False),
        "accuracy": metrics.accuracy(ens, y_test, validate=False),
        "ece": metrics.ece(ens, y_test, validate=False),
        "brier": metrics.brier(ens, y_test, validate=False),
        "models": float(int((selection.counts > 0).sum())),
    }


class SelectionLab(Lab):
    """Interactive ensemble selection over a model library, and team choice over a transfer world.

    Args:
        library: ``model_library()``.
        world: ``transfer_world()``.
        state: initial settings.
    """

    State = SelectionState
    KEY = "selection"
    CHALLENGES = (
        challenge(
            "small-hill-set",
            "A small hill-climbing set",
            "climb on only 100 validation images, yet reach a held-out NLL within 0.01 of climbing on all 5,000",
            Target("hill-climbing images", lambda r, s: s.hill_size, "<=", 100, fmt=str),
            Target("metric", lambda r, s: r.metric, "==", "nll", fmt=str),
            Target(
                "held-out NLL",
                lambda r, s: r.table["forward selection"]["nll"],
                "<=",
                0.345,
                fmt=lambda x: f"{x:.3f}",
            ),
        ),
        challenge(
            "winning-team",
            "Pick the winning team",
            "on 'faint + noise', find an estimator whose top-scored team of 3 is within 1 point of the best team",
            Target("target", lambda r, s: s.target, "==", "faint + noise", fmt=str),
            Target("team size", lambda r, s: s.team_size, "==", 3, fmt=str),
            Target(
                "its team's accuracy",
                lambda r, s: r.picks[s.estimator][1],
                ">=",
                lambda r, s: r.best[1] - 0.01,
                bound_label="best team - 1 point,",
            ),
        ),
    )

    def __init__(self, library: ModelLibrary, world: TransferWorld, state: SelectionState | None = None):
        if not isinstance(library, ModelLibrary):
            raise TypeError(
                f"library must be a ModelLibrary (from ensemble_lab.artefacts.library), got {type(library).__name__}"
            )
        if not isinstance(world, TransferWorld):
            raise TypeError(
                "world must be a TransferWorld (from ensemble_lab.artefacts.transfer_world), "
                f"got {type(world).__name__}"
            )
        self.library, self.world = library, world
        self.names = library.names
        self._p_val = check_member_probs(library.probs["val"].double(), "library.probs['val']")
        self._p_test = check_member_probs(library.probs["test"].double(), "library.probs['test']")
        self._y_val, self._y_test = library.labels["val"], library.labels["test"]
        super().__init__(state)

    def limits(self):
        return {"target": tuple(self.world.targets)}

    def defaults(self):
        return {"target": self.world.targets[0]}  # the world's first target (the State's default names the real one)

    # -- the library ------------------------------------------------------------------------------------
    @cached(maxsize=16)
    def hill_set(self, hill_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(K, n, C)`` probabilities and ``(n,)`` labels of the hill-climbing set (:func:`hill_set`), cut once
        per (size, seed): every update of the library half reads it."""
        return hill_set(self._p_val, self._y_val, hill_size, seed)

    @cached(maxsize=48)
    def _path(self, metric: str, hill_size: int, init: int, bagging: bool, seed: int) -> SelectionResult:
        self.busy = f"selecting on {hill_size} images{' with bagging' if bagging else ''}…"
        try:
            p, y = self.hill_set(hill_size, seed)
            return forward_select(
                p,
                y,
                metric=metric,
                steps=MAX_STEPS,
                init=init,
                bags=N_BAGS if bagging else 1,
                seed=seed,
                held_out=(self._p_test, self._y_test),
            )
        finally:
            self.busy = ""

    @cached(maxsize=256)
    def _baselines(self, metric: str, hill_size: int, seed: int, k: int) -> dict[str, dict[str, float]]:
        p, y = self.hill_set(hill_size, seed)
        top = top_k(p, y, k, metric=metric, held_out=(self._p_test, self._y_test), validate=False)
        return {
            f"top-{k}": _row(top, self._p_test, self._y_test, top.score),
            **self._fixed_rows(metric, hill_size, seed),
        }

    @cached(maxsize=48)
    def _fixed_rows(self, metric: str, hill_size: int, seed: int) -> dict[str, dict[str, float]]:
        """The rows that do not depend on the team's size: the uniform average and the best single model."""
        p, y = self.hill_set(hill_size, seed)
        ho = (self._p_test, self._y_test)
        single = top_k(p, y, 1, metric=metric, held_out=ho, validate=False)
        every = uniform(p, y, metric=metric, held_out=ho, validate=False)
        return {
            f"uniform (all {len(self.names)})": _row(every, self._p_test, self._y_test, every.score),
            f"best single model ({self.names[int(single.counts.argmax())]})": _row(
                single, self._p_test, self._y_test, single.score
            ),
        }

    @staticmethod
    def _mean_path(path: SelectionResult) -> dict[str, torch.Tensor]:
        by_step: dict[int, list] = {}
        for st in path.path:
            by_step.setdefault(st.step, []).append(st)
        steps = sorted(by_step)
        return {
            "step": torch.tensor(steps, dtype=torch.int64),
            "hill": torch.tensor(
                [sum(s.score for s in by_step[i]) / len(by_step[i]) for i in steps], dtype=torch.float64
            ),
            "held_out": torch.tensor(
                [sum(s.held_out for s in by_step[i]) / len(by_step[i]) for i in steps], dtype=torch.float64
            ),
        }

    def _decompose(self, weights: torch.Tensor, metric: str) -> Decomposition:
        fn = nll_decomposition if metric == "nll" else brier_decomposition
        return fn(self._p_test, self._y_test, weights=weights, validate=False)

    @cached(maxsize=8)
    def _uniform_decomposition(self, metric: str) -> Decomposition:
        return self._decompose(torch.ones(len(self.names), dtype=torch.float64), metric)

    # -- the winning team -------------------------------------------------------------------------------
    @cached(maxsize=64)
    def _transfer(self, target: str, label_seed: int, size: int):
        w = self.world
        truth = w.accuracy[(target, label_seed)][size]
        teams = w.teams[size]
        scores = {e: w.scores[(target, label_seed)][e][size] for e in ESTIMATORS}
        tau = {e: kendall_tau(s, truth) for e, s in scores.items()}
        picks, pick_index = {}, {}
        for e, s in scores.items():
            i = int(torch.argmax(s))  # the first maximum
            picks[e] = (teams[i], float(truth[i]))
            pick_index[e] = i
        index = {k: {team: i for i, team in enumerate(w.teams[k])} for k in w.teams}
        osborn = {k: w.scores[(target, label_seed)]["OSBORN"][k] for k in w.teams}

        def objective(team):
            return float(osborn[len(team)][index[len(team)][tuple(sorted(team))]])

        greedy = tuple(sorted(select_team(objective, len(w.sources), size).team))
        picks["OSBORN greedy"] = (greedy, float(truth[index[size][greedy]]))
        b = int(torch.argmax(truth))
        return teams, scores, truth, tau, picks, pick_index, b

    # -- the computation --------------------------------------------------------------------------------
    @cached(maxsize=256)
    def _library_part(self, metric: str, hill_size: int, init: int, bagging: bool, seed: int, steps: int) -> dict:
        """Everything the library half shows, per (selection settings, steps): a winning-team move reuses it."""
        path = self._path(metric, hill_size, init, bagging, seed)
        p, y = self.hill_set(hill_size, seed)
        ho = (self._p_test, self._y_test)
        sel = path.prefix(steps, p, y, held_out=ho, validate=False)
        k = int((sel.counts > 0).sum())
        table = {"forward selection": _row(sel, self._p_test, self._y_test, sel.score)}
        table.update(self._baselines(metric, hill_size, seed, k))
        order = sorted(range(len(self.names)), key=lambda i: (-int(sel.counts[i]), i))
        return {
            "path": self._mean_path(path),
            "best_step": sel.best_step,
            "team": {self.names[i]: int(sel.counts[i]) for i in order if int(sel.counts[i]) > 0},
            "table": table,
            "decomposition": {
                "forward selection": self._decompose(sel.counts.double(), metric),
                "uniform": self._uniform_decomposition(metric),
            },
        }

    def compute(self, state: SelectionState) -> SelectionLabResult:
        part = self._library_part(state.metric, state.hill_size, state.init, state.bagging, state.seed, state.steps)
        teams, scores, truth, tau, picks, pick_index, b = self._transfer(
            state.target, state.label_seed, state.team_size
        )
        return SelectionLabResult(
            path=part["path"],
            steps=state.steps,
            best_step=part["best_step"],
            team=dict(part["team"]),
            table={k: dict(v) for k, v in part["table"].items()},
            decomposition=dict(part["decomposition"]),
            metric=state.metric,
            soup="not applicable: the library's models were trained from different initialisations",
            teams=teams,
            scores=scores[state.estimator],
            truth=truth,
            tau=dict(tau),
            picks=dict(picks),
            best=(teams[b], float(truth[b])),
            sources=self.world.sources,
            pick_index=pick_index[state.estimator],
            best_index=b,
        )
