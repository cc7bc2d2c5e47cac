"""Static figures of notebook 06's guided experiments (a ``matplotlib.figure.Figure`` each, never pyplot; show one
with ``ensemble_lab.plots.StaticFigure(fig)``).  Each builder draws results of :mod:`.experiments`; nothing is
computed here but the means over seeds that a legend states."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ...plots import PALETTE, describe, draw_interval, series_style
from .experiments import RANKING_PAIRS, GainIsDiversity, OverfitRun, Ranking, SelectionPath

__all__ = ["overfitting_figure", "decomposition_figure", "ranking_figure"]

_PLAIN, _BAGGED = PALETTE["orange"], PALETTE["blue"]


def _figure(figsize) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def overfitting_figure(path: SelectionPath, runs: Sequence[OverfitRun]) -> Figure:
    """Left: one plain selection's path on a small hill-climbing set (hill-climbing and held-out NLL); right: the
    held-out NLL of plain minus bagged selection per hill-climbing size and seed, with 90% intervals."""
    fig = _figure((9.0, 3.4))
    left, right = fig.subplots(1, 2)
    x = path.steps.numpy()
    left.plot(x, path.hill.numpy(), "-", color=_BAGGED, lw=2, label="hill-climbing set")
    left.plot(x, path.held_out.numpy(), "--", color=_PLAIN, lw=2, label="held out (test)")
    left.axvline(
        path.best_step, color=PALETTE["grey"], lw=1, ls=":", label=f"best hill-climbing step ({path.best_step})"
    )
    tail = np.concatenate([path.hill.numpy()[2:], path.held_out.numpy()[2:]])
    left.set_ylim(float(tail.min()) - 0.02, float(tail.max()) + 0.02)
    left.set_xlabel("models added")
    left.set_ylabel("NLL (nats)")
    left.set_title(f"plain selection on {path.hill_size} validation images", fontsize="medium")
    left.legend(fontsize="small")
    left.grid(alpha=0.3)
    sizes = sorted({r.hill_size for r in runs})
    seeds = sorted({r.seed for r in runs})
    for j, seed in enumerate(seeds):
        style = series_style(j)
        for i, size in enumerate(sizes):
            run = next(r for r in runs if r.hill_size == size and r.seed == seed)
            draw_interval(
                right, i + (j - 1) * 0.15, run.difference, style["color"], label=f"seed {seed}" if i == 0 else None
            )
    right.axvline(0, color=PALETTE["black"], lw=0.8)
    right.set_yticks(range(len(sizes)), [f"{s} images" for s in sizes])
    right.set_xlabel("held-out NLL: plain - bagged (millinats)")
    right.set_title("does bagging help? (> 0: yes; filled: resolved)", fontsize="medium")
    right.legend(fontsize="small")
    right.grid(alpha=0.3)
    # draw_interval scales by 100 by default; relabel the axis in millinats from the data's own units
    right.xaxis.set_major_formatter(lambda v, _pos: f"{v * 10:.0f}")
    return describe(
        fig,
        f"Left: NLL of plain forward selection on {path.hill_size} validation images against the number of models "
        f"added, on those images (solid) and on the held-out test images (dashed); the best hill-climbing step is "
        f"{path.best_step}. Right: held-out NLL of plain minus bagged selection for hill-climbing sets of "
        f"{', '.join(map(str, sizes))} images, one interval per seed; positive means bagging helps.",
    )


def decomposition_figure(gain: GainIsDiversity) -> Figure:
    """The NLL (left) and Brier (right) of three ensembles as mean member loss, diversity and ensemble loss, with
    each ensemble's best member's loss as a tick."""
    fig = _figure((9.0, 3.2))
    axes = fig.subplots(1, 2)
    parts = (
        ("mean member", PALETTE["grey"], ""),
        ("diversity", PALETTE["bluish green"], "//"),
        ("ensemble", PALETTE["blue"], ""),
    )
    for ax, (name, table, col) in zip(axes, (("NLL (nats)", gain.nll, 0), ("Brier", gain.brier, 1)), strict=True):
        rows = list(table)
        x = np.arange(len(rows))
        for j, (label, color, hatch) in enumerate(parts):
            values = [(table[r].mean_member_loss, table[r].diversity, table[r].ensemble_loss)[j] for r in rows]
            ax.bar(x + (j - 1) * 0.26, values, 0.26, color=color, hatch=hatch, edgecolor="white", label=label)
        best = [gain.best_member[r][col] for r in rows]
        ax.plot(x + 0.26, best, "_", color=PALETTE["vermillion"], ms=18, mew=2, label="its best member")
        ax.set_xticks(x, rows, fontsize="small")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize="x-small")
    fig.suptitle("ensemble loss = mean member loss - diversity (held-out test images)", fontsize="medium")
    sel = gain.nll["forward selection"]
    return describe(
        fig,
        "Bars of mean member loss, diversity and ensemble loss for the forward selection, the top-5 models and the "
        f"uniform average of the library, in NLL (left) and Brier (right); for the selection's NLL "
        f"{sel.mean_member_loss:.3f} - {sel.diversity:.3f} = {sel.ensemble_loss:.3f}. A tick marks each ensemble's "
        "best member.",
    )


def ranking_figure(ranking: Ranking) -> Figure:
    """Left: Kendall's tau of each estimator per team size, one dot per (target, label draw), the mean as a bar;
    right: the paired differences of mean tau with their intervals (clustered by target)."""
    fig = _figure((9.0, 3.4))
    left, right = fig.subplots(1, 2)
    sizes = sorted(ranking.tau)
    estimators = list(ranking.tau[sizes[0]])
    width = 0.8 / len(estimators)
    for j, e in enumerate(estimators):
        style = series_style(j)
        for i, size in enumerate(sizes):
            x = i + (j - (len(estimators) - 1) / 2) * width
            values = ranking.tau[size][e].numpy()
            left.bar(x, values.mean(), width * 0.9, color=style["color"], alpha=0.35, label=e if i == 0 else None)
            left.plot(np.full(len(values), x), values, style["marker"], color=style["color"], ms=4, ls="none")
    left.set_xticks(range(len(sizes)), [f"teams of {s}" for s in sizes])
    left.set_ylabel("Kendall's tau with the probed accuracy")
    left.set_title("how well each estimator ranks teams", fontsize="medium")
    left.legend(fontsize="x-small")
    left.grid(alpha=0.3, axis="y")
    labels = []
    for i, size in enumerate(sizes):
        for j, pair in enumerate(RANKING_PAIRS):
            y = i * (len(RANKING_PAIRS) + 1) + j
            draw_interval(right, y, ranking.differences[size][pair], series_style(j)["color"], scale=1.0)
            labels.append((y, f"{pair[0]} - {pair[1]}, size {size}"))
    right.axvline(0, color=PALETTE["black"], lw=0.8)
    right.set_yticks([y for y, _ in labels], [t for _, t in labels], fontsize="x-small")
    right.set_xlabel("difference of mean tau (> 0: OSBORN ranks better)")
    right.set_title("paired, clustered by target (3 clusters)", fontsize="medium")
    right.grid(alpha=0.3)
    return describe(
        fig,
        "Left: Kendall's tau between each estimator's scores and the probed accuracy of every team of 2 and of 3 "
        "source models, one marker per target and label draw, bars at the mean. Right: OSBORN's mean tau minus "
        "MS-LEEP's, E-LEEP's and that of OSBORN without its cohesion term, with 90% intervals clustered by target.",
    )
