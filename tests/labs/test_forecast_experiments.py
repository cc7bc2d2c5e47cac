"""Notebook 07's experiments on small worlds: their numbers are the routines' numbers, their intervals pair the
right cases, and their figures draw."""

import pytest
import torch

from ensemble_lab.forecast import (
    crps_ensemble,
    ensemble_forecast,
    lorenz96,
    physics_ensemble,
    rank_histogram,
    spread_skill_ratio,
)
from ensemble_lab.labs.forecast import experiments as ex
from ensemble_lab.labs.forecast import figures
from ensemble_lab.stats import ClusterResampler


@pytest.fixture(scope="module")
def dispersion_runs():
    return ex.dispersion(amplitudes=(0.1, 0.5), seeds=(0, 1), n_cases=30, n_members=6, lead=2)


def test_dispersion_numbers_are_the_routines(dispersion_runs):
    run = next(r for r in dispersion_runs if r.seed == 1 and r.amplitude == 0.1)
    world = lorenz96(n_cases=30, seed=1)
    ens = physics_ensemble(world, 6, 0.1, seed=101).float()
    truth = world.truth.float()
    assert torch.allclose(run.crps, crps_ensemble(ens, truth, fair=True).double().mean(dim=(0, 2)), atol=1e-6)
    assert torch.allclose(run.ssr, spread_skill_ratio(ens, truth, dim=(0, 2)).double(), atol=1e-6)
    assert torch.equal(run.rank_counts, rank_histogram(ens[:, :, 2], truth[:, 2], seed=1))
    assert run.ssr_minus_1.difference == pytest.approx(float(run.ssr[2]) - 1.0, abs=1e-6)


def test_small_perturbations_are_under_dispersed_and_cost_crps(dispersion_runs):
    by = {(r.seed, r.amplitude): r for r in dispersion_runs}
    for seed in (0, 1):
        small, right = by[(seed, 0.1)], by[(seed, 0.5)]
        assert small.ssr_minus_1.high < 0  # resolved below 1
        assert small.rank_counts[0] + small.rank_counts[-1] > 0.5 * small.rank_counts.sum()  # U-shaped
        d = ex.crps_difference(small, right)
        assert d.resolved
        assert d.difference > 0
    with pytest.raises(ValueError, match="same world"):
        ex.crps_difference(by[(0, 0.1)], by[(1, 0.5)])


def test_ssr_interval_resamples_cases():
    world = lorenz96(n_cases=40, n_leads=1, seed=4)
    ens = physics_ensemble(world, 8, 0.5, model_error=0.0, seed=0).float()[:, :, 1]
    r = ClusterResampler(n=40, n_resamples=200, seed=0)
    d = ex.ssr_interval(ens, world.truth[:, 1].float(), r)
    assert d.n_units == 40
    assert d.low < 0 < d.high  # a reliable ensemble: not resolved from 1
    assert d.difference == pytest.approx(float(spread_skill_ratio(ens, world.truth[:, 1].float())) - 1, abs=1e-6)


def test_learned_vs_physics_pairs_the_same_cases():
    (run,) = ex.learned_vs_physics(seeds=(5,), n_cases=12, n_members=4)
    assert set(run.crps) == set(ex.LEARNED)
    world = lorenz96(n_cases=12, seed=5)
    gen = ensemble_forecast("crps-generator", world, 4, seed=105)
    assert torch.allclose(
        run.crps["crps-generator"],
        crps_ensemble(gen, world.truth.float(), fair=True).double().mean(dim=(0, 2)),
        atol=1e-6,
    )
    single = run.crps["emulator, one run"]
    assert torch.isnan(run.ssr["emulator, one run"]).all()
    assert single[3] > run.crps["emulator"][3]  # one run is worse than an ensemble of it
    d = run.differences[("crps-generator", "physics", 3)]
    assert d.difference == pytest.approx(float(run.crps["crps-generator"][3] - run.crps["physics"][3]), abs=1e-6)


def test_few_plus_generated_keeps_the_two_seeds_and_times_members():
    (run,) = ex.few_plus_generated(seeds=(6,), n_cases=8)
    assert set(run.crps) == set(ex.FEW)
    assert run.crps["2 physics"].shape == (len(ex.FEW_LEADS),)
    assert run.crps["31 physics"][1] < run.crps["2 physics"][1]  # the standard CRPS rewards more members
    assert all(v > 0 for v in run.seconds_per_member_lead.values())
    assert run.macs_per_member_lead["SEEDS (generated)"] > run.macs_per_member_lead["physics"]
    pair = ex.FEW_PAIRS[1]
    d = run.crps_differences[pair]
    assert d.difference == pytest.approx(float(run.crps[pair[0]][1] - run.crps[pair[1]][1]), abs=1e-6)


def test_the_figures_draw(dispersion_runs):
    learned = ex.learned_vs_physics(seeds=(5,), n_cases=6, n_members=3)
    few = ex.few_plus_generated(seeds=(6,), n_cases=4)
    for fig in (
        figures.dispersion_figure(dispersion_runs, shown=(0.1, 0.5)),
        figures.learned_figure(learned),
        figures.few_plus_generated_figure(few),
    ):
        assert fig.el_description
        assert len(fig.axes) >= 2
