"""Matplotlib drawings for the Labs and notebooks.

Each drawing is a small class that creates its artists once on a given Axes and updates them in place
(``update(...)`` changes heights and positions; nothing is re-created), so a Lab redraws within a blink.
No widgets here: a Lab decides where the Axes live.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

__all__ = [
    "ReliabilityPlot",
    "WeightBars",
    "ScoreWeightBars",
    "RiskCoveragePlot",
    "CostFrontierPlot",
    "WiseCurvePlot",
    "LossLinePlot",
    "SelectionPathPlot",
    "DecompositionBars",
    "TeamScatter",
    "mosaic_figure",
    "image_grid",
    "StaticFigure",
    "describe",
    "PALETTE",
    "SERIES_COLORS",
    "SERIES_LINESTYLES",
    "SERIES_MARKERS",
    "series_style",
    "draw_interval",
    "draw_band",
]

PALETTE = {
    # Okabe & Ito (2008), "Color Universal Design": eight colours told apart under the common colour-vision
    # deficiencies (matplotlib's default 'tab10' is not: its green, red and brown merge under deuteranopia),
    # plus a neutral grey for references.  Every Lab drawing and static figure takes its colours from here; the
    # series also differ by line style or marker (SERIES_LINESTYLES, SERIES_MARKERS), never by colour alone.
    "blue": "#0072B2",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "yellow": "#F0E442",
    "black": "#000000",
    "grey": "#7F7F7F",
}
_ENSEMBLE = PALETTE["blue"]
_GAP = PALETTE["vermillion"]
_MUTED = PALETTE["grey"]
_FULL = PALETTE["bluish green"]
# colours for compared models (single models, ...): none is the ensemble's blue or the full ensemble's green
SERIES_COLORS = tuple(
    PALETTE[name] for name in ("orange", "reddish purple", "sky blue", "vermillion", "black", "yellow", "grey")
)
# line styles and markers that go with SERIES_COLORS (the j-th series: style j), so that series differ by more than
# colour; the ensemble ("-") and the full ensemble ("--") keep the two plain styles
SERIES_LINESTYLES = ("-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (6, 2)), (0, (2, 2)))
SERIES_MARKERS = ("s", "^", "D", "v", "P", "X", "*")


def series_style(j: int) -> dict:
    """The colour, line style and marker of the ``j``-th compared series (wrapping around), as plot keywords.

    >>> series_style(0) == {"color": SERIES_COLORS[0], "ls": SERIES_LINESTYLES[0], "marker": SERIES_MARKERS[0]}
    True
    >>> series_style(len(SERIES_COLORS))["color"] == SERIES_COLORS[0]
    True
    """
    if isinstance(j, bool) or not isinstance(j, int) or j < 0:
        raise ValueError(f"j must be a non-negative int, got {j!r}")
    return {
        "color": SERIES_COLORS[j % len(SERIES_COLORS)],
        "ls": SERIES_LINESTYLES[j % len(SERIES_LINESTYLES)],
        "marker": SERIES_MARKERS[j % len(SERIES_MARKERS)],
    }


def mosaic_figure(mosaic, figsize=(8.0, 4.0), **gridspec):
    """A figure laid out by ``plt.subplot_mosaic``, created without being shown (the caller shows it).

    Returns ``(fig, axes)`` with ``axes`` a dict from the mosaic's labels to Axes; ``gridspec`` keywords
    (``height_ratios``, ``width_ratios``) go to the grid.
    """
    with plt.ioff():
        fig, axes = plt.subplot_mosaic(mosaic, figsize=figsize, layout="constrained", gridspec_kw=gridspec or None)
    return fig, axes


def _legend_below(ax: Axes, handles=None, ncol: int = 3, y: float = -0.2):
    """The Lab drawings' legend: centred under the axes (``y`` in axes units), small, without a frame."""
    kwargs = {} if handles is None else {"handles": handles}
    return ax.legend(
        **kwargs, loc="upper center", bbox_to_anchor=(0.5, y), ncol=ncol, fontsize="x-small", frameon=False
    )


def _to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


