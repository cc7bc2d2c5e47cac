"""The cascades Lab: run ensemble members one after another, let confident samples exit early, and see risk,
coverage, calibration and cost respond (Xia & Bouganis, ICCV 2023).

Headless use::

    lab = CascadesLab(members, costs=[50432] * 4, singles={"mlp-l": (single_preds, 199168)})
    lab.set(target=0.05, half_width=0.1);  lab.result.cascade["coverage"], lab.result.cascade["macs"]

``members`` has ``logits`` (split -> ``(K, N, C)``) and ``labels`` (split -> ``(N,)``) with a ``"val"`` split, as
``zoo.ensemble_predictions`` returns.  The operating threshold tau is chosen on val for the target risk (or
coverage) of the *full* cascade (every stage run); the window is ``half_width`` in quantile space of the first
stage's val scores.  Everything else is evaluated on ``split``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import cascades, metrics, selective
from ..base import FIT_SPLIT, PredictionsLab, cached
from ..state import N_BINS, SPLIT, LabState, Setting

__all__ = ["CascadesState", "CascadesResult", "CascadesLab", "POLICIES", "TARGETS"]

CLEAN = "test"  # the in-distribution split that shifted splits are told apart from
POLICIES = ("window", "threshold")
TARGETS = ("risk", "coverage")
SWEEP = tuple(i / 40 for i in range(21))  # half-widths of the cost/quality frontier, 0 .. 0.5
RISKS = (0.02, 0.05, 0.1)  # risks at which coverage is read off each evaluated risk-coverage curve


class CascadesState(LabState):
    """Settings of the cascades Lab."""

    SETTINGS = {
        "target_kind": Setting(str, "risk", "tau from a target selective risk or coverage (on val)", choices=TARGETS),
        "target": Setting(float, 0.05, "the target selective risk or coverage", low=0, high=1, open_low=True),
        "half_width": Setting(
            float,
            0.1,
            "window half-width, in quantile space of the first stage's val scores",
            low=0,
            high=0.5,
            why="quantile space",
        ),
        "policy": Setting(str, "window", "exit inside a window around tau, or above a threshold", choices=POLICIES),
        "score": Setting(str, "msp", "the exit score", choices=cascades.SCORES),
        "order": Setting(list, (), "members in the order they run; empty means all", item=int, low=0),
        "n_bins": N_BINS,
        "split": SPLIT,
    }


@dataclass(frozen=True)
class CascadesResult:
    """What the Lab shows for one State.

    ``cascade`` / ``ensemble`` (all stages for every sample): accuracy, ece, aurc, risk and coverage at tau,
    ``coverage_at_risk`` (risk -> the largest coverage whose risk on this split is at most that, for
    :data:`RISKS`: the evaluated curve read at fixed risks, no threshold transfer from val), macs (mean cost per
    sample); ``exit_share`` ``(K',)`` the share of samples leaving at each stage.
    ``singles``: name -> {"macs", "accuracy", "coverage", "risk", "aurc"} at the same target, each single model
    with its own tau from val, and ``quality`` (see :func:`_quality`).  ``frontier``: ``(macs (W,), quality (W,))``
    of the window cascade over :data:`SWEEP` half-widths: the coverage at the target risk read off each
    half-width's risk-coverage curve on this split (the risk at the target coverage for a coverage target).
    ``curves``: name -> ``(coverage, risk)`` tensors of the risk-coverage curves.  ``window_coverage``: the
    coverages at which the window's upper and lower edges would sit as thresholds on the cascade's exit confidence
    (where the window lies on the risk-coverage curve).  ``ood``: for a shifted split, telling its images (out)
    from the clean test images (in) by the exit confidence: ``{"cascade": {"auroc", "fpr95"}, "full ensemble":
    {...}}``; None on the clean split itself.
    """

    split: str
    policy: str
    tau: float
    window: tuple[float, float]
    ood: dict[str, dict[str, float]] | None
    window_coverage: tuple[float, float]
    quality: float
    cascade: dict[str, float]
    ensemble: dict[str, float]
    exit_share: torch.Tensor
    singles: dict[str, dict[str, float]]
    frontier: tuple[torch.Tensor, torch.Tensor]
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
    def _order(self, state) -> tuple[int, ...]:
        order = tuple(state.order) or tuple(range(self.k))
        if any(not 0 <= i < self.k for i in order) or len(set(order)) != len(order):
            raise ValueError(f"order must list distinct members in 0..{self.k - 1}, got {list(order)}")
        return order

    def _threshold(self, conf, correct, kind: str, target: float) -> float:
        if kind == "risk":
            return selective.threshold_for_risk(conf, correct, target)
        return selective.threshold_for_coverage(conf, target)

    @cached(maxsize=64)
    def _tau(self, order, score, kind, target):
        """tau on val for the full cascade, and the first stage's val scores (for the quantile window)."""
        z, y = self._data.split(FIT_SPLIT)
        scores = cascades.stage_scores(z, score, order=list(order))  # (K', N)
        probs = cascades.stage_probs(z, order=list(order))[-1]
        tau = self._threshold(scores[-1], probs.argmax(-1) == y, kind, target)
        return tau, scores[0]

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

    def _ood(self, split, confidence, order, score):
        """Clean test images (in) against ``split``'s images (out), by exit confidence; None for clean test."""
        if split in (CLEAN, FIT_SPLIT) or CLEAN not in self._data.logits:
            return None
        z_in, _ = self._data.split(CLEAN)
        state = self.state
        tau, val0 = self._tau(order, score, state.target_kind, state.target)
        common = dict(score=score, costs=self.costs, order=list(order))
        if state.policy == "window":
            conf_in = cascades.window_cascade(z_in, tau, state.half_width, val_scores=val0, **common).confidence
        else:
            conf_in = cascades.threshold_cascade(z_in, tau, **common).confidence
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
    def _fixed(self, split, order, score, kind, target, n_bins):
        """What a half-width or policy change leaves alone: the full ensemble's row and curve, the frontier."""
        z, y = self._data.split(split)
        tau, val0 = self._tau(order, score, kind, target)
        full = self._full(z, order, score)
        macs, quality = [], []
        for q in SWEEP:  # each half-width's risk-coverage curve, read at the target (cached: not per slider move)
            r = cascades.window_cascade(z, tau, q, score=score, costs=self.costs, order=list(order), val_scores=val0)
            macs.append(float(r.cost.double().mean()))
            quality.append(_quality(r.confidence, r.predictions == y, kind, target))
        return (
            self._row(full, y, tau, n_bins),
            _curve(selective.risk_coverage(full.confidence, full.predictions == y)),
            (torch.tensor(macs), torch.tensor(quality)),
        )

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
        tau, val0 = self._tau(order, state.score, state.target_kind, state.target)
        common = dict(score=state.score, costs=self.costs, order=list(order))
        if state.policy == "window":
            result = cascades.window_cascade(z, tau, state.half_width, val_scores=val0, **common)
            lo, hi = cascades.window_edges(tau, state.half_width, val0)
            window = (float(lo[0]), float(hi[0]))
        else:
            result = cascades.threshold_cascade(z, tau, **common)
            window = (tau, float("inf"))
        full_row, full_curve, frontier = self._fixed(
            state.split, order, state.score, state.target_kind, state.target, state.n_bins
        )
        singles = self._singles(state.split, state.score, state.target_kind, state.target, state.n_bins)
        curves = {
            "cascade": _curve(selective.risk_coverage(result.confidence, result.predictions == y)),
            "full ensemble": full_curve,
        }
        curves.update({name: _curve(s["_curve"]) for name, s in singles.items()})
        ood = self._ood(state.split, result.confidence, order, state.score)
        return CascadesResult(
            split=state.split,
            policy=state.policy,
            tau=tau,
            window=window,
            ood=ood,
            window_coverage=(
                float((result.confidence >= window[1]).double().mean()),
                float((result.confidence > window[0]).double().mean()),
            ),
            cascade=self._row(result, y, tau, state.n_bins),
            ensemble=full_row,
            exit_share=torch.bincount(result.exit_stage, minlength=len(order)).double() / y.shape[0],
            singles={n: {k: v for k, v in s.items() if k != "_curve"} for n, s in singles.items()},
            frontier=frontier,
            curves=curves,
            quality=_quality(result.confidence, result.predictions == y, state.target_kind, state.target),
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
