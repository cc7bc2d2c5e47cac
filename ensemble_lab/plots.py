"""Matplotlib drawings for the Labs and notebooks.

Each drawing is a small class that creates its artists once on a given Axes and updates them in place
(``update(...)`` changes heights and positions; nothing is re-created), so a Lab redraws within a blink.
No widgets here: a Lab decides where the Axes live.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

__all__ = ["ReliabilityPlot", "WeightBars", "ScoreWeightBars", "BlitManager", "mosaic_figure", "freeze_layout",
           "image_grid"]

_ENSEMBLE = "#1f77b4"
_GAP = "#d62728"
_MUTED = "#7f7f7f"


def mosaic_figure(mosaic, figsize=(8.0, 4.0), **gridspec):
    """A figure laid out by ``plt.subplot_mosaic``, created without being shown (the caller shows it).

    Returns ``(fig, axes)`` with ``axes`` a dict from the mosaic's labels to Axes; ``gridspec`` keywords
    (``height_ratios``, ``width_ratios``) go to the grid.
    """
    with plt.ioff():
        fig, axes = plt.subplot_mosaic(mosaic, figsize=figsize, layout="constrained", gridspec_kw=gridspec or None)
    return fig, axes


def freeze_layout(fig) -> None:
    """Lay the figure out once (constrained layout) and keep those positions for every later draw.

    Constrained layout costs about half of a redraw; a Lab's plots keep their size, so once is enough.
    """
    fig.canvas.draw()
    fig.set_layout_engine("none")


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
        (self._curve,) = ax.plot([], [], color="black", lw=1.5, label="smoothed accuracy (smooth ECE)")
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
        self._acc_bars = self.ax.bar(zeros, zeros, width=0, align="edge", color=_ENSEMBLE, edgecolor="white",
                                     lw=0.5, label="accuracy")
        self._gap_bars = self.ax.bar(zeros, zeros, width=0, align="edge", facecolor="none", edgecolor=_GAP,
                                     lw=1.2, label="gap to mean confidence")
        if self.hist_ax is not None:
            self._hist_bars = self.hist_ax.bar(zeros, zeros, width=0, align="edge", color=_MUTED,
                                               edgecolor="white", lw=0.5)
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
        for i, (a, g) in enumerate(zip(self._acc_bars, self._gap_bars)):
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
        for bar, v in zip(self._bars, w):
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

    def update(self, scores, weights, labels: Sequence[str], score_range: tuple[float, float] | None = None,
               weight_top: float = 1.0) -> bool:
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
        for bar, v in zip(self._scores, s):
            bar.set_height(v)
        for bar, v in zip(self._weights, w):
            bar.set_height(v)
        return rebuilt


class BlitManager:
    """Redraw only the artists that change, over a cached background (matplotlib's blitting pattern).

    The managed artists are marked animated, so a full draw leaves them out; after every full draw (first
    display, a resize, a browser refresh) the static background is captured and the artists are drawn on top.
    ``update()`` restores that background and draws just the artists: a few ms instead of re-rendering every
    tick label.  Works with any Agg-based canvas (ipympl, inline, Agg).
    """

    def __init__(self, canvas, artists=()):
        self.canvas = canvas
        self._background = None
        self._artists: list = []
        self.set_artists(artists)
        canvas.mpl_connect("draw_event", self._on_draw)

    def set_artists(self, artists) -> bool:
        """Manage ``artists``; returns True if they differ from before (a full draw is then needed)."""
        artists = list(artists)
        changed = len(artists) != len(self._artists) or any(a is not b for a, b in zip(artists, self._artists))
        for a in artists:
            a.set_animated(True)
        self._artists = artists
        return changed

    def _on_draw(self, event) -> None:
        self._background = self.canvas.copy_from_bbox(self.canvas.figure.bbox)
        self._draw_artists()

    def _draw_artists(self) -> None:
        """Draw the managed artists onto the canvas, leaving the figure as fresh (or as stale) as it was.

        Drawing some artists marks their parts stale (a legend re-positions its children as it draws), and the
        mark climbs to the axes and the figure.  A stale figure is redrawn in interactive mode: pyplot's stale
        callback asks for a draw, and IPython asks for one after every cell *and every widget message*
        (ipykernel runs the post-execute hooks around comm messages).  With ipympl that request goes to the
        browser, which answers with a full draw, whose draw event lands here again: a redraw loop that keeps the
        kernel busy for as long as the page is open.  So the stale callback is off while the artists are drawn,
        and the marks their drawing left are cleared; the artists are blitted, not part of the full draw.
        """
        figure = self.canvas.figure
        fresh = [a for a in (figure, *figure.axes) if not a.stale]
        callback, figure.stale_callback = figure.stale_callback, None
        try:
            for a in self._artists:
                figure.draw_artist(a)
        finally:
            figure.stale_callback = callback
            for a in fresh:
                a.stale = False  # (setting False calls no callback)

    def update(self) -> None:
        """Show the artists' current state."""
        if self._background is None:
            self.canvas.draw()  # the draw_event captures the background and draws the artists
            return
        self.canvas.restore_region(self._background)
        self._draw_artists()
        self.canvas.blit(self.canvas.figure.bbox)


def image_grid(images, titles: Sequence[str] | None = None, ncols: int = 8, size: float = 1.1):
    """A figure of grey-scale or RGB images ``(M, C, H, W)`` in [0, 1], ``ncols`` per row, with optional titles."""
    imgs = _to_numpy(images)
    if imgs.ndim != 4 or imgs.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (M, 1 or 3, H, W), got shape {imgs.shape}")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"titles must have one entry per image ({len(imgs)}), got {len(titles)}")
    nrows = -(-len(imgs) // ncols)
    with plt.ioff():
        fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.2 * (titles is not None)),
                                 squeeze=False, layout="constrained")
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(imgs):
            img = imgs[i].transpose(1, 2, 0)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray_r", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize="x-small")
    return fig
