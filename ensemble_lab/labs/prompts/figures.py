"""Static figures of notebook 03's guided experiments (a ``matplotlib.figure.Figure`` each, never pyplot, so that
ipympl does not take them over; show one with ``ensemble_lab.plots.StaticFigure(fig)``).

Each builder takes results of :mod:`.experiments` and draws them; nothing is computed here beyond means over
seeds.  Accuracy differences are drawn in points; filled dots are resolved intervals, hollow ones are not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from ...plots import PALETTE, SERIES_COLORS, describe, draw_interval
from .experiments import METHOD_NAMES, DebiasTable, DomainTable, ScoreAnatomy, ScoringCurve, SeedsHeadline

__all__ = ["domain_figure", "score_figure", "debias_figure", "scoring_figure", "GROUP_COLORS"]

_BASELINE_COLORS = {"equal-embeddings": PALETTE["blue"], "equal-logits": PALETTE["orange"]}
#: prompt groups in the score plots: the domain's own style, other styles, generic, spurious, rare
GROUP_COLORS = {
    "own style": PALETTE["bluish green"],
    "other style": PALETTE["sky blue"],
    "generic": PALETTE["grey"],
    "spurious": PALETTE["vermillion"],
    "rare": PALETTE["orange"],
}


def _figure(figsize) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def domain_figure(table: DomainTable, headline: SeedsHeadline | None = None) -> Figure:
    """Experiment 1: ZPE minus each equal baseline per domain and averaged over the domains (90% paired
    intervals, clustered by source digit); and, when ``headline`` is given, the averaged difference for each
    seed."""
    baselines = tuple(table.differences)
    ncols = 2 if headline is not None else 1
    fig = _figure((9.0 if ncols == 2 else 5.0, 3.4))
    axes = np.atleast_1d(fig.subplots(1, ncols, width_ratios=[3, 2] if ncols == 2 else None))
    rows = [*table.domains, "mean"]
    offsets = np.linspace(-0.15, 0.15, len(baselines))
    ax = axes[0]
    for j, b in enumerate(baselines):
        for i, d in enumerate(rows):
            y = len(rows) - 1 - i + offsets[j]
            draw_interval(ax, y, table.differences[b][d], _BASELINE_COLORS.get(b, "black"))
    ax.axvline(0.0, color=PALETTE["black"], lw=0.8, ls="--")
    ax.axhline(0.5, color=PALETTE["black"], lw=0.5, alpha=0.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(["mean of 7" if r == "mean" else r for r in rows][::-1], fontsize="small")
    ax.set_xlabel("accuracy difference (points)", fontsize="small")
    ax.set_title("per domain (one seed: the Lab's defaults)", fontsize="small")
    handles = [
        Line2D(
            [],
            [],
            color=_BASELINE_COLORS.get(b, "black"),
            marker="o",
            lw=2,
            label=f"{METHOD_NAMES[table.method]} - {METHOD_NAMES[b]}",
        )
        for b in baselines
    ]
    handles.append(
        Line2D([], [], color=PALETTE["grey"], marker="o", markerfacecolor="white", lw=0, label="not resolved")
    )
    ax.legend(handles=handles, fontsize="x-small", loc="upper right")
    ax.grid(axis="x", alpha=0.3)
    if headline is not None:
        ax = axes[1]
        seeds = headline.seeds
        for j, b in enumerate(baselines):
            for i, s in enumerate(seeds):
                y = len(seeds) - 1 - i + offsets[j]
                draw_interval(ax, y, headline.intervals[s][b], _BASELINE_COLORS.get(b, "black"))
        ax.axvline(0.0, color=PALETTE["black"], lw=0.8, ls="--")
        ax.set_yticks(range(len(seeds)))
        ax.set_yticklabels([f"seed {s}" for s in seeds][::-1], fontsize="small")
        ax.set_xlabel("accuracy difference, mean of 7 domains (points)", fontsize="small")
        ax.set_title(
            f"over seeds (pre-training sample of {headline.n_pretrain},\n"
            f"{headline.n_scored} scoring images per domain)",
            fontsize="small",
        )
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Experiment 1: ZPE against the two equal averages (90% paired intervals)", fontsize="medium")
    return describe(
        fig,
        "ZPE weighting against the two equal averages (equal embeddings, equal logits): accuracy differences in "
        "points with 90% paired intervals, per domain and as the mean of 7 domains.",
    )


def score_figure(anatomies: Sequence[ScoreAnatomy], rows: Sequence[str] = ("naive", "debiased")) -> Figure:
    """Each prompt's score against its accuracy alone, one column per domain (``anatomies``) and one row per
    score (``"naive"``: the max-logit score; ``"debiased"``: ZPE's), coloured by prompt group."""
    names = {"naive": "naive max-logit score", "debiased": "ZPE score (debiased)", "spread": "test-debiased score"}
    ncols = len(anatomies)
    fig = _figure((min(2.3 * ncols + 0.6, 14.0), 2.1 * len(rows) + 0.5))
    axes = np.asarray(fig.subplots(len(rows), ncols, squeeze=False))
    for j, a in enumerate(anatomies):
        groups = [a.group(g) for g in a.groups]
        x = 100 * a.accuracy.numpy()
        for i, row in enumerate(rows):
            ax = axes[i, j]
            y = getattr(a, row).numpy()
            for g, color in GROUP_COLORS.items():
                sel = [k for k, gg in enumerate(groups) if gg == g]
                if sel:
                    ax.scatter(x[sel], y[sel], s=14, color=color, label=g, edgecolor="none")
            ax.grid(alpha=0.3)
            if j == 0:
                ax.set_ylabel(names.get(row, row), fontsize="small")
            if i == 0:
                ax.set_title(a.domain, fontsize="small")
            if i == len(rows) - 1:
                ax.set_xlabel("prompt's own accuracy (%)", fontsize="small")
            ax.tick_params(labelsize="x-small")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="x-small")
    return describe(
        fig,
        "Each prompt's ZPE score against its own accuracy, one panel per domain and row per scoring (naive, "
        "debiased), coloured by the kind of prompt (own style, other style, generic, spurious, rare).",
    )


