"""Widgets and plots of the forests Lab (no maths: everything shown comes from ``lab.result``).

Left: the forest (problem, trees, leaf size, features per split, bootstrap, outcome noise, seed), then what is
looked at (the query point, the highlighted distance, the mechanisms).  Right: the smoother at the query (1-D:
the data, the truth, tree 0's and the forest's curves with the averaged outcomes sized by weight, and the weights
as stems; 2-D: the forest's and tree 0's prediction fields with the weighted training points as rings), the
effective parameters and the excess errors against the distance from the training inputs, the three mechanisms as
bars, and a summary line.  A query move only moves artists (blitted); ``n_trees`` takes a prefix of one forest.
"""

from __future__ import annotations

import html

import ipywidgets as w

from ...forests import PARTS
from ...plots import DistanceCurvePlot, KernelStemPlot, MechanismBars, SmootherCurvePlot, WeightFieldPlot
from ..figure import LabFigure
from ..view import LabView
from .lab import AXIS, DISTANCES, LEAF_SIZES, MECHANISM_TREES, N_TREES, NOISES, ForestsLab

__all__ = ["ForestsView", "summary_html", "mechanisms_html", "ignored_html"]

_PROBLEMS = (("sine (1-D)", "sine"), ("diagonal (2-D)", "diagonal"))
_WHY_IGNORED = {
    "max_features": "features per split: the sine has one feature",
    "query_y": "query y: the sine has one coordinate",
}


def _share(x: float) -> str:
    return f"{100 * x:.0f}%"


def summary_html(result) -> str:
    """The numbers at the query and at the highlighted distance, rounded for display."""
    r = result
    where = ", ".join(f"{q:g}" for q in r.query)
    return (
        f"<div class='el-summary' style='font-size:90%'><b>At the query ({where})</b>: the forest of "
        f"{r.n_trees} tree{'s' if r.n_trees != 1 else ''} predicts {r.query_forest:.3f} from {r.support_forest} of "
        f"the {r.n_train} training outcomes (largest weight {_share(r.top_share_forest)}); tree 0 predicts "
        f"{r.query_tree:.3f} from {r.support_tree} (largest weight {_share(r.top_share_tree)}); truth "
        f"{r.query_truth:.3f} · <b>{r.distance:g} from the training inputs</b>: effective parameters forest "
        f"{r.p_forest_at:.1f}, mean tree {r.p_trees_at:.1f} (of n = {r.n_train}); excess error forest "
        f"{r.error_forest_at:.3f}, tree 0 {r.error_tree_at:.3f}, mean tree {r.error_trees_at:.3f} · "
        f"<b>everywhere</b> (over [0, 1]{'²' if r.n_features == 2 else ''}): excess error forest "
        f"{r.error_forest_grid:.3f}, tree 0 {r.error_tree_grid:.3f}, mean tree {r.error_trees_grid:.3f}</div>"
    )


def mechanisms_html(result) -> str:
    """The three mechanisms' gains with +-2 standard errors, or a hint when they are off."""
    m = result.mechanisms
    if m is None:
        return (
            "<div class='el-mechanisms' style='font-size:90%'><small>Tick <i>mechanisms</i> to split the forest's "
            "gain over a tree into the paper's three mechanisms (a simulation of a few seconds, once per "
            "recipe).</small></div>"
        )
    parts = " · ".join(
        f"{name} {getattr(m, f'{name}_gain'):+.4f} ± {2 * getattr(m, f'{name}_gain_se'):.4f}" for name in PARTS
    )
    return (
        f"<div class='el-mechanisms' style='font-size:90%'><b>Mechanisms</b> (forests of {MECHANISM_TREES} trees "
        f"against one of their trees, excess test error, {m.n_inputs} training sets, ± 2 standard errors): gain "
        f"{m.gain:+.4f} ± {2 * m.gain_se:.4f} = {parts}; largest: {html.escape(m.dominant)}</div>"
    )