class ReliabilityPlot:
    """Reliability diagram (accuracy per confidence bin vs the diagonal) with a confidence histogram.

    The top Axes ``ax`` shows, per bin, a bar of the bin's accuracy and a hatched gap to its mean confidence;
    the histogram below (``hist_ax``, optional) shows the share of samples per bin.  ``update`` takes a
    ``metrics.Reliability`` (edges (B+1,), confidence (B,), accuracy (B,), count (B,), ece).
    """

    def __init__(self, ax: Axes, hist_ax: Axes | None = None, title: str = "Reliability"):
        self.ax, self.hist_ax, self.title = ax, hist_ax, title
        self._n_bins = None
        ax.plot([0, 1], [0, 1], ls="--", color=_MUTED, lw=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(title, fontsize="medium")
        self._ece_text = ax.text(0.97, 0.04, "", transform=ax.transAxes, ha="right", va="bottom")
        (self._curve,) = ax.plot([], [], color=PALETTE["black"], lw=1.5, label="smoothed accuracy (smooth ECE)")
        if hist_ax is not None:
            hist_ax.set_xlim(0, 1)
            hist_ax.set_ylim(0, 1)  # fixed, so that an update never re-lays the axes out
            hist_ax.set_ylabel("share of samples")
            hist_ax.set_xlabel("confidence")
        self._acc_bars = self._gap_bars = self._hist_bars = None

    @property
    def artists(self) -> list:
        """Everything ``update`` changes (for :class:`BlitManager`)."""
        bars = [b for group in (self._acc_bars, self._gap_bars, self._hist_bars) if group is not None for b in group]
        legend = self.ax.get_legend()  # drawn last, so that bars never hide it
        return bars + [self._curve, self._ece_text] + ([legend] if legend is not None else [])

    def _make_bars(self, n_bins: int) -> None:
        for bars in (self._acc_bars, self._gap_bars, self._hist_bars):
            if bars is not None:
                bars.remove()
        zeros = np.zeros(n_bins)
        self._acc_bars = self.ax.bar(
            zeros, zeros, width=0, align="edge", color=_ENSEMBLE, edgecolor="white", lw=0.5, label="accuracy"
        )
        self._gap_bars = self.ax.bar(
            zeros,
            zeros,
            width=0,
            align="edge",
            facecolor="none",
            edgecolor=_GAP,
            lw=1.2,
            label="gap to mean confidence",
        )
        if self.hist_ax is not None:
            self._hist_bars = self.hist_ax.bar(
                zeros, zeros, width=0, align="edge", color=_MUTED, edgecolor="white", lw=0.5
            )
        self._n_bins = n_bins
        self._legend()

    def _legend(self) -> None:
        shown = [self._acc_bars, self._gap_bars] + ([self._curve] if len(self._curve.get_xdata()) else [])
        self.ax.legend(handles=shown, loc="upper left", fontsize="small", frameon=False)

    def update(self, reliability, curve=None) -> None:
        """Move the bars to the bins and values of ``reliability``; draw ``curve`` (``(x, y)``, e.g. a smoothed
        reliability curve) over them, or nothing if it is None."""
        edges = _to_numpy(reliability.edges).astype(float)
        conf = np.nan_to_num(_to_numpy(reliability.confidence).astype(float))
        acc = np.nan_to_num(_to_numpy(reliability.accuracy).astype(float))
        count = _to_numpy(reliability.count).astype(float)
        if self._n_bins != len(count):
            self._make_bars(len(count))
        left, width = edges[:-1], np.diff(edges)
        share = count / max(count.sum(), 1.0)
        for i, (a, g) in enumerate(zip(self._acc_bars, self._gap_bars, strict=False)):
            a.set_x(left[i])
            a.set_width(width[i])
            a.set_height(acc[i])
            lo, hi = sorted((acc[i], conf[i])) if count[i] > 0 else (0.0, 0.0)
            g.set_x(left[i])
            g.set_width(width[i] if count[i] > 0 else 0.0)  # an empty bin has no gap to outline
            g.set_y(lo)
            g.set_height(hi - lo)
        if self._hist_bars is not None:
            for i, h in enumerate(self._hist_bars):
                h.set_x(left[i])
                h.set_width(width[i])
                h.set_height(share[i])
        self._ece_text.set_text(f"ECE {100 * float(reliability.ece):.1f}%")
        had_curve = len(self._curve.get_xdata()) > 0
        if curve is None:
            self._curve.set_data([], [])
        else:
            self._curve.set_data(_to_numpy(curve[0]), _to_numpy(curve[1]))
        if had_curve != (curve is not None):
            self._legend()  # a new legend artist: BlitManager.set_artists asks for a full draw


class WeightBars:
    """One bar per ensemble member showing its (normalised) weight."""

    def __init__(self, ax: Axes, n_members: int, title: str = "Member weights"):
        self.ax = ax
        x = np.arange(n_members)
        self._bars = ax.bar(x, np.zeros(n_members), color=_ENSEMBLE)
        ax.set_xticks(x, [str(i + 1) for i in x], fontsize="small" if n_members <= 10 else "x-small")
        ax.set_xlabel("member")
        ax.set_ylim(0, 1)  # fixed: weights are normalised
        ax.set_title(title, fontsize="medium")

    @property
    def artists(self) -> list:
        return list(self._bars)

    def update(self, weights) -> None:
        w = _to_numpy(weights).astype(float)
        for bar, v in zip(self._bars, w, strict=False):
            bar.set_height(v)


class ScoreWeightBars:
    """Two bar charts over the same items (e.g. prompts): a score per item on ``score_ax`` and a weight per
    item on ``weight_ax`` (weights in [0, 1]).  ``update`` moves the bars; a new number of items re-creates them
    (``update`` then returns True: the caller does a full draw)."""

    def __init__(self, score_ax: Axes, weight_ax: Axes, score_label: str = "score", weight_label: str = "weight"):
        self.score_ax, self.weight_ax = score_ax, weight_ax
        score_ax.set_ylabel(score_label)
        weight_ax.set_ylabel(weight_label)
        weight_ax.set_ylim(0, 1)
        weight_ax.set_xlabel("prompt")
        self._scores = self._weights = None
        self._n = None

    @property
    def artists(self) -> list:
        return [b for group in (self._scores, self._weights) if group is not None for b in group]

    def update(
        self,
        scores,
        weights,
        labels: Sequence[str],
        score_range: tuple[float, float] | None = None,
        weight_top: float = 1.0,
    ) -> bool:
        """Show ``scores`` and ``weights`` (``(P,)`` each) for items named ``labels``; ``score_range`` fixes the
        score axis (default: from the scores, with a margin), ``weight_top`` the top of the weight axis."""
        s, w = _to_numpy(scores).astype(float), _to_numpy(weights).astype(float)
        n = len(s)
        rebuilt = n != self._n
        if rebuilt:
            for group in (self._scores, self._weights):
                if group is not None:
                    group.remove()
            x = np.arange(n)
            self._scores = self.score_ax.bar(x, np.zeros(n), color=_MUTED)
            self._weights = self.weight_ax.bar(x, np.zeros(n), color=_ENSEMBLE)
            size = "small" if n <= 12 else "xx-small"
            for ax in (self.score_ax, self.weight_ax):
                ax.set_xlim(-0.6, n - 0.4)
            self.score_ax.set_xticks(x, [""] * n)
            self.weight_ax.set_xticks(x, list(labels), fontsize=size, rotation=90 if n > 12 else 0)
            self._n = n
        lo, hi = score_range if score_range is not None else (min(0.0, s.min()), max(0.0, s.max()))
        pad = 0.05 * (hi - lo or 1.0)
        if rebuilt or self.score_ax.get_ylim() != (lo - pad, hi + pad):
            self.score_ax.set_ylim(lo - pad, hi + pad)
            rebuilt = True
        if self.weight_ax.get_ylim() != (0.0, weight_top):
            self.weight_ax.set_ylim(0.0, weight_top)
            rebuilt = True
        for bar, v in zip(self._scores, s, strict=False):
            bar.set_height(v)
        for bar, v in zip(self._weights, w, strict=False):
            bar.set_height(v)
        return rebuilt


class RiskCoveragePlot:
    """Risk-coverage curves of several models, the operating point's coverage (a dotted line) and, for a window
    policy, the band of coverages the window spans.

    ``names``: the curves, in legend order; ``"cascade"`` is drawn bold in the ensemble's blue, ``"full
    ensemble"`` dashed in green, the others in :func:`series_style` (colour, line style and marker differ).
    ``update`` returns True when the risk axis changed (a full draw is needed).
    """

    def __init__(self, ax: Axes, names: Sequence[str], title: str = "Risk-coverage"):
        self.ax = ax
        self.lines = {}
        j = 0
        for name in names:
            if name == "cascade":
                style = {"color": _ENSEMBLE, "ls": "-", "marker": "o", "lw": 2}
            elif name == "full ensemble":
                style = {"color": _FULL, "ls": "--", "marker": "o", "mfc": "white", "lw": 1.3}
            else:
                style, j = {**series_style(j), "lw": 1.3}, j + 1
            # a marker every tenth of the curve's length: the curves differ by line style, marker and colour
            (self.lines[name],) = ax.plot([], [], label=name, ms=4, markevery=0.1, **style)
        self.tau_line = ax.axvline(0, color=_MUTED, ls=":", lw=1, label="coverage at tau")
        self.band = ax.axvspan(0, 0, color=_MUTED, alpha=0.15, lw=0, label="window")
        ax.set_xlim(0, 1)
        ax.set_xlabel("coverage")
        ax.set_ylabel("selective risk")
        ax.set_title(title, fontsize="medium")
        ax.legend(fontsize="small", frameon=False, loc="upper left")

    @property
    def artists(self) -> list:
        return [*self.lines.values(), self.tau_line, self.band]

    def update(self, curves: dict, coverage_at_tau: float, band: tuple[float, float] | None) -> bool:
        """``curves``: name -> ``(coverage, risk)``; ``band``: ``(low, high)`` coverages, or None (no window)."""
        top = 0.0
        for name, (cov, risk) in curves.items():
            if name in self.lines:
                r = _to_numpy(risk)
                self.lines[name].set_data(_to_numpy(cov), r)
                top = max(top, float(np.nanmax(r)) if len(r) else 0.0)
        self.tau_line.set_xdata([coverage_at_tau] * 2)
        lo, hi = band if band is not None else (0.0, 0.0)
        self.band.set_x(lo)
        self.band.set_width(max(0.0, hi - lo))
        self.band.set_visible(band is not None)
        ylim = (0.0, round(max(0.05, 1.05 * top), 3))
        if self.ax.get_ylim() != ylim:
            self.ax.set_ylim(*ylim)
            return True
        return False


class CostFrontierPlot:
    """Cost (x, log scale) against quality (y) of a swept family (a line), the current setting (a star) and
    single models (points).  ``update`` returns True when an axis or its label changed (a full draw)."""

    def __init__(self, ax: Axes, title: str = "Cost vs coverage", sweep_label: str = "window cascade (sweep)"):
        from matplotlib.ticker import NullFormatter

        self.ax = ax
        (self.sweep,) = ax.plot([], [], "-", color=_ENSEMBLE, label=sweep_label)
        (self.current,) = ax.plot([], [], "*", ms=12, color=_ENSEMBLE, label="current")
        self.points = ax.scatter([], [], color=PALETTE["black"], marker="o", label="single models", zorder=3)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("MACs per sample")
        ax.set_title(title, fontsize="medium")
        ax.legend(fontsize="small", frameon=False, loc="lower right")

    @property
    def artists(self) -> list:
        return [self.sweep, self.current, self.points]

    def update(
        self, sweep: tuple, current: tuple[float, float], points: Sequence[tuple[float, float]], ylabel: str
    ) -> bool:
        """``sweep``: ``(cost (W,), quality (W,))``; ``current``: ``(cost, quality)``; ``points``: ``(cost,
        quality)`` of each single model."""
        cost, quality = _to_numpy(sweep[0]), _to_numpy(sweep[1])
        self.sweep.set_data(cost, quality)
        self.current.set_data([current[0]], [current[1]])
        self.points.set_offsets(np.array(points, dtype=float) if len(points) else np.empty((0, 2)))
        xs = [float(cost.min()), float(cost.max()), *(p[0] for p in points)]
        ys = [float(quality.min()), float(quality.max()), *(p[1] for p in points)]
        wanted = ((0.7 * min(xs), 1.4 * max(xs)), (max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)), ylabel)
        if wanted != (self.ax.get_xlim(), self.ax.get_ylim(), self.ax.get_ylabel()):
            self.ax.set_xlim(*wanted[0])
            self.ax.set_ylim(*wanted[1])
            self.ax.set_ylabel(ylabel)
            return True
        return False


