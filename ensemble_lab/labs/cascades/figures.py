"""Static figures of notebook 04's guided experiments (a ``matplotlib.figure.Figure`` each, never pyplot, so that
ipympl does not take them over; show one with ``ensemble_lab.plots.StaticFigure(fig)``).

Each builder takes results of :mod:`.experiments` and draws them; nothing is computed here but the histograms of
the scores it is given.  Risks and shares are drawn in points (percent), costs in thousands of MACs per image;
bands and error bars are the results' 90% cluster-bootstrap intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ...plots import PALETTE, SERIES_COLORS, describe, draw_band, series_style
from .experiments import HEADLINE_PAIRS, Headline, PolicySweep, ShiftComparison

__all__ = ["window_figure", "policy_figure", "shift_figure"]

_WINDOW, _THRESHOLD, _ADJUSTED = PALETTE["bluish green"], PALETTE["grey"], PALETTE["orange"]


def _figure(figsize) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def _span(ax, lo: float, hi: float, **kwargs) -> None:
    """Shade ``lo < x < hi`` on ``ax``, an infinite edge drawn at the axis' end."""
    left, right = ax.get_xlim()
    ax.axvspan(left if math.isinf(lo) else lo, right if math.isinf(hi) else hi, **kwargs)


def _scores_axis(ax, scores, bins, color, label, density=False) -> None:
    """A histogram of ``scores`` on a log count axis (the confidences pile up near 1)."""
    values = np.asarray(scores, dtype=np.float64)
    ax.hist(values, bins=bins, color=color, alpha=0.55, label=label, density=density, log=True)


def window_figure(val_scores, tau: float, window: tuple[float, float], threshold: float, headline: Headline) -> Figure:
    """Left: the first stage's val scores with tau, the window (passed on inside) and the threshold policy passing
    on the same share (below its threshold); right: the headline's differences of risk (:data:`HEADLINE_PAIRS`), one
    marker per member seed with its interval.

    val_scores ``(M,)``: the first stage's val scores; tau, window ``(lo, hi)``: the first stage's; threshold: the
    matched threshold policy's exit threshold; headline: :func:`~.experiments.headline`'s result.
    """
    fig = _figure((11.0, 3.8))
    left, right = fig.subplots(1, 2, width_ratios=(1.0, 1.0))
    scores = np.asarray(val_scores, dtype=np.float64)
    bins = np.linspace(float(scores.min()), float(scores.max()), 41)
    _scores_axis(left, scores, bins, PALETTE["blue"], "first stage, val")
    left.set_xlim(bins[0], bins[-1])
    _span(left, window[0], window[1], color=_WINDOW, alpha=0.22, lw=0, label="window: passed on")
    _span(
        left,
        -math.inf,
        threshold,
        facecolor="none",
        edgecolor=_THRESHOLD,
        hatch="//",
        lw=0,
        label="threshold: passed on",
    )
    left.axvline(tau, color=PALETTE["black"], lw=1.2, label=f"tau = {tau:.3f}")
    left.set_xlabel("first-stage confidence (max softmax probability)")
    left.set_ylabel("val images (log scale)")
    left.set_title("where the window sits (same share passed on)", fontsize="medium")
    left.legend(fontsize="small", loc="upper left")
    pairs = list(HEADLINE_PAIRS)
    for j, run in enumerate(headline.runs):
        y = np.arange(len(pairs)) + 0.22 * (j - (len(headline.runs) - 1) / 2)
        d = [run.differences[pair] for pair in pairs]
        x = np.array([100 * r.difference for r in d])
        err = np.array([[x[i] - 100 * r.low, 100 * r.high - x[i]] for i, r in enumerate(d)]).T
        color = SERIES_COLORS[j % len(SERIES_COLORS)]
        right.errorbar(x, y, xerr=err, fmt="o", ms=4, capsize=2, color=color, label=f"seed {run.seed}")
    right.axvline(0.0, color=PALETTE["black"], lw=0.8)
    right.set_yticks(np.arange(len(pairs)), [f"{a}\n- {b}" for a, b in pairs], fontsize="small")
    right.invert_yaxis()
    right.set_xlabel(f"difference of risk at {100 * headline.runs[0].coverage:.0f}% coverage (points)")
    right.set_title("the headline on test, per member seed (90% intervals)", fontsize="medium")
    right.legend(fontsize="small")
    right.grid(alpha=0.3)
    return describe(
        fig,
        "Left: the first stage's validation confidences (log-scale counts) with the window and the single "
        "threshold that pass on the same share; right: the test risk difference at the headline coverage per "
        "member seed, with 90% intervals.",
    )


def _band(ax, x, results, color, label, marker="o") -> None:
    draw_band(ax, x, results, color, label=label, alpha=0.15, marker=marker, ms=3.5)


