"""Static figures of notebook 02's guided experiments: ``matplotlib.figure.Figure`` objects (never pyplot, so
that ipympl never takes them over), shown with :class:`ensemble_lab.plots.StaticFigure` as PNG images that read
without a kernel.  No maths here: every number comes from :mod:`.experiments`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ...plots import PALETTE, SERIES_COLORS, ReliabilityPlot, describe, series_style
from .experiments import ORDER_NAMES, BiasSweep, ShiftRow

__all__ = ["bias_figure", "estimators_figure", "reliability_figure", "shift_figure", "pooling_figure"]

_TRUE = "black"
_LIMIT = PALETTE["grey"]


def _pct(ax, axis: str = "y") -> None:
    fmt = lambda v, _: f"{100 * v:g}%"  # noqa: E731
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def bias_figure(sweeps: Mapping[str, BiasSweep], n_bins_against_n: Sequence[int] = (5, 15, 100)) -> Figure:
    """One row per world: the binned l1 ECE against the bin count (one line per sample size, the middle 90% of
    the samples shaded), the l2 estimators against the bin count (debiased solid, plug-in dashed), and the l1 ECE
    against the sample size for a few bin counts.  Black: the true error; grey dotted: what the binned
    estimator converges to with infinitely many samples."""
    fig = Figure(figsize=(12.0, 3.4 * len(sweeps)), layout="constrained")
    axes = fig.subplots(len(sweeps), 3, squeeze=False)
    for row, (title, s) in zip(axes, sweeps.items(), strict=True):
        bins = np.asarray(s.n_bins)
        shown = [s.sizes[0], s.sizes[len(s.sizes) // 2], s.sizes[-1]] if len(s.sizes) > 2 else list(s.sizes)
        ax = row[0]
        for j, (colour, n) in enumerate(zip(SERIES_COLORS, shown, strict=False)):
            i = s.sizes.index(n)
            lo, hi = s.band("l1")
            marker = series_style(j)["marker"]
            ax.plot(bins, s.mean("l1")[i].numpy(), "-", marker=marker, color=colour, ms=3, label=f"N = {n:,}")
            ax.fill_between(bins, lo[i].numpy(), hi[i].numpy(), color=colour, alpha=0.15, lw=0)
        ax.axhline(s.true_l1, color=_TRUE, ls="--", lw=1.2, label="true l1")
        ax.plot(bins, s.binned_l1.numpy(), ":", color=_LIMIT, lw=1.5, label="binned, N = inf")
        ax.set_title(f"{title}: binned ECE (l1)", fontsize="medium")
        ax.set_ylabel("estimate")
        ax = row[1]
        for colour, n in zip(SERIES_COLORS, (shown[0], shown[-1]), strict=False):
            i = s.sizes.index(n)
            ax.plot(bins, s.mean("l2_debiased")[i].numpy(), "o-", color=colour, ms=3, label=f"debiased, N = {n:,}")
            ax.plot(bins, s.mean("l2")[i].numpy(), "--", color=colour, lw=1, label=f"plug-in, N = {n:,}")
        ax.axhline(s.true_l2, color=_TRUE, ls="--", lw=1.2, label="true l2")
        ax.plot(bins, s.binned_l2.numpy(), ":", color=_LIMIT, lw=1.5, label="binned, N = inf")
        ax.set_title(f"{title}: l2 calibration error", fontsize="medium")
        for ax in row[:2]:
            ax.set_xscale("log")
            ax.set_xlabel("number of bins (uniform)")
        ax = row[2]
        sizes = np.asarray(s.sizes)
        for colour, b in zip(SERIES_COLORS[3:], n_bins_against_n, strict=False):
            if b not in s.n_bins:
                continue
            k = s.n_bins.index(b)
            lo, hi = s.band("l1")
            ax.plot(sizes, s.mean("l1")[:, k].numpy(), "o-", color=colour, ms=3, label=f"{b} bins")
            ax.fill_between(sizes, lo[:, k].numpy(), hi[:, k].numpy(), color=colour, alpha=0.15, lw=0)
        ax.axhline(s.true_l1, color=_TRUE, ls="--", lw=1.2, label="true l1")
        ax.set_xscale("log")
        ax.set_xlabel("sample size N")
        ax.set_title(f"{title}: binned ECE against N", fontsize="medium")
        for ax in row:
            _pct(ax)
            ax.set_ylim(bottom=0)
            ax.legend(fontsize="x-small", frameon=False)
    return describe(
        fig,
        "How binned calibration-error estimates depend on the number of bins and the sample size N, per world: "
        "binned ECE (l1) and l2 error against bins for several N (markers), with the N = infinity limit dotted, "
        "and binned ECE against N for a few bin counts.",
    )


def estimators_figure(tables: Mapping[str, Mapping[str, Sequence[float]]], n_bins: Sequence[int]) -> Figure:
    """The estimators of :func:`.experiments.estimator_table` against the bin count: l1 (blue family) and l2
    (orange family) in two panels, one line style per table (e.g. all test images, a subsample)."""
    fig = Figure(figsize=(10.0, 3.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    styles = ("-", "--", ":", "-.")
    bins = np.asarray(n_bins)
    for style, (label, table) in zip(styles, tables.items(), strict=False):
        ax1.plot(bins, table["l1 binned"], "o" + style, color=PALETTE["blue"], ms=3, label=f"binned, {label}")
        ax1.plot(bins, table["l1 smooth"], style, color=PALETTE["bluish green"], label=f"smooth (no bins), {label}")
        ax2.plot(bins, table["l2 binned"], "o" + style, color=PALETTE["orange"], ms=3, label=f"plug-in, {label}")
        ax2.plot(
            bins, table["l2 debiased"], "s" + style, color=PALETTE["reddish purple"], ms=3, label=f"debiased, {label}"
        )
    ax1.set_title("l1: expected calibration error", fontsize="medium")
    ax2.set_title("l2: root mean squared calibration error", fontsize="medium")
    ax1.set_ylabel("estimate")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("number of bins (uniform)")
        ax.set_ylim(bottom=0)
        _pct(ax)
        ax.legend(fontsize="x-small", frameon=False)
    return describe(
        fig,
        "Calibration-error estimators against the number of uniform bins: left, l1 (binned and smooth ECE); "
        "right, l2 (plug-in and debiased); each estimator its own colour and marker.",
    )


def reliability_figure(panels: Sequence[tuple[str, object]], size: float = 3.2) -> Figure:
    """One reliability diagram with its confidence histogram per ``(title, metrics.Reliability)``, side by side
    (:class:`ensemble_lab.plots.ReliabilityPlot`, the Lab's own drawing, drawn once)."""
    if not panels:
        raise ValueError("panels must hold at least one (title, reliability) pair, got none")
    fig = Figure(figsize=(size * len(panels), size * 1.3), layout="constrained")
    grid = fig.add_gridspec(2, len(panels), height_ratios=[3, 1])
    for j, (title, rel) in enumerate(panels):
        ax, hist = fig.add_subplot(grid[0, j]), fig.add_subplot(grid[1, j])
        ReliabilityPlot(ax, hist, title=title).update(rel)
        if j:
            ax.set_ylabel("")
            hist.set_ylabel("")
            ax.get_legend().remove()
    return describe(
        fig,
        "Reliability diagrams side by side, one per model or setting: accuracy per confidence bin against the "
        "diagonal, with the ECE in each panel and the share of samples per bin below.",
    )


def shift_figure(rows: Sequence[ShiftRow]) -> Figure:
    """Left: each split's ECE before and after the temperature fitted on clean data (and the temperature each
    split would have needed, on the right axis of the labels).  Right: the change after - before with its 90%
    paired, clustered interval; a change left of 0 is an improvement."""
    fig = Figure(figsize=(10.0, 0.45 * len(rows) + 1.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))[::-1]
    before = [r.before["ece"] for r in rows]
    after = [r.after["ece"] for r in rows]
    ax1.hlines(y, np.minimum(before, after), np.maximum(before, after), color=_LIMIT, lw=1)
    ax1.plot(before, y, "o", mfc="white", color=PALETTE["vermillion"], label="before (as trained)")
    ax1.plot(after, y, "o", color=PALETTE["blue"], label="after (T from clean val)")
    ax1.set_yticks(y, [f"{r.split}  (T needed {r.needed:.2f})" for r in rows])
    ax1.set_xlabel("ECE (15 bins)")
    ax1.set_xlim(left=0)
    _pct(ax1, "x")
    ax1.legend(fontsize="small", frameon=False, loc="lower right")
    d = np.array([r.change["ece"].difference for r in rows])
    lo = np.array([r.change["ece"].low for r in rows])
    hi = np.array([r.change["ece"].high for r in rows])
    ax2.errorbar(d, y, xerr=[d - lo, hi - d], fmt="o", color=PALETTE["black"], capsize=3)
    ax2.axvline(0, color=_LIMIT, lw=1)
    ax2.set_xlabel("ECE after - before (90% interval, by source digit)")
    _pct(ax2, "x")
    return describe(
        fig,
        "ECE before (hollow dots) and after (filled dots) temperature scaling on each shifted split, and the "
        "change after - before with its 90% interval by source digit.",
    )


def pooling_figure(per_seed: Mapping[int, Mapping]) -> Figure:
    """Per seed: the confidence gap (mean confidence - accuracy) of the ensemble as trained, calibrate -> pool and
    pool -> calibrate, and the differences calibrate -> pool minus pool -> calibrate in ECE and NLL with their
    90% paired, clustered intervals."""
    fig = Figure(figsize=(12.0, 3.2), layout="constrained")
    ax0, ax1, ax2 = fig.subplots(1, 3)
    seeds = list(per_seed)
    x = np.arange(len(seeds))
    for off, (name, colour) in zip(
        (-0.2, 0.0, 0.2),
        zip(ORDER_NAMES, (PALETTE["grey"], PALETTE["orange"], PALETTE["blue"]), strict=True),
        strict=True,
    ):
        gaps = [per_seed[s]["rows"][name]["confidence_gap"] for s in seeds]
        ax0.bar(x + off, gaps, width=0.2, color=colour, label=name)
    ax0.axhline(0, color=PALETTE["black"], lw=0.8)
    ax0.set_title("confidence - accuracy (< 0: under-confident)", fontsize="medium")
    ax0.legend(fontsize="x-small", frameon=False, loc="lower left")
    for ax, metric, title, pct in (
        (ax1, "ece", "ECE: calibrate -> pool minus pool -> calibrate", True),
        (ax2, "nll", "NLL: calibrate -> pool minus pool -> calibrate", False),
    ):
        d = np.array([per_seed[s]["ctp_minus_ptc"][metric].difference for s in seeds])
        lo = np.array([per_seed[s]["ctp_minus_ptc"][metric].low for s in seeds])
        hi = np.array([per_seed[s]["ctp_minus_ptc"][metric].high for s in seeds])
        ax.errorbar(x, d, yerr=[d - lo, hi - d], fmt="o", color=PALETTE["black"], capsize=4)
        ax.axhline(0, color=_LIMIT, lw=1)
        ax.set_title(title, fontsize="medium")
        if pct:
            _pct(ax)
        else:
            ax.set_ylabel("nats")
    for ax in (ax0, ax1, ax2):
        ax.set_xticks(x, [f"seed {s}" for s in seeds])
        ax.set_xlim(-0.6, len(seeds) - 0.4)
    _pct(ax0)
    return describe(
        fig,
        "Pooling then scaling against scaling then pooling, per seed: confidence minus accuracy (below 0: under-"
        "confident) and the NLL of each order in nats, with 90% intervals of the differences.",
    )
