"""Widgets and plots of the calibration Lab (no maths: everything shown comes from ``lab.result``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import html
import math

import ipywidgets as w

from ..plots import BlitManager, ReliabilityPlot, freeze_layout, mosaic_figure
from .figure import FigureBox
from .view import LabView, pct, split_options, table_html

if TYPE_CHECKING:  # the Lab imports this module when it is displayed, not the other way round
    from .calibration import CalibrationLab

_ESTIMATOR_NAMES = {"binned": "binned ECE", "debiased": "debiased l2 CE", "smooth": "smooth ECE"}


def calibration_table_html(result) -> str:
    """Before/after rows: accuracy, mean confidence, NLL, Brier and the chosen estimator with its interval."""
    name = _ESTIMATOR_NAMES[result.estimator]
    rows = {
        side: (pct(m["accuracy"]), pct(m["confidence"]), f"{m['nll']:.3f}", f"{m['brier']:.3f}",
               f"{pct(m['error'])} [{pct(m['error_low'])}, {pct(m['error_high'])}]")
        for side, m in (("before", result.before), ("after", result.after))
    }
    table = table_html(("accuracy", "confidence", "NLL", "Brier", f"{name} [90% CI]"), rows, bold=("after",))
    return f"<div><b>{html.escape(result.split)}</b> split, {result.n_samples} samples{table}</div>"


def temperatures_html(result) -> str:
    fitted = result.fitted
    if result.order == "pool-then-calibrate":
        now = f"T = <b>{result.temperature:.3g}</b> after pooling"
        fit = f"{fitted['temperature']:.3g}"
    else:
        now = "member temperatures <b>" + ", ".join(f"{t:.3g}" for t in result.member_temperatures) + "</b>"
        fit = ", ".join(f"{t:.3g}" for t in fitted["member_temperatures"])
    note = f"<br><i>{html.escape(fitted['note'])}</i>" if fitted.get("note") else ""
    return f"<div>{now} · fitted on {result.n_cal} val samples: {fit}{note}</div>"


class CalibrationView(LabView):
    """Controls on the left; table, temperatures and the two reliability diagrams on the right."""

    def __init__(self, lab: CalibrationLab):
        super().__init__(lab)
        s = lab.state
        self.order = self.bind("order", w.ToggleButtons(
            options=list(zip(("pool, then calibrate", "calibrate, then pool"), lab.orders)), value=s.order,
            tooltips=["one temperature for the pooled ensemble", "one temperature per member, then pool"],
            style={"button_width": "155px"}))
        self.rule = self.bind("rule", w.Dropdown(
            options=[("average probabilities", "prob"), ("average logits", "logit"), ("geometric mean", "geo")],
            value=s.rule, description="pool by"))
        self.temperature = w.FloatLogSlider(value=self._slider_temperature(), base=10, min=-1, max=1, step=0.01,
                                            description="temperature", readout_format=".2f",
                                            style={"description_width": "90px"})
        self.temperature.add_class("el-temperature")
        self.temperature.observe(self._on_temperature, names="value")
        self.buttons = {}
        for key, label, tip in (("fit", "fit T (NLL)", "the temperature(s) minimising NLL on the calibration set"),
                                ("reset", "T = 1", "no temperature scaling")):
            b = w.Button(description=label, tooltip=tip, layout=w.Layout(width="120px"))
            b.add_class(f"el-{key}")
            b.on_click(lambda _b, key=key: self.lab.press(key))
            self.buttons[key] = b
        self.n_cal = self.bind("n_cal", w.IntText(value=s.n_cal, description="calibration set",
                                                  tooltip=f"val samples to fit on (0: all {lab.n_val})",
                                                  style={"description_width": "110px"},
                                                  layout=w.Layout(width="200px")))
        self.n_bins = self.bind("n_bins", w.IntSlider(value=s.n_bins, min=1, max=50, description="bins"))
        self.strategy = self.bind("strategy", w.ToggleButtons(
            options=["uniform", "quantile"], value=s.strategy, description="bin widths",
            style={"button_width": "80px"}))
        self.estimator = self.bind("estimator", w.Dropdown(
            options=[(v, k) for k, v in _ESTIMATOR_NAMES.items()], value=s.estimator, description="estimator"))
        self.split = self.bind("split", w.Dropdown(options=split_options(lab.eval_splits, lab.fit_split), value=s.split,
                                                   description="evaluate on"))
        self.table = w.HTML()
        self.table.add_class("el-metrics")
        self.temperatures = w.HTML()
        self.temperatures.add_class("el-temperatures")

        self.fig, self.axes = mosaic_figure([["before", "after"], ["hist_before", "hist_after"]],
                                            figsize=(8.0, 4.2), height_ratios=[3, 1])
        self.plots = {side: ReliabilityPlot(self.axes[side], self.axes[f"hist_{side}"], title=title)
                      for side, title in (("before", "Before: pooled as trained"),
                                          ("after", "After: temperature scaled"))}
        self.blit = BlitManager(self.fig.canvas)
        self.figure = FigureBox(self.fig)

        controls = w.VBox([w.HTML("<b>Calibrating</b>"), self.order, self.rule, self.temperature, w.HBox(list(self.buttons.values())),
                           w.HBox([self.n_cal, w.HTML(f"&nbsp;val samples (0: all {lab.n_val})")]),
                           w.HTML("<b>Measuring calibration</b>"), self.estimator, self.n_bins,
                           self.strategy, self.split], layout=w.Layout(min_width="340px"))
        outputs = w.VBox([self.table, self.temperatures, self.figure.widget])
        self.widget = w.VBox([w.HBox([controls, outputs]), self.status])
        self.widget.add_class("el-lab")
        self.widget.add_class("el-calibration")

        lab.observe(lambda change: self.redraw(change.new), names="result")
        self.redraw(lab.result)
        freeze_layout(self.fig)
        self.figure.refresh()

    # -- the temperature slider: one setting or the other, by order -----------------------------------
    def _slider_temperature(self) -> float:
        s = self.lab.state
        first = s.order == self.lab.orders[0]
        if first or not s.member_temperatures:
            return s.temperature if first else 1.0
        return math.exp(sum(math.log(t) for t in s.member_temperatures) / len(s.member_temperatures))

    def _on_temperature(self, change) -> None:
        if self.lab.state.order == self.lab.orders[0]:
            self.send("temperature", float(change.new))
        else:  # one temperature shared by every member
            self.send("member_temperatures", [float(change.new)] * self.lab.k)

    def _sync_extra(self) -> None:
        self.temperature.value = self._slider_temperature()

    # -- lab -> widgets ---------------------------------------------------------------------------------
    def redraw(self, result) -> None:
        self.table.value = calibration_table_html(result)
        self.temperatures.value = temperatures_html(result)
        self.plots["before"].update(result.reliability_before, result.curve_before)
        self.plots["after"].update(result.reliability_after, result.curve_after)
        if self.blit.set_artists(self.plots["before"].artists + self.plots["after"].artists):
            self.fig.canvas.draw_idle()  # new artists (bins or legend changed): a full draw
        else:
            self.blit.update()
        self.figure.refresh()
        self.show_status(self.lab.status)
