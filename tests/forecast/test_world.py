"""The Lorenz-96 world: the equations against a hand-written loop, RK4 against scipy's adaptive solver, the truth,
observations and imperfect model, and the two kinds of initial-condition perturbations."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from ensemble_lab.forecast import (
    bred_vectors,
    climate_run,
    initial_ensemble,
    lorenz96,
    physics_ensemble,
    random_perturbations,
    spread_skill_ratio,
)
from ensemble_lab.forecast.dynamics import integrate, rk4_step, tendency


def _tendency_loop(x, f):
    j = len(x)
    return np.array([(x[(i + 1) % j] - x[i - 2]) * x[i - 1] - x[i] + f for i in range(j)])


@pytest.fixture(scope="module")
def world():
    return lorenz96(n_cases=200, n_leads=6, seed=3)


def test_tendency_is_lorenz_1996_equation():
    rng = np.random.default_rng(0)
    for j in (4, 5, 40):
        x = rng.normal(size=j) * 3
        got = tendency(torch.tensor(x), 8.0).numpy()
        np.testing.assert_allclose(got, _tendency_loop(x, 8.0), rtol=0, atol=1e-12)


def test_rk4_agrees_with_scipy_adaptive_solver():
    x0 = lorenz96(n_cases=1, n_leads=0, seed=1).truth[0, 0]
    ours = integrate(x0, 20, dt=0.05, forcing=8.0, every=20)[-1].numpy()  # 1 time unit
    ref = solve_ivp(lambda t, x: _tendency_loop(x, 8.0), (0, 1.0), x0.numpy(), rtol=1e-11, atol=1e-11).y[:, -1]
    # RK4's global error is O(dt^4), amplified by chaos over one time unit: 0.018 at worst here (x ~ 10)
    assert np.abs(ours - ref).max() < 0.05
    # and halving dt shrinks the error about 16-fold (fourth order)
    fine = integrate(x0, 40, dt=0.025, forcing=8.0, every=40)[-1].numpy()
    assert np.abs(fine - ref).max() < np.abs(ours - ref).max() / 8


def test_integrate_keeps_every_kth_state_and_leading_axes():
    x = 8.0 + torch.randn(3, 2, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    traj = integrate(x, 6, every=3)
    assert traj.shape == (3, 3, 2, 40)
    assert torch.equal(traj[0], x)
    assert torch.equal(traj[1], rk4_step(rk4_step(rk4_step(x, 0.05, 8.0), 0.05, 8.0), 0.05, 8.0))


def test_forcing_may_be_a_tensor_per_case():
    x = 8.0 + torch.zeros(2, 40, dtype=torch.float64)
    x[:, 0] += 0.01
    both = integrate(x, 5, forcing=torch.tensor([[8.0], [6.0]], dtype=torch.float64))
    assert torch.equal(both[:, 0], integrate(x[0], 5, forcing=8.0))
    assert torch.allclose(both[:, 1], integrate(x[1], 5, forcing=6.0), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(x0=torch.zeros(3)), "J >= 4"),
        (dict(x0=torch.full((5,), float("nan"))), "x0"),
        (dict(dt=0.0), "dt"),
        (dict(dt=1.0), "dt"),
        (dict(n_steps=-1), "n_steps"),
        (dict(every=0), "every"),
        (dict(forcing=float("inf")), "forcing"),
        (dict(forcing=torch.ones(3)), "forcing"),
    ],
)
def test_integrate_refuses_bad_input_by_name(kwargs, match):
    args = dict(x0=torch.zeros(5), n_steps=2) | kwargs
    with pytest.raises((ValueError, TypeError), match=match):
        integrate(**args)


def test_a_blow_up_is_refused_not_returned_as_nan():
    with pytest.raises(ValueError, match="dt"):
        integrate(8.0 + 0.01 * torch.arange(40.0), 200, dt=0.45, forcing=500.0)


def test_world_is_deterministic_and_seeds_differ():
    a, b = lorenz96(n_cases=5, n_leads=2, seed=0), lorenz96(n_cases=5, n_leads=2, seed=0)
    c = lorenz96(n_cases=5, seed=1)
    assert torch.equal(a.truth, b.truth)
    assert torch.equal(a.observations, b.observations)
    assert not torch.equal(a.truth[:, 0], c.truth[:, 0])


def test_observations_are_the_truth_plus_noise_of_the_stated_size(world):
    noise = world.observations - world.truth
    assert abs(noise.std().item() - world.obs_noise) < 0.01
    assert abs(noise.mean().item()) < 0.01
    assert torch.equal(world.analysis, world.observations[:, 0])


def test_cases_are_on_the_attractor_and_independent(world):
    start = world.truth[:, 0]
    assert abs(start.mean().item() - 2.3) < 0.15
    assert abs(start.std().item() - 3.6) < 0.15
    corr = np.corrcoef(start[:, 0].numpy(), start[:, 20].numpy())[0, 1]
    assert abs(corr) < 0.2
    across_cases = np.corrcoef(start[:-1, 0].numpy(), start[1:, 0].numpy())[0, 1]
    assert abs(across_cases) < 0.2


def test_the_perfect_model_from_the_truth_reproduces_the_truth(world):
    again = world.forecast(world.truth[:, 0], model_error=0.0)
    assert torch.equal(again, world.truth)
    drift = world.forecast(world.truth[:, 0])  # the world's imperfect model
    assert world.model_error == -0.5
    assert (drift[:, -1] - world.truth[:, -1]).pow(2).mean().sqrt() > 0.5


def test_history_leads_to_the_start(world):
    window = round(world.breeding_window / world.dt)
    start = integrate(world.history, window, dt=world.dt, forcing=world.forcing, every=window)[-1]
    assert torch.equal(start, world.truth[:, 0])


def test_lead_times_and_days(world):
    assert torch.allclose(world.lead_days, torch.arange(7, dtype=torch.float64))
    assert world.steps_per_lead == 4
    assert world.n_leads == 6
    assert world.n_cases == 200


def test_climate_run_gives_chains_of_consecutive_states():
    runs = climate_run(64, n_chains=4, interval=0.2, seed=0)
    assert runs.shape == (4, 17, 40)
    assert torch.allclose(integrate(runs[:, 3], 4, every=4)[-1], runs[:, 4], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n_variables=3), "n_variables"),
        (dict(n_cases=0), "n_cases"),
        (dict(lead_interval=0.07), "lead_interval"),
        (dict(obs_noise=-1.0), "obs_noise"),
        (dict(model_error=float("nan")), "model_error"),
        (dict(seed=-1), "seed"),
        (dict(forcing="8"), "forcing"),
    ],
)
def test_lorenz96_refuses_bad_settings_by_name(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        lorenz96(**(dict(n_cases=2, n_leads=1) | kwargs))


def test_forecast_refuses_initial_states_of_the_wrong_shape(world):
    with pytest.raises(ValueError, match="initial"):
        world.forecast(torch.zeros(3, 40))
    with pytest.raises(ValueError, match="model_error"):
        world.forecast(world.analysis, model_error=float("inf"))


# ---------------------------------------------------------------------------------------------- perturbations


def test_random_perturbations_have_the_amplitude_as_std(world):
    p = random_perturbations(world, 10, 0.3, seed=0)
    assert p.shape == (10, 200, 40)
    assert abs(p.std().item() - 0.3) < 0.005
    assert torch.equal(p, random_perturbations(world, 10, 0.3, seed=0))


def test_bred_vectors_are_paired_and_scaled_exactly(world):
    b = bred_vectors(world, 7, 0.4, seed=0)
    assert b.shape == (7, 200, 40)
    rms = b.pow(2).mean(-1).sqrt()
    assert torch.allclose(rms, torch.full_like(rms, 0.4), rtol=1e-12)
    assert torch.equal(b[1], -b[0])
    assert torch.equal(b[3], -b[2])
    assert torch.equal(b[5], -b[4])
    assert not torch.allclose(b[6], b[0])
    assert not torch.allclose(b[6], -b[0])


def test_bred_vectors_point_where_errors_grow(world):
    """Breeding's purpose: a bred perturbation grows faster over the next lead than a random one of the same size
    (1.52x against 1.36x in RMS here; the gap narrows at longer leads, as random ones turn towards growing
    directions too)."""

    def growth(p):
        runs = world.forecast(world.analysis + p, model_error=0.0, n_leads=1)
        base = world.forecast(world.analysis[None], model_error=0.0, n_leads=1)
        return ((runs[..., 1, :] - base[..., 1, :]).pow(2).mean() / p.pow(2).mean()).sqrt().item()

    g_bred = growth(bred_vectors(world, 4, 0.05, seed=0))
    g_random = growth(random_perturbations(world, 4, 0.05, seed=0))
    assert g_bred > 1.08 * g_random


def test_initial_ensemble_is_the_analysis_plus_perturbations(world):
    e = initial_ensemble(world, 3, 0.2, kind="bred", seed=1)
    assert torch.equal(e - world.analysis, bred_vectors(world, 3, 0.2, seed=1) + world.analysis - world.analysis)
    with pytest.raises(ValueError, match="kind"):
        initial_ensemble(world, 3, 0.2, kind="singular")
    with pytest.raises(TypeError, match="world"):
        random_perturbations(object(), 3, 0.2)


def test_a_perfect_model_ensemble_of_the_analysis_error_is_reliable(world):
    """Members and truth are exchangeable at lead 0 (both are the analysis plus noise of std obs_noise), and a
    perfect model keeps them so: the spread-skill ratio is about 1 at every lead."""
    ens = physics_ensemble(world, 20, world.obs_noise, model_error=0.0, seed=0)
    ratio = spread_skill_ratio(ens, world.truth, dim=(0, 2))
    assert ratio.shape == (7,)
    assert ((ratio > 0.9) & (ratio < 1.1)).all(), ratio


def test_too_small_perturbations_or_model_error_make_it_under_dispersed(world):
    small = spread_skill_ratio(physics_ensemble(world, 20, 0.1, model_error=0.0), world.truth, dim=(0, 2))
    assert (small[:3] < 0.5).all()
    biased = spread_skill_ratio(physics_ensemble(world, 20, 0.5, model_error=-1.0), world.truth, dim=(0, 2))
    fair = spread_skill_ratio(physics_ensemble(world, 20, 0.5, model_error=0.0), world.truth, dim=(0, 2))
    assert biased[-1] < fair[-1] - 0.05
    assert math.isfinite(biased.sum().item())
