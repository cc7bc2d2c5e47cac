"""Widgets and plots of the cascades Lab (no maths: everything shown comes from ``lab.result``)."""

from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
from matplotlib.ticker import NullFormatter

from ..plots import freeze_layout, mosaic_figure
from .figure import FigureBox
from .view import LabView, pct, split_options, table_html

_COLORS = {"cascade": "#1f77b4", "full ensemble": "#2ca02c"}


def cascade_table_html(result) -> str:
    rows = {}
    for name, m in (("cascade", result.cascade), ("full ensemble", result.ensemble), *result.singles.items()):
        rows[name] = (pct(m["accuracy"]), pct(m["ece"]) if "ece" in m else "–", f"{m['aurc']:.4f}",
                      pct(m["risk"]) if m["risk"] == m["risk"] else "–", pct(m["coverage"]), f"{m['macs']:,.0f}")
    table = table_html(("accuracy", "ECE", "AURC", "risk at tau", "coverage at tau", "MACs / sample"), rows,
                       bold=("cascade",))
    shares = " · ".join(f"stage {i + 1}: {pct(float(v))}" for i, v in enumerate(result.exit_share))
    lo, hi = result.window
    ood = ""
    if result.ood:
        ood = "<div>Telling these images from clean test ones by exit confidence: " + " · ".join(
            f"{name}: AUROC {m['auroc']:.3f}, FPR at 95% TPR {pct(m['fpr95'])}" for name, m in result.ood.items()
        ) + "</div>"
    return (f"<div><b>{html.escape(result.split)}</b> split · tau = {result.tau:.3f} · window ({lo:.3f}, {hi:.3f})"
            f"{table}<div>exits: {shares}</div>{ood}</div>")


