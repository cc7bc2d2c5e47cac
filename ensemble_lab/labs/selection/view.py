"""Widgets and plots of the selection Lab (no maths: everything shown comes from ``lab.result``).

Left: the selection settings, the library as a grid (each cell a model, shaded by how many times the selection
took it), the winning-team settings.  Right: the selection path, the decomposition bars, the comparison table,
and the estimator-against-truth scatter with its Kendall's tau.  Moving the steps slider slides along a cached
path and only moves artists.
"""

from __future__ import annotations

import html

import ipywidgets as w

from ...artefacts.transfer_world import ESTIMATORS, LABEL_SEEDS, TEAM_SIZES
from ...plots import DecompositionBars, SelectionPathPlot, TeamScatter
from ...selection import METRICS
from ..figure import LabFigure
from ..view import LabView, pct, table_html
from .lab import HILL_SIZES, MAX_INIT, MAX_STEPS, SelectionLab

_METRIC_LABELS = {"nll": "NLL", "brier": "Brier", "ece": "ECE", "error": "error"}
_COLUMNS = ("hill-climb", "held out", "NLL", "accuracy", "ECE", "Brier", "models")


def _score(metric: str, value: float) -> str:
    return pct(value) if metric in ("ece", "error") else f"{value:.3f}"


def selection_table_html(result) -> str:
    """The comparison table: the metric on the hill-climbing set and held out, then the held-out NLL, accuracy,
    ECE, Brier and the number of distinct models; the forward selection in bold."""
    m = result.metric
    rows = {
        name: (
            _score(m, r["hill"]),
            _score(m, r["held_out"]),
            f"{r['nll']:.3f}",
            pct(r["accuracy"]),
            pct(r["ece"]),
            f"{r['brier']:.3f}",
            f"{r['models']:.0f}",
        )
        for name, r in result.table.items()
    }
    return (
        f"<div style='font-size:90%'>metric: {_METRIC_LABELS[m]} (lower is better) · held out: the 5,000 test images"
        + table_html(_COLUMNS, rows, css_class="el-selection-table", bold=("forward selection",))
        + f"<div class='el-soup-note'>greedy soup: {html.escape(result.soup)}</div></div>"
    )