def debias_figure(table: DebiasTable) -> Figure:
    """Experiment 3: each weighting minus the equal logit average (accuracy in points, NLL in nats; 90% paired
    intervals, averaged over the domains), and how many prompts each weighting effectively averages."""
    methods = [m for m in table.methods if m != table.reference]
    fig = _figure((10.0, 0.42 * len(methods) + 1.4))
    axes = fig.subplots(1, 3, sharey=True)
    for ax, metric, scale, unit in ((axes[0], "accuracy", 100.0, "points"), (axes[1], "nll", 1.0, "nats")):
        for i, m in enumerate(methods):
            draw_interval(
                ax,
                len(methods) - 1 - i,
                table.vs_reference[metric][m],
                SERIES_COLORS[i % len(SERIES_COLORS)],
                scale=scale,
            )
        ax.axvline(0.0, color=PALETTE["black"], lw=0.8, ls="--")
        better = "higher is better" if metric == "accuracy" else "lower is better"
        ax.set_xlabel(f"{metric} - {METHOD_NAMES[table.reference]} ({unit})\n{better}", fontsize="small")
        ax.grid(axis="x", alpha=0.3)
    ax = axes[2]
    for i, m in enumerate(methods):
        if m in table.effective:
            ax.barh(len(methods) - 1 - i, table.effective[m], color=SERIES_COLORS[i % len(SERIES_COLORS)], height=0.6)
    ax.axvline(table.n_prompts, color=PALETTE["black"], lw=0.8, ls=":")
    ax.set_xlabel(f"effective number of prompts\n(1 / sum of w^2; the pool has {table.n_prompts})", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(methods)))
    axes[0].set_yticklabels([METHOD_NAMES[m] for m in methods][::-1], fontsize="small")
    fig.suptitle("Experiment 3: which debiasing does the work (mean of 7 domains)", fontsize="medium")
    return describe(
        fig,
        "Which debiasing does the work: each scoring method minus the reference in accuracy and NLL with 90% "
        "intervals (mean of 7 domains), and the effective number of prompts each keeps.",
    )


def scoring_figure(curve: ScoringCurve) -> Figure:
    """Experiment 4: ZPE's accuracy (mean of the domains) against the number of unlabelled images that score the
    prompts: each seed (thin), their mean (thick) and range (band), with the two equal baselines."""
    fig = _figure((5.6, 3.2))
    ax = fig.subplots()
    acc = 100 * curve.accuracy.numpy()
    sizes = np.asarray(curve.sizes)
    for i in range(len(curve.seeds)):
        ax.plot(sizes, acc[i], color=PALETTE["bluish green"], lw=0.7, alpha=0.6, label="each seed" if i == 0 else None)
    ax.fill_between(sizes, acc.min(0), acc.max(0), color=PALETTE["bluish green"], alpha=0.15)
    ax.plot(sizes, acc.mean(0), color=PALETTE["bluish green"], lw=2, marker="o", ms=4, label="ZPE, mean of seeds")
    for b, v in curve.baselines.items():
        ax.axhline(100 * v, color=_BASELINE_COLORS.get(b, "black"), ls="--", lw=1, label=METHOD_NAMES[b])
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    values = [*acc.ravel().tolist(), *(100 * v for v in curve.baselines.values())]
    ax.set_ylim(min(values) - 0.5, max(values) + 0.5)
    ax.set_xlabel("unlabelled images per domain that score the prompts", fontsize="small")
    ax.set_ylabel("accuracy, mean of 7 domains (%)", fontsize="small")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    ax.set_title("Experiment 4: how many unlabelled images ZPE needs", fontsize="medium")
    return describe(
        fig,
        "ZPE accuracy (mean of 7 domains) against the number of unlabelled images that score the prompts: each "
        "seed a thin line, the band their range, the bold line their mean.",
    )
