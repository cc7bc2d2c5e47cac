"""Widgets and plots of the prompts Lab (no maths: everything shown comes from ``lab.result``)."""

from __future__ import annotations

import html

import ipywidgets as w
import torch

from ...plots import ReliabilityPlot, ScoreWeightBars
from ..figure import LabFigure
from ..view import LabView, pct, table_html
from .lab import WEIGHTINGS, PromptsLab

_WEIGHTING_NAMES = {
    "equal": "equal average (CLIP)",
    "equal-logits": "equal average of logits (ZPE paper)",
    "max-logit": "max-logit score (no debiasing)",
    "zpe-both": "ZPE, debiased (pre-train + test)",
    "zpe-pretrain": "ZPE, debiased (pre-train only)",
    "zpe-test": "ZPE, debiased (test only)",
    "zpe-select": "ZPE selection (z > tau)",
    "oracle": "oracle (uses labels!)",
}


def metrics_html(result) -> str:
    m = result.metrics
    return (
        f"<div><b>{html.escape(result.domain)}</b> domain, {result.n_samples} images "
        f"({result.n_scored} unlabeled ones score the prompts) · {len(result.selected)} prompts · "
        f"accuracy <b>{pct(m['accuracy'])}</b> · NLL {m['nll']:.3f} · Brier {m['brier']:.3f} · "
        f"ECE {pct(m['ece'])}</div>"
    )


def domain_table_html(table: dict[str, dict[str, float]], current: str, plain: str) -> str:
    columns = tuple(next(iter(table.values())))
    rows = {domain: tuple(pct(row[c]) for c in columns) for domain, row in table.items()}
    header = tuple(f"“{plain}”" if c == "plain prompt" else c for c in columns)
    return (
        "<div style='font-size:90%'>Zero-shot accuracy per domain (the paper's layout; pool columns use the "
        "ticked prompts)" + table_html(header, rows, css_class="el-domain-table", bold=(current,)) + "</div>"
    )


