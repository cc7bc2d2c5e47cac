"""The calibration Lab: temperature-scale an ensemble, before or after pooling, and see how calibration and its
estimates move.

Headless use::

    lab = CalibrationLab(zoo.ensemble_predictions("distorted", "mlp-m", k=8))
    lab.set(temperature=1.5);  lab.result.after["ece"]
    lab.press("fit")                            # the temperature(s) minimising NLL on the calibration set
    lab.set(order="calibrate-then-pool");  lab.press("fit")

What is compared: *before* is the pooled ensemble as trained (uniform weights, ``rule``, no temperature);
*after* applies the temperatures of the State in the chosen ``order`` (``ensemble_lab.calibration``):

- ``"pool-then-calibrate"``: ``softmax(pooled_logits(z) / temperature)``, one temperature after pooling; it never
  changes a prediction's class (dividing one row of log-probabilities by T > 0 keeps its argmax);
- ``"calibrate-then-pool"``: every member divided by its own temperature (``member_temperatures``), then pooled;
  this changes each member's weight in the average, so it can change the ensemble's class (``changed`` counts
  how many); with ``rule="prob"`` even one temperature shared by every member can.

Both norms of the calibration error are shown, each with its own estimator: the binned l1 ECE and the binned
(plug-in) l2 error with the State's bins, and the chosen ``estimator`` (binned l1, debiased l2, smooth l1).

The temperature slider sets ``temperature`` in the first order and one temperature shared by every member in the
second; "fit" fits them on the first ``n_cal`` samples of a seeded shuffle of the ``val`` split (one temperature,
or one per member).  Everything else is evaluated on ``split`` (``test`` or a shifted test set).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from ... import calibration, calibration_error, metrics
from ..base import FIT_SPLIT, PredictionsLab, cached
from ..challenges import Target, challenge
from ..state import N_BINS, SPLIT, STRATEGY, TEMPERATURE, LabState, Setting

__all__ = ["CalibrationState", "CalibrationResult", "CalibrationLab", "ORDERS"]

ORDERS = ("pool-then-calibrate", "calibrate-then-pool")
N_BOOT = 100  # bootstrap resamples of the interval (batched: ~10 ms at N = 10k for the binned estimators)
LEVEL = 0.9


class CalibrationState(LabState):
    """Settings of the calibration Lab."""

    SETTINGS = {
        "order": Setting(str, ORDERS[0], "calibrate after pooling or each member before", choices=ORDERS),
        "rule": Setting(str, "prob", "how members are pooled", choices=calibration.POOL_RULES),
        "temperature": TEMPERATURE,
        "member_temperatures": Setting(
            list,
            (),
            "one temperature per member (calibrate-then-pool); empty means all 1",
            item=float,
            low=TEMPERATURE.low,
            high=TEMPERATURE.high,
            why=TEMPERATURE.why,
        ),
        "n_cal": Setting(int, 0, "calibration samples drawn from val for 'fit'; 0 means all of val", low=0),
        "n_bins": N_BINS,
        "strategy": STRATEGY,
        "estimator": Setting(str, "binned", "calibration-error estimator", choices=calibration_error.ECE_ESTIMATORS),
        "split": SPLIT,
    }


@dataclass(frozen=True)
class CalibrationResult:
    """What the Lab shows for one State.

    ``before``/``after``: accuracy, confidence (mean top-label confidence), nll, brier, ece (binned, l1, with the
    State's bins), ece_l2 (binned plug-in l2, ``metrics.ece(norm="l2")``, the same bins) and ``error`` with
    ``error_low``/``error_high``: the chosen estimator and its 90% bootstrap interval, all in probability units
    (``"debiased"`` reports the rooted l2 error ``sqrt(max(d, 0))`` of the debiased squared error d, its
    interval the same transform of d's interval; it estimates the l2 error, not the l1 ECE).  ``changed``: how
    many of the split's samples "after" puts in another class than "before" (0 for one temperature after
    pooling).  ``reliability_*``: binned
    diagrams; ``curve_*``: the smoothed reliability curve ``(x, y)`` when the estimator is ``"smooth"``, else None.
    ``temperature`` and ``member_temperatures`` are what "after" applied; ``fitted`` holds what "fit" would set:
    ``{"temperature": T, "member_temperatures": [T_1, ..., T_K], "note": str | None}`` fitted on ``n_cal`` val
    samples; ``note`` says when a fit did not converge to a finite temperature (too few samples).
    """

    split: str
    n_samples: int
    n_cal: int
    order: str
    estimator: str
    before: dict[str, float]
    after: dict[str, float]
    reliability_before: metrics.Reliability
    reliability_after: metrics.Reliability
    curve_before: tuple | None
    curve_after: tuple | None
    temperature: float
    member_temperatures: tuple[float, ...]
    fitted: dict
    changed: int


class CalibrationLab(PredictionsLab):
    """Interactive temperature scaling of an ensemble, before or after pooling.

    Args:
        predictions: ``logits`` (split -> ``(K, N, C)``) and ``labels`` (split -> ``(N,)``) with a ``"val"`` split
            to calibrate on, e.g. ``zoo.ensemble_predictions(...)``.
        state: initial settings (default: pool-then-calibrate at T = 1, all of val, the ``test`` split).
    """

    State = CalibrationState
    KEY = "calibration"
    CHALLENGES = (
        challenge(
            "calm-the-shift",
            "Calm the shift",
            "on noise-3, get ECE under 3% without losing accuracy",
            Target("split", lambda r, s: r.split, "==", "noise-3", fmt=str),
            Target("ECE", lambda r, s: r.after["ece"], "<", 0.03),
            Target(
                "accuracy",
                lambda r, s: r.after["accuracy"],
                ">=",
                lambda r, s: r.before["accuracy"],
                bound_label="uncalibrated",
            ),
        ),
        challenge(
            "few-samples",
            "A hundred samples suffice",
            "fit one temperature (after pooling) on at most 100 val samples that lowers the test NLL",
            Target("split", lambda r, s: r.split, "==", "test", fmt=str),
            Target("calibration samples", lambda r, s: s.n_cal or r.n_cal, "<=", 100, fmt=str),
            Target(
                "temperature",
                lambda r, s: r.temperature if r.order == ORDERS[0] else float("nan"),
                "==",
                lambda r, s: r.fitted["temperature"],
                fmt=lambda t: f"{t:.3g}",
                bound_label="fitted",
            ),
            Target(
                "NLL",
                lambda r, s: r.after["nll"],
                "<",
                lambda r, s: r.before["nll"],
                fmt=lambda x: f"{x:.3f}",
                bound_label="uncalibrated",
            ),
        ),
    )
    BUTTONS = ("fit", "reset")
    orders = ORDERS

    def __init__(self, predictions, state: CalibrationState | None = None):
        data = self._use_predictions(predictions)
        self.n_val = int(data.labels[FIT_SPLIT].shape[0])
        super().__init__(state)

    # -- cached pieces ----------------------------------------------------------------------------------
    def _member_temperatures(self, state) -> tuple[float, ...]:
        mt = tuple(state.member_temperatures) or (1.0,) * self.k
        if len(mt) != self.k:
            raise ValueError(f"member_temperatures must have one entry per member ({self.k}), got {len(mt)}")
        return mt

    @cached(maxsize=32)
    def _pooled(self, split: str, rule: str, member_temperatures: tuple[float, ...]) -> torch.Tensor:
        """``(N, C)`` pooled log-probabilities of ``split`` with every member divided by its temperature."""
        z, _ = self._data.split(split)
        t = torch.tensor(member_temperatures, dtype=z.dtype).view(-1, 1, 1)
        return calibration.pooled_logits(z / t, rule=rule)

    def _probs(self, split: str, rule: str, temperature: float, member_temperatures) -> torch.Tensor:
        return torch.softmax(self._pooled(split, rule, member_temperatures) / temperature, dim=-1)

    @cached(maxsize=64)
    def _side(self, split, rule, temperature, member_temperatures, n_bins, strategy, estimator, seed):
        """Numbers, diagram and curve of one calibrated (or raw) ensemble on ``split``."""
        _, y = self._data.split(split)
        p = self._probs(split, rule, temperature, member_temperatures)
        row = metrics.summary(p, y, n_bins=n_bins, strategy=strategy, validate=False)
        row["ece_l2"] = metrics.ece(p, y, n_bins=n_bins, strategy=strategy, norm="l2", validate=False)
        row["confidence"] = float(p.max(dim=1).values.double().mean())
        bandwidth = calibration_error.smooth_ece_bandwidth(p, y) if estimator == "smooth" else None  # solved once
        est, low, high = calibration_error.bootstrap_ece(
            p,
            y,
            estimator,
            n_bins=n_bins,
            strategy=strategy,
            bandwidth=bandwidth,
            n_boot=N_BOOT,
            level=LEVEL,
            seed=seed,
        )
        if estimator == "debiased":  # report the rooted l2 error, in probability units like the others
            est, low, high = (math.sqrt(max(v, 0.0)) for v in (est, low, high))
        row.update(error=est, error_low=low, error_high=high)
        rel = metrics.reliability(p, y, n_bins=n_bins, strategy=strategy, validate=False)
        curve = calibration_error.smooth_reliability(p, y, bandwidth, grid=101) if estimator == "smooth" else None
        return row, rel, curve

    @cached(maxsize=64)
    def _changed(self, split, rule, temperature, member_temperatures) -> int:
        """How many samples of ``split`` the temperatures move to another class than the raw pool's."""
        before = self._pooled(split, rule, (1.0,) * self.k).argmax(dim=1)
        after = self._probs(split, rule, temperature, member_temperatures).argmax(dim=1)
        return int((before != after).sum())

    @cached(maxsize=64)
    def _fitted(self, rule: str, n_cal: int, seed: int) -> dict:
        z, y = self._data.split(FIT_SPLIT)
        idx = torch.randperm(self.n_val, generator=torch.Generator().manual_seed(seed))[:n_cal]
        zc, yc = z[:, idx], y[idx]
        with warnings.catch_warnings(record=True) as caught:  # shown in the Lab, not as stderr in the notebook
            warnings.simplefilter("always", RuntimeWarning)
            ptc = calibration.pool_then_calibrate(zc, yc, rule=rule)
            mt = calibration.fit_member_temperatures(zc, yc)
        note = None
        if any(issubclass(w.category, RuntimeWarning) for w in caught):
            note = (
                f"on {n_cal} samples the ensemble or a member separates every label, so no finite temperature "
                "minimises the NLL: the fit is unreliable; use more calibration samples"
            )
        return {
            "temperature": round(float(ptc.temperature), 4),
            "member_temperatures": [round(float(t), 4) for t in mt],
            "note": note,
        }

    def _n_cal(self, state) -> int:
        n = state.n_cal or self.n_val
        if n > self.n_val:
            raise ValueError(f"n_cal must be at most the {self.n_val} samples of the val split, got {n}")
        if n < self.n_classes:
            raise ValueError(
                f"n_cal must be at least the number of classes ({self.n_classes}) to fit a temperature, got {n}"
            )
        return n

    # -- the computation -------------------------------------------------------------------------------
    def compute(self, state: CalibrationState) -> CalibrationResult:
        _, y = self._data.split(state.split)
        mt = self._member_temperatures(state)
        n_cal = self._n_cal(state)
        if state.order == ORDERS[0]:
            t_after, mt_after = state.temperature, (1.0,) * self.k
        else:
            t_after, mt_after = 1.0, mt
        common = (state.n_bins, state.strategy, state.estimator, state.seed)
        before, rel_b, curve_b = self._side(state.split, state.rule, 1.0, (1.0,) * self.k, *common)
        after, rel_a, curve_a = self._side(state.split, state.rule, t_after, mt_after, *common)
        return CalibrationResult(
            split=state.split,
            n_samples=int(y.shape[0]),
            n_cal=n_cal,
            order=state.order,
            estimator=state.estimator,
            before=dict(before),
            after=dict(after),
            reliability_before=rel_b,
            reliability_after=rel_a,
            curve_before=curve_b,
            curve_after=curve_a,
            temperature=t_after,
            member_temperatures=mt_after,
            fitted=self._fitted(state.rule, n_cal, state.seed),
            changed=self._changed(state.split, state.rule, t_after, mt_after),
        )

    # -- buttons ---------------------------------------------------------------------------------------
    def _press_fit(self) -> bool:
        """Set the temperature(s) of the current order to those fitted on ``n_cal`` val samples."""
        fitted = self.result.fitted
        if self.state.order == ORDERS[0]:
            return self.set(temperature=fitted["temperature"])
        return self.set(member_temperatures=list(fitted["member_temperatures"]))

    def _press_reset(self) -> bool:
        """Every temperature back to 1."""
        return self.set(temperature=1.0, member_temperatures=[])
