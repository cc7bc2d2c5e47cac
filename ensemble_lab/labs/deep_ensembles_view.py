"""Widgets and plots of the deep-ensembles Lab (no maths: everything shown comes from ``lab.result``).

Each control has a stable CSS class (``el-...``) so that browser tests can find it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import html

import ipywidgets as w

from ..plots import BlitManager, ReliabilityPlot, WeightBars, freeze_layout, mosaic_figure
from .figure import FigureBox
from .view import LabView, pct, split_options, table_html

if TYPE_CHECKING:  # the Lab imports this module when it is displayed, not the other way round
    from .deep_ensembles import DeepEnsembleLab


def metrics_table_html(metrics: dict[str, dict[str, float]], split: str, n: int) -> str:
    """The metric table as HTML (rows: ensemble, best member, average member)."""
    rows = {name: (pct(m["accuracy"]), f"{m['nll']:.3f}", f"{m['brier']:.3f}", pct(m["ece"]))
            for name, m in metrics.items()}
    table = table_html(("accuracy", "NLL", "Brier", "ECE"), rows, bold=("ensemble",))
    return f"<div><b>{html.escape(split)}</b> split, {n} samples{table}</div>"


def diversity_html(diversity: dict[str, float]) -> str:
    return ("<div>Diversity of the weighted members: "
            f"disagreement <b>{pct(diversity['disagreement'])}</b> · "
            f"mutual information <b>{diversity['mutual_information']:.3f}</b> nats "
            "(= mean KL of the members to their average)</div>")


class DeepEnsembleView(LabView):
    """Controls on the left, numbers and plots on the right, a status line below."""

    def __init__(self, lab: DeepEnsembleLab):
        super().__init__(lab)
        s = lab.state
        n_sliders = min(lab.k, lab.max_sliders)
        self.sliders = [
            w.FloatSlider(value=s.weights[i], min=0.0, max=1.0, step=0.01, description=f"member {i + 1}",
                          continuous_update=True, readout_format=".2f", layout=w.Layout(width="300px"))
            for i in range(n_sliders)
        ]
        for i, slider in enumerate(self.sliders):
            slider.add_class(f"el-weight-{i}")
            slider.observe(lambda ch, i=i: self._on_slider(i, ch.new), names="value")
        self.weights_text = w.Text(value=self._weights_string(), description="weights",
                                   continuous_update=False, layout=w.Layout(width="300px"),
                                   placeholder="comma-separated, one per member")
        self.weights_text.add_class("el-weights-text")
        self.weights_text.observe(self._on_weights_text, names="value")
        self.rule = self.bind("rule", w.Dropdown(
            options=[("average probabilities", "prob"), ("average logits", "logit"), ("geometric mean", "geo"),
                     ("majority vote", "vote")], value=s.rule, description="rule"))
        self.temperature = self.bind("temperature", w.FloatLogSlider(
            value=s.temperature, base=10, min=-1, max=1, step=0.02, description="temperature", readout_format=".2f"))
        self.n_bins = self.bind("n_bins", w.IntSlider(value=s.n_bins, min=1, max=50, description="bins"))
        self.strategy = self.bind("strategy", w.ToggleButtons(
            options=["uniform", "quantile"], value=s.strategy, description="bin widths",
            style={"button_width": "80px"}))
        self.split = self.bind("split", w.Dropdown(options=split_options(lab.eval_splits, lab.fit_split), value=s.split,
                                                   description="evaluate on"))
        self.buttons = {}
        for key, label, tip in (("uniform", "uniform", "every member the same weight"),
                                ("learn", "learn (NLL)", "the weights that minimise NLL on the validation split"),
                                ("best", "best member", "only the member with the best validation accuracy")):
            b = w.Button(description=label, tooltip=tip, layout=w.Layout(width="105px"))
            b.add_class(f"el-{key}")
            b.on_click(lambda _b, key=key: self.lab.press(key))
            self.buttons[key] = b
        self.table = w.HTML()
        self.table.add_class("el-metrics")
        self.diversity = w.HTML()
        self.diversity.add_class("el-diversity")

        self.fig, self.axes = mosaic_figure([["rel", "weights"], ["hist", "weights"]], figsize=(8.0, 4.2),
                                            height_ratios=[3, 1], width_ratios=[3, 2])
        self.reliability_plot = ReliabilityPlot(self.axes["rel"], self.axes["hist"], title="Ensemble")
        self.weight_bars = WeightBars(self.axes["weights"], lab.k)
        self.blit = BlitManager(self.fig.canvas)
        self.figure = FigureBox(self.fig)

        more = [] if lab.k <= lab.max_sliders else [w.HTML(
            f"<i>{lab.k} members: sliders for the first {lab.max_sliders}; type all weights below.</i>")]
        controls = w.VBox([self.rule, self.temperature, self.n_bins, self.strategy, self.split,
                           w.HBox(list(self.buttons.values())), w.HTML("<b>Member weights</b>"), *self.sliders,
                           *more, self.weights_text], layout=w.Layout(min_width="330px"))
        outputs = w.VBox([self.table, self.diversity, self.figure.widget])
        self.widget = w.VBox([w.HBox([controls, outputs]), self.status])
        self.widget.add_class("el-lab")
        self.widget.add_class("el-deep-ensembles")

        lab.observe(lambda change: self.redraw(change.new), names="result")
        self._last = None
        self.redraw(lab.result)
        freeze_layout(self.fig)
        self.figure.refresh()

    # -- widget -> lab ----------------------------------------------------------------------------------
    def _on_slider(self, i: int, value: float) -> None:
        if self._syncing:
            return
        weights = list(self.lab.state.weights)
        weights[i] = float(value)
        self.send("weights", weights)

    def _on_weights_text(self, change) -> None:
        if self._syncing:
            return
        try:
            weights = [float(x) for x in change.new.replace(";", ",").split(",") if x.strip()]
        except ValueError:
            self.lab.status = f"weights must be numbers separated by commas, got {change.new!r}"
            self.sync_controls()
            return
        self.send("weights", weights)

    # -- lab -> widgets ---------------------------------------------------------------------------------
    def _weights_string(self) -> str:
        return ", ".join(f"{v:g}" for v in self.lab.state.weights)

    def _sync_extra(self) -> None:
        for slider, value in zip(self.sliders, self.lab.state.weights):
            slider.value = min(max(value, slider.min), slider.max)
        self.weights_text.value = self._weights_string()

    def redraw(self, result) -> None:
        """Update only what changed: table, diversity line, reliability bars, weight bars."""
        last = self._last
        self.table.value = metrics_table_html(result.metrics, result.split, result.n_samples)
        self.diversity.value = diversity_html(result.diversity)
        self.reliability_plot.update(result.reliability)
        if last is None or not bool((last.weights == result.weights).all()):
            self.weight_bars.update(result.weights)
        if self.blit.set_artists(self.reliability_plot.artists + self.weight_bars.artists):
            self.fig.canvas.draw_idle()  # new bars (bin count changed): a full draw
        else:
            self.blit.update()  # only the bars and the ECE label
        self.figure.refresh()
        self.show_status(self.lab.status)
        self._last = result
