"""Widgets and plots of the calibration Lab (no maths: everything shown comes from ``lab.result``)."""

from __future__ import annotations

import html
import math

import ipywidgets as w

from ...plots import ReliabilityPlot
from ..figure import LabFigure
from ..view import LabView, pct, split_options, table_html
from .lab import ORDERS, CalibrationLab

_ESTIMATOR_NAMES = {"binned": "binned ECE (l1)", "debiased": "debiased CE (l2)", "smooth": "smooth ECE (l1)"}


def calibration_table_html(result) -> str:
    """Before/after rows: accuracy, mean confidence, NLL, Brier, the binned l1 and l2 errors, and the chosen
    estimator with its interval (each column names its norm: l1 and l2 are different quantities)."""
    name = _ESTIMATOR_NAMES[result.estimator]
    rows = {
        side: (
            pct(m["accuracy"]),
            pct(m["confidence"]),
            f"{m['nll']:.3f}",
            f"{m['brier']:.3f}",
            pct(m["ece"]),
            pct(m["ece_l2"]),
            f"{pct(m['error'])} [{pct(m['error_low'])}, {pct(m['error_high'])}]",
        )
        for side, m in (("before", result.before), ("after", result.after))
    }
    header = ("accuracy", "confidence", "NLL", "Brier", "ECE l1", "CE l2", f"{name} [90% CI]")
    table = table_html(header, rows, bold=("after",))
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
    changed = f"<br>{result.changed} of {result.n_samples} predictions change class"
    return f"<div>{now} · fitted on {result.n_cal} val samples: {fit}{changed}{note}</div>"


class CalibrationView(LabView, lab=CalibrationLab):
    """Controls on the left; table, temperatures and the two reliability diagrams on the right."""

    CSS_NAME = "calibration"

    def build(self) -> None:
        lab = self.lab
        self.order = self.bind(
            "order",
            w.ToggleButtons(
                options=list(zip(("pool, then calibrate", "calibrate, then pool"), ORDERS, strict=False)),
                tooltips=["one temperature for the pooled ensemble", "one temperature per member, then pool"],
                style={"button_width": "155px"},
            ),
        )
        self.rule = self.bind(
            "rule",
            w.Dropdown(
                options=[("average probabilities", "prob"), ("average logits", "logit"), ("geometric mean", "geo")],
                description="pool by",
            ),
        )
        # one slider for one setting or the other, by order
        self.temperature = self.link(
            w.FloatLogSlider(
                base=10,
                min=-1,
                max=1,
                step=0.01,
                description="temperature",
                readout_format=".2f",
                style={"description_width": "90px"},
            ),
            _slider_temperature,
            self._temperature_changes,
            css="temperature",
        )
        self.buttons = {
            key: self.button(key, label, tip, width="120px")
            for key, label, tip in (
                ("fit", "fit T (NLL)", "the temperature(s) minimising NLL on the calibration set"),
                ("reset", "T = 1", "no temperature scaling"),
            )
        }
        self.n_cal = self.bind(
            "n_cal",
            w.IntText(
                description="calibration set",
                tooltip=f"val samples to fit on (0: all {lab.n_val})",
                style={"description_width": "110px"},
                layout=w.Layout(width="200px"),
            ),
        )
        self.n_bins = self.bind("n_bins", w.IntSlider(min=1, max=50, description="bins"))
        self.strategy = self.bind(
            "strategy",
            w.ToggleButtons(options=["uniform", "quantile"], description="bin widths", style={"button_width": "80px"}),
        )
        self.estimator = self.bind(
            "estimator", w.Dropdown(options=[(v, k) for k, v in _ESTIMATOR_NAMES.items()], description="estimator")
        )
        self.split = self.bind(
            "split", w.Dropdown(options=split_options(lab.eval_splits, lab.fit_split), description="evaluate on")
        )
        self.table = self.html("metrics")
        self.temperatures = self.html("temperatures")
        self.figure = LabFigure(
            [["before", "after"], ["hist_before", "hist_after"]], figsize=(7.6, 4.0), height_ratios=[3, 1]
        )
        self.plots = {
            side: ReliabilityPlot(self.figure.axes[side], self.figure.axes[f"hist_{side}"], title=title)
            for side, title in (("before", "Before: pooled as trained"), ("after", "After: temperature scaled"))
        }

    def controls(self) -> list:
        return [
            w.HTML("<b>Calibrating</b>"),
            self.order,
            self.rule,
            self.temperature,
            w.HBox(list(self.buttons.values())),
            w.HBox([self.n_cal, w.HTML(f"&nbsp;val samples (0: all {self.lab.n_val})")]),
            w.HTML("<b>Measuring calibration</b>"),
            self.estimator,
            self.n_bins,
            self.strategy,
            self.split,
        ]

    def outputs(self) -> list:
        return [self.table, self.temperatures, self.figure.widget]

    def _temperature_changes(self, value: float) -> dict:
        if self.lab.state.order == ORDERS[0]:
            return {"temperature": float(value)}
        return {"member_temperatures": [float(value)] * self.lab.k}  # one temperature shared by every member

    def draw(self, result) -> None:
        self.table.value = calibration_table_html(result)
        self.temperatures.value = temperatures_html(result)
        self.plots["before"].update(result.reliability_before, result.curve_before)
        self.plots["after"].update(result.reliability_after, result.curve_after)
        self.figure.show(self.plots["before"].artists + self.plots["after"].artists)
        self.figure.describe(
            f"Two reliability diagrams on the {result.split} split, accuracy per confidence bin against the "
            f"diagonal: left as trained (ECE {pct(result.before['ece'])}), right after temperature scaling "
            f"(ECE {pct(result.after['ece'])}); below each, the share of samples per bin."
        )


def _slider_temperature(state) -> float:
    """The slider shows the temperature after pooling, or the members' geometric mean temperature."""
    first = state.order == ORDERS[0]
    if first or not state.member_temperatures:
        return state.temperature if first else 1.0
    return math.exp(sum(math.log(t) for t in state.member_temperatures) / len(state.member_temperatures))