class PromptsView(LabView, lab=PromptsLab):
    """Pool checklist and settings on the left; numbers, plots and the domain table on the right."""

    CSS_NAME = "prompts"

    def build(self) -> None:
        lab = self.lab
        self.checks: list[w.Checkbox] = []
        self._check_templates: tuple[str, ...] = ()  # the templates the checklist was built for
        self.pool_box = w.VBox(layout=w.Layout(max_height="260px", overflow="auto", width="330px"))
        self.pool_box.add_class("el-pool")
        self._build_checks()
        self.buttons = {
            key: self.button(key, label, on_click=lambda key=key: self._tick_all(key == "all"), width="100px")
            for key, label in (("all", "tick all"), ("none", "untick all"))
        }
        # Enter (or leaving the box) adds the template, as the button does
        self.new_template = w.Text(
            placeholder="a new template with one {}, then Enter",
            continuous_update=False,
            layout=w.Layout(width="230px"),
        )
        self.new_template.add_class("el-new-template")
        self.new_template.observe(lambda change: self._add(), names="value")
        self.add_button = self.button("add-template", "add", on_click=self._add, width="60px")
        self.weighting = self.bind(
            "weighting", w.Dropdown(options=[(_WEIGHTING_NAMES[k], k) for k in WEIGHTINGS], description="weighting")
        )
        self.temperature = self.bind(
            "temperature",
            w.FloatLogSlider(base=10, min=-2, max=1, step=0.05, description="temperature", readout_format=".2f"),
        )
        self.tau = self.bind("tau", w.FloatSlider(min=-2.0, max=4.0, step=0.1, description="tau"))
        self.n_images = self.bind("n_images", w.IntText(description="scored on", layout=w.Layout(width="200px")))
        self.domain = self.bind("domain", w.Dropdown(options=list(lab.data.domains), description="domain"))
        self.summary = self.html("metrics")
        self.table = self.html("domain-table")
        self.figure = LabFigure(
            [["rel", "scores"], ["hist", "weights"]], figsize=(7.6, 4.0), height_ratios=[3, 2], width_ratios=[2, 3]
        )
        self.reliability_plot = ReliabilityPlot(
            self.figure.axes["rel"], self.figure.axes["hist"], title="Zero-shot classifier"
        )
        self.bars = ScoreWeightBars(self.figure.axes["scores"], self.figure.axes["weights"], score_label="ZPE score")

    def controls(self) -> list:
        return [
            w.HTML("<b>Prompt pool</b> (numbers as in the bar charts; yours on top)"),
            self.pool_box,
            w.HBox(list(self.buttons.values())),
            w.HBox([self.new_template, self.add_button]),
            w.HTML("<b>Weighting</b>"),
            self.weighting,
            self.temperature,
            self.tau,
            w.HBox([self.n_images, w.HTML("&nbsp;images (0: all)")]),
            self.domain,
        ]

    def outputs(self) -> list:
        return [self.summary, self.figure.widget, self.table]

    # -- the checklist ----------------------------------------------------------------------------------
    def _build_checks(self) -> None:
        for c in self.checks:
            self.unlink(c)
        self.checks = []
        for i, t in enumerate(self.lab.state.templates):
            c = w.Checkbox(description=f"{i + 1}. {t}", indent=False, layout=w.Layout(width="310px"))
            self.checks.append(
                self.link(
                    c,
                    lambda st, t=t: t in st.selected,
                    lambda v, t=t: {"selected": self._ticked(t, v)},
                    css=f"prompt-{i}",
                )
            )
        # templates the learner added come first, newest on top: a new one is in view without scrolling the box
        pool = set(self.lab.pool)
        added = [c for c, t in zip(self.checks, self.lab.state.templates, strict=False) if t not in pool]
        self.pool_box.children = [*reversed(added), *(c for c in self.checks if c not in added)]
        self._check_templates = tuple(self.lab.state.templates)

    def _ticked(self, template: str, value: bool) -> list[str]:
        s = self.lab.state
        chosen = set(s.selected) - {template} | ({template} if value else set())
        return [t for t in s.templates if t in chosen]

    def _tick_all(self, value: bool) -> bool:
        return self.lab.set(selected=list(self.lab.state.templates) if value else [])

    def _add(self) -> None:
        text = self.new_template.value
        if not text.strip():  # (Enter already added it, or nothing was typed)
            return
        if self.drive(lambda: self.lab.add_template(text)):
            self.new_template.value = ""

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

    def draw(self, result) -> None:
        templates = self.lab.state.templates
        if tuple(templates) != self._check_templates:
            self._build_checks()
            self.sync_controls()
        self.summary.value = metrics_html(result)
        self.table.value = domain_table_html(result.table, result.domain, self.lab.plain)
        self.reliability_plot.update(result.reliability)
        # one bar per known template (unticked ones at 0), so (un)ticking moves bars instead of re-creating them
        position = {t: i for i, t in enumerate(templates)}
        scores, weights = torch.zeros(len(templates)), torch.zeros(len(templates))
        for t, s, wt in zip(result.selected, result.scores.tolist(), result.weights.tolist(), strict=False):
            scores[position[t]], weights[position[t]] = s, wt
        rebuilt = self.bars.update(
            scores,
            weights,
            [str(i + 1) for i in range(len(templates))],
            score_range=self._score_range(result),
            weight_top=self._weight_top(result),
        )
        self.figure.show(self.reliability_plot.artists + self.bars.artists, full=rebuilt)
        self.figure.describe(
            f"Left: reliability diagram of the zero-shot classifier on the {result.domain} domain "
            f"(ECE {pct(result.metrics['ece'])}). Right: the ZPE score (top) and the weight (bottom) of each of the "
            f"{len(result.selected)} chosen prompts, numbered as in the prompt pool."
        )
