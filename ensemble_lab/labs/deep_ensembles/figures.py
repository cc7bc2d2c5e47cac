"""Static figures of notebook 01's guided experiments (a ``matplotlib.figure.Figure`` each, never pyplot, so that
ipympl does not take them over; show one with ``ensemble_lab.plots.StaticFigure(fig)``).

Each builder takes the result of one function of :mod:`.experiments` and draws it; nothing is computed here
beyond means and ranges over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ...plots import PALETTE, SERIES_COLORS, describe, draw_interval, series_style
from .experiments import BinnedRules, Comparisons, OODResult, SizeCurves

__all__ = ["forest", "members_figure", "size_figure", "learned_figure", "rules_figure", "ood_figure"]

_ENSEMBLE = PALETTE["blue"]
_SCORE_COLORS = {
    "mutual information": PALETTE["vermillion"],
    "entropy": PALETTE["blue"],
    "max probability": PALETTE["grey"],
}


def _figure(figsize) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def forest(ax, comparisons: Comparisons, keys: Sequence, labels: Sequence[str], *, scale: float = 1.0) -> None:
    """Draw one row per key: each seed's difference as a dot with its interval as a bar, a line at 0.

    Rows run top to bottom in the order of ``keys``; seeds are offset within a row and coloured alike across
    rows (``SERIES_COLORS``).  Filled dots are resolved intervals, hollow ones are not.
    """
    seeds = comparisons.seeds
    n = len(keys)
    offsets = np.linspace(-0.22, 0.22, len(seeds)) if len(seeds) > 1 else np.zeros(1)
    for row, key in enumerate(keys):
        y0 = n - 1 - row
        for j, seed in enumerate(seeds):
            r = comparisons.results[seed][key]
            color = SERIES_COLORS[j % len(SERIES_COLORS)]
            y = y0 + offsets[j]
            draw_interval(ax, y, r, color, label=f"seed {seed}" if row == 0 else None, scale=scale)
    ax.axvline(0.0, color=PALETTE["black"], lw=0.8, ls="--")
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(labels)[::-1], fontsize="small")
    ax.set_ylim(-0.6, n - 0.4)
    ax.grid(axis="x", alpha=0.3)


def members_figure(comparisons: Comparisons, metric_names: Sequence[str] = ("accuracy", "nll", "ece")) -> Figure:
    """Experiment 1: ensemble minus best member and minus average member, one panel per metric, per seed with
    its 90% clustered interval (accuracy and ECE in points)."""
    fig = _figure((9.5, 2.6))
    axes = fig.subplots(1, len(metric_names), sharey=True)
    axes = np.atleast_1d(axes)
    refs = ("best member", "average member")
    for ax, m in zip(axes, metric_names, strict=True):
        scale, unit = (100.0, " (points)") if m in ("accuracy", "ece") else (1.0, " (nats)")
        forest(ax, comparisons, [(ref, m) for ref in refs], [f"vs {ref}" for ref in refs], scale=scale)
        better = "higher is better" if m == "accuracy" else "lower is better"
        ax.set_xlabel(f"ensemble - member, {m.upper() if m != 'accuracy' else m}{unit}\n{better}", fontsize="small")
    axes[0].legend(fontsize="x-small", loc="lower left")
    fig.suptitle(
        "Experiment 1: the 8-member ensemble against its members (clean test, 90% intervals)", fontsize="medium"
    )
    return describe(
        fig,
        "Forest plot: ensemble minus single member for accuracy, NLL and ECE, one row per member seed, dots at "
        "the difference and bars for the 90% paired interval (filled: resolved, hollow: not).",
    )


def _band(ax, sizes, values: np.ndarray, color: str, label: str, scale: float) -> None:
    """Mean over seeds (line), min-max over seeds (band), each seed (thin line); ``values`` ``(S, len(sizes))``."""
    v = values * scale
    for row in v:
        ax.plot(sizes, row, color=color, lw=0.6, alpha=0.5)
    ax.fill_between(sizes, v.min(axis=0), v.max(axis=0), color=color, alpha=0.2, lw=0)
    ax.plot(sizes, v.mean(axis=0), color=color, lw=2, marker="o", markersize=3, label=label)


def size_figure(curves: SizeCurves, clean: str = "test", shifted: Sequence[str] | None = None) -> Figure:
    """Experiment 2: NLL and ECE against ensemble size, on the clean test set (top) and on each of the
    ``shifted`` splits (bottom; default: every other split of ``curves``); lines are means over seeds, bands
    the seeds' range (thin lines on top: each seed)."""
    shifted = [s for s in curves.splits if s != clean] if shifted is None else list(shifted)
    fig = _figure((9.5, 5.6))
    axes = fig.subplots(2, 2, sharex=True)
    sizes = np.asarray(curves.sizes)
    n_seeds = len(curves.seeds)
    for col, (metric, scale, unit) in enumerate((("nll", 1.0, "NLL (nats)"), ("ece", 100.0, "ECE (%)"))):
        if metric not in curves.values:
            continue
        ax = axes[0, col]
        _band(
            ax, sizes, curves.curve(metric, clean).numpy(), _ENSEMBLE, f"mean of {n_seeds} seeds (band: range)", scale
        )
        ax.set_title(f"{unit}, clean {clean}", fontsize="small")
        ax.grid(alpha=0.3)
        ax = axes[1, col]
        for j, split in enumerate(shifted):
            v = curves.curve(metric, split).numpy() * scale
            color = SERIES_COLORS[j % len(SERIES_COLORS)]
            ax.fill_between(sizes, v.min(axis=0), v.max(axis=0), color=color, alpha=0.2, lw=0)
            style = series_style(j)
            ax.plot(sizes, v.mean(axis=0), **style, lw=1.5, markersize=3, label=split)
        ax.set_title(f"{unit}, each shifted split", fontsize="small")
        ax.set_xlabel("ensemble size k (first k members, uniform average)", fontsize="small")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="x-small")
    axes[1, 1].legend(fontsize="x-small", ncols=2)
    fig.suptitle("Experiment 2: NLL and ECE against ensemble size", fontsize="medium")
    return describe(
        fig,
        "NLL and ECE against ensemble size k (first k members, uniform average): on the clean split with the "
        "seeds' range as a band, and on each shifted split, each its own colour and marker.",
    )