def _floor(x: float, step: float) -> float:
    return round(math.floor(x / step) * step, 6)


def _ceil(x: float, step: float) -> float:
    return round(math.ceil(x / step) * step, 6)


def _padded(values, step: float = 0.05, margin: float = 0.02) -> tuple[float, float]:
    """An axis range in [0, 1] around ``values`` on a grid of ``step`` (so that small moves keep it)."""
    return max(0.0, _floor(min(values) - margin, step)), min(1.0, _ceil(max(values) + margin, step))


class WiseCurvePlot:
    """A WiSE-FT curve: accuracy (left axis) and ECE (right axis, faint) against alpha, in distribution and
    shifted, with dots at the current alpha and a dotted line per split for a comparison model (a soup).

    ``update`` moves every line; it returns True when a title, a legend text or an axis range changed (a full
    draw is needed); ranges snap to a 0.05 grid so that most moves only blit.
    """

    _STYLES = (("id", _ENSEMBLE, "-", "ID"), ("shift", PALETTE["orange"], "--", "shifted"))

    def __init__(self, ax: Axes):
        self.ax = ax
        self.ece_ax = ex = ax.twinx()
        ax.set_zorder(ex.get_zorder() + 1)  # accuracy lines and legend above the ECE lines
        ax.patch.set_visible(False)
        self.acc, self.ece, self.dots, self.ece_dots, self.soup = {}, {}, {}, {}, {}
        for tag, color, ls, label in self._STYLES:
            (self.acc[tag],) = ax.plot([], [], ls, color=color, lw=2, label=f"accuracy {label}")
            (self.ece[tag],) = ex.plot([], [], ls, color=color, lw=1, alpha=0.45, label=f"ECE {label} (right axis)")
            (self.dots[tag],) = ax.plot([], [], "o", color=color, ms=6, zorder=4)
            (self.ece_dots[tag],) = ex.plot([], [], "o", color=color, ms=4, alpha=0.45)
            self.soup[tag] = ax.axhline(0, color=color, ls=":", lw=1.5, label=f"soup {label}")
        self.alpha_line = ax.axvline(0, color=_MUTED, lw=1, zorder=1)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_xlabel("alpha (0 = zero-shot, 1 = fine-tuned)")
        ax.set_ylabel("accuracy")
        ex.set_ylabel("ECE", color=_MUTED)
        ex.tick_params(axis="y", colors=_MUTED)
        handles = [
            self.acc["id"],
            self.acc["shift"],
            self.soup["id"],
            self.soup["shift"],
            self.ece["id"],
            self.ece["shift"],
        ]
        legend = _legend_below(ax, handles)
        self._soup_texts = legend.get_texts()[2:4]
        ax.set_title(" \n ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [
            *self.ece.values(),
            *self.ece_dots.values(),
            self.alpha_line,
            *self.soup.values(),
            *self.acc.values(),
            *self.dots.values(),
        ]

    def update(self, alphas, curve: dict, point: dict, alpha: float, soup: dict, title: str, soup_name: str) -> bool:
        """``curve``: ``"id_acc", "shift_acc", "id_ece", "shift_ece"`` -> ``(A,)``; ``point``: the same four at
        ``alpha``; ``soup``: ``{"id": acc, "shift": acc}`` of the comparison model named ``soup_name``."""
        a = _to_numpy(alphas)
        for tag in ("id", "shift"):
            self.acc[tag].set_data(a, _to_numpy(curve[f"{tag}_acc"]))
            self.ece[tag].set_data(a, _to_numpy(curve[f"{tag}_ece"]))
            self.dots[tag].set_data([alpha], [point[f"{tag}_acc"]])
            self.ece_dots[tag].set_data([alpha], [point[f"{tag}_ece"]])
            self.soup[tag].set_ydata([soup[tag]] * 2)
        self.alpha_line.set_xdata([alpha, alpha])
        accs = [*_to_numpy(curve["id_acc"]).tolist(), *_to_numpy(curve["shift_acc"]).tolist(), *soup.values()]
        eces = [*_to_numpy(curve["id_ece"]).tolist(), *_to_numpy(curve["shift_ece"]).tolist()]
        static = (title, soup_name, _padded(accs), (0.0, _ceil(max(eces) * 1.05 + 1e-9, 0.05)))
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        for text, label in zip(self._soup_texts, ("ID", "shifted"), strict=False):
            text.set_text(f"{soup_name}, {label}")
        self.ax.set_ylim(*static[2])
        self.ece_ax.set_ylim(*static[3])
        self._static = static
        return True