def policy_figure(sweep: PolicySweep, singles: Sequence[str] | None = None) -> Figure:
    """Left: risk against MACs for the window policy (over half-widths) and the threshold policy passing on the
    same val share, with bands, and single models as points; right: window - threshold at each val share passed
    on, with its band (filled markers: resolved)."""
    fig = _figure((10.0, 3.6))
    left, right = fig.subplots(1, 2)
    _band(
        left, [p.macs / 1e3 for p in sweep.window], [p.risk for p in sweep.window], _WINDOW, "window (half-width sweep)"
    )
    _band(
        left,
        [p.macs / 1e3 for p in sweep.threshold],
        [p.risk for p in sweep.threshold],
        _THRESHOLD,
        "threshold (same val share)",
        marker="s",
    )
    names = list(sweep.singles) if singles is None else list(singles)
    for j, name in enumerate(names):
        p = sweep.singles[name]
        y = 100 * p.risk.difference
        err = [[y - 100 * p.risk.low], [100 * p.risk.high - y]]
        left.errorbar(
            p.macs / 1e3,
            y,
            yerr=err,
            fmt=series_style(j)["marker"],
            ms=5,
            capsize=2,
            color=series_style(j)["color"],
            label=name,
        )
        left.set_xlabel("MACs per image (thousands)")
    left.set_ylabel(f"risk at {100 * sweep.coverage:.0f}% coverage (%)")
    left.set_title(f"{sweep.split} split: both policies over cost", fontsize="medium")
    left.legend(fontsize="small")
    left.grid(alpha=0.3)
    share = [100 * s for s in sweep.val_share]
    _band(right, share, sweep.difference, _WINDOW, "window - threshold")
    solved = [(s, 100 * d.difference) for s, d in zip(share, sweep.difference, strict=True) if d.resolved]
    if solved:
        right.plot(*zip(*solved, strict=True), "o", ms=7, color=_WINDOW, mfc=_WINDOW, label="resolved")
    right.axhline(0.0, color=PALETTE["black"], lw=0.8)
    right.set_xlabel("share of val images passed on to the second member (%)")
    right.set_ylabel("difference of risk (points)")
    right.set_title("window - threshold at the same cost (band: 90% interval)", fontsize="medium")
    right.legend(fontsize="small")
    right.grid(alpha=0.3)
    return describe(
        fig,
        "Left: risk at the fixed coverage against MACs per image for the window and threshold policies (bands: "
        "90% intervals) and single models (diamonds); right: window minus threshold risk at the same cost against"
        " the share passed on, resolved points filled.",
    )


def shift_figure(comparison: ShiftComparison, split: str) -> Figure:
    """Left: the first stage's scores on val and on ``split``, with the plain window (val quantiles) and the
    adjusted one (``split``'s quantiles); middle: the share passed on per split, plain and adjusted; right:
    adjusted - plain risk at each split's deployed coverage, with its interval."""
    if split not in comparison.rows:
        raise ValueError(f"split must be one of {', '.join(comparison.rows)}, got {split!r}")
    fig = _figure((13.0, 3.8))
    left, middle, right = fig.subplots(1, 3, width_ratios=(1.2, 1.0, 1.0))
    val, shifted = (np.asarray(comparison.scores[s], dtype=np.float64) for s in ("val", split))
    bins = np.linspace(min(val.min(), shifted.min()), max(val.max(), shifted.max()), 41)
    _scores_axis(left, val, bins, PALETTE["blue"], "val", density=True)
    _scores_axis(left, shifted, bins, _ADJUSTED, split, density=True)
    left.set_xlim(bins[0], bins[-1])
    row = comparison.rows[split]
    _span(left, *row.window_plain, color=_WINDOW, alpha=0.2, lw=0, label="plain window (val quantiles)")
    _span(
        left, *row.window_adjusted, facecolor="none", edgecolor=_ADJUSTED, hatch="\\\\", lw=0, label="adjusted window"
    )
    left.axvline(comparison.tau, color=PALETTE["black"], lw=1.2, label="tau")
    left.set_xlabel("first-stage confidence")
    left.set_ylabel("density (log scale)")
    left.set_title(f"the window under shift: {split}", fontsize="medium")
    left.legend(fontsize="small", loc="upper left")
    names = list(comparison.rows)
    x = np.arange(len(names))
    middle.bar(x - 0.2, [100 * comparison.rows[s].share_plain for s in names], 0.4, color=_WINDOW, label="plain")
    middle.bar(
        x + 0.2, [100 * comparison.rows[s].share_adjusted for s in names], 0.4, color=_ADJUSTED, label="adjusted"
    )
    middle.axhline(200 * comparison.half_width, color=PALETTE["black"], lw=0.8, ls=":", label="2 x half-width")
    middle.set_xticks(x, names, rotation=40, ha="right", fontsize="small")
    middle.set_ylabel("images passed on (%)")
    middle.set_title("share passed on to the second member", fontsize="medium")
    middle.legend(fontsize="small")
    d = [comparison.rows[s].risk_difference for s in names]
    y = np.array([100 * r.difference for r in d])
    err = np.array([[y[i] - 100 * r.low, 100 * r.high - y[i]] for i, r in enumerate(d)]).T
    right.errorbar(y, x, xerr=err, fmt="o", color=_ADJUSTED, capsize=3)
    for i, r in enumerate(d):
        if r.resolved:
            right.plot(y[i], x[i], "o", ms=8, mfc="none", color=PALETTE["black"])
    right.axvline(0.0, color=PALETTE["black"], lw=0.8)
    right.set_yticks(x, names, fontsize="small")
    right.invert_yaxis()
    right.set_xlabel("points, at each split's deployed coverage")
    right.set_title("adjusted - plain risk (90% intervals)", fontsize="medium")
    right.grid(alpha=0.3)
    return describe(
        fig,
        f"The window under shift ({split}): confidence densities on val and on the shifted split, the share of "
        f"images passed on to the second member, and the adjusted minus plain risk per split with 90% intervals.",
    )
