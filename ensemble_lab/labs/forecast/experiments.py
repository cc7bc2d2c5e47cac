"""The guided experiments of notebook 07 (ensembles that forecast): every comparison paired over forecast cases,
repeated over independent worlds.

1. :func:`dispersion`: an ensemble whose initial perturbations are smaller than the analysis error is
   UNDER-DISPERSED: a U-shaped rank histogram and a spread-skill ratio below 1.  Inflating the perturbations to
   the analysis error's size fixes it.  Physics ensembles of 20 members from random perturbations of several
   amplitudes, with the imperfect model.
2. :func:`learned_vs_physics`: the CRPS-trained generator (FuXi-ENS's idea) against the MSE emulator (one run,
   and an ensemble of it from the physics' perturbations) and the physics ensemble, and the deep-ensemble
   Gaussian regressors: fair CRPS and spread-skill against lead time, 31 members each.
3. :func:`few_plus_generated`: SEEDS's question: 2 physics members plus 29 generated from them, against 31
   physics members and against the 2 alone; the STANDARD CRPS (the fair one is blind to the ensemble's size, so
   it cannot show what extra members buy), the Brier score of an extreme event, and the cost.

Forecast cases are independent (each world's cases are spun up separately), so the paired intervals resample
cases (:class:`~ensemble_lab.stats.ClusterResampler` with one unit per case); each case's score is its mean over
the 40 variables.  Worlds are ``lorenz96(n_cases=..., seed=s)`` for ``s`` in :data:`SEEDS` (the shipped
forecasters were trained on data of seeds 11 to 14: climate runs and a training world).  Everything runs with one
torch thread (:func:`lab_work`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ...forecast import (
    brier_threshold,
    crps_ensemble,
    ensemble_forecast,
    forecast_cost,
    lorenz96,
    physics_ensemble,
    rank_histogram,
    rank_histogram_flatness,
    spread_skill,
)
from ...forecast.forecasters import load_forecasters
from ...stats import ClusterResampler, PairedDifference
from ..base import lab_work

__all__ = [
    "SEEDS",
    "AMPLITUDES",
    "EXTREME_THRESHOLD",
    "DispersionRun",
    "dispersion",
    "LearnedRun",
    "learned_vs_physics",
    "FewPlusGeneratedRun",
    "few_plus_generated",
    "ssr_interval",
]

SEEDS: tuple[int, ...] = (0, 1, 2)
AMPLITUDES: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75)
#: an "extreme" value of x: about the 95th percentile of the Lorenz-96 climate (F = 8)
EXTREME_THRESHOLD = 8.5
N_RESAMPLES = 1000


def _evaluation_world(seed: int, n_cases: int):
    """An evaluation world, its truth (float32, as the forecasts) and the resampler of its independent cases."""
    world = lorenz96(n_cases=n_cases, seed=seed)
    return world, world.truth.float(), ClusterResampler(n=n_cases, n_resamples=N_RESAMPLES, seed=seed)


def _per_case(score: torch.Tensor) -> torch.Tensor:
    """``(N, J)`` per-point scores -> ``(N,)`` float64 per-case means."""
    return score.double().mean(-1)


def ssr_interval(members: torch.Tensor, truth: torch.Tensor, resampler: ClusterResampler) -> PairedDifference:
    """The spread-skill ratio minus 1 of ``(M, N, J)`` members against ``(N, J)`` truth at one lead, with its
    interval over resampled cases (``ratio = sqrt((M + 1) / M) * spread / skill``; resolved when the interval of
    ``ratio - 1`` excludes 0)."""
    m = members.shape[0]
    var = members.double().var(0, correction=1).mean(-1)  # (N,)
    err = (members.double().mean(0) - truth.double()).pow(2).mean(-1)
    scale = ((m + 1) / m) ** 0.5

    def ratio(v, e):
        return scale * (v / e).sqrt()

    full = ratio(var.mean(), err.mean())
    resampled = ratio(resampler.resampled_means(var), resampler.resampled_means(err)) - 1.0
    return resampler.interval(float(full) - 1.0, resampled)


# ---------------------------------------------------------------------------------------------------- 1


@dataclass(frozen=True)
class DispersionRun:
    """One amplitude on one world: per-lead fair CRPS ``(L + 1,)`` and spread-skill ratio ``(L + 1,)``, the rank
    histogram at ``lead`` (counts ``(M + 1,)``, its flatness ``delta``), and ``ssr_minus_1`` at ``lead`` with its
    interval over cases."""

    amplitude: float
    seed: int
    lead: int
    crps: torch.Tensor
    ssr: torch.Tensor
    rank_counts: torch.Tensor
    delta: float
    ssr_minus_1: PairedDifference
    case_crps: torch.Tensor  # (N,) fair CRPS per case at ``lead``


def _dispersion(amplitudes, seeds, n_cases: int, n_members: int, lead: int) -> list[DispersionRun]:
    runs = []
    for seed in seeds:
        world, truth, resampler = _evaluation_world(seed, n_cases)
        for amp in amplitudes:
            ens = physics_ensemble(world, n_members, amp, seed=seed + 100).float()
            crps = crps_ensemble(ens, truth, fair=True)  # (N, L + 1, J)
            ss = spread_skill(ens, truth, dim=(0, 2))
            counts = rank_histogram(ens[:, :, lead], truth[:, lead], seed=seed)
            runs.append(
                DispersionRun(
                    amplitude=amp,
                    seed=seed,
                    lead=lead,
                    crps=crps.double().mean(dim=(0, 2)),
                    ssr=ss.ratio.double(),
                    rank_counts=counts,
                    delta=rank_histogram_flatness(counts).delta,
                    ssr_minus_1=ssr_interval(ens[:, :, lead], truth[:, lead], resampler),
                    case_crps=_per_case(crps[:, lead]),
                )
            )
    return runs


def dispersion(amplitudes=AMPLITUDES, seeds=SEEDS, *, n_cases: int = 200, n_members: int = 20, lead: int = 3):
    """Experiment 1 (about 2 s): one :class:`DispersionRun` per (seed, amplitude)."""
    with lab_work():
        return _dispersion(tuple(amplitudes), tuple(seeds), n_cases, n_members, lead)


def crps_difference(a: DispersionRun, b: DispersionRun) -> PairedDifference:
    """Fair CRPS of run ``a`` minus run ``b`` at their lead, paired over the cases of their (common) world."""
    if a.seed != b.seed or a.lead != b.lead:
        raise ValueError("crps_difference compares two runs of the same world and lead")
    return ClusterResampler(n=a.case_crps.shape[0], n_resamples=N_RESAMPLES, seed=a.seed).compare_means(
        a.case_crps, b.case_crps
    )


# ---------------------------------------------------------------------------------------------------- 2

#: the forecasters of experiment 2; "emulator, one run" is the deterministic forecast (CRPS = mean absolute error)
LEARNED = ("physics", "emulator, one run", "emulator", "crps-generator", "gaussian-members")
#: the paired comparisons of experiment 2: (a, b) -> CRPS(a) - CRPS(b)
LEARNED_PAIRS = (("crps-generator", "physics"), ("crps-generator", "emulator"), ("emulator", "physics"))
LEARNED_LEADS = (1, 3, 5)


@dataclass(frozen=True)
class LearnedRun:
    """One world: per forecaster, fair CRPS ``(L + 1,)`` and spread-skill ``(L + 1,)`` (NaN for the single run);
    per pair of :data:`LEARNED_PAIRS` and lead of :data:`LEARNED_LEADS`, the paired CRPS difference."""

    seed: int
    crps: dict[str, torch.Tensor]
    ssr: dict[str, torch.Tensor]
    differences: dict[tuple[str, str, int], PairedDifference]


def _learned(seeds, n_cases: int, n_members: int) -> list[LearnedRun]:
    nets = load_forecasters()
    runs = []
    for seed in seeds:
        world, truth, resampler = _evaluation_world(seed, n_cases)
        per_case, crps, ssr = {}, {}, {}
        for name in LEARNED:
            if name == "emulator, one run":
                ens = nets.emulator.rollout(world.analysis.float(), world.n_leads)[None]
            else:
                ens = ensemble_forecast(name, world, n_members, seed=seed + 100, forecasters=nets)
            score = crps_ensemble(ens, truth, fair=ens.shape[0] > 1)
            per_case[name] = score.double().mean(-1)  # (N, L + 1)
            crps[name] = score.double().mean(dim=(0, 2))
            ssr[name] = (
                spread_skill(ens, truth, dim=(0, 2)).ratio.double()
                if ens.shape[0] > 1
                else torch.full((world.n_leads + 1,), float("nan"), dtype=torch.float64)
            )
        diffs = {
            (a, b, lead): resampler.compare_means(per_case[a][:, lead], per_case[b][:, lead])
            for a, b in LEARNED_PAIRS
            for lead in LEARNED_LEADS
        }
        runs.append(LearnedRun(seed=seed, crps=crps, ssr=ssr, differences=diffs))
    return runs


def learned_vs_physics(seeds=SEEDS, *, n_cases: int = 100, n_members: int = 31) -> list[LearnedRun]:
    """Experiment 2 (about 6 s per world on one thread): one :class:`LearnedRun` per world."""
    with lab_work():
        return _learned(tuple(seeds), n_cases, n_members)


# ---------------------------------------------------------------------------------------------------- 3

FEW = ("2 physics", "2 + 29 SEEDS", "2 + 29 SEEDS post-processed", "31 physics")
FEW_PAIRS = (
    ("2 + 29 SEEDS", "31 physics"),
    ("2 + 29 SEEDS", "2 physics"),
    ("2 + 29 SEEDS post-processed", "31 physics"),
)
FEW_LEAD = 3
#: the leads experiment 3 generates and scores (SEEDS generates each lead on its own, so only these are made)
FEW_LEADS = (1, 3, 5)


@dataclass(frozen=True)
class FewPlusGeneratedRun:
    """One world: per ensemble of :data:`FEW`, STANDARD CRPS at :data:`FEW_LEADS` ``(3,)``, Brier score of
    ``x > threshold`` at :data:`FEW_LEAD`, and seconds per member and lead (measured here, for all cases);
    paired differences (CRPS and Brier at :data:`FEW_LEAD`) for :data:`FEW_PAIRS`; the cost of a member in
    multiply-accumulates per lead and case."""

    seed: int
    crps: dict[str, torch.Tensor]
    brier: dict[str, float]
    seconds_per_member_lead: dict[str, float]
    crps_differences: dict[tuple[str, str], PairedDifference]
    brier_differences: dict[tuple[str, str], PairedDifference]
    macs_per_member_lead: dict[str, float]


def _few(seeds, n_cases: int, threshold: float) -> list[FewPlusGeneratedRun]:
    nets = load_forecasters()
    runs = []
    for seed in seeds:
        world, truth, resampler = _evaluation_world(seed, n_cases)
        start = time.perf_counter()
        physics = ensemble_forecast("physics", world, 31, seed=seed + 100)
        t_physics = (time.perf_counter() - start) / (31 * world.n_leads)
        physics, truth = physics[:, :, FEW_LEADS], truth[:, FEW_LEADS]
        ens, seconds = {"2 physics": physics[:2], "31 physics": physics}, {"2 physics": t_physics}
        seconds["31 physics"] = t_physics
        for label, net in (("2 + 29 SEEDS", nets.seeds), ("2 + 29 SEEDS post-processed", nets.seeds_post_processed)):
            start = time.perf_counter()
            generated = net.sample(physics[:2], 29, seed=seed + 1, leads=FEW_LEADS)
            seconds[label] = (time.perf_counter() - start) / (29 * len(FEW_LEADS))
            ens[label] = torch.cat([physics[:2], generated])
        per_case_crps, per_case_brier, crps, brier = {}, {}, {}, {}
        for name in FEW:
            score = crps_ensemble(ens[name], truth)  # standard: a finite ensemble as it is
            at = FEW_LEADS.index(FEW_LEAD)
            per_case_crps[name] = _per_case(score[:, at])
            crps[name] = score.double().mean(dim=(0, 2))
            b = brier_threshold(ens[name][:, :, at], truth[:, at], threshold)
            per_case_brier[name] = _per_case(b)
            brier[name] = float(b.double().mean())
        runs.append(
            FewPlusGeneratedRun(
                seed=seed,
                crps=crps,
                brier=brier,
                seconds_per_member_lead=seconds,
                crps_differences={
                    (a, b): resampler.compare_means(per_case_crps[a], per_case_crps[b]) for a, b in FEW_PAIRS
                },
                brier_differences={
                    (a, b): resampler.compare_means(per_case_brier[a], per_case_brier[b]) for a, b in FEW_PAIRS
                },
                macs_per_member_lead={
                    "physics": forecast_cost("physics"),
                    "SEEDS (generated)": forecast_cost("seeds", forecasters=nets),
                },
            )
        )
    return runs


def few_plus_generated(seeds=SEEDS, *, n_cases: int = 60, threshold: float = EXTREME_THRESHOLD):
    """Experiment 3 (about 6 s per world on one thread; the SEEDS members are most of it): one
    :class:`FewPlusGeneratedRun` per world.  Times are per member and lead: the physics integrates all 10 leads
    (it must: a lead follows from the one before), SEEDS generates only the 3 leads scored."""
    with lab_work():
        return _few(tuple(seeds), n_cases, threshold)
