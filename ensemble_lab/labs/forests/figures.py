"""Static figures of notebook 08's guided experiments (a ``matplotlib.figure.Figure`` each, never pyplot; show one
with ``ensemble_lab.plots.StaticFigure(fig)``).  Each builder draws results of :mod:`.experiments`; nothing is
computed here but the means over data seeds that a legend states."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ...plots import PALETTE, describe, series_style
from .experiments import COMPARED_DISTANCE, RECIPES, DistanceRun, MechanismRun, SmoothnessRun

__all__ = ["smoothness_figure", "distance_figure", "mechanisms_figure"]

_PROBLEMS = {"sine": "1-D sine", "diagonal": "2-D diagonal"}
_Z90 = 1.645  # a 90% normal interval from a standard error


def _figure(figsize) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def smoothness_figure(runs: Sequence[SmoothnessRun]) -> Figure:
    """Per world: effective parameters of the forest and of the mean of its trees, at the training inputs and at
    test inputs, for each recipe (mean over data seeds)."""
    problems = list(dict.fromkeys(r.problem for r in runs))
    fig = _figure((10.0, 3.9))
    axes = np.atleast_1d(fig.subplots(1, len(problems), sharey=False))
    bars = (
        ("trees, train", "trees_train", 0),
        ("forest, train", "forest_train", 1),
        ("trees, test", "trees_test", 2),
        ("forest, test", "forest_test", 3),
    )
    width = 0.2
    for ax, name in zip(axes, problems, strict=True):
        mine = [r for r in runs if r.problem == name]
        recipes = list(dict.fromkeys(r.recipe for r in mine))
        for label, attr, j in bars:
            values = [np.mean([getattr(r, attr) for r in mine if r.recipe == rec]) for rec in recipes]
            style = series_style(j)
            ax.bar(
                np.arange(len(recipes)) + (j - 1.5) * width,
                values,
                width,
                color=style["color"],
                hatch="//" if "trees" in label else None,
                edgecolor=PALETTE["black"],
                linewidth=0.5,
                label=label,
            )
        n = round(np.mean([r.trees_train for r in mine if r.recipe == recipes[0]]))
        ax.axhline(n, color=PALETTE["grey"], lw=1, ls=":")
        ax.set_xticks(range(len(recipes)), [rec.replace(", ", ",\n") for rec in recipes], fontsize="small")
        ax.set_ylabel("effective parameters")
        ax.set_title(f"{_PROBLEMS.get(name, name)} (n = {n})", fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(bars), fontsize="small")
    seeds = len({r.seed for r in runs})
    return describe(
        fig,
        f"Effective parameters of the forest and of its trees (mean of the trees), at the training inputs and at "
        f"test inputs, for {len(RECIPES)} recipes on each toy world (mean of {seeds} data seeds).",
    )


def distance_figure(runs: Sequence[DistanceRun]) -> Figure:
    """Per world: effective parameters against the distance of the test points from the training inputs, of the
    forest (one line per data seed) and of its trees (mean of the trees)."""
    problems = list(dict.fromkeys(r.problem for r in runs))
    fig = _figure((9.0, 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(problems)))
    for ax, name in zip(axes, problems, strict=True):
        mine = [r for r in runs if r.problem == name]
        for j, r in enumerate(mine):
            style = series_style(j)
            ax.plot(r.distances, r.forest.numpy(), lw=2, label=f"forest, seed {r.seed}", **style)
        ax.plot(mine[0].distances, mine[0].trees.numpy(), color=PALETTE["grey"], lw=2, ls="--", label="its trees")
        ax.axvline(COMPARED_DISTANCE, color=PALETTE["black"], lw=0.6, ls=":")
        ax.set_ylim(0, None)
        ax.set_xlabel("distance of the test points from the training inputs")
        ax.set_ylabel("effective parameters")
        ax.set_title(_PROBLEMS.get(name, name), fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    return describe(
        fig,
        "Effective parameters of a fully grown bootstrap forest and of its trees at test points moved up to a given "
        "distance from the training inputs (0: the training inputs), per toy world and data seed.",
    )


def mechanisms_figure(runs: Sequence[MechanismRun]) -> Figure:
    """One panel per world: the three gains (tree minus forest) at each noise level, with 90% normal intervals
    from their standard errors over the input draws."""
    problems = list(dict.fromkeys(r.problem for r in runs))
    fig = _figure((9.0, 3.4))
    axes = np.atleast_1d(fig.subplots(1, len(problems)))
    parts = ("noise", "variability", "bias")
    for ax, name in zip(axes, problems, strict=True):
        mine = [r for r in runs if r.problem == name]
        width = 0.8 / len(parts)
        for j, part in enumerate(parts):
            gains = [r.mechanisms.gains[part] for r in mine]
            errors = [_Z90 * getattr(r.mechanisms, f"{part}_gain_se") for r in mine]
            style = series_style(j)
            ax.bar(
                np.arange(len(mine)) + (j - 1) * width,
                gains,
                width,
                yerr=errors,
                color=style["color"],
                edgecolor=PALETTE["black"],
                linewidth=0.5,
                capsize=3,
                label=part,
            )
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xticks(range(len(mine)), [f"noise {r.noise:g}" for r in mine])
        ax.set_ylabel("gain over a tree (squared error)")
        ax.set_title(_PROBLEMS.get(name, name), fontsize="medium")
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize="small", title="mechanism")
    return describe(
        fig,
        "The forest's gain over a tree split into the three mechanisms (less outcome noise, less variability, less "
        "bias), at low and high outcome noise on each toy world, with 90% intervals over the input draws.",
    )
