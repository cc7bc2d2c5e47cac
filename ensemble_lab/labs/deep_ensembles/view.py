"""Widgets and plots of the deep-ensembles Lab (no maths: everything shown comes from ``lab.result``).

Each control has a stable CSS class (``el-...``) so that browser tests can find it.
"""

from __future__ import annotations

import html

import ipywidgets as w

from ...plots import ReliabilityPlot, WeightBars
from ..figure import LabFigure
from ..view import LabView, pct, split_options, table_html
from .lab import DeepEnsemblesLab


def metrics_table_html(metrics: dict[str, dict[str, float]], split: str, n: int) -> str:
    """The metric table as HTML (rows: ensemble, best member, average member)."""
    rows = {
        name: (pct(m["accuracy"]), f"{m['nll']:.3f}", f"{m['brier']:.3f}", pct(m["ece"])) for name, m in metrics.items()
    }
    table = table_html(("accuracy", "NLL", "Brier", "ECE"), rows, bold=("ensemble",))
    return f"<div><b>{html.escape(split)}</b> split, {n} samples{table}</div>"


def diversity_html(diversity: dict[str, float]) -> str:
    return (
        "<div>Diversity of the weighted members: "
        f"disagreement <b>{pct(diversity['disagreement'])}</b> · "
        f"mutual information <b>{diversity['mutual_information']:.3f}</b> nats "
        "(= mean KL of the members to their average)</div>"
    )


def figure_description(result) -> str:
    """The figure's one-line text description (what it shows, with the headline numbers)."""
    m = result.metrics["ensemble"]
    heaviest = int(result.weights.argmax()) + 1
    return (
        f"Reliability diagram of the ensemble on the {result.split} split: accuracy per confidence bin against "
        f"the diagonal, ECE {pct(m['ece'])}, with the share of samples per bin below; right, the weight of each "
        f"of the {len(result.weights)} members (largest: member {heaviest}, {pct(float(result.weights.max()))})."
    )


class DeepEnsemblesView(LabView, lab=DeepEnsemblesLab):
    """Controls on the left, numbers and plots on the right, the status line above."""

    CSS_NAME = "deep-ensembles"

    def build(self) -> None:
        lab, s = self.lab, self.lab.state
        self.rule = self.bind(
            "rule",
            w.Dropdown(
                options=[
                    ("average probabilities", "prob"),
                    ("average logits", "logit"),
                    ("geometric mean", "geo"),
                    ("majority vote", "vote"),
                ],
                description="rule",
            ),
        )
        self.temperature = self.bind(
            "temperature",
            w.FloatLogSlider(
                value=s.temperature, base=10, min=-1, max=1, step=0.02, description="temperature", readout_format=".2f"
            ),
        )
        self.n_bins = self.bind("n_bins", w.IntSlider(value=s.n_bins, min=1, max=50, description="bins"))
        self.strategy = self.bind(
            "strategy",
            w.ToggleButtons(options=["uniform", "quantile"], description="bin widths", style={"button_width": "80px"}),
        )
        self.split = self.bind(
            "split", w.Dropdown(options=split_options(lab.eval_splits, lab.fit_split), description="evaluate on")
        )
        self.buttons = {
            key: self.button(key, label, tip)
            for key, label, tip in (
                ("uniform", "uniform", "every member the same weight"),
                ("learn", "learn (NLL)", "the weights that minimise NLL on the validation split"),
                ("best", "best member", "only the member with the best validation accuracy"),
            )
        }
        self.sliders = []
        for i in range(min(lab.k, lab.max_sliders)):
            slider = w.FloatSlider(
                min=0.0,
                max=1.0,
                step=0.01,
                description=f"member {i + 1}",
                continuous_update=True,
                readout_format=".2f",
                layout=w.Layout(width="300px"),
            )
            self.sliders.append(
                self.link(
                    slider,
                    lambda st, i=i: st.weights[i] if i < len(st.weights) else 0.0,
                    lambda v, i=i: {"weights": self._replace_weight(i, v)},
                    css=f"weight-{i}",
                )
            )
        self.weights_text = self.link(
            w.Text(
                description="weights",
                continuous_update=False,
                layout=w.Layout(width="300px"),
                placeholder="comma-separated, one per member",
            ),
            lambda st: ", ".join(f"{v:g}" for v in st.weights),
            lambda v: {"weights": _parse_weights(v)},
            css="weights-text",
        )
        self.table = self.html("metrics")
        self.diversity = self.html("diversity")
        self.figure = LabFigure(
            [["rel", "weights"], ["hist", "weights"]], figsize=(7.6, 4.0), height_ratios=[3, 1], width_ratios=[3, 2]
        )
        self.reliability_plot = ReliabilityPlot(self.figure.axes["rel"], self.figure.axes["hist"], title="Ensemble")
        self.weight_bars = WeightBars(self.figure.axes["weights"], lab.k)

    def controls(self) -> list:
        lab = self.lab
        more = (
            []
            if lab.k <= lab.max_sliders
            else [w.HTML(f"<i>{lab.k} members: sliders for the first {lab.max_sliders}; type all weights below.</i>")]
        )
        return [
            self.rule,
            self.temperature,
            self.n_bins,
            self.strategy,
            self.split,
            w.HBox(list(self.buttons.values())),
            w.HTML("<b>Member weights</b>"),
            *self.sliders,
            *more,
            self.weights_text,
        ]

    def outputs(self) -> list:
        return [self.table, self.diversity, self.figure.widget]

    def _replace_weight(self, i: int, value: float) -> list[float]:
        weights = list(self.lab.state.weights)
        weights[i] = float(value)
        return weights

    def draw(self, result) -> None:
        """Update only what changed: table, diversity line, reliability bars, weight bars."""
        self.table.value = metrics_table_html(result.metrics, result.split, result.n_samples)
        self.diversity.value = diversity_html(result.diversity)
        self.reliability_plot.update(result.reliability)
        self.weight_bars.update(result.weights)
        self.figure.show(self.reliability_plot.artists + self.weight_bars.artists)
        self.figure.describe(figure_description(result))


def _parse_weights(text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"weights must be numbers separated by commas, got {text!r}") from None
