"""The cascades Lab: run ensemble members one after another, let confident samples exit early, and see risk,
coverage, calibration and cost respond (Xia & Bouganis, ICCV 2023).

Headless use::

    lab = CascadesLab(members, costs=[50432] * 4, singles={"mlp-l": (single_preds, 199168)})
    lab.set(target=0.8, half_width=0.1);  lab.result.cascade["coverage"], lab.result.cascade["macs"]

``members`` has ``logits`` (split -> ``(K, N, C)``) and ``labels`` (split -> ``(N,)``) with a ``"val"`` split, as
``zoo.ensemble_predictions`` returns.  As in the authors' code (https://github.com/Guoxoug/window-early-exit,
``cascade_results.py``), the operating threshold tau is chosen on val for the target risk (or coverage) of the
FIRST stage alone (its scores and the correctness of its prediction), and the window is ``half_width`` in quantile
space of the first stage's val scores (:func:`ensemble_lab.cascades.fit_windows`).  With more than two stages each
stage but the last gets its own tau and window, in its own val quantile space.  ``adjusted`` re-estimates the
windows' edges on the evaluated split's own stage scores (no labels; :func:`ensemble_lab.cascades.adjust_windows`).
Everything else is evaluated on ``split``.  The defaults (two stages, tau for 80% coverage, half-width 0.1) put tau
at the first stage's val level ~0.2 and the window at levels ~0.1 to ~0.3, so both its edges are finite whatever the
members' accuracy (unless most val scores tie, e.g. an MSP saturated at 1.0); a risk target puts tau wherever that
risk is reached, and its window may reach an end of the scores (an infinite edge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ... import cascades, metrics, selective
from ..base import FIT_SPLIT, PredictionsLab, cached
from ..challenges import Target, challenge
from ..state import N_BINS, SPLIT, LabState, Setting

__all__ = ["CascadesState", "CascadesResult", "CascadesLab", "POLICIES", "TARGETS"]

CLEAN = "test"  # the in-distribution split that shifted splits are told apart from
POLICIES = cascades.POLICIES
TARGETS = ("risk", "coverage")
SWEEP = tuple(i / 40 for i in range(21))  # half-widths of the window policy's cost/quality frontier, 0 .. 0.5
#: the threshold policy's frontier: exit thresholds set on each stage's val scores for these coverages (1 -> almost
#: nobody passed on), then everyone passed on (the full ensemble), as the authors sweep val quantiles
THRESHOLD_SWEEP = tuple(1 - i / 20 for i in range(20))
RISKS = (0.02, 0.05, 0.1)  # risks at which coverage is read off each evaluated risk-coverage curve


class CascadesState(LabState):
    """Settings of the cascades Lab."""

    SETTINGS = {
        "target_kind": Setting(
            str, "coverage", "tau from a target selective risk or coverage of the first stage on val", choices=TARGETS
        ),
        "target": Setting(float, 0.8, "the target selective risk or coverage", low=0, high=1, open_low=True),
        "half_width": Setting(
            float,
            0.1,
            "window half-width, in quantile space of each stage's val scores",
            low=0,
            high=0.5,
            why="quantile space",
        ),
        "policy": Setting(str, "window", "pass on inside a window around tau, or below tau", choices=POLICIES),
        "adjusted": Setting(
            bool, False, "re-estimate the window's quantile edges on the evaluated split's scores (no labels)"
        ),
        "score": Setting(str, "msp", "the exit score", choices=cascades.SCORES),
        "order": Setting(
            list, (0, 1), "members in the order they run (default: the first two); empty means all", item=int, low=0
        ),
        "n_bins": N_BINS,
        "split": SPLIT,
    }


@dataclass(frozen=True)
class CascadesResult:
    """What the Lab shows for one State.

    ``tau``: the first stage's operating threshold (score units), fitted on its val scores and correctness for
    the target; ``window``: ``(lo, hi)`` the first stage's window (a sample is passed on while ``lo < score <
    hi``; ``(-inf, tau)`` for the threshold policy), re-estimated on this split's scores when ``adjusted``;
    ``stage_tau`` / ``stage_windows``: the same for every stage but the last (one entry for two stages).
    ``cascade`` / ``ensemble`` (all stages for every sample): accuracy, ece, aurc, risk and coverage at tau,
    ``coverage_at_risk`` (risk -> the largest coverage whose risk on this split is at most that, for
    :data:`RISKS`: the evaluated curve read at fixed risks, no threshold transfer from val), macs (mean cost per
    sample); ``exit_share`` ``(K',)`` the share of samples leaving at each stage.
    ``singles``: name -> {"macs", "accuracy", "coverage", "risk", "aurc"} at the same target, each single model
    with its own tau from val, and ``quality`` (see :func:`_quality`).  ``frontiers``: policy -> ``(macs (W,),
    quality (W,))``: ``"window"`` over the :data:`SWEEP` half-widths (tau fixed; adjusted when ``adjusted``),
    ``"threshold"`` over exit thresholds at the :data:`THRESHOLD_SWEEP` val coverages and then the full ensemble;
    quality is the coverage at the target risk read off each point's risk-coverage curve on this split (the risk
    at the target coverage for a coverage target).  ``curves``: name -> ``(coverage, risk)`` tensors of the
    risk-coverage curves.  ``window_coverage``: the coverages at which the window's upper and lower edges would sit
    as thresholds on the cascade's exit confidence (where the window lies on the risk-coverage curve).  ``ood``: for
    a shifted split, telling its images (out) from the clean test images (in) by the exit confidence (the same
    windows for both): ``{"cascade": {"auroc", "fpr95"}, "full ensemble": {...}}``; None on the clean split itself.
    """

    split: str
    policy: str
    adjusted: bool
    tau: float
    window: tuple[float, float]
    stage_tau: tuple[float, ...]
    stage_windows: tuple[tuple[float, float], ...]
    ood: dict[str, dict[str, float]] | None
    window_coverage: tuple[float, float]
    quality: float
    cascade: dict[str, float]
    ensemble: dict[str, float]
    exit_share: torch.Tensor
    singles: dict[str, dict[str, float]]
    frontiers: dict[str, tuple[torch.Tensor, torch.Tensor]]
    curves: dict[str, tuple[torch.Tensor, torch.Tensor]]


class CascadesLab(PredictionsLab):
    """Interactive early-exit cascades.

    Args:
        members: predictions of the cascade's members (``logits`` split -> ``(K, N, C)``, ``labels``).
        costs: ``(K,)`` multiply-accumulates per sample of each member.
        singles: optional name -> ``(predictions, macs)`` of single models to compare with, each predictions
            object holding ``logits`` split -> ``(1, N, C)`` or ``(N, C)`` on the same splits and labels.
        state: initial settings.
    """

    State = CascadesState
    KEY = "cascades"
    CHALLENGES = (
        challenge(
            "cover-cheaply",
            "Cover cheaply",
            "cover 75% at 5% risk with fewer than half the MACs of the largest single model",
            Target("coverage at 5% risk", lambda r, s: r.cascade["coverage_at_risk"][0.05], ">=", 0.75),
            Target(
                "MACs",
                lambda r, s: r.cascade["macs"],
                "<",
                lambda r, s: max((v["macs"] for v in r.singles.values()), default=math.nan) / 2,
                fmt=lambda x: f"{x:,.0f}",
                bound_label="half the largest single",
            ),
        ),
        challenge(
            "as-good-as-all",
            "As good as all of them",
            "match the full ensemble's accuracy (within 0.1 points) while at least 55% of images exit at the "
            "first stage",
            Target(
                "accuracy",
                lambda r, s: r.cascade["accuracy"],
                ">=",
                lambda r, s: r.ensemble["accuracy"] - 0.001,
                fmt=lambda x: f"{100 * x:.2f}%",
                bound_label="full ensemble - 0.1",
            ),
            Target("exit at stage 1", lambda r, s: float(r.exit_share[0]), ">=", 0.55),
        ),
    )

    def __init__(self, members, costs, singles=None, state: CascadesState | None = None):
        self._use_predictions(members)
        self.costs = torch.as_tensor(costs, dtype=torch.float64)
        if self.costs.shape != (self.k,) or not bool(torch.isfinite(self.costs).all()) or bool((self.costs < 0).any()):
            raise ValueError(
                f"costs must be {self.k} finite non-negative numbers (one per member), got {self.costs.tolist()}"
            )
        self.singles = {}
        for name, (preds, macs) in (singles or {}).items():
            logits = {s: (t if t.ndim == 3 else t[None]) for s, t in dict(preds.logits).items()}
            self.singles[name] = (logits, float(macs))
        super().__init__(state)

    # -- pieces -----------------------------------------------------------------------------------------
    def defaults(self) -> dict:
        return {**super().defaults(), "order": [0, 1] if self.k >= 2 else [0]}

    def _order(self, state) -> tuple[int, ...]:
        order = tuple(state.order) or tuple(range(self.k))
        if any(not 0 <= i < self.k for i in order) or len(set(order)) != len(order):
            raise ValueError(f"order must list distinct members in 0..{self.k - 1}, got {list(order)}")
        return order

    def _threshold(self, conf, correct, kind: str, target: float) -> float:
        if kind == "risk":
            return selective.threshold_for_risk(conf, correct, target)
        return selective.threshold_for_coverage(conf, target)

    @cached(maxsize=32)
    def _stage_scores(self, split, order, score) -> torch.Tensor:
        """The scores of every stage that gets a window (all but the last; the first alone for one stage)."""
        scores = cascades.stage_scores(self._data.split(split)[0], score, order=list(order))
        return scores[: max(1, len(order) - 1)]

    @cached(maxsize=32)
    def _val_correct(self, order) -> torch.Tensor:
        z, y = self._data.split(FIT_SPLIT)
        return (cascades.stage_probs(z, order=list(order)).argmax(-1) == y)[: max(1, len(order) - 1)]

    @cached(maxsize=128)
    def _windows(self, order, score, kind, target, half_width, adjusted, split) -> cascades.CascadeWindows:
        """Each stage's tau (on its val scores and correctness, the first stage's is the Lab's tau) and window."""
        target_kw = {"target_risk": target} if kind == "risk" else {"target_coverage": target}
        windows = cascades.fit_windows(
            self._stage_scores(FIT_SPLIT, order, score), self._val_correct(order), half_width, **target_kw
        )
        if adjusted:
            windows = cascades.adjust_windows(windows, self._stage_scores(split, order, score))
        return windows

    @cached(maxsize=64)
    def _singles(self, split, score, kind, target, n_bins):
        out = {}
        for name, (logits, macs) in self.singles.items():
            zv, yv = logits[FIT_SPLIT][0], self._data.labels[FIT_SPLIT]
            tau = self._threshold(cascades.confidence_score(zv, score), zv.argmax(-1) == yv, kind, target)
            z, y = logits[split][0], self._data.labels[split]
            conf, ok = cascades.confidence_score(z, score), z.argmax(-1) == y
            risk, cov = selective.selective_risk(conf, ok, tau)
            out[name] = {
                "macs": macs,
                "accuracy": metrics.top1_accuracy(z, y),
                "risk": risk,
                "coverage": cov,
                "quality": _quality(conf, ok, kind, target),
                "aurc": selective.aurc(conf, ok),
                "_curve": selective.risk_coverage(conf, ok),
                "coverage_at_risk": dict(zip(RISKS, selective.coverages_at_risks(conf, ok, RISKS), strict=False)),
            }
        return out

    def _ood(self, split, confidence, order, score, windows, policy):
        """Clean test images (in) against ``split``'s images (out), by exit confidence; None for clean test."""
        if split in (CLEAN, FIT_SPLIT) or CLEAN not in self._data.logits:
            return None
        z_in, _ = self._data.split(CLEAN)
        conf_in = cascades.fitted_cascade(
            z_in, windows, score=score, costs=self.costs, order=list(order), policy=policy
        ).confidence
        full_in = cascades.stage_scores(z_in, score, order=list(order))[-1]
        full_out = cascades.stage_scores(self._data.split(split)[0], score, order=list(order))[-1]
        return {
            name: {"auroc": selective.ood_auroc(a, b), "fpr95": selective.fpr_at_tpr(a, b, 0.95)}
            for name, (a, b) in (("cascade", (conf_in, confidence)), ("full ensemble", (full_in, full_out)))
        }

    def _full(self, z, order, score) -> cascades.CascadeResult:
        """Every stage for every sample: the full ensemble of the members in ``order``."""
        probs = cascades.stage_probs(z, order=list(order))[-1]
        n = probs.shape[0]
        return cascades.CascadeResult(
            predictions=probs.argmax(-1),
            exit_stage=torch.full((n,), len(order) - 1, dtype=torch.int64),
            confidence=cascades.stage_scores(z, score, order=list(order))[-1],
            cost=torch.full((n,), float(self.costs[list(order)].sum()), dtype=torch.float64),
            probs=probs,
        )

    @cached(maxsize=64)
    def _fixed(self, split, order, score, n_bins, kind, target):
        """What no window or policy change touches: the full ensemble's row and risk-coverage curve."""
        z, y = self._data.split(split)
        tau = self._windows(order, score, kind, target, 0.0, False, split).tau[0]
        full = self._full(z, order, score)
        return self._row(full, y, tau, n_bins), _curve(selective.risk_coverage(full.confidence, full.predictions == y))

    @cached(maxsize=64)
    def _window_frontier(self, split, order, score, kind, target, adjusted):
        """Mean cost and quality of the window policy at each :data:`SWEEP` half-width (tau fixed)."""
        z, y = self._data.split(split)
        macs, quality = [], []
        for q in SWEEP:  # each half-width's risk-coverage curve, read at the target (cached: not per slider move)
            windows = self._windows(order, score, kind, target, q, adjusted, split)
            r = cascades.fitted_cascade(z, windows, score=score, costs=self.costs, order=list(order))
            macs.append(float(r.cost.double().mean()))
            quality.append(_quality(r.confidence, r.predictions == y, kind, target))
        return torch.tensor(macs), torch.tensor(quality)

    @cached(maxsize=64)
    def _threshold_frontier(self, split, order, score, kind, target):
        """Mean cost and quality of the threshold policy with exit thresholds at each :data:`THRESHOLD_SWEEP`
        coverage of every stage's val scores, then with everyone passed on (the full ensemble)."""
        z, y = self._data.split(split)
        val = self._stage_scores(FIT_SPLIT, order, score)
        macs, quality = [], []
        for c in THRESHOLD_SWEEP:
            windows = cascades.fit_windows(val, None, 0.0, target_coverage=c)
            r = cascades.fitted_cascade(
                z, windows, score=score, costs=self.costs, order=list(order), policy="threshold"
            )
            macs.append(float(r.cost.double().mean()))
            quality.append(_quality(r.confidence, r.predictions == y, kind, target))
        full = self._full(z, order, score)
        macs.append(float(full.cost.double().mean()))
        quality.append(_quality(full.confidence, full.predictions == y, kind, target))
        return torch.tensor(macs), torch.tensor(quality)

    def _row(self, result, y, tau, n_bins) -> dict[str, float]:
        ok = result.predictions == y
        risk, cov = selective.selective_risk(result.confidence, ok, tau)
        return {
            "accuracy": metrics.accuracy(result.probs, y),
            "ece": metrics.ece(result.probs, y, n_bins=n_bins),
            "aurc": selective.aurc(result.confidence, ok),
            "risk": risk,
            "coverage": cov,
            "coverage_at_risk": dict(
                zip(RISKS, selective.coverages_at_risks(result.confidence, ok, RISKS), strict=False)
            ),
            "macs": float(result.cost.double().mean()),
        }

    # -- the computation -------------------------------------------------------------------------------
    def compute(self, state: CascadesState) -> CascadesResult:
        order = self._order(state)
        z, y = self._data.split(state.split)
        kind, target = state.target_kind, state.target
        windows = self._windows(order, state.score, kind, target, state.half_width, state.adjusted, state.split)
        result = cascades.fitted_cascade(
            z, windows, score=state.score, costs=self.costs, order=list(order), policy=state.policy
        )
        used = range(max(1, len(order) - 1))
        tau = windows.tau[0]
        if state.policy == "window":
            stage_windows = tuple((windows.lo[j], windows.hi[j]) for j in used)
        else:
            stage_windows = tuple((-math.inf, windows.tau[j]) for j in used)
        window = stage_windows[0]
        full_row, full_curve = self._fixed(state.split, order, state.score, state.n_bins, kind, target)
        frontiers = {
            "window": self._window_frontier(state.split, order, state.score, kind, target, state.adjusted),
            "threshold": self._threshold_frontier(state.split, order, state.score, kind, target),
        }
        singles = self._singles(state.split, state.score, kind, target, state.n_bins)
        curves = {
            "cascade": _curve(selective.risk_coverage(result.confidence, result.predictions == y)),
            "full ensemble": full_curve,
        }
        curves.update({name: _curve(s["_curve"]) for name, s in singles.items()})
        ood = self._ood(state.split, result.confidence, order, state.score, windows, state.policy)
        return CascadesResult(
            split=state.split,
            policy=state.policy,
            adjusted=state.adjusted,
            tau=tau,
            window=window,
            stage_tau=tuple(windows.tau[j] for j in used),
            stage_windows=stage_windows,
            ood=ood,
            window_coverage=(
                float((result.confidence >= window[1]).double().mean()),
                float((result.confidence > window[0]).double().mean()),
            ),
            cascade=self._row(result, y, tau, state.n_bins),
            ensemble=full_row,
            exit_share=torch.bincount(result.exit_stage, minlength=len(order)).double() / y.shape[0],
            singles={n: {k: v for k, v in s.items() if k != "_curve"} for n, s in singles.items()},
            frontiers=frontiers,
            curves=curves,
            quality=_quality(result.confidence, result.predictions == y, kind, target),
        )


def _quality(confidence, correct, kind: str, target: float) -> float:
    """The frontier's quality axis, read off the evaluated risk-coverage curve: coverage at the target risk, or
    (for a coverage target) the risk at the target coverage."""
    if kind == "risk":
        return selective.coverage_at_risk(confidence, correct, target)
    return selective.risk_at_coverage(confidence, correct, target)


def _curve(rc, points: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """A risk-coverage curve thinned to about ``points`` points (for plotting)."""
    step = max(1, rc.coverage.shape[0] // points)
    return rc.coverage[step - 1 :: step], rc.risk[step - 1 :: step]
