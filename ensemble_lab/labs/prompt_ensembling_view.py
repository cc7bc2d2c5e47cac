"""Widgets and plots of the prompts Lab (no maths: everything shown comes from ``lab.result``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import html

import ipywidgets as w
import torch

from ..plots import BlitManager, ReliabilityPlot, ScoreWeightBars, freeze_layout, mosaic_figure
from .figure import FigureBox
from .view import LabView, pct, table_html

if TYPE_CHECKING:  # the Lab imports this module when it is displayed, not the other way round
    from .prompt_ensembling import PromptLab

_WEIGHTING_NAMES = {
    "equal": "equal average (CLIP)",
    "max-logit": "max-logit score (no debiasing)",
    "zpe-both": "ZPE, debiased (pre-train + test)",
    "zpe-pretrain": "ZPE, debiased (pre-train only)",
    "zpe-test": "ZPE, debiased (test only)",
    "zpe-select": "ZPE selection (z > tau)",
    "oracle": "oracle (uses labels!)",
}


def metrics_html(result) -> str:
    m = result.metrics
    return (f"<div><b>{html.escape(result.domain)}</b> domain, {result.n_samples} images "
            f"({result.n_scored} unlabeled ones score the prompts) · {len(result.selected)} prompts · "
            f"accuracy <b>{pct(m['accuracy'])}</b> · NLL {m['nll']:.3f} · Brier {m['brier']:.3f} · "
            f"ECE {pct(m['ece'])}</div>")


def domain_table_html(table: dict[str, dict[str, float]], current: str, plain: str) -> str:
    columns = tuple(next(iter(table.values())))
    rows = {domain: tuple(pct(row[c]) for c in columns) for domain, row in table.items()}
    header = tuple(f"“{plain}”" if c == "plain prompt" else c for c in columns)
    return ("<div style='font-size:90%'>Zero-shot accuracy per domain (the paper's layout; pool columns use the "
            "ticked prompts)" + table_html(header, rows, css_class="el-domain-table", bold=(current,))
            + "</div>")


class PromptView(LabView):
    """Pool checklist and settings on the left; numbers, plots and the domain table on the right."""

    def __init__(self, lab: PromptLab):
        super().__init__(lab)
        s = lab.state
        self.checks: list[w.Checkbox] = []
        self.pool_box = w.VBox(layout=w.Layout(max_height="260px", overflow="auto", width="330px"))
        self.pool_box.add_class("el-pool")
        self._build_checks()
        self.buttons = {}
        for key, label in (("all", "tick all"), ("none", "untick all")):
            b = w.Button(description=label, layout=w.Layout(width="100px"))
            b.add_class(f"el-{key}")
            b.on_click(lambda _b, key=key: self._tick_all(key == "all"))
            self.buttons[key] = b
        self.new_template = w.Text(placeholder="a new template with one {}", layout=w.Layout(width="230px"))
        self.new_template.add_class("el-new-template")
        self.add_button = w.Button(description="add", layout=w.Layout(width="60px"))
        self.add_button.add_class("el-add-template")
        self.add_button.on_click(lambda _b: self._add())
        self.weighting = self.bind("weighting", w.Dropdown(
            options=[(_WEIGHTING_NAMES[k], k) for k in lab.weightings], value=s.weighting, description="weighting"))
        self.temperature = self.bind("temperature", w.FloatLogSlider(
            value=s.temperature, base=10, min=-2, max=1, step=0.05, description="temperature",
            readout_format=".2f"))
        self.tau = self.bind("tau", w.FloatSlider(value=s.tau, min=-2.0, max=4.0, step=0.1, description="tau"))
        self.n_images = self.bind("n_images", w.IntText(value=s.n_images, description="scored on",
                                                        layout=w.Layout(width="200px")))
        self.domain = self.bind("domain", w.Dropdown(options=list(lab.data.domains), value=s.domain,
                                                     description="domain"))
        self.summary = w.HTML()
        self.summary.add_class("el-metrics")
        self.table = w.HTML()
        self.table.add_class("el-domain-table")

        self.fig, self.axes = mosaic_figure([["rel", "scores"], ["hist", "weights"]], figsize=(8.5, 4.2),
                                            height_ratios=[3, 2], width_ratios=[2, 3])
        self.reliability_plot = ReliabilityPlot(self.axes["rel"], self.axes["hist"], title="Zero-shot classifier")
        self.bars = ScoreWeightBars(self.axes["scores"], self.axes["weights"], score_label="ZPE score")
        self.blit = BlitManager(self.fig.canvas)
        self.figure = FigureBox(self.fig)

        controls = w.VBox([
            w.HTML("<b>Prompt pool</b> (numbers as in the bar charts)"), self.pool_box,
            w.HBox(list(self.buttons.values())), w.HBox([self.new_template, self.add_button]),
            w.HTML("<b>Weighting</b>"), self.weighting, self.temperature, self.tau,
            w.HBox([self.n_images, w.HTML("&nbsp;images (0: all)")]), self.domain,
        ], layout=w.Layout(min_width="340px"))
        outputs = w.VBox([self.summary, self.figure.widget, self.table])
        self.widget = w.VBox([w.HBox([controls, outputs]), self.status])
        self.widget.add_class("el-lab")
        self.widget.add_class("el-prompts")

        lab.observe(lambda change: self.redraw(change.new), names="result")
        self.redraw(lab.result)
        freeze_layout(self.fig)
        self.figure.refresh()

    # -- the checklist ----------------------------------------------------------------------------------
    def _build_checks(self) -> None:
        s = self.lab.state
        chosen = set(s.selected)
        self.checks = []
        for i, t in enumerate(s.templates):
            c = w.Checkbox(value=t in chosen, description=f"{i + 1}. {t}", indent=False,
                           layout=w.Layout(width="310px"))
            c.add_class(f"el-prompt-{i}")
            c.observe(lambda _ch: self._on_check(), names="value")
            self.checks.append(c)
        self.pool_box.children = self.checks

    def _on_check(self) -> None:
        if self._syncing:
            return
        ticked = [t for t, c in zip(self.lab.state.templates, self.checks) if c.value]
        self.send("selected", ticked)

    def _tick_all(self, value: bool) -> None:
        self.send("selected", list(self.lab.state.templates) if value else [])

    def _add(self) -> None:
        if self.lab.add_template(self.new_template.value):
            self.new_template.value = ""

    def _sync_extra(self) -> None:
        s = self.lab.state
        if len(self.checks) != len(s.templates):
            self._build_checks()
        chosen = set(s.selected)
        for t, c in zip(s.templates, self.checks):
            c.value = t in chosen

    # -- lab -> widgets ---------------------------------------------------------------------------------
    def _score_range(self, result) -> tuple[float, float]:
        """A score axis that changes only when the kind of score changes (not with every checkbox)."""
        key = (result.weighting in ("max-logit",), result.domain, self.lab.state.n_images)
        if getattr(self, "_range_key", None) != key:
            lo, hi = float(result.scores.min()), float(result.scores.max())
            self._range_key, self._range = key, (min(0.0, lo), max(0.0, hi))
        return self._range

    def _weight_top(self, result) -> float:
        """Top of the weight axis: a step of 0.25 above the largest weight, kept while the weights fit."""
        top = getattr(self, "_top", None)
        biggest = float(result.weights.max())
        if top is None or biggest > top or (result.weighting, result.domain) != self._top_key:
            top = min(1.0, 0.25 * (int(biggest / 0.25) + 1))
        self._top, self._top_key = top, (result.weighting, result.domain)
        return top

    def redraw(self, result) -> None:
        self.summary.value = metrics_html(result)
        self.table.value = domain_table_html(result.table, result.domain, self.lab.plain)
        self.reliability_plot.update(result.reliability)
        # one bar per known template (unticked ones at 0), so (un)ticking moves bars instead of re-creating them
        templates = self.lab.state.templates
        position = {t: i for i, t in enumerate(templates)}
        scores, weights = torch.zeros(len(templates)), torch.zeros(len(templates))
        for t, s, wt in zip(result.selected, result.scores.tolist(), result.weights.tolist()):
            scores[position[t]], weights[position[t]] = s, wt
        rebuilt = self.bars.update(scores, weights, [str(i + 1) for i in range(len(templates))],
                                   score_range=self._score_range(result), weight_top=self._weight_top(result))
        if self.blit.set_artists(self.reliability_plot.artists + self.bars.artists) or rebuilt:
            self.fig.canvas.draw_idle()
        else:
            self.blit.update()
        self.figure.refresh()
        self.show_status(self.lab.status)