def learned_figure(comparisons: Comparisons, splits: Sequence[str] | None = None, metric: str = "NLL") -> Figure:
    """Experiment 3: learned-weight ensemble minus uniform ensemble, one row per split, per seed with its
    interval (right of 0: the learned weights are worse)."""
    splits = comparisons.keys if splits is None else list(splits)
    fig = _figure((6.5, 0.45 * len(splits) + 1.4))
    ax = fig.subplots()
    forest(ax, comparisons, splits, splits)
    ax.set_xlabel(f"learned weights - uniform weights, {metric} (nats); right of 0: learned is worse", fontsize="small")
    ax.legend(fontsize="x-small", loc="lower right")
    fig.suptitle("Experiment 3: weights fitted on clean validation data (90% intervals)", fontsize="medium")
    return describe(
        fig,
        "Learned minus uniform weights, NLL in nats per evaluation split, with 90% paired intervals: right of 0 "
        "the learned weights are worse.",
    )


def rules_figure(binned: BinnedRules, labels, n_points: int = 1500) -> Figure:
    """Experiment 4: the probability each rule gives the true class, geometric mean against logit average: on
    the members' own logits (the diagonal, exactly) and after histogram binning (off it)."""
    y = np.asarray(labels)
    n = y.shape[0]
    pick = np.linspace(0, n - 1, min(n_points, n)).astype(int)
    logit = binned.logit_raw.detach().cpu().numpy()[pick, y[pick]]
    geo_raw = binned.geo_raw.detach().cpu().numpy()[pick, y[pick]]
    geo_binned = binned.geo_binned.detach().cpu().numpy()[pick, y[pick]]
    fig = _figure((8.5, 3.8))
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, values, title in (
        (axes[0], geo_raw, f"members' softmax: max |difference| {binned.raw_gap:.0e}"),
        (axes[1], geo_binned, f"after histogram binning: max |difference| {binned.binned_gap:.2f}"),
    ):
        ax.plot([0, 1], [0, 1], color=PALETTE["black"], lw=0.8, ls="--")
        ax.scatter(logit, values, s=4, alpha=0.4, color=_ENSEMBLE, lw=0)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("logit average: p(true class)", fontsize="small")
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("geometric mean: p(true class)", fontsize="small")
    fig.suptitle(
        "Experiment 4: the geometric mean is the logit average, until the members stop being softmaxes",
        fontsize="medium",
    )
    return describe(
        fig,
        "Scatter of the probability of the true class under the logit average (x) against the geometric mean (y) "
        "of the members, one panel per rule pair, with the diagonal dashed.",
    )