def ignored_html(result) -> str:
    """A line naming the settings this result ignores (empty when none)."""
    if not result.ignored:
        return ""
    return "<small>ignored here: " + "; ".join(_WHY_IGNORED[name] for name in result.ignored) + "</small>"


class ForestsView(LabView, lab=ForestsLab):
    """The forest's recipe and the query on the left; its weights, smoothness, errors and mechanisms on the right."""

    CSS_NAME = "forests"

    def build(self) -> None:
        self.problem = self.bind("problem", w.ToggleButtons(options=list(_PROBLEMS), style={"button_width": "110px"}))
        self.n_trees = self.bind(
            "n_trees", w.IntSlider(min=1, max=N_TREES, description="trees", continuous_update=True)
        )
        self.min_samples_leaf = self.bind(
            "min_samples_leaf",
            w.SelectionSlider(
                options=[(str(k), k) for k in LEAF_SIZES], description="min leaf", continuous_update=False
            ),
        )
        self.max_features = self.bind(
            "max_features",
            w.ToggleButtons(
                options=[("1 feature", 1), ("both", 2)],
                tooltips=["one random feature per split", "every feature at every split"],
                style={"button_width": "80px"},
            ),
        )
        self.bootstrap = self.bind("bootstrap", w.Checkbox(description="bootstrap samples", indent=False))
        self.noise = self.bind(
            "noise",
            w.ToggleButtons(options=[(f"{s:g}", s) for s in NOISES], style={"button_width": "56px"}),
        )
        self.seed = self.bind("seed", w.BoundedIntText(min=0, max=2**31 - 1, description="seed"))
        self.ignored = self.html("ignored")
        step = AXIS[1] - AXIS[0]
        self.query_x = self.bind(
            "query_x",
            w.FloatSlider(min=0, max=1, step=step, description="query x", readout_format=".3f", continuous_update=True),
        )
        self.query_y = self.bind(
            "query_y",
            w.FloatSlider(min=0, max=1, step=step, description="query y", readout_format=".3f", continuous_update=True),
        )
        self.distance = self.bind(
            "distance",
            w.SelectionSlider(options=[(f"{d:g}", d) for d in DISTANCES], description="distance"),
        )
        self.mechanisms = self.bind(
            "mechanisms", w.Checkbox(description="simulate the three mechanisms (seconds)", indent=False)
        )
        self.summary = self.html("summary")
        self.mechanism_line = self.html("mechanism-line")
        self.figure = LabFigure([["fit", "kernel"], ["p", "error"], ["mechanisms", "mechanisms"]], figsize=(7.6, 8.8))
        ax = self.figure.axes
        side = len(AXIS)
        self.curve = SmootherCurvePlot(ax["fit"])
        self.forest_field = WeightFieldPlot(ax["fit"], side)
        self.stems = KernelStemPlot(ax["kernel"])
        self.tree_field = WeightFieldPlot(ax["kernel"], side)
        self.p_plot = DistanceCurvePlot(ax["p"], DISTANCES, ("forest", "mean tree"))
        self.error_plot = DistanceCurvePlot(ax["error"], DISTANCES, ("forest", "mean tree", "tree 0"))
        self.mechanism_bars = MechanismBars(ax["mechanisms"], (*PARTS, "total"))

    def controls(self) -> list:
        return [
            w.HTML("<b>The forest</b>"),
            self.problem,
            self.n_trees,
            self.min_samples_leaf,
            w.HTML("features tried at each split"),
            self.max_features,
            self.bootstrap,
            w.HTML("outcome noise of the training data"),
            self.noise,
            self.seed,
            self.ignored,
            w.HTML("<b>What to look at</b>"),
            self.query_x,
            self.query_y,
            self.distance,
            self.mechanisms,
        ]

    def outputs(self) -> list:
        return [self.figure.widget, self.summary, self.mechanism_line]

    def draw(self, result) -> None:
        r = result
        self.summary.value = summary_html(r)
        self.mechanism_line.value = mechanisms_html(r)
        self.ignored.value = ignored_html(r)
        trees = f"{r.n_trees} tree{'s' if r.n_trees != 1 else ''}"
        if r.n_features == 1:
            full = self.forest_field.hide() | self.tree_field.hide()
            full |= self.curve.update(
                r.x_train[:, 0],
                r.y_train,
                r.grid,
                r.truth,
                r.prediction_tree,
                r.prediction_forest,
                r.weights_forest,
                r.query[0],
                "tree 0 and the forest",
            )
            full |= self.stems.update(
                r.x_train[:, 0], r.weights_tree, r.weights_forest, r.query[0], "their weights at the query"
            )
        else:
            full = self.curve.hide() | self.stems.hide()
            full |= self.forest_field.update(
                r.x_train, r.prediction_forest, r.weights_forest, r.query, "the forest: its weights"
            )
            full |= self.tree_field.update(r.x_train, r.prediction_tree, r.weights_tree, r.query, "tree 0: its weights")
        full |= self.p_plot.update(
            (r.p_forest, r.p_trees), r.distance, f"effective parameters (n = {r.n_train})", "effective parameters"
        )
        full |= self.error_plot.update(
            (r.error_forest, r.error_trees, r.error_tree), r.distance, "excess test error", "mean (f̂ − f)²"
        )
        m = r.mechanisms
        if m is None:
            full |= self.mechanism_bars.update(
                None, None, "the forest's gain over a tree", "gain", "tick 'mechanisms' to simulate them"
            )
        else:
            values = [getattr(m, f"{name}_gain") for name in PARTS] + [m.gain]
            errors = [getattr(m, f"{name}_gain_se") for name in PARTS] + [m.gain_se]
            full |= self.mechanism_bars.update(
                values,
                errors,
                f"the forest's gain over a tree ({MECHANISM_TREES} trees; ± 2 SE)",
                "excess error: tree − forest",
            )
        drawings = (
            self.curve,
            self.forest_field,
            self.stems,
            self.tree_field,
            self.p_plot,
            self.error_plot,
            self.mechanism_bars,
        )
        self.figure.show([a for d in drawings for a in d.artists], full=full)
        where = ", ".join(f"{q:g}" for q in r.query)
        if r.n_features == 1:
            top = (
                f"Top left: the {r.n_train} training outcomes of the sine, the truth, tree 0's curve and the curve of "
                f"the forest of {trees}; at x = {where} the forest averages {r.support_forest} outcomes (blue, sized "
                f"by weight) and predicts {r.query_forest:.2f}. Top right: the weights at the query, the forest's as "
                f"stems and tree 0's as triangles (largest {_share(r.top_share_forest)} and "
                f"{_share(r.top_share_tree)})."
            )
        else:
            top = (
                f"Top: the predictions of the forest of {trees} (left) and of tree 0 (right) on [0, 1]², purple low "
                f"and orange high, with the training inputs each averages at the query ({where}) as rings sized by "
                f"weight: {r.support_forest} for the forest, {r.support_tree} for the tree."
            )
        mech = (
            "Bottom: tick mechanisms to see the forest's gain over a tree split into noise, variability and bias."
            if m is None
            else f"Bottom: the forest's gain over a tree, {m.gain:.4f}, split into noise {m.noise_gain:.4f}, "
            f"variability {m.variability_gain:.4f} and bias {m.bias_gain:.4f}."
        )
        self.figure.describe(
            f"{top} Middle left: effective parameters of the forest and of its mean tree against the distance of "
            f"the test points from the training inputs; at {r.distance:g}: {r.p_forest_at:.1f} and "
            f"{r.p_trees_at:.1f}. Middle right: their excess test errors, with tree 0's; at {r.distance:g} the "
            f"forest's is {r.error_forest_at:.3f}. {mech}"
        )