class CascadeView(LabView):
    """Controls on the left; table, risk-coverage curves and the cost/quality frontier on the right."""

    def __init__(self, lab):
        super().__init__(lab)
        s = lab.state
        self.target_kind = self.bind("target_kind", w.ToggleButtons(options=["risk", "coverage"], value=s.target_kind,
                                                                    description="target", style={"button_width": "80px"}))
        self.target = self.bind("target", w.FloatSlider(value=s.target, min=0.01, max=1.0, step=0.01,
                                                        description="target value", readout_format=".2f"))
        self.policy = self.bind("policy", w.ToggleButtons(options=["window", "threshold"], value=s.policy,
                                                          description="policy", style={"button_width": "80px"}))
        self.half_width = self.bind("half_width", w.FloatSlider(value=s.half_width, min=0.0, max=0.5, step=0.01,
                                                                description="half-width", readout_format=".2f"))
        self.score = self.bind("score", w.Dropdown(options=["msp", "neg_entropy", "max_logit", "neg_energy"],
                                                   value=s.score, description="exit score"))
        self.stages = w.IntSlider(value=len(s.order) or lab.k, min=1, max=lab.k, description="stages")
        self.stages.add_class("el-stages")
        self.stages.observe(lambda ch: self.send("order", list(range(ch.new))), names="value")
        self.members = w.Text(value=self._members_string(), description="members",
                              placeholder=f"order, e.g. 0, 1, 2 (of 0..{lab.k - 1})", continuous_update=False)
        self.members.add_class("el-members")
        self.members.observe(self._on_members, names="value")
        self.split = self.bind("split", w.Dropdown(options=split_options(lab.eval_splits, lab.fit_split),
                                                   value=s.split, description="evaluate on"))
        self.table = w.HTML()
        self.table.add_class("el-metrics")

        self.fig, self.axes = mosaic_figure([["rc", "frontier"]], figsize=(8.5, 3.6))
        ax, fx = self.axes["rc"], self.axes["frontier"]
        self.lines = {}
        for name in lab.result.curves:
            (self.lines[name],) = ax.plot([], [], lw=2 if name == "cascade" else 1, label=name,
                                          color=_COLORS.get(name))
        self.tau_line = ax.axvline(0, color="grey", ls=":", lw=1, label="tau")
        self.window_band = ax.axvspan(0, 0, color="grey", alpha=0.15, lw=0, label="window")
        ax.set_xlim(0, 1)
        ax.set_xlabel("coverage")
        ax.set_ylabel("selective risk")
        ax.set_title("Risk-coverage", fontsize="medium")
        ax.legend(fontsize="small", frameon=False, loc="upper left")
        (self.frontier_line,) = fx.plot([], [], "-", color=_COLORS["cascade"], label="window cascade (sweep)")
        (self.current,) = fx.plot([], [], "*", ms=12, color=_COLORS["cascade"], label="current")
        self.single_points = fx.scatter([], [], color="black", marker="o", label="single models", zorder=3)
        fx.set_xscale("log")
        fx.xaxis.set_minor_formatter(NullFormatter())
        fx.set_xlabel("MACs per sample")
        fx.set_ylabel("coverage at the target risk")
        fx.set_title("Cost vs coverage", fontsize="medium")
        fx.legend(fontsize="small", frameon=False, loc="lower right")
        self.figure = FigureBox(self.fig)

        controls = w.VBox([self.target_kind, self.target, self.policy, self.half_width, self.score, self.stages,
                           self.members, self.split], layout=w.Layout(min_width="330px"))
        self.widget = w.VBox([w.HBox([controls, w.VBox([self.table, self.figure.widget])]), self.status])
        self.widget.add_class("el-lab")
        self.widget.add_class("el-cascades")
        lab.observe(lambda change: self.redraw(change.new), names="result")
        self.redraw(lab.result)
        freeze_layout(self.fig)
        self.figure.refresh()

    def _members_string(self) -> str:
        order = self.lab.state.order or list(range(self.lab.k))
        return ", ".join(str(i) for i in order)

    def _on_members(self, change) -> None:
        if self._syncing:
            return
        try:
            order = [int(x) for x in change.new.replace(";", ",").split(",") if x.strip()]
        except ValueError:
            self.lab.status = f"members must be member numbers separated by commas, got {change.new!r}"
            self.sync_controls()
            return
        self.send("order", order)

    def _sync_extra(self) -> None:
        self.stages.value = len(self.lab.state.order) or self.lab.k
        self.members.value = self._members_string()

    def redraw(self, result) -> None:
        self.table.value = cascade_table_html(result)
        top = 0.0
        for name, (cov, risk) in result.curves.items():
            if name in self.lines:
                self.lines[name].set_data(cov.numpy(), risk.numpy())
                top = max(top, float(np.nanmax(risk.numpy())))
        self.axes["rc"].set_ylim(0, max(0.05, 1.05 * top))
        self.tau_line.set_xdata([result.cascade["coverage"]] * 2)
        c_hi, c_lo = result.window_coverage
        self.window_band.set_x(c_hi)
        self.window_band.set_width(max(0.0, c_lo - c_hi))
        macs, cov = result.frontier
        self.frontier_line.set_data(macs.numpy(), cov.numpy())
        self.current.set_data([result.cascade["macs"]], [result.quality])
        self.axes["frontier"].set_ylabel("coverage at the target risk" if self.lab.state.target_kind == "risk"
                                         else "risk at the target coverage")
        points = [(s["macs"], s["quality"]) for s in result.singles.values()]
        self.single_points.set_offsets(np.array(points) if points else np.empty((0, 2)))
        xs = [float(macs.min()), float(macs.max())] + [p[0] for p in points]
        ys = [float(cov.min()), float(cov.max())] + [p[1] for p in points]
        self.axes["frontier"].set_xlim(0.7 * min(xs), 1.4 * max(xs))
        self.axes["frontier"].set_ylim(max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05))
        self.fig.canvas.draw_idle()
        self.figure.refresh()
        self.show_status(self.lab.status)
