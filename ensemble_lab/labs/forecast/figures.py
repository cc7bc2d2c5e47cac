"""Static figures of notebook 07's guided experiments (a ``matplotlib.figure.Figure`` each, never pyplot; show one
with ``ensemble_lab.plots.StaticFigure(fig)``).  Each builder draws results of :mod:`.experiments`; nothing is
computed here but the means over worlds that a legend states."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ...plots import PALETTE, describe, draw_interval, series_style
from .experiments import (
    FEW,
    FEW_LEAD,
    FEW_PAIRS,
    LEARNED,
    DispersionRun,
    FewPlusGeneratedRun,
    LearnedRun,
)

__all__ = ["dispersion_figure", "learned_figure", "few_plus_generated_figure"]


def _figure(figsize) -> Figure:
    return Figure(figsize=figsize, layout="constrained")


def dispersion_figure(runs: Sequence[DispersionRun], shown=(0.1, 0.5, 0.75)) -> Figure:
    """Left: rank histograms at the runs' lead for a few amplitudes (the first world); right: the spread-skill
    ratio against lead time for every amplitude (mean over worlds), with the reliable value 1."""
    fig = _figure((9.0, 3.4))
    left, right = fig.subplots(1, 2)
    seed0 = min(r.seed for r in runs)
    lead = runs[0].lead
    for j, amp in enumerate(shown):
        run = next(r for r in runs if r.seed == seed0 and r.amplitude == amp)
        freq = run.rank_counts.double() / run.rank_counts.sum()
        style = series_style(j)
        left.step(
            np.arange(len(freq)),
            freq.numpy(),
            where="mid",
            color=style["color"],
            ls=style["ls"],
            lw=2,
            label=f"amplitude {amp} (delta {run.delta:.0f})",
        )
    n_bins = len(runs[0].rank_counts)
    left.axhline(1 / n_bins, color=PALETTE["grey"], lw=1, ls=":", label="flat (reliable)")
    left.set_xlabel("rank of the truth among the members")
    left.set_ylabel("frequency")
    left.set_title(f"rank histograms at day {lead}", fontsize="medium")
    left.legend(fontsize="small")
    left.grid(alpha=0.3)
    amps = sorted({r.amplitude for r in runs})
    for j, amp in enumerate(amps):
        mine = [r for r in runs if r.amplitude == amp]
        ssr = np.mean([r.ssr.numpy() for r in mine], axis=0)
        right.plot(np.arange(len(ssr)), ssr, lw=2, label=f"amplitude {amp}", **series_style(j))
    right.axhline(1.0, color=PALETTE["black"], lw=0.8)
    right.set_xlabel("lead time (days)")
    right.set_ylabel("spread / skill")
    right.set_title(f"spread-skill ratio (mean of {len({r.seed for r in runs})} worlds)", fontsize="medium")
    right.legend(fontsize="small")
    right.grid(alpha=0.3)
    return describe(
        fig,
        f"Left: rank histograms at day {lead} of 20-member physics ensembles whose initial perturbations have "
        f"amplitude {', '.join(map(str, shown))} (the analysis error is 0.5); a U shape means the truth falls "
        "outside the ensemble too often. Right: the spread-skill ratio against lead time for each amplitude; 1 is "
        "reliable, below 1 under-dispersed.",
    )


def learned_figure(runs: Sequence[LearnedRun]) -> Figure:
    """Fair CRPS (left) and spread-skill ratio (right) against lead time for every forecaster of experiment 2,
    mean over worlds."""
    fig = _figure((9.0, 3.4))
    left, right = fig.subplots(1, 2)
    for j, name in enumerate(LEARNED):
        crps = np.mean([r.crps[name].numpy() for r in runs], axis=0)
        x = np.arange(len(crps))
        left.plot(x, crps, lw=2, label=name, **series_style(j))
        if name != "emulator, one run":
            right.plot(x, np.mean([r.ssr[name].numpy() for r in runs], axis=0), lw=2, label=name, **series_style(j))
    left.set_xlabel("lead time (days)")
    left.set_ylabel("fair CRPS (units of x)")
    left.set_title("CRPS (lower is better)", fontsize="medium")
    left.legend(fontsize="small")
    left.grid(alpha=0.3)
    right.axhline(1.0, color=PALETTE["black"], lw=0.8)
    right.set_xlabel("lead time (days)")
    right.set_ylabel("spread / skill")
    right.set_title("spread-skill ratio (1 is reliable)", fontsize="medium")
    right.grid(alpha=0.3)
    return describe(
        fig,
        "Left: fair CRPS against lead time of the physics ensemble, one run of the MSE emulator, an ensemble of the "
        "emulator, the CRPS-trained generator and the Gaussian deep ensemble (31 members each, mean of "
        f"{len(runs)} worlds). Right: their spread-skill ratios.",
    )


def few_plus_generated_figure(runs: Sequence[FewPlusGeneratedRun]) -> Figure:
    """Left: standard CRPS at day 3 of the four ensembles (mean over worlds); middle: the paired differences per
    world; right: seconds per member and lead (log scale)."""
    fig = _figure((11.5, 3.6))
    left, middle, right = fig.subplots(1, 3)
    at = {"crps": [np.mean([float(r.crps[n][1]) for r in runs]) for n in FEW]}
    colors = [series_style(j)["color"] for j in range(len(FEW))]
    left.barh(range(len(FEW)), at["crps"], color=colors)
    left.set_yticks(range(len(FEW)), FEW)
    left.invert_yaxis()
    left.set_xlabel(f"standard CRPS at day {FEW_LEAD}")
    left.set_title(f"skill (mean of {len(runs)} worlds)", fontsize="medium")
    left.grid(alpha=0.3, axis="x")
    for i, pair in enumerate(FEW_PAIRS):
        for j, r in enumerate(runs):
            draw_interval(
                middle,
                i + (j - 1) * 0.18,
                r.crps_differences[pair],
                series_style(j)["color"],
                label=f"world {r.seed}" if i == 0 else None,
                scale=1.0,
            )
    middle.axvline(0, color=PALETTE["black"], lw=0.8)
    middle.set_yticks(range(len(FEW_PAIRS)), [f"{a}\n- {b}" for a, b in FEW_PAIRS], fontsize="small")
    middle.invert_yaxis()
    middle.set_xlabel("CRPS difference (filled: resolved)")
    middle.set_title("paired over cases", fontsize="medium")
    middle.legend(fontsize="small")
    middle.grid(alpha=0.3)
    secs = {
        "physics member": np.mean([r.seconds_per_member_lead["31 physics"] for r in runs]),
        "SEEDS member": np.mean([r.seconds_per_member_lead["2 + 29 SEEDS"] for r in runs]),
    }
    right.barh(range(2), list(secs.values()), color=[PALETTE["blue"], PALETTE["orange"]])
    right.set_xscale("log")
    right.set_xlim(min(secs.values()) / 5, max(secs.values()) * 3)
    right.set_yticks(range(2), list(secs))
    right.set_xlabel("seconds per member and lead")
    right.set_title("cost on this cpu", fontsize="medium")
    right.grid(alpha=0.3, axis="x")
    return describe(
        fig,
        f"Left: standard CRPS at day {FEW_LEAD} of 2 physics members, 2 members plus 29 generated by the SEEDS-like "
        "model (emulating, and post-processed towards the truth), and 31 physics members. Middle: paired "
        "differences with 90% intervals, one per world. Right: seconds to make one member at one lead time, physics "
        "against a generated member, on a log scale.",
    )
