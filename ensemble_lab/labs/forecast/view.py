"""Widgets and plots of the forecasting Lab (no maths: everything shown comes from ``lab.result``).

Left: who forecasts and how (forecaster, members, perturbations, model error, seed), then what is looked at
(lead, variable, case, the extreme event).  Right: the fair and standard CRPS against lead (with the physics
ensemble's as a reference line), the spread-skill ratio, the rank histogram and the extreme event's reliability
at the chosen lead, the plume of one case, a summary line and each forecaster's cost.  Moving the lead, the
variable or the case only moves artists (blitted); the members control takes a prefix of a cached ensemble.
"""

from __future__ import annotations

import math

import ipywidgets as w

from ...forecast import FORECASTERS
from ...forecast.perturbations import PERTURBATIONS
from ...plots import EventReliabilityPlot, LeadScorePlot, PlumePlot, RankHistogramBars
from ..figure import LabFigure
from ..view import LabView, table_html
from .lab import AMPLITUDES, MAX_MEMBERS, MODEL_ERRORS, QUANTILES, USES_PERTURBATIONS, ForecastLab

__all__ = ["ForecastView", "cost_table_html", "summary_html", "macs_text", "seconds_text"]


def macs_text(macs: float) -> str:
    """MACs in k/M/G, one decimal; NaN (unknown) -> ``'–'``.

    >>> macs_text(4320.0), macs_text(2_964_480.0), macs_text(float("nan"))
    ('4.3 k', '3.0 M', '–')
    """
    if math.isnan(macs):
        return "–"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if macs >= scale:
            return f"{macs / scale:.1f} {unit}"
    return f"{macs:.0f}"


def seconds_text(seconds: float) -> str:
    """Seconds per member in ms; NaN (not computed yet) -> ``'–'``.

    >>> seconds_text(0.0074), seconds_text(float("nan"))
    ('7.4 ms', '–')
    """
    return "–" if math.isnan(seconds) else f"{1e3 * seconds:.1f} ms"


def cost_table_html(result) -> str:
    """Each forecaster's cost: MACs per member and lead (a generated member for SEEDS) and the measured seconds
    per member of the last ensemble of it the Lab computed (all cases and leads); the current one in bold."""
    rows = {name: (macs_text(c["macs"]), seconds_text(c["seconds"])) for name, c in result.costs.items()}
    return (
        "<div style='font-size:90%'><b>Cost</b> per forecast member"
        + table_html(
            ("MACs per member-lead", f"seconds per member ({result.n_cases} cases)"),
            rows,
            css_class="el-cost-table",
            bold=(result.forecaster,),
        )
        + "</div>"
    )


def summary_html(result) -> str:
    """The numbers at the chosen lead, rounded for display."""
    i = result.lead
    day = float(result.lead_days[i])
    r = result.reliability
    return (
        f"<div class='el-summary' style='font-size:90%'><b>Day {day:g}</b>, {result.forecaster}, "
        f"M = {result.members}, over {result.n_cases} cases × 40 variables: fair CRPS {float(result.crps_fair[i]):.3f} "
        f"(standard {float(result.crps[i]):.3f}; physics {float(result.reference_crps_fair[i]):.3f}) · "
        f"spread-skill {float(result.ratio[i]):.2f} (spread {float(result.spread[i]):.2f}, RMSE of the mean "
        f"{float(result.skill[i]):.2f}) · rank-histogram delta {result.flatness.delta:.1f} (1 = flat) · "
        f"x &gt; {result.threshold:.2f} (the {100 * result.quantile:g}th percentile): base rate {r.base_rate:.3f}, "
        f"Brier {result.brier:.4f} (fair {result.brier_fair:.4f})</div>"
    )


