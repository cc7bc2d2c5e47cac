"""The deep-ensembles Lab: weight the members of a trained ensemble and watch accuracy and calibration move.

Headless use::

    lab = DeepEnsembleLab(zoo.ensemble_predictions("distorted", "mlp-s", k=8))
    lab.set(weights=[1, 0, 0, 0, 0, 0, 0, 0]);  lab.result.metrics["ensemble"]["nll"]
    lab.press("learn")                          # weights that minimise validation NLL

In a notebook, ``lab`` displays itself: sliders and buttons on the left, numbers and plots on the right.
Weights are learned and the best member is chosen on the ``val`` split; every other split is for evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import traitlets

from .. import metrics
from ..combine import RULES, Combiner, best_member, learn_weights
from .base import BinnedState, Lab, one_of, positive, split_predictions

__all__ = ["DeepEnsembleState", "DeepEnsembleResult", "DeepEnsembleLab"]

FIT_SPLIT = "val"


class DeepEnsembleState(BinnedState):
    """Settings of the deep-ensembles Lab."""

    weights = traitlets.List(traitlets.Float(), help="one raw weight per member (normalised when used)").tag(
        setting=True)
    rule = traitlets.Unicode("prob", help=f"combination rule, one of {RULES}").tag(setting=True)
    temperature = traitlets.Float(1.0, help="divides every member's logits before combining").tag(setting=True)
    strategy = traitlets.Unicode("uniform", help="'uniform' or 'quantile' (equal-mass) bins").tag(setting=True)
    split = traitlets.Unicode("test", help="evaluation split: 'test' or a shifted test set").tag(setting=True)

    @traitlets.validate("rule")
    def _valid_rule(self, proposal):
        return one_of(proposal.value, "rule", RULES)

    @traitlets.validate("strategy")
    def _valid_strategy(self, proposal):
        return one_of(proposal.value, "strategy", ("uniform", "quantile"))

    @traitlets.validate("temperature")
    def _valid_temperature(self, proposal):
        return positive(proposal.value, "temperature")


@dataclass(frozen=True)
class DeepEnsembleResult:
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


class DeepEnsembleLab(Lab):
    """Interactive weighting of a deep ensemble's members.

    Args:
        predictions: an object with ``logits`` (split -> ``(K, N, C)`` tensor), ``labels`` (split -> ``(N,)``)
            and optionally ``config``; e.g. ``zoo.ensemble_predictions(...)``.  Must contain a ``"val"`` split.
        state: initial settings (default: uniform weights, rule ``prob``, the ``test`` split).
    """

    max_sliders = 8
    fit_split = FIT_SPLIT

    def __init__(self, predictions, state: DeepEnsembleState | None = None):
        data = split_predictions(predictions, FIT_SPLIT)
        self.predictions = predictions
        self._data = data
        self._logits, self._labels = data.logits, data.labels
        self.k, self.n_classes = data.k, data.n_classes
        self.eval_splits = data.eval_splits
        if state is None:
            state = DeepEnsembleState(weights=[1.0] * self.k,
                                      split="test" if "test" in data.logits else self.eval_splits[0])
        # caches of weight-independent work, so that a weight change only re-combines
        self._combiner = lru_cache(maxsize=8)(self._combiner_uncached)
        self._member_rows = lru_cache(maxsize=32)(self._member_rows_uncached)
        self._diversity = lru_cache(maxsize=64)(self._diversity_uncached)
        self._best = best_member(self._logits[FIT_SPLIT], self._labels[FIT_SPLIT])
        super().__init__(state)

    # -- cached, weight-independent pieces -------------------------------------------------------------
    def _split_data(self, split: str):
        return self._data.split(split)

    def _combiner_uncached(self, split: str, temperature: float) -> Combiner:
        z, _ = self._split_data(split)
        return Combiner(z, temperature)

    def _member_rows_uncached(self, split: str, temperature: float, n_bins: int, strategy: str):
        probs = self._combiner(split, temperature).member_probs
        _, y = self._split_data(split)
        rows = [metrics.summary(p, y, n_bins=n_bins, strategy=strategy, validate=False) for p in probs]
        average = {key: sum(r[key] for r in rows) / len(rows) for key in rows[0]}
        return rows[self._best], average

    def _diversity_uncached(self, split: str, temperature: float, active: tuple[int, ...]):
        probs = self._combiner(split, temperature).member_probs[list(active)]
        return metrics.diversity(probs, validate=False)

    # -- the computation -------------------------------------------------------------------------------
    def compute(self, state: DeepEnsembleState) -> DeepEnsembleResult:
        _, y = self._split_data(state.split)
        p = self._combiner(state.split, state.temperature)(state.weights, state.rule)
        w = torch.tensor(state.weights, dtype=torch.float64)
        w = w / w.sum()
        best_row, average_row = self._member_rows(state.split, state.temperature, state.n_bins, state.strategy)
        active = tuple(int(i) for i in torch.nonzero(w > 0).flatten())
        return DeepEnsembleResult(
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
    def press(self, button: str) -> bool:
        """Press ``"uniform"``, ``"learn"`` (weights minimising val NLL) or ``"best"`` (best single member)."""
        if button == "uniform":
            return self.set(weights=[1.0] * self.k)
        if button == "best":
            return self.set(weights=[1.0 if i == self._best else 0.0 for i in range(self.k)])
        if button == "learn":
            if self.state.rule == "vote":
                self.status = ("a vote has no gradient: switch the rule to prob, logit or geo to learn weights")
                return False
            w = self._learned(self.state.rule, self.state.temperature)
            return self.set(weights=[round(float(v), 6) for v in w])
        self.status = f"unknown button {button!r}; use 'uniform', 'learn' or 'best'"
        return False

    @lru_cache(maxsize=16)  # noqa: B019 - a Lab lives as long as its notebook
    def _learned(self, rule: str, temperature: float) -> torch.Tensor:
        return learn_weights(self._logits[FIT_SPLIT], self._labels[FIT_SPLIT], rule=rule, temperature=temperature)

    def _build_view(self):
        from .deep_ensembles_view import DeepEnsembleView

        return DeepEnsembleView(self)
