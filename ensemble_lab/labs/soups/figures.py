"""Static figures of notebook 05's guided experiments (a ``matplotlib.figure.Figure`` each, never pyplot, so that
ipympl does not take them over; show one with ``ensemble_lab.plots.StaticFigure(fig)``).

Each builder takes results of :mod:`.experiments` and draws them; nothing is computed here.  Accuracy and shares
are drawn in points (percent), bands and bars are the results' 90% cluster-bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ...plots import PALETTE, SERIES_COLORS, describe, draw_band, draw_interval, series_style
from .experiments import SOUP_PAIRS, ConfidenceGaps, Fixes, LossLine, SeedRun, WiseCurve

__all__ = ["wise_figure", "barrier_figure", "soups_figure", "confidence_figure", "bang_figure"]

_TAGS = {"id": "in-distribution (clean + sticker)", "shift": "shifted (six styles pooled)"}
_PLAIN, _SMOOTHED, _ENSEMBLE = PALETTE["blue"], PALETTE["orange"], PALETTE["bluish green"]


def _figure(figsize) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def _band(ax, x, results, color, label=None, scale=100.0, ls="-", lw=1.8, alpha=0.18) -> None:
    """A line through ``results``' differences with their intervals as a band (this module's style)."""
    draw_band(ax, x, results, color, label=label, scale=scale, alpha=alpha, ls=ls, lw=lw)


def wise_figure(runs: Sequence[SeedRun], endpoint: str, alpha: float | None = None) -> Figure:
    """Accuracy against alpha along the WiSE-FT curve to ``endpoint``, in-distribution and shifted, one line and
    band per seed; ``alpha`` (the headline's fixed choice) marked."""
    fig = _figure((9.0, 3.4))
    axes = fig.subplots(1, 2)
    for ax, tag in zip(axes, ("id", "shift"), strict=True):
        for j, run in enumerate(runs):
            curve = run.curves[endpoint]
            style = series_style(j)
            _band(ax, curve.alphas, curve.accuracy[tag], style["color"], f"seed {run.seed}", ls=style["ls"])
        if alpha is not None:
            ax.axvline(alpha, color=PALETTE["black"], lw=0.8, ls=":")
        ax.set_xlabel("alpha (0 = zero-shot, 1 = fine-tuned)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(_TAGS[tag], fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"WiSE-FT: zero-shot -> {endpoint} (bands: 90% intervals)", fontsize="medium")
    return describe(
        fig,
        f"WiSE-FT from zero-shot to {endpoint}: accuracy against the mixing weight alpha, in distribution and "
        f"shifted, one line per seed with 90% interval bands.",
    )


def barrier_figure(curves: Mapping[str, WiseCurve], lines: Sequence[LossLine]) -> Figure:
    """Left: in-distribution accuracy from the zero-shot model to each endpoint of ``curves``; right: the val loss
    along each line of ``lines``; bands are intervals."""
    fig = _figure((9.0, 3.4))
    left, right = fig.subplots(1, 2)
    for j, (name, curve) in enumerate(curves.items()):
        style = series_style(j)
        _band(left, curve.alphas, curve.accuracy["id"], style["color"], name, ls=style["ls"])
    left.set_xlabel("alpha (0 = zero-shot, 1 = the fine-tuned endpoint)")
    left.set_ylabel("accuracy in-distribution (%)")
    left.set_title("zero-shot -> fine-tuned at each learning rate", fontsize="medium")
    left.legend(fontsize="small")
    left.grid(alpha=0.3)
    for j, line in enumerate(lines):
        style = series_style(j + 4)
        _band(right, line.alphas, line.loss, style["color"], f"{line.a} -> {line.b}", 1.0, ls=style["ls"])
    right.set_xlabel("position on the line (0 = first, 1 = second model)")
    right.set_ylabel("val loss (nats)")
    right.set_title("loss along a straight line between two fine-tunes", fontsize="medium")
    right.legend(fontsize="small")
    right.grid(alpha=0.3)
    return describe(
        fig,
        "Left: in-distribution accuracy against alpha from zero-shot to each fine-tuned endpoint (one line per "
        "learning rate); right: validation loss along straight lines between pairs of fine-tunes (a bump is a "
        "loss barrier).",
    )


def soups_figure(runs: Sequence[SeedRun], pairs: Sequence[tuple[str, str]] = SOUP_PAIRS) -> Figure:
    """One row per pair ``a - b`` of the runs' soups comparisons, in-distribution and shifted: each seed's
    difference (points) as a dot with its interval as a bar; filled dots are resolved, hollow ones not."""
    pairs = [p for p in pairs if all(p in r.soups.differences for r in runs)]
    fig = _figure((9.0, 0.55 * len(pairs) + 1.4))
    axes = fig.subplots(1, 2, sharey=True)
    offsets = np.linspace(-0.2, 0.2, len(runs)) if len(runs) > 1 else np.zeros(1)
    for ax, tag in zip(axes, ("id", "shift"), strict=True):
        for row, pair in enumerate(pairs):
            y0 = len(pairs) - 1 - row
            for j, run in enumerate(runs):
                r = run.soups.differences[pair][tag]
                color = SERIES_COLORS[j % len(SERIES_COLORS)]
                y = y0 + offsets[j]
                draw_interval(ax, y, r, color, label=f"seed {run.seed}" if row == 0 else None)
        ax.axvline(0.0, color=PALETTE["black"], lw=0.8, ls="--")
        ax.set_yticks(range(len(pairs)))
        ax.set_yticklabels([f"{a} - {b}" for a, b in pairs][::-1], fontsize="small")
        ax.set_xlabel("accuracy difference (points)")
        ax.set_title(_TAGS[tag], fontsize="medium")
        ax.grid(axis="x", alpha=0.3)
    axes[0].legend(fontsize="small", loc="lower left")
    return describe(
        fig,
        "Accuracy differences between soups and other models (points) in distribution and shifted, one row per "
        "pair and dot per seed, with 90% paired intervals.",
    )


def confidence_figure(gaps: ConfidenceGaps) -> Figure:
    """Confidence minus accuracy of every ingredient (plain or smoothed) and of the three output ensembles, with
    intervals (points; < 0 is under-confident)."""
    rows = [(n, gaps.members[n], _SMOOTHED if n in gaps.smoothed else _PLAIN) for n in gaps.names]
    labels = {"all": "ensemble of all", "plain": "ensemble of the plain", "smoothed": "ensemble of the smoothed"}
    rows += [(labels[k], gaps.ensembles[k], _ENSEMBLE) for k in ("all", "plain", "smoothed")]
    fig = _figure((7.0, 0.28 * len(rows) + 1.5))
    ax = fig.subplots()
    for i, (_name, r, color) in enumerate(rows):
        y = len(rows) - 1 - i
        ax.barh(y, 100 * r.difference, color=color, alpha=0.8)
        ax.plot([100 * r.low, 100 * r.high], [y, y], color=PALETTE["black"], lw=1.2)
    ax.axvline(0.0, color=PALETTE["black"], lw=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([n for n, _, _ in rows][::-1], fontsize="small")
    ax.set_xlabel(f"confidence - accuracy (points), {_TAGS[gaps.tag]}")
    ax.plot([], [], color=_PLAIN, lw=6, label="plain fine-tune")
    ax.plot([], [], color=_SMOOTHED, lw=6, label="label smoothing or mixup")
    ax.plot([], [], color=_ENSEMBLE, lw=6, label="output ensemble")
    fig.legend(fontsize="small", loc="outside lower center", ncols=3)
    ax.grid(axis="x", alpha=0.3)
    return describe(
        fig,
        "Confidence minus accuracy (points) of each model on the shifted data with 90% intervals, coloured by its"
        " fine-tuning (plain, label smoothing or mixup, output ensemble).",
    )


def bang_figure(fixes_by_endpoint: Mapping[str, Fixes], runs: Sequence[SeedRun], tag: str = "shift") -> Figure:
    """Left: the share of images both endpoints get wrong and WiSE-FT gets right (solid) or both get right and
    WiSE-FT wrong (dashed, as net = fixed - broken) along each endpoint's curve; right: the BANG curve's accuracy
    minus the standard one's per seed; bands are intervals (points)."""
    fig = _figure((9.0, 3.4))
    left, right = fig.subplots(1, 2)
    for j, (name, f) in enumerate(fixes_by_endpoint.items()):
        color = SERIES_COLORS[j % len(SERIES_COLORS)]
        _band(left, f.alphas, f.fixed_share[tag], color, f"{name}: fixed")
        _band(left, f.alphas, f.net_share[tag], color, f"{name}: fixed - broken", ls="--", lw=1.2, alpha=0.08)
    left.axhline(0.0, color=PALETTE["black"], lw=0.8)
    left.set_xlabel("alpha")
    left.set_ylabel("share of images (%)")
    left.set_title(f"both endpoints wrong, WiSE-FT right: {_TAGS[tag]}", fontsize="medium")
    left.legend(fontsize="x-small")
    left.grid(alpha=0.3)
    for j, run in enumerate(runs):
        _band(
            right,
            list(next(iter(run.curves.values())).alphas),
            run.bang_minus_standard[tag],
            SERIES_COLORS[j % len(SERIES_COLORS)],
            f"seed {run.seed}",
        )
    right.axhline(0.0, color=PALETTE["black"], lw=0.8, ls="--")
    right.set_xlabel("alpha")
    right.set_ylabel("accuracy difference (points)")
    right.set_title(f"BANG WiSE-FT - WiSE-FT: {_TAGS[tag]}", fontsize="medium")
    right.legend(fontsize="small")
    right.grid(alpha=0.3)
    return describe(
        fig,
        "Left: share of shifted images that both endpoints get wrong and WiSE-FT gets right (solid) and that "
        "share net of those it breaks (dashed) against alpha; right: BANG WiSE-FT minus WiSE-FT accuracy against "
        "alpha with 90% bands.",
    )
