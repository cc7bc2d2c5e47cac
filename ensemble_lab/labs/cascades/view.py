"""Widgets and plots of the cascades Lab (no maths: everything shown comes from ``lab.result``)."""

from __future__ import annotations

import html
import math

import ipywidgets as w
import torch

from ... import cascades
from ...plots import CostFrontierPlot, RiskCoveragePlot
from ..figure import LabFigure
from ..view import LabView, pct, split_options, table_html
from .lab import POLICIES, TARGETS, CascadesLab


class PolicyFrontierPlot(CostFrontierPlot):
    """:class:`~ensemble_lab.plots.CostFrontierPlot` with a second swept line: the window policy's frontier (the
    base's line) and the threshold policy's (dashed); the axes fit both."""

    def __init__(self, ax):
        super().__init__(ax, sweep_label="window policy (half-width sweep)")
        (self.threshold,) = ax.plot([], [], "--", color="grey", label="threshold policy (threshold sweep)")
        ax.legend(fontsize="small", frameon=False, loc="lower right")

    @property
    def artists(self) -> list:
        return [*super().artists, self.threshold]

    def update(self, frontiers: dict, current, points, ylabel: str) -> bool:
        """``frontiers``: ``{"window": (cost, quality), "threshold": (cost, quality)}``; the rest as the base's."""
        win, thr = frontiers["window"], frontiers["threshold"]
        both = (torch.cat([win[0], thr[0]]), torch.cat([win[1], thr[1]]))
        full = super().update(both, current, points, ylabel)  # the axes' ranges over both lines
        self.sweep.set_data(win[0].numpy(), win[1].numpy())
        self.threshold.set_data(thr[0].numpy(), thr[1].numpy())
        return full


def _edge(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else ("−∞" if x < 0 else "+∞")


def cascade_table_html(result) -> str:
    rows = {}
    for name, m in (("cascade", result.cascade), ("full ensemble", result.ensemble), *result.singles.items()):
        rows[name] = (
            pct(m["accuracy"]),
            pct(m["ece"]) if "ece" in m else "–",
            f"{m['aurc']:.4f}",
            pct(m["risk"]) if m["risk"] == m["risk"] else "–",
            pct(m["coverage"]),
            f"{m['macs']:,.0f}",
        )
    table = table_html(
        ("accuracy", "ECE", "AURC", "risk at tau", "coverage at tau", "MACs / sample"), rows, bold=("cascade",)
    )
    shares = " · ".join(f"stage {i + 1}: {pct(float(v))}" for i, v in enumerate(result.exit_share))
    lo, hi = result.window
    ood = ""
    if result.ood:
        ood = (
            "<div>Telling these images from clean test ones by exit confidence: "
            + " · ".join(
                f"{name}: AUROC {m['auroc']:.3f}, FPR at 95% TPR {pct(m['fpr95'])}" for name, m in result.ood.items()
            )
            + "</div>"
        )
    if result.policy == "window":
        space = "this split's scores (adjusted, no labels)" if result.adjusted else "its val scores"
        where = f"stage 1 window ({_edge(lo)}, {_edge(hi)}): the half-width is in quantile space of {space}"
        if len(result.stage_windows) > 1:
            where += " · later stages: " + ", ".join(
                f"stage {j + 2}: ({_edge(a)}, {_edge(b)}) around tau {t:.3f}"
                for j, ((a, b), t) in enumerate(zip(result.stage_windows[1:], result.stage_tau[1:], strict=True))
            )
    else:
        where = "threshold policy: a sample is passed on while its stage's score is below that stage's tau"
    return (
        f"<div><b>{html.escape(result.split)}</b> split · tau = {result.tau:.3f}, chosen on val for the "
        f"target on the first stage's scores · {where}{table}<div>exits: {shares}</div>{ood}</div>"
    )


class CascadesView(LabView, lab=CascadesLab):
    """Controls on the left; table, risk-coverage curves and the cost/quality frontier on the right."""

    CSS_NAME = "cascades"

    def build(self) -> None:
        lab = self.lab
        self.target_kind = self.bind(
            "target_kind", w.ToggleButtons(options=list(TARGETS), description="target", style={"button_width": "80px"})
        )
        self.target = self.bind(
            "target", w.FloatSlider(min=0.01, max=1.0, step=0.01, description="target value", readout_format=".2f")
        )
        self.policy = self.bind(
            "policy", w.ToggleButtons(options=list(POLICIES), description="policy", style={"button_width": "80px"})
        )
        self.half_width = self.bind(
            "half_width",
            w.FloatSlider(
                min=0.0,
                max=0.5,
                step=0.01,
                description="half-width",
                readout_format=".2f",
                tooltip="in quantile space of val scores",
            ),
        )
        self.adjusted = self.bind(
            "adjusted",
            w.Checkbox(description="adjusted window", tooltip="re-estimate the window on this split's scores"),
        )
        self.score = self.bind("score", w.Dropdown(options=list(cascades.SCORES), description="exit score"))
        self.stages = self.link(
            w.IntSlider(min=1, max=lab.k, description="stages"),
            lambda st: len(st.order) or lab.k,
            lambda v: {"order": list(range(v))},
            css="stages",
        )
        self.members = self.link(
            w.Text(
                description="members", placeholder=f"order, e.g. 0, 1, 2 (of 0..{lab.k - 1})", continuous_update=False
            ),
            lambda st: ", ".join(str(i) for i in (st.order or range(lab.k))),
            lambda v: {"order": _parse_order(v)},
            css="members",
        )
        self.split = self.bind(
            "split", w.Dropdown(options=split_options(lab.eval_splits, lab.fit_split), description="evaluate on")
        )
        self.table = self.html("metrics")
        self.figure = LabFigure([["rc", "frontier"]], figsize=(7.6, 3.5))
        self.rc_plot = RiskCoveragePlot(self.figure.axes["rc"], list(lab.result.curves))
        self.frontier_plot = PolicyFrontierPlot(self.figure.axes["frontier"])

    def controls(self) -> list:
        return [
            self.target_kind,
            self.target,
            self.policy,
            self.half_width,
            w.HTML("<i>half-width: in quantile space of each stage's val scores</i>"),
            self.adjusted,
            self.score,
            self.stages,
            self.members,
            self.split,
        ]

    def outputs(self) -> list:
        return [self.table, self.figure.widget]

    def draw(self, result) -> None:
        self.table.value = cascade_table_html(result)
        c_hi, c_lo = result.window_coverage
        full = self.rc_plot.update(
            result.curves, result.cascade["coverage"], (c_hi, c_lo) if result.policy == "window" else None
        )
        ylabel = (
            "coverage at the target risk" if self.lab.state.target_kind == "risk" else "risk at the target coverage"
        )
        full |= self.frontier_plot.update(
            result.frontiers,
            (result.cascade["macs"], result.quality),
            [(s["macs"], s["quality"]) for s in result.singles.values()],
            ylabel,
        )
        self.figure.show(self.rc_plot.artists + self.frontier_plot.artists, full=full)
        self.figure.describe(
            f"Left: selective risk against coverage on the {result.split} split for the cascade (bold, solid), "
            f"the full ensemble (dashed) and {len(result.singles)} single models (each its own line style and "
            f"marker); the dotted line is the cascade's coverage at tau ({pct(result.cascade['coverage'])}). "
            f"Right: MACs per sample against {ylabel} for the window and threshold policies, the current setting "
            f"(star, {result.cascade['macs']:,.0f} MACs) and the single models (dots)."
        )


def _parse_order(text: str) -> list[int]:
    try:
        return [int(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"members must be member numbers separated by commas, got {text!r}") from None