def ood_figure(
    mi_values: dict,
    kinds: Sequence[str],
    results: Sequence[OODResult],
    clean: str = "test",
    severities: Sequence[int] = (1, 2, 3),
) -> Figure:
    """Experiment 5: the members' mean mutual information against severity per corruption (mean over seeds,
    band: range), and the OOD AUROC of each score per shifted split (bars: mean over seeds, ticks: range)."""
    seeds = list(mi_values)
    fig = _figure((11.0, 3.6))
    axes = fig.subplots(1, 1 + len(results), width_ratios=[1.0] + [1.3] * len(results))
    ax = axes[0]
    x = np.arange(len(severities) + 1)
    for j, kind in enumerate(kinds):
        v = np.array([[mi_values[s][clean]] + [mi_values[s][f"{kind}-{sev}"] for sev in severities] for s in seeds])
        color = SERIES_COLORS[j % len(SERIES_COLORS)]
        ax.fill_between(x, v.min(axis=0), v.max(axis=0), color=color, alpha=0.2, lw=0)
        ax.plot(x, v.mean(axis=0), **series_style(j), markersize=3.5, label=kind)
    ax.set_xticks(x)
    ax.set_xticklabels(["clean", *[str(s) for s in severities]])
    ax.set_xlabel("severity", fontsize="small")
    ax.set_ylabel("mean mutual information (nats)", fontsize="small")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)
    for ax, res in zip(axes[1:], results, strict=True):
        width = 0.8 / len(res.scores)
        pos = np.arange(len(res.splits))
        for j, score in enumerate(res.scores):
            sums = [res.summary(split, score) for split in res.splits]
            mean = np.array([s.mean for s in sums])
            err = np.array([[s.mean - s.low for s in sums], [s.high - s.mean for s in sums]])
            ax.bar(
                pos + (j - (len(res.scores) - 1) / 2) * width,
                mean,
                width,
                yerr=err,
                capsize=2,
                color=_SCORE_COLORS.get(score, SERIES_COLORS[j]),
                label=score,
            )
        ax.axhline(0.5, color=PALETTE["black"], lw=0.8, ls="--")
        ax.set_xticks(pos)
        ax.set_xticklabels(res.splits, rotation=30, ha="right", fontsize="x-small")
        ax.set_ylim(0.4, 1.0)
        ax.set_ylabel("AUROC, clean (in) vs shifted (out)", fontsize="small")
        tails = {split.rsplit("-", 1)[-1] for split in res.splits}
        which = f"severity {tails.pop()}" if len(tails) == 1 else f"{len(res.splits)} shifted splits"
        ax.set_title(f"out: {which}; bars: mean of {len(res.seeds)} seeds, ticks: range", fontsize="small")
        ax.grid(axis="y", alpha=0.3)
    axes[1].legend(fontsize="x-small", loc="upper left")
    fig.suptitle(f"Experiment 5: disagreement under shift and OOD detection ({len(seeds)} seeds)", fontsize="medium")
    return describe(
        fig,
        "Left: mean mutual information between members against shift severity, one line per shift kind; right: "
        "AUROC of telling clean from shifted images by each uncertainty score, bars the mean over seeds and ticks"
        " the range.",
    )