class ForecastView(LabView, lab=ForecastLab):
    """Forecast settings on the left; CRPS, spread-skill, rank histogram, reliability and plume on the right."""

    CSS_NAME = "forecast"

    def build(self) -> None:
        lab = self.lab
        world = lab.world
        self.forecaster = self.bind("forecaster", w.Dropdown(options=list(FORECASTERS), description="forecaster"))
        self.members = self.bind(
            "members", w.IntSlider(min=2, max=MAX_MEMBERS, description="members", continuous_update=True)
        )
        self.kind = self.bind(
            "kind",
            w.ToggleButtons(
                options=[(k, k) for k in PERTURBATIONS],
                tooltips=["independent Gaussian perturbations", "paired bred vectors (grown by the model)"],
                style={"button_width": "70px"},
            ),
        )
        self.amplitude = self.bind(
            "amplitude",
            w.SelectionSlider(
                options=[(f"{a:g}", a) for a in AMPLITUDES], description="amplitude", continuous_update=False
            ),
        )
        self.model_error = self.bind(
            "model_error",
            w.SelectionSlider(
                options=[(f"{e:+g}", e) for e in MODEL_ERRORS], description="model error", continuous_update=False
            ),
        )
        self.seed = self.bind("seed", w.BoundedIntText(min=0, max=2**31 - 1, description="seed"))
        self.ignored = self.html("ignored")
        self.lead = self.bind(
            "lead", w.IntSlider(min=0, max=world.n_leads, description="lead (days)", continuous_update=True)
        )
        self.variable = self.bind(
            "variable", w.IntSlider(min=0, max=world.n_variables - 1, description="variable", continuous_update=True)
        )
        self.case = self.bind(
            "case", w.IntSlider(min=0, max=world.n_cases - 1, description="case", continuous_update=True)
        )
        self.quantile = self.bind(
            "quantile",
            w.ToggleButtons(options=[(f"{100 * q:g}th", q) for q in QUANTILES], style={"button_width": "56px"}),
        )
        self.summary = self.html("summary")
        self.costs = self.html("costs")
        self.figure = LabFigure([["crps", "ratio"], ["rank", "reliability"], ["plume", "plume"]], figsize=(7.6, 8.6))
        ax = self.figure.axes
        self.crps_plot = LeadScorePlot(ax["crps"], ("fair CRPS", "standard CRPS"), reference_label="physics (fair)")
        self.ratio_plot = LeadScorePlot(ax["ratio"], ("spread-skill ratio",), target=1.0)
        self.rank_bars = RankHistogramBars(ax["rank"], MAX_MEMBERS)
        self.reliability_plot = EventReliabilityPlot(ax["reliability"])
        self.plume = PlumePlot(ax["plume"], MAX_MEMBERS)

    def controls(self) -> list:
        return [
            w.HTML("<b>The ensemble</b>"),
            self.forecaster,
            self.members,
            w.HTML("initial perturbations"),
            self.kind,
            self.amplitude,
            self.model_error,
            self.seed,
            self.ignored,
            w.HTML("<b>What to look at</b>"),
            self.lead,
            self.variable,
            self.case,
            w.HTML("extreme event: x above the climate's"),
            self.quantile,
        ]

    def outputs(self) -> list:
        return [self.figure.widget, self.summary, self.costs]

    def draw(self, result) -> None:
        s = self.lab.state
        i = result.lead
        day = float(result.lead_days[i])
        self.summary.value = summary_html(result)
        self.costs.value = cost_table_html(result)
        self.ignored.value = (
            ""
            if result.forecaster in USES_PERTURBATIONS
            else f"<small>{result.forecaster} starts from the analysis: perturbations and model error do not "
            "change it</small>"
        )
        reference = None if result.forecaster == "physics" else result.reference_crps_fair
        full = self.crps_plot.update(
            result.lead_days,
            (result.crps_fair, result.crps),
            i,
            reference,
            f"CRPS against the truth ({result.forecaster}, M = {result.members})",
            "CRPS (lower is better)",
        )
        full |= self.ratio_plot.update(
            result.lead_days, (result.ratio,), i, None, "spread-skill ratio (1 = reliable)", "spread / skill"
        )
        full |= self.rank_bars.update(result.rank_counts, "rank histogram of the truth", top=result.rank_top)
        full |= self.reliability_plot.update(
            result.reliability, f"reliability of x > {result.threshold:.1f} ({100 * result.quantile:g}th percentile)"
        )
        full |= self.plume.update(
            result.lead_days,
            result.plume,
            result.truth,
            result.observations,
            i,
            result.threshold,
            "plume: the members, the truth and the observations",
            "x (one variable)",
            f"case {result.case}, variable x{result.variable}",
        )
        artists = (
            self.crps_plot.artists
            + self.ratio_plot.artists
            + self.rank_bars.artists
            + self.reliability_plot.artists
            + self.plume.artists
        )
        self.figure.show(artists, full=full)
        ref = "" if reference is None else ", the physics ensemble's fair CRPS dotted"
        self.figure.describe(
            f"Top left: fair (solid) and standard (dashed) CRPS of the {result.forecaster} ensemble of "
            f"{result.members} members against lead time{ref}; at day {day:g} the fair CRPS is "
            f"{float(result.crps_fair[i]):.3f}. Top right: the spread-skill ratio, {float(result.ratio[i]):.2f} at "
            f"day {day:g} (1 = reliable, below 1 under-dispersed). Middle left: the rank histogram of the truth "
            f"among the members at day {day:g} (a U shape: under-dispersed; delta {result.flatness.delta:.1f}). "
            f"Middle right: how often x > {result.threshold:.1f} happened against the fraction of members "
            f"forecasting it. Bottom: the {result.members} members of variable {s.variable} for case {s.case}, "
            "with the truth and the observations."
        )