def library_grid_html(names, team: dict[str, int]) -> str:
    """The library as a grid: one row per group, one cell per model, its count in the ensemble written in it
    (and shaded, darker = more), so a learner sees which models the selection took and how often."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name.rsplit(" #", 1)[0], []).append(name)
    top = max(team.values(), default=1)
    rows = []
    for group, members in groups.items():
        cells = []
        for name in members:
            c = team.get(name, 0)
            shade = 0.15 + 0.85 * c / top if c else 0.0
            style = (
                f"background:rgba(0,114,178,{shade:.2f});color:{'white' if shade > 0.5 else 'black'};"
                "width:22px;text-align:center;border:1px solid #ccc"
            )
            label = html.escape(f"{name}: {c}×")
            cells.append(f"<td style='{style}' title='{label}' aria-label='{label}'>{c or '·'}</td>")
        rows.append(
            f"<tr><th scope='row' style='text-align:left;font-weight:normal;padding-right:6px'>"
            f"{html.escape(group)}</th>{''.join(cells)}</tr>"
        )
    return (
        "<div style='font-size:85%'><b>The library</b> (times each model is in the ensemble)"
        f"<table class='el-library-grid' style='border-collapse:collapse'>{''.join(rows)}</table></div>"
    )


def team_text(result) -> str:
    """The winning-team summary: every estimator's tau, its pick and the pick's accuracy, and the best team."""
    names = result.sources

    def team(t) -> str:
        return " + ".join(names[i] for i in t)

    rows = {
        e: (f"{result.tau[e]:.2f}" if e in result.tau else "–", team(result.picks[e][0]), pct(result.picks[e][1]))
        for e in result.picks
    }
    rows["best team"] = ("", team(result.best[0]), pct(result.best[1]))
    return (
        "<div style='font-size:90%'>Kendall's tau between each estimator's scores and the probed accuracy of all "
        f"{len(result.teams)} teams, and the team each ranks first"
        + table_html(("tau", "its top team", "accuracy"), rows, css_class="el-team-table", bold=("best team",))
        + "</div>"
    )


class SelectionView(LabView, lab=SelectionLab):
    """Selection settings and the library grid on the left; path, decomposition, table and team scatter right."""

    CSS_NAME = "selection"

    def build(self) -> None:
        lab = self.lab
        self.metric = self.bind(
            "metric",
            w.ToggleButtons(
                options=[(_METRIC_LABELS[m], m) for m in METRICS],
                tooltips=[f"climb on {_METRIC_LABELS[m]}" for m in METRICS],
                style={"button_width": "62px"},
            ),
        )
        self.hill_size = self.bind(
            "hill_size", w.SelectionSlider(options=list(HILL_SIZES), description="hill set", continuous_update=False)
        )
        self.bagging = self.bind(
            "bagging", w.Checkbox(description="bagging (20 bags of half the library)", indent=False)
        )
        self.init = self.bind(
            "init", w.IntSlider(min=0, max=MAX_INIT, description="sorted init", continuous_update=False)
        )
        self.steps = self.bind("steps", w.IntSlider(min=1, max=MAX_STEPS, description="steps", continuous_update=True))
        self.grid = self.html("library")
        self.target = self.bind("target", w.Dropdown(options=list(lab.world.targets), description="target"))
        self.team_size = self.bind(
            "team_size", w.ToggleButtons(options=[(str(k), k) for k in TEAM_SIZES], style={"button_width": "40px"})
        )
        self.estimator = self.bind("estimator", w.Dropdown(options=list(ESTIMATORS), description="estimator"))
        self.label_seed = self.bind(
            "label_seed", w.Dropdown(options=[(f"draw {s}", s) for s in LABEL_SEEDS], description="labels")
        )
        self.table = self.html("metrics")
        self.teams = self.html("teams")
        self.figure = LabFigure([["path", "bars"], ["teams", "teams"]], figsize=(7.6, 6.4), width_ratios=[3, 2])
        self.path_plot = SelectionPathPlot(self.figure.axes["path"])
        self.bars = DecompositionBars(self.figure.axes["bars"], ("selection", "uniform"))
        self.scatter = TeamScatter(self.figure.axes["teams"])

    def controls(self) -> list:
        return [
            w.HTML("<b>Forward selection</b> (Caruana et al.): climb on"),
            self.metric,
            self.hill_size,
            self.bagging,
            self.init,
            self.steps,
            self.grid,
            w.HTML("<b>The winning team</b>: source models for a new task"),
            self.target,
            w.HTML("team size"),
            self.team_size,
            self.estimator,
            self.label_seed,
        ]

    def outputs(self) -> list:
        return [self.figure.widget, self.table, self.teams]

    def draw(self, result) -> None:
        s = self.lab.state
        label = _METRIC_LABELS[result.metric]
        self.table.value = selection_table_html(result)
        self.grid.value = library_grid_html(self.lab.names, result.team)
        self.teams.value = team_text(result)
        bagged = " (mean over bags)" if s.bagging else ""
        full = self.path_plot.update(
            result.path["step"],
            result.path["hill"],
            result.path["held_out"],
            s.init + s.steps,
            result.best_step,
            f"Selection path on {s.hill_size} images{bagged}",
            f"{label} (lower is better)",
        )
        loss = "NLL (nats)" if result.metric == "nll" else "Brier"
        d = result.decomposition
        full |= self.bars.update(
            {
                "selection": (
                    d["forward selection"].mean_member_loss,
                    d["forward selection"].diversity,
                    d["forward selection"].ensemble_loss,
                ),
                "uniform": (d["uniform"].mean_member_loss, d["uniform"].diversity, d["uniform"].ensemble_loss),
            },
            f"held-out {loss}",
            "ensemble = mean member − diversity",
        )
        scores = result.scores
        full |= self.scatter.update(
            scores,
            result.truth,
            result.pick_index,
            result.best_index,
            f"{s.target}: teams of {s.team_size}, {s.estimator} (tau {result.tau[s.estimator]:.2f})",
            f"{s.estimator} score (higher = predicted better)",
        )
        self.figure.show(self.path_plot.artists + self.bars.artists + self.scatter.artists, full=full)
        sel = d["forward selection"]
        self.figure.describe(
            f"Top left: the {label} of the selected ensemble on the {s.hill_size} hill-climbing images (solid) and on "
            f"the held-out test images (dashed) as models are added; the vertical line marks {s.init + s.steps} "
            f"additions. Top right: held-out {loss} of the selection and of the uniform average split into mean "
            f"member loss, diversity and ensemble loss; for the selection {sel.mean_member_loss:.3f} − "
            f"{sel.diversity:.3f} = {sel.ensemble_loss:.3f}. Bottom: each of the {len(scores)} teams of "
            f"{s.team_size} source models by its {s.estimator} score (x) and its accuracy after probing on "
            f"{s.target} (y); Kendall's tau is {result.tau[s.estimator]:.2f}; the estimator's pick is a diamond, "
            "the best team a ring."
        )


__all__ = ["SelectionView", "selection_table_html", "library_grid_html", "team_text"]