class LossLinePlot:
    """Loss (left axis) and accuracy (right axis, dashed) along a straight line between two models.  ``update``
    returns True when the title or an axis range changed (a full draw)."""

    def __init__(self, ax: Axes, color: str = PALETTE["reddish purple"]):
        self.ax = ax
        self.acc_ax = la = ax.twinx()
        (self.loss,) = ax.plot([], [], "-o", color=color, lw=2, ms=3, label="val loss")
        (self.acc,) = la.plot([], [], "--", color=_MUTED, lw=1, label="val accuracy (right axis)")
        ax.set_xlim(-0.02, 1.02)
        ax.set_xticks([0, 0.5, 1.0])
        ax.set_xlabel("position on the line (0 = from, 1 = to)")
        ax.set_ylabel("val loss (nats)")
        la.set_ylabel("val accuracy", color=_MUTED)
        la.tick_params(axis="y", colors=_MUTED)
        _legend_below(ax, [self.loss, self.acc], ncol=1)
        ax.set_title(" \n ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [self.acc, self.loss]

    def update(self, positions, loss, acc, title: str) -> bool:
        x, lo, ac = _to_numpy(positions), _to_numpy(loss), _to_numpy(acc)
        self.loss.set_data(x, lo)
        self.acc.set_data(x, ac)
        top = float(lo.max()) * 1.1
        static = (title, (0.0, _ceil(top + 1e-9, 0.1 if top <= 2 else 0.5)), _padded(ac.tolist()))
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_ylim(*static[1])
        self.acc_ax.set_ylim(*static[2])
        self._static = static
        return True


class SelectionPathPlot:
    """Ensemble selection's path: the score on the hill-climbing set (solid) and on held-out data (dashed) after
    each addition, a vertical line at the current ensemble size and a dot at the step with the best
    hill-climbing score (where the paper stops).  ``update`` returns True when a title or a range changed."""

    def __init__(self, ax: Axes):
        self.ax = ax
        (self.hill,) = ax.plot([], [], "-", color=_ENSEMBLE, lw=2, label="hill-climbing set")
        (self.held,) = ax.plot([], [], "--", color=PALETTE["orange"], lw=2, label="held out (test)")
        (self.best,) = ax.plot([], [], "o", color=_ENSEMBLE, ms=6, label="best hill-climbing step")
        (self.held_dot,) = ax.plot([], [], "s", color=PALETTE["orange"], ms=5)
        self.now = ax.axvline(1, color=_MUTED, lw=1, zorder=1)
        ax.set_xlabel("models added (ensemble size)")
        _legend_below(ax, [self.hill, self.held, self.best])
        ax.set_title(" \n ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [self.now, self.hill, self.held, self.best, self.held_dot]

    def update(self, steps, hill, held_out, current: int, best: int | None, title: str, ylabel: str) -> bool:
        """``steps`` ``(S,)`` ensemble sizes with ``hill`` and ``held_out`` ``(S,)`` scores; ``current``: the
        ensemble size now; ``best``: the size with the best hill-climbing score (None: no dot)."""
        x, h, o = _to_numpy(steps), _to_numpy(hill), _to_numpy(held_out)
        self.hill.set_data(x, h)
        self.held.set_data(x, o)
        self.now.set_xdata([current, current])
        i = int(np.searchsorted(x, current)) if len(x) else 0
        i = min(i, len(x) - 1)
        self.held_dot.set_data([current], [o[i]] if len(o) else [])
        if best is None:
            self.best.set_data([], [])
        else:
            j = min(int(np.searchsorted(x, best)), len(x) - 1)
            self.best.set_data([best], [h[j]])
        values = np.concatenate([h, o])
        # the late part of the path sets the range: the first additions (single models) are off the top
        tail = values if len(x) < 4 else np.concatenate([h[2:], o[2:]])
        step = 0.01 if float(tail.max() - tail.min()) < 0.1 else 0.05
        lo, hi = _floor(float(tail.min()) - 1e-9, step), _ceil(float(tail.max()) + 1e-9, step)
        static = (title, ylabel, (lo, hi), (0.0, float(x.max()) + 1 if len(x) else 1.0))
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_ylabel(ylabel)
        self.ax.set_ylim(*static[2])
        self.ax.set_xlim(*static[3])
        self._static = static
        return True


class DecompositionBars:
    """Ensemble loss = mean member loss - diversity, as three bars per ensemble (grouped): the mean member loss,
    the diversity and the ensemble's loss.  ``update`` takes ``{name: (mean member, diversity, ensemble)}`` for
    a fixed set of names and returns True when a range or a label changed."""

    _PARTS = (
        ("mean member loss", _MUTED, ""),
        ("diversity", PALETTE["bluish green"], "//"),
        ("ensemble loss", _ENSEMBLE, ""),
    )

    def __init__(self, ax: Axes, names: Sequence[str]):
        self.ax = ax
        self.names = tuple(names)
        n = len(self.names)
        x = np.arange(n)
        width = 0.26
        self.bars = []
        for j, (label, color, hatch) in enumerate(self._PARTS):
            self.bars.append(
                ax.bar(
                    x + (j - 1) * width, np.zeros(n), width, color=color, hatch=hatch, edgecolor="white", label=label
                )
            )
        ax.set_xticks(x, list(self.names), fontsize="small")
        _legend_below(ax, y=-0.15)
        ax.set_title(" \n ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [b for group in self.bars for b in group]

    def update(self, parts: dict, ylabel: str, title: str) -> bool:
        for i, name in enumerate(self.names):
            for j, value in enumerate(parts[name]):
                self.bars[j][i].set_height(float(value))
        top = max(float(v) for name in self.names for v in parts[name])
        static = (ylabel, title, _ceil(top * 1.08 + 1e-9, 0.05 if top < 1 else 0.25))
        if static == self._static:
            return False
        self.ax.set_ylabel(ylabel)
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_ylim(0, static[2])
        self._static = static
        return True


class TeamScatter:
    """Every candidate team: an estimator's score (x) against the team's real result (y), with the team the
    estimator scores highest (a large diamond) and the best team (a ring).  ``update`` returns True when a title
    or a range changed."""

    def __init__(self, ax: Axes):
        self.ax = ax
        self.points = ax.scatter([], [], s=12, color=_MUTED, alpha=0.6, label="a team", linewidths=0)
        (self.pick,) = ax.plot([], [], "D", color=PALETTE["vermillion"], ms=9, label="the estimator's pick")
        (self.best,) = ax.plot(
            [], [], "o", ms=13, markerfacecolor="none", markeredgecolor=_ENSEMBLE, mew=2, label="the best team"
        )
        ax.set_ylabel("accuracy after probing")
        _legend_below(ax)
        ax.set_title(" \n ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [self.points, self.best, self.pick]

    def update(self, scores, truth, pick: int, best: int, title: str, xlabel: str) -> bool:
        x, y = _to_numpy(scores).astype(float), _to_numpy(truth).astype(float)
        self.points.set_offsets(np.column_stack([x, y]))
        self.pick.set_data([x[pick]], [y[pick]])
        self.best.set_data([x[best]], [y[best]])
        pad_x = 0.05 * (float(x.max() - x.min()) or 1.0)
        static = (
            title,
            xlabel,
            (float(x.min()) - pad_x, float(x.max()) + pad_x),
            (_floor(float(y.min()) - 1e-9, 0.02), _ceil(float(y.max()) + 1e-9, 0.02)),
        )
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_xlabel(xlabel)
        self.ax.set_xlim(*static[2])
        self.ax.set_ylim(*static[3])
        self._static = static
        return True


def draw_interval(ax, y: float, result, color: str, *, label=None, scale: float = 100.0) -> None:
    """One paired interval on ``ax`` as a horizontal bar at height ``y``: ``result.low .. result.high`` times
    ``scale`` (100: points), with a dot at ``result.difference``, filled when ``result.resolved`` and hollow when
    not (a :class:`~ensemble_lab.stats.PairedDifference` or anything with those four attributes)."""
    ax.plot([result.low * scale, result.high * scale], [y, y], color=color, lw=2, solid_capstyle="butt")
    ax.plot(
        [result.difference * scale],
        [y],
        "o",
        color=color,
        markerfacecolor=color if result.resolved else "white",
        markersize=5,
        label=label,
    )


def draw_band(ax, x, results, color: str, *, label=None, scale: float = 100.0, alpha: float = 0.18, **line) -> None:
    """Paired intervals along ``x`` on ``ax``: a line through ``results``' differences times ``scale`` (100:
    points) over a band from their ``low`` to their ``high`` (:class:`~ensemble_lab.stats.PairedDifference` or
    anything with those attributes); ``line`` goes to the line (``ls``, ``lw``, ``marker``, ...)."""
    y = np.array([r.difference for r in results]) * scale
    lo = np.array([r.low for r in results]) * scale
    hi = np.array([r.high for r in results]) * scale
    ax.fill_between(x, lo, hi, color=color, alpha=alpha, lw=0)
    ax.plot(x, y, color=color, label=label, **line)


def image_grid(images, titles: Sequence[str] | None = None, ncols: int = 8, size: float = 1.1):
    """A figure of grey-scale or RGB images ``(M, C, H, W)`` in [0, 1], ``ncols`` per row, with optional titles.

    The figure is not registered with pyplot (no live canvas, nothing redrawn after each cell): show it with
    :class:`StaticFigure`.  Its default description (see :func:`describe`) counts the images and lists the
    first titles; a notebook should say what the images are.
    """
    from matplotlib.figure import Figure

    imgs = _to_numpy(images)
    if imgs.ndim != 4 or imgs.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (M, 1 or 3, H, W), got shape {imgs.shape}")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"titles must have one entry per image ({len(imgs)}), got {len(titles)}")
    nrows = -(-len(imgs) // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows + 0.2 * (titles is not None)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(imgs):
            img = imgs[i].transpose(1, 2, 0)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray_r", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize="x-small")
    named = "" if titles is None else ": " + ", ".join(str(t) for t in titles[:8])
    named += ", ..." if titles is not None and len(titles) > 8 else ""
    return describe(fig, f"A grid of {len(imgs)} images, {ncols} per row{named}.")


def describe(fig, description: str):
    """Attach a default one-line text description to ``fig`` (its ``el_description``, which
    :class:`StaticFigure` shows when it is given none) and return ``fig``.

    >>> from matplotlib.figure import Figure
    >>> describe(Figure(), "An empty figure.").el_description
    'An empty figure.'
    """
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"description must be a non-empty str, got {description!r}")
    fig.el_description = " ".join(description.split())
    return fig


class StaticFigure:
    """A figure as a picture with its one-line text description: Jupyter shows a PNG (readable without a kernel,
    e.g. on GitHub, and never redrawn by the kernel when the page asks), rendered once here, and the description
    under it as a line of text (CSS class ``el-figure-description``).

    Args:
        fig: a matplotlib figure.
        description: one line saying what the figure shows, for readers who cannot see it.  When None, the
            figure's ``el_description`` attribute is used if it has one (the ``figures`` modules of the Labs
            attach a default one to every figure they return); a notebook should still say what *its* figure
            shows.
        dpi: the PNG's resolution.

    In a notebook the picture is one output in three forms: ``text/html``, a ``<figure>`` whose ``<img>`` has the
    description as its ``alt`` text and as a visible caption (JupyterLab and Voila show this form: their own
    image renderer writes no ``alt``); ``image/png``, the same picture for viewers that show no HTML; and
    ``text/plain``, the description.  Without a description it is the PNG alone.

    >>> from matplotlib.figure import Figure
    >>> picture = StaticFigure(Figure(figsize=(1, 1)), description="An empty square.")
    >>> picture._repr_png_()[:4], picture.description
    (b'\\x89PNG', 'An empty square.')
    """

    def __init__(self, fig, description: str | None = None, dpi: float = 100):
        from io import BytesIO

        if description is None:
            description = getattr(fig, "el_description", None)
        if description is not None and not isinstance(description, str):
            raise TypeError(f"description must be a str or None, got {type(description).__name__}")
        text = " ".join(description.split()) if description else ""
        if description is not None and not text:
            raise ValueError("description must say what the figure shows, got an empty string")
        self.description = text or None
        with BytesIO() as buffer:
            fig.savefig(buffer, format="png", dpi=dpi)
            self.png = buffer.getvalue()

    def _repr_png_(self) -> bytes:
        return self.png

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The output Jupyter shows: ``(data, metadata)``.

        >>> from matplotlib.figure import Figure
        >>> data, metadata = StaticFigure(Figure(figsize=(1, 1)), description="Nothing.")._repr_mimebundle_()
        >>> sorted(data), metadata
        (['image/png', 'text/html', 'text/plain'], {'image/png': {'alt': 'Nothing.'}})
        """
        import base64
        import html

        png = base64.b64encode(self.png).decode("ascii")
        if not self.description:
            return {"image/png": png, "text/plain": "<Figure>"}, {}
        text = html.escape(self.description, quote=True)
        figure = (
            f"<figure class='el-static-figure' style='margin:0'><img src='data:image/png;base64,{png}' "
            f"alt=\"{text}\" style='max-width:100%'/><figcaption class='el-figure-description'><i>Figure:</i> "
            f"{text}</figcaption></figure>"
        )
        data = {"text/html": figure, "image/png": png, "text/plain": f"Figure: {self.description}"}
        return data, {"image/png": {"alt": self.description}}


# ---- forecasting Lab drawings


class LeadScorePlot:
    """A score against lead time: the forecaster's curves (solid, dashed) and a reference (dotted grey, hidden
    when there is none), a horizontal target line (e.g. 1 for a spread-skill ratio) and a vertical line at the
    current lead.  ``update`` returns True when a title or a range changed."""

    def __init__(self, ax: Axes, labels: Sequence[str], reference_label: str = "", target: float | None = None):
        self.ax = ax
        self.lines = []
        for j, label in enumerate(labels):
            (line,) = ax.plot(
                [],
                [],
                "-" if j == 0 else "--",
                color=_ENSEMBLE if j == 0 else PALETTE["orange"],
                lw=2,
                marker="o" if j == 0 else None,
                ms=3,
                label=label,
            )
            self.lines.append(line)
        (self.reference,) = ax.plot([], [], ":", color=_MUTED, lw=2, label=reference_label or "reference")
        self.target = None if target is None else ax.axhline(target, color=PALETTE["black"], lw=0.8, zorder=1)
        self.now = ax.axvline(0, color=_MUTED, lw=1, zorder=1)
        (self.dot,) = ax.plot([], [], "o", color=_ENSEMBLE, ms=7)
        ax.set_xlabel("lead time (days)")
        _legend_below(ax, [*self.lines, self.reference] if reference_label else self.lines, ncol=2, y=-0.25)
        ax.set_title(" ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [self.now, self.reference, *self.lines, self.dot]

    def update(self, days, curves: Sequence, lead: int, reference=None, title: str = "", ylabel: str = "") -> bool:
        """``days`` ``(L + 1,)``; ``curves``: one ``(L + 1,)`` series per label; ``lead``: the index marked;
        ``reference``: a ``(L + 1,)`` series or None (hidden)."""
        x = _to_numpy(days).astype(float)
        values = []
        for line, curve in zip(self.lines, curves, strict=True):
            y = _to_numpy(curve).astype(float)
            line.set_data(x, y)
            values.append(y)
        if reference is None:
            self.reference.set_data([], [])
            self.reference.set_visible(False)
        else:
            r = _to_numpy(reference).astype(float)
            self.reference.set_data(x, r)
            self.reference.set_visible(True)
            values.append(r)
        self.now.set_xdata([x[lead], x[lead]])
        self.dot.set_data([x[lead]], [values[0][lead]])
        top = max(float(np.max(v)) for v in values)
        if self.target is not None:
            top = max(top, float(self.target.get_ydata()[0]))
        step = 0.1 if top <= 2 else 0.5
        static = (title, ylabel, (0.0, _ceil(top * 1.05 + 1e-9, step)), (float(x[0]), float(x[-1])))
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_ylabel(ylabel)
        self.ax.set_ylim(*static[2])
        self.ax.set_xlim(static[3][0] - 0.3, static[3][1] + 0.3)
        self._static = static
        return True


class RankHistogramBars:
    """A rank histogram: ``max_members + 1`` bars created once (those past ``M + 1`` hidden) and the count a
    flat histogram would have (a dashed line).  ``update`` returns True when a range or the title changed."""

    def __init__(self, ax: Axes, max_members: int):
        self.ax = ax
        self.max_members = int(max_members)
        n = self.max_members + 1
        self.bars = ax.bar(np.arange(n), np.zeros(n), 0.85, color=_ENSEMBLE, label="observations of rank k")
        (self.flat,) = ax.plot([], [], "--", color=_GAP, lw=1.5, label="flat (reliable)")
        ax.set_xlabel("rank of the truth among the members")
        ax.set_ylabel("count")
        _legend_below(ax, [self.bars, self.flat], ncol=2, y=-0.25)
        ax.set_title(" ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [*self.bars, self.flat]

    def update(self, counts, title: str, top: float | None = None) -> bool:
        """``counts`` ``(M + 1,)``; ``top``: the largest count to make room for (e.g. over every lead, so the axis
        stays as the lead moves; default: these counts')."""
        c = _to_numpy(counts).astype(float)
        k = len(c)
        if not 2 <= k <= self.max_members + 1:
            raise ValueError(f"counts must have 2 to {self.max_members + 1} entries, got {k}")
        for i, bar in enumerate(self.bars):
            bar.set_height(c[i] if i < k else 0.0)
            bar.set_visible(i < k)
        expected = float(c.sum()) / k
        self.flat.set_data([-0.5, k - 0.5], [expected, expected])
        top = max(float(c.max()) if top is None else max(float(top), float(c.max())), expected)
        step = 10 ** math.floor(math.log10(max(top, 1.0)))
        static = (title, k, _ceil(top * 1.08 + 1e-9, step))
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_xlim(-0.7, k - 0.3)
        self.ax.set_ylim(0, static[2])
        self._static = static
        return True


class PlumePlot:
    """A forecast plume: up to ``max_members`` member lines (created once; those past M hidden), the truth (thick)
    and the observations (dots) against lead time, with a vertical line at the current lead, a dotted horizontal
    line at a threshold and a label in the corner (which case and variable: blitted, so a move of either draws
    no title).  ``update`` returns True when a range or the title changed."""

    def __init__(self, ax: Axes, max_members: int):
        self.ax = ax
        self.members = [
            ax.plot([], [], "-", color=PALETTE["sky blue"], lw=0.8, alpha=0.7)[0] for _ in range(int(max_members))
        ]
        self.members[0].set_label("members")
        (self.truth,) = ax.plot([], [], "-", color=PALETTE["black"], lw=2.2, label="truth")
        (self.obs,) = ax.plot([], [], "o", color=PALETTE["vermillion"], ms=4, label="observations")
        self.threshold = ax.axhline(0, color=PALETTE["reddish purple"], lw=1, ls=":", label="extreme threshold")
        self.now = ax.axvline(0, color=_MUTED, lw=1, zorder=1)
        self.label = ax.text(0.01, 0.97, "", transform=ax.transAxes, va="top", ha="left", fontsize="small")
        ax.set_xlabel("lead time (days)")
        _legend_below(ax, [self.members[0], self.truth, self.obs, self.threshold], ncol=4, y=-0.25)
        ax.set_title(" ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [self.threshold, self.now, *self.members, self.truth, self.obs, self.label]

    def update(
        self, days, members, truth, observations, lead: int, threshold: float, title: str, ylabel: str, label: str = ""
    ) -> bool:
        """``members`` ``(M, L + 1)``; ``truth``, ``observations`` ``(L + 1,)``; ``label``: the corner text."""
        x = _to_numpy(days).astype(float)
        mem = _to_numpy(members).astype(float)
        if mem.ndim != 2 or mem.shape[0] > len(self.members):
            raise ValueError(f"members must be (M, L + 1) with M <= {len(self.members)}, got {mem.shape}")
        for i, line in enumerate(self.members):
            if i < mem.shape[0]:
                line.set_data(x, mem[i])
                line.set_visible(True)
            else:
                line.set_visible(False)
        t, o = _to_numpy(truth).astype(float), _to_numpy(observations).astype(float)
        self.truth.set_data(x, t)
        self.obs.set_data(x, o)
        self.threshold.set_ydata([threshold, threshold])
        self.now.set_xdata([x[lead], x[lead]])
        self.label.set_text(label)
        # a range that fits every variable of Lorenz-96 (about -10 .. 15) moves only for a wilder forecast
        lo = min(-10.0, _floor(float(min(mem.min(), t.min(), o.min())) - 1e-9, 5.0))
        hi = max(15.0, _ceil(float(max(mem.max(), t.max(), o.max(), threshold)) + 1e-9, 5.0))
        static = (title, ylabel, (lo, hi), (float(x[0]), float(x[-1])))
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_ylabel(ylabel)
        self.ax.set_ylim(lo, hi)
        self.ax.set_xlim(static[3][0] - 0.2, static[3][1] + 0.2)
        self._static = static
        return True


class EventReliabilityPlot:
    """The reliability of a threshold-event forecast (:class:`~ensemble_lab.forecast.scores.ThresholdReliability`):
    the observed frequency against each forecast probability that occurs, the diagonal and the base rate.
    ``update`` returns True when the title changed."""

    def __init__(self, ax: Axes):
        self.ax = ax
        ax.plot([0, 1], [0, 1], "-", color=_MUTED, lw=1, label="reliable")
        (self.points,) = ax.plot([], [], "o-", color=_ENSEMBLE, lw=1.5, ms=4, label="observed frequency")
        self.base = ax.axhline(0, color=_GAP, lw=1, ls="--", label="base rate")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("forecast probability (members above)")
        ax.set_ylabel("observed frequency")
        _legend_below(ax, ncol=3, y=-0.25)
        ax.set_title(" ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [self.base, self.points]

    def update(self, reliability, title: str) -> bool:
        p = _to_numpy(reliability.probability).astype(float)
        f = _to_numpy(reliability.observed_frequency).astype(float)
        present = _to_numpy(reliability.present).astype(bool)
        self.points.set_data(p[present], f[present])
        self.base.set_ydata([reliability.base_rate, reliability.base_rate])
        if title == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self._static = title
        return True


__all__ += ["LeadScorePlot", "RankHistogramBars", "PlumePlot", "EventReliabilityPlot"]


# ---- forests Lab drawings


def _nice_top(x: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten that is >= ``x`` (> 0), so that
    a range moves in steps.

    >>> _nice_top(0.31), _nice_top(3.0), _nice_top(240.0), _nice_top(301.0)
    (0.4, 3.0, 250.0, 400.0)
    """
    x = max(float(x), 1e-12)
    scale = 10.0 ** math.floor(math.log10(x))
    for m in (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0):
        if m * scale >= x * (1 - 1e-12):
            return round(m * scale, 12)
    return round(10.0 * scale, 12)  # pragma: no cover - the loop always returns


def _set_visible(artists, visible: bool) -> None:
    for a in artists:
        a.set_visible(visible)


class _SharedAxesDrawing:
    """A drawing that shares its Axes with another one (the 1-D and the 2-D world's): ``hide()`` hides its
    artists (and its legend, if it has one) and forgets its static state, so that the next ``update`` shows them
    again (``_show()``) and redraws the titles and ranges in full.  Subclasses set ``artists``, ``visible`` and
    ``_static``."""

    legend = None

    def _own(self) -> list:
        return [*self.artists, *([] if self.legend is None else [self.legend])]

    def hide(self) -> bool:
        """Hide every artist (the Axes shows the other drawing); True if it was shown."""
        was = self.visible
        _set_visible(self._own(), False)
        self.visible = False
        self._static = None
        return was

    def _show(self) -> None:
        if not self.visible:
            _set_visible(self._own(), True)
            self.visible = True


class SmootherCurvePlot(_SharedAxesDrawing):
    """A 1-D smoother: the training outcomes (grey dots), those the forest's prediction at the query averages
    (blue, sized by their weight), the truth, one tree's and the forest's fitted curves, and the query (a dashed
    vertical line, with both predictions there as dots).  It shares its Axes with a :class:`WeightFieldPlot` (the
    2-D world): ``hide()`` hides it.  ``update`` returns True when a title or a range changed (a full draw)."""

    def __init__(self, ax: Axes, max_size: float = 160.0):
        self.ax = ax
        self.max_size = float(max_size)
        self.data = ax.scatter([], [], s=7, color=_MUTED, alpha=0.55, linewidths=0, label="training outcomes")
        self.used = ax.scatter(
            [], [], s=[], color=_ENSEMBLE, alpha=0.45, linewidths=0, label="averaged at the query (size: weight)"
        )
        (self.truth,) = ax.plot([], [], "-", color=PALETTE["black"], lw=1.2, label="truth")
        (self.tree,) = ax.plot([], [], "-", color=PALETTE["orange"], lw=1.0, label="tree 0")
        (self.forest,) = ax.plot([], [], "-", color=_ENSEMBLE, lw=2.0, label="forest")
        self.query = ax.axvline(0, color=_GAP, lw=1, ls="--")
        (self.tree_dot,) = ax.plot([], [], "v", color=PALETTE["orange"], ms=8, markeredgecolor=PALETTE["black"])
        (self.forest_dot,) = ax.plot([], [], "o", color=_ENSEMBLE, ms=8, markeredgecolor=PALETTE["black"])
        self.legend = _legend_below(ax, [self.data, self.used, self.truth, self.tree, self.forest], ncol=3, y=-0.22)
        ax.set_title(" ", fontsize="medium")
        self._static = None
        self.visible = True

    @property
    def artists(self) -> list:
        return [self.data, self.used, self.truth, self.tree, self.forest, self.query, self.tree_dot, self.forest_dot]

    def update(self, x, y, grid, truth, tree, forest, weights, query: float, title: str = "") -> bool:
        """``x``, ``y``, ``weights`` ``(n,)``: the training inputs, outcomes and the forest's weights at ``query``;
        ``grid``, ``truth``, ``tree``, ``forest``: ``(G,)`` curves."""
        xs, ys, w = _to_numpy(x).astype(float), _to_numpy(y).astype(float), _to_numpy(weights).astype(float)
        g = _to_numpy(grid).astype(float)
        self.data.set_offsets(np.column_stack([xs, ys]))
        used = w > 0
        self.used.set_offsets(np.column_stack([xs[used], ys[used]]))
        self.used.set_sizes(12.0 + self.max_size * w[used])
        self.truth.set_data(g, _to_numpy(truth).astype(float))
        tr, fo = _to_numpy(tree).astype(float), _to_numpy(forest).astype(float)
        self.tree.set_data(g, tr)
        self.forest.set_data(g, fo)
        self.query.set_xdata([query, query])
        i = int(np.argmin(np.abs(g - query)))
        self.tree_dot.set_data([query], [tr[i]])
        self.forest_dot.set_data([query], [fo[i]])
        self._show()
        top = max(float(np.abs(ys).max()), float(np.abs(tr).max()), 1.0)
        lim = math.ceil(top * 1.05 / 0.5) * 0.5
        static = (title, lim)
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_xlim(-0.02, 1.02)
        self.ax.set_ylim(-lim, lim)
        self.ax.set_xlabel("x")
        self.ax.set_ylabel("outcome")
        self._static = static
        return True


class KernelStemPlot(_SharedAxesDrawing):
    """The weights of a 1-D smoother's prediction at a query, against each training input's offset from the query
    (``x_i - query``, a fixed window of +-``window``): the forest's as blue stems, one tree's as orange triangles
    at their height.  A query move only moves the stems; the vertical range snaps to round numbers, so most
    moves only blit.  ``hide()`` hides it (the 2-D world shares its Axes); ``update`` returns True when a title
    or a range changed."""

    def __init__(self, ax: Axes, window: float = 0.2):
        from matplotlib.collections import LineCollection

        self.ax = ax
        self.window = float(window)
        self.stems = LineCollection([], colors=_ENSEMBLE, linewidths=2.2, alpha=0.8, label="forest's weights")
        ax.add_collection(self.stems)
        (self.tree,) = ax.plot([], [], "v", color=PALETTE["orange"], ms=6, ls="none", label="tree 0's weights")
        self.query = ax.axvline(0, color=_GAP, lw=1, ls="--", label="the query")
        self.legend = _legend_below(ax, [self.stems, self.tree, self.query], ncol=3, y=-0.22)
        ax.set_title(" ", fontsize="medium")
        self._static = None
        self.visible = True

    @property
    def artists(self) -> list:
        return [self.stems, self.tree, self.query]

    def update(self, x, tree_weights, forest_weights, query: float, title: str = "") -> bool:
        """``x`` ``(n,)`` training inputs; ``tree_weights``, ``forest_weights`` ``(n,)`` at ``query``."""
        xs = _to_numpy(x).astype(float) - float(query)
        wt, wf = _to_numpy(tree_weights).astype(float), _to_numpy(forest_weights).astype(float)
        on = wf > 0
        self.stems.set_segments([[(a, 0.0), (a, b)] for a, b in zip(xs[on], wf[on], strict=True)])
        ton = wt > 0
        self.tree.set_data(xs[ton], wt[ton])
        self._show()
        top = _nice_top(max(float(wf.max()), float(wt.max()), 1e-3))
        static = (title, top)
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_xlim(-self.window, self.window)
        self.ax.set_ylim(0, top * 1.06)
        self.ax.set_xlabel("training input − query")
        self.ax.set_ylabel("weight in the prediction")
        self._static = static
        return True


class WeightFieldPlot(_SharedAxesDrawing):
    """A 2-D smoother on [0, 1]^2: its prediction as an image (a colour-blind-safe diverging map, fixed range), the
    training inputs (grey dots), those its prediction at the query averages (black rings sized by their weight)
    and the query (a green cross).  ``hide()`` hides it (the 1-D world shares its Axes); ``update`` returns True
    when a title changed or it was hidden."""

    def __init__(self, ax: Axes, side: int, limit: float = 1.5, max_size: float = 200.0):
        self.ax = ax
        self.side = int(side)
        self.max_size = float(max_size)
        half = 0.5 / (self.side - 1)
        self.image = ax.imshow(
            np.zeros((self.side, self.side)),
            origin="lower",
            extent=(-half, 1 + half, -half, 1 + half),
            cmap="PuOr_r",
            vmin=-limit,
            vmax=limit,
            aspect="auto",
            interpolation="nearest",
        )
        self.points = ax.scatter([], [], s=5, color=PALETTE["black"], alpha=0.35, linewidths=0)
        self.used = ax.scatter([], [], s=[], facecolors="none", edgecolors=PALETTE["black"], linewidths=1.3)
        (self.query,) = ax.plot(
            [], [], "X", color=PALETTE["bluish green"], ms=11, markeredgecolor=PALETTE["black"], mew=1.0
        )
        ax.set_title(" ", fontsize="medium")
        self._static = None
        self.visible = True
        self.hide()

    @property
    def artists(self) -> list:
        return [self.image, self.points, self.used, self.query]

    def update(self, x, field, weights, query: Sequence[float], title: str = "") -> bool:
        """``x`` ``(n, 2)`` training inputs; ``field`` ``(side, side)`` predictions indexed ``[iy, ix]``;
        ``weights`` ``(n,)`` the prediction's weights at ``query`` ``(qx, qy)``."""
        xs = _to_numpy(x).astype(float)
        f = _to_numpy(field).astype(float)
        if f.shape != (self.side, self.side):
            raise ValueError(f"field must have shape ({self.side}, {self.side}), got {f.shape}")
        w = _to_numpy(weights).astype(float)
        self.image.set_data(f)
        self.points.set_offsets(xs)
        used = w > 0
        self.used.set_offsets(xs[used])
        self.used.set_sizes(10.0 + self.max_size * w[used])
        self.query.set_data([float(query[0])], [float(query[1])])
        self._show()
        if title == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_xlim(-0.03, 1.03)
        self.ax.set_ylim(-0.03, 1.03)
        self.ax.set_xlabel("x1")
        self.ax.set_ylabel("x2")
        self._static = title
        return True


class DistanceCurvePlot:
    """Numbers against the distance of the test points from the training inputs (one position per distance,
    labelled with it): one line per label (blue solid, orange dashed, grey dotted), a vertical line and dots at
    the highlighted distance.  The vertical range starts at 0 and snaps to 1, 2 or 5 times a power of ten.
    ``update`` returns True when a title or a range changed."""

    _STYLES = ((_ENSEMBLE, "-", "o", 2.0), (PALETTE["orange"], "--", "s", 1.6), (_MUTED, ":", "^", 1.6))

    def __init__(self, ax: Axes, distances: Sequence[float], labels: Sequence[str]):
        if not 1 <= len(labels) <= len(self._STYLES):
            raise ValueError(f"labels must hold 1 to {len(self._STYLES)} names, got {len(labels)}")
        self.ax = ax
        self.distances = tuple(float(d) for d in distances)
        self.x = np.arange(len(self.distances), dtype=float)
        self.lines, self.dots = [], []
        for label, (color, ls, marker, lw) in zip(labels, self._STYLES, strict=False):
            (line,) = ax.plot([], [], ls, color=color, lw=lw, marker=marker, ms=3, label=label)
            (dot,) = ax.plot([], [], marker, color=color, ms=8, markeredgecolor=PALETTE["black"])
            self.lines.append(line)
            self.dots.append(dot)
        self.now = ax.axvline(0, color=_MUTED, lw=1, zorder=1)
        ax.set_xticks(self.x, [f"{d:g}" for d in self.distances], fontsize="small")
        ax.set_xlim(-0.3, len(self.distances) - 0.7)
        ax.set_xlabel("distance from the training inputs")
        _legend_below(ax, self.lines, ncol=len(self.lines), y=-0.3)
        ax.set_title(" ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [self.now, *self.lines, *self.dots]

    def update(self, curves: Sequence, distance: float, title: str = "", ylabel: str = "") -> bool:
        """``curves``: one ``(len(distances),)`` series per label; ``distance``: the highlighted one."""
        j = self.distances.index(float(distance))
        top = 0.0
        for line, dot, curve in zip(self.lines, self.dots, curves, strict=True):
            y = _to_numpy(curve).astype(float)
            line.set_data(self.x, y)
            dot.set_data([self.x[j]], [y[j]])
            top = max(top, float(np.max(y)))
        self.now.set_xdata([self.x[j], self.x[j]])
        static = (title, ylabel, _nice_top(max(top, 1e-9)))
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_ylabel(ylabel)
        self.ax.set_ylim(0, static[2] * 1.05)
        self._static = static
        return True


class MechanismBars:
    """A forest's gain over its tree split into parts (the paper's three mechanisms and their total), as bars
    with whiskers of +-2 standard errors; with no numbers the bars are hidden and a note says how to get them.
    ``update`` returns True when a title, the note or a range changed."""

    def __init__(self, ax: Axes, names: Sequence[str]):
        from matplotlib.collections import LineCollection

        self.ax = ax
        self.names = tuple(names)
        n = len(self.names)
        colors = [SERIES_COLORS[j % len(SERIES_COLORS)] for j in range(n - 1)] + [_ENSEMBLE]
        self.bars = ax.bar(np.arange(n), np.zeros(n), 0.6, color=colors, edgecolor=PALETTE["black"], linewidth=0.6)
        for bar, hatch in zip(self.bars, ("//", "..", "xx", ""), strict=False):
            bar.set_hatch(hatch)
        self.whiskers = LineCollection([], colors=PALETTE["black"], linewidths=1.5)
        ax.add_collection(self.whiskers)
        ax.axhline(0, color=_MUTED, lw=0.8)
        self.note = ax.text(0.5, 0.55, "", transform=ax.transAxes, ha="center", va="center", fontsize="small")
        ax.set_xticks(np.arange(n), list(self.names), fontsize="small")
        ax.set_xlim(-0.6, n - 0.4)
        ax.set_title(" ", fontsize="medium")
        self._static = None

    @property
    def artists(self) -> list:
        return [*self.bars, self.whiskers, self.note]

    def update(self, values, errors, title: str = "", ylabel: str = "", note: str = "") -> bool:
        """``values``, ``errors``: one number per name (whiskers ``values +- 2 errors``), or None (no numbers:
        ``note`` shows instead)."""
        if values is None:
            for bar in self.bars:
                bar.set_height(0.0)
                bar.set_visible(False)
            self.whiskers.set_segments([])
            self.note.set_text(note)
            static = (title, ylabel, note, None)
        else:
            v = [float(a) for a in values]
            e = [float(b) for b in errors]
            if len(v) != len(self.names) or len(e) != len(self.names):
                raise ValueError(f"values and errors must hold {len(self.names)} numbers, got {len(v)} and {len(e)}")
            for bar, a in zip(self.bars, v, strict=True):
                bar.set_height(a)
                bar.set_visible(True)
            self.whiskers.set_segments(
                [[(i, a - 2 * b), (i, a + 2 * b)] for i, (a, b) in enumerate(zip(v, e, strict=True))]
            )
            self.note.set_text("")
            hi = max(0.0, *(a + 2 * b for a, b in zip(v, e, strict=True)))
            lo = min(0.0, *(a - 2 * b for a, b in zip(v, e, strict=True)))
            span = _nice_top(max(hi, -lo, 1e-9))
            limits = (-span if lo < -0.05 * span else -0.05 * span, span if hi > 0.05 * span else 0.05 * span)
            static = (title, ylabel, "", limits)
        if static == self._static:
            return False
        self.ax.set_title(title, fontsize="medium")
        self.ax.set_ylabel(ylabel)
        if static[3] is not None:
            self.ax.set_ylim(static[3][0] * 1.05, static[3][1] * 1.05)
        self._static = static
        return True


__all__ += ["SmootherCurvePlot", "KernelStemPlot", "WeightFieldPlot", "DistanceCurvePlot", "MechanismBars"]
