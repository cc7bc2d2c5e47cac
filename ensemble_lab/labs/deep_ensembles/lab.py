"""The deep-ensembles Lab: weight the members of a trained ensemble and watch accuracy and calibration move.

Headless use::

    lab = DeepEnsemblesLab(zoo.ensemble_predictions("distorted", "mlp-s", k=8))
    lab.set(weights=[1, 0, 0, 0, 0, 0, 0, 0]);  lab.result.metrics["ensemble"]["nll"]
    lab.press("learn")                          # weights that minimise validation NLL

In a notebook, ``lab`` displays itself: sliders and buttons on the left, numbers and plots on the right.
Weights are learned and the best member is chosen on the ``val`` split; every other split is for evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import metrics
from ...combine import RULES, Combiner, best_member, learn_weights
from ..base import FIT_SPLIT, PredictionsLab, cached
from ..challenges import Target, challenge
from ..state import N_BINS, SPLIT, STRATEGY, TEMPERATURE, LabState, Setting

__all__ = ["DeepEnsemblesState", "DeepEnsemblesResult", "DeepEnsemblesLab"]


class DeepEnsemblesState(LabState):
    """Settings of the deep-ensembles Lab."""

    SETTINGS = {
        "weights": Setting(list, (), "one raw weight per member (normalised when used)", item=float),
        "rule": Setting(str, "prob", "how members are combined", choices=RULES),
        "temperature": TEMPERATURE,
        "n_bins": N_BINS,
        "strategy": STRATEGY,
        "split": SPLIT,
    }


@dataclass(frozen=True)
class DeepEnsemblesResult:
    """What the Lab shows for one State.

    ``metrics`` rows: ``"ensemble"``, ``"best member"`` (chosen on val, evaluated on ``split``) and
    ``"average member"`` (each member's metrics, averaged); columns accuracy, nll, brier, ece (floats;
    accuracy and ece as fractions).  ``diversity``: disagreement, kl_to_ensemble, mutual_information over the
    members with non-zero weight.
    """

    split: str
    weights: torch.Tensor  # (K,) normalised
    metrics: dict[str, dict[str, float]]
    reliability: metrics.Reliability
    diversity: dict[str, float]
    best_member: int
    n_samples: int


class DeepEnsemblesLab(PredictionsLab):
    """Interactive weighting of a deep ensemble's members.

    Args:
        predictions: an object with ``logits`` (split -> ``(K, N, C)`` tensor), ``labels`` (split -> ``(N,)``)
            and optionally ``config``; e.g. ``zoo.ensemble_predictions(...)``.  Must contain a ``"val"`` split.
        state: initial settings (default: uniform weights, rule ``prob``, the ``test`` split).
    """

    State = DeepEnsemblesState
    KEY = "deep_ensembles"
    CHALLENGES = (
        challenge(
            "calm-noise",
            "Calm under noise",
            "on noise-3, get the ensemble's ECE under 4% while it still beats the best member's accuracy",
            Target("split", lambda r, s: r.split, "==", "noise-3", fmt=str),
            Target("ECE", lambda r, s: r.metrics["ensemble"]["ece"], "<", 0.04),
            Target(
                "accuracy",
                lambda r, s: r.metrics["ensemble"]["accuracy"],
                ">",
                lambda r, s: r.metrics["best member"]["accuracy"],
                bound_label="best member",
            ),
        ),
        challenge(
            "three-beat-best",
            "Three are enough",
            "on test, beat the best member's accuracy by a full point with at most 3 members",
            Target("split", lambda r, s: r.split, "==", "test", fmt=str),
            Target("members used", lambda r, s: int((r.weights > 0).sum()), "<=", 3, fmt=str),
            Target(
                "accuracy",
                lambda r, s: r.metrics["ensemble"]["accuracy"],
                ">=",
                lambda r, s: r.metrics["best member"]["accuracy"] + 0.01,
                bound_label="best member + 1 point",
            ),
        ),
    )
    BUTTONS = ("uniform", "learn", "best")
    max_sliders = 8

    def __init__(self, predictions, state: DeepEnsemblesState | None = None):
        data = self._use_predictions(predictions)
        self._logits, self._labels = data.logits, data.labels
        self._best = best_member(self._logits[FIT_SPLIT], self._labels[FIT_SPLIT])
        super().__init__(state)

    def defaults(self):
        return {**super().defaults(), "weights": [1.0] * self.k}

    # -- cached, weight-independent pieces (a weight change only re-combines) ----------------------------
    @cached(maxsize=8)
    def _combiner(self, split: str, temperature: float) -> Combiner:
        z, _ = self._data.split(split)
        return Combiner(z, temperature)

    @cached(maxsize=32)
    def _member_rows(self, split: str, temperature: float, n_bins: int, strategy: str):
        probs = self._combiner(split, temperature).member_probs
        _, y = self._data.split(split)
        rows = [metrics.summary(p, y, n_bins=n_bins, strategy=strategy, validate=False) for p in probs]
        average = {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}
        return rows[self._best], average

    @cached(maxsize=64)
    def _diversity(self, split: str, temperature: float, active: tuple[int, ...]):
        probs = self._combiner(split, temperature).member_probs[list(active)]
        return metrics.diversity(probs, validate=False)

    # -- the computation -------------------------------------------------------------------------------
    def compute(self, state: DeepEnsemblesState) -> DeepEnsemblesResult:
        _, y = self._data.split(state.split)
        p = self._combiner(state.split, state.temperature)(state.weights, state.rule)
        w = torch.tensor(state.weights, dtype=torch.float64)
        w = w / w.sum()
        best_row, average_row = self._member_rows(state.split, state.temperature, state.n_bins, state.strategy)
        active = tuple(int(i) for i in torch.nonzero(w > 0).flatten())
        return DeepEnsemblesResult(
            split=state.split,
            weights=w,
            metrics={
                "ensemble": metrics.summary(p, y, n_bins=state.n_bins, strategy=state.strategy, validate=False),
                "best member": best_row,
                "average member": average_row,
            },
            reliability=metrics.reliability(p, y, n_bins=state.n_bins, strategy=state.strategy, validate=False),
            diversity=self._diversity(state.split, state.temperature, active),
            best_member=self._best,
            n_samples=int(y.shape[0]),
        )

    # -- the three buttons -----------------------------------------------------------------------------
    def _press_uniform(self) -> bool:
        return self.set(weights=[1.0] * self.k)

    def _press_best(self) -> bool:
        """Only the member with the best validation accuracy."""
        return self.set(weights=[1.0 if i == self._best else 0.0 for i in range(self.k)])

    def _press_learn(self) -> bool:
        """The weights that minimise validation NLL under the current rule and temperature."""
        if self.state.rule == "vote":
            self.status = "a vote has no gradient: switch the rule to prob, logit or geo to learn weights"
            return False
        w = self._learned(self.state.rule, self.state.temperature)
        return self.set(weights=[round(float(v), 6) for v in w])

    @cached(maxsize=16)
    def _learned(self, rule: str, temperature: float) -> torch.Tensor:
        return learn_weights(self._logits[FIT_SPLIT], self._labels[FIT_SPLIT], rule=rule, temperature=temperature)
