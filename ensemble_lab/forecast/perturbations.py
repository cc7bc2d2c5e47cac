"""Initial-condition perturbations for an ensemble forecast: random, and flow-dependent (bred vectors).

An ensemble forecast starts its members from the analysis plus perturbations the size of the analysis error.

- RANDOM perturbations: independent Gaussian noise of std ``amplitude`` at every variable.  They point in every
  direction, most of which do not grow, so the ensemble's spread first shrinks and then grows slowly.
- BRED vectors (Toth and Kalnay 1993, 1997; NCEP's operational ensemble of the 1990s): run the model from a
  perturbed and an unperturbed state, every ``lead`` interval rescale their difference back to the amplitude,
  and repeat for ``cycles``.  The difference turns towards the directions in which errors grow fastest at
  that moment of the flow: the perturbations are FLOW-DEPENDENT, what FuXi-ENS learns to produce with its
  VAE.  Here breeding runs along the truth from the world's ``history`` (the truth one breeding window before
  the start) to the start: each cycle starts again from the true state at that time (as an analysis cycle keeps
  its control near the truth) and runs the model's forcing; each member breeds its own vector from its own
  random seed, and members come in pairs ``analysis + b, analysis - b`` (NCEP's paired perturbations;
  with an odd M the last member gets one more bred vector, unpaired).

Both return perturbations ``(M, N, J)`` in float64 with root-mean-square ``amplitude`` per case (bred vectors
exactly; random ones in expectation); add them to ``world.analysis`` to start an ensemble.

>>> from ensemble_lab.forecast import lorenz96
>>> from ensemble_lab.forecast.perturbations import bred_vectors, random_perturbations
>>> w = lorenz96(n_cases=4, n_leads=2)
>>> tuple(random_perturbations(w, 6, 0.5).shape), tuple(bred_vectors(w, 6, 0.5).shape)
((6, 4, 40), (6, 4, 40))
"""

from __future__ import annotations

import torch

from .._validation import MAX_COUNT, check_choice, check_in_range, check_int, check_seed
from .dynamics import integrate
from .world import check_world as _check_world

__all__ = ["random_perturbations", "bred_vectors", "initial_ensemble", "physics_ensemble", "PERTURBATIONS"]

PERTURBATIONS = ("random", "bred")


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(-1, keepdim=True).sqrt()


def random_perturbations(world, n_members: int, amplitude: float, *, seed: int = 0) -> torch.Tensor:
    """``(M, N, J)`` independent Gaussian perturbations of std ``amplitude``."""
    w = _check_world(world)
    m = check_int(n_members, "n_members", minimum=1, maximum=10_000)
    a = check_in_range(amplitude, "amplitude", 0.0, 100.0)
    gen = torch.Generator().manual_seed(check_seed(seed))
    return a * torch.randn(m, w.n_cases, w.n_variables, generator=gen, dtype=torch.float64)


def bred_vectors(
    world,
    n_members: int,
    amplitude: float,
    *,
    cycles: int | None = None,
    model_error: float | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """``(M, N, J)`` paired bred vectors (``+b, -b``) rescaled to RMS ``amplitude`` per case.

    Breeding takes ``cycles`` rescalings spread evenly over the world's breeding window (default: one per lead
    interval, 5 for the default window of 1.0 time units), with the model's forcing ``forcing + model_error``.
    """
    w = _check_world(world)
    m = check_int(n_members, "n_members", minimum=1, maximum=10_000)
    a = check_in_range(amplitude, "amplitude", 0.0, 100.0)
    window = round(w.breeding_window / w.dt)
    if window == 0:
        raise ValueError("bred_vectors needs a world with breeding_window > 0 (lorenz96(breeding_window=...))")
    if cycles is None:
        cycles = max(1, round(w.breeding_window / w.lead_interval))
    cycles = check_int(cycles, "cycles", minimum=1, maximum=min(window, MAX_COUNT))
    if window % cycles:
        raise ValueError(f"cycles={cycles} must divide the breeding window's {window} RK4 steps")
    f = w.model_forcing(model_error)
    n_vectors = (m + 1) // 2
    gen = torch.Generator().manual_seed(check_seed(seed))
    seed_amp = max(a, 1e-3)  # breed at a finite size even when the result is scaled to 0
    bred = seed_amp * torch.randn(n_vectors, w.n_cases, w.n_variables, generator=gen, dtype=torch.float64)
    per_cycle = window // cycles
    # the analysis cycle: every cycle starts again from the true state (a data assimilation system keeps its
    # control near the truth); the perturbed and control runs use the model's forcing
    anchors = integrate(w.history, window, dt=w.dt, forcing=w.forcing, every=per_cycle)  # (cycles + 1, N, J)
    for k in range(cycles):
        runs = torch.cat([anchors[k][None], anchors[k][None] + bred])
        both = integrate(runs, per_cycle, dt=w.dt, forcing=f, every=per_cycle)
        diff = both[-1, 1:] - both[-1, 0]
        bred = diff * (seed_amp / _rms(diff).clamp_min(1e-300))
    unit = bred / _rms(bred).clamp_min(1e-300)
    paired = torch.stack([unit, -unit], 1).reshape(-1, w.n_cases, w.n_variables)[:m]
    return a * paired


def initial_ensemble(
    world, n_members: int, amplitude: float, *, kind: str = "random", model_error: float | None = None, seed: int = 0
) -> torch.Tensor:
    """``(M, N, J)`` starting states: the analysis plus ``kind`` ("random" or "bred") perturbations."""
    w = _check_world(world)
    kind = check_choice(kind, "kind", PERTURBATIONS)
    if kind == "random":
        p = random_perturbations(w, n_members, amplitude, seed=seed)
    else:
        p = bred_vectors(w, n_members, amplitude, model_error=model_error, seed=seed)
    return w.analysis + p


def physics_ensemble(
    world,
    n_members: int,
    amplitude: float,
    *,
    kind: str = "random",
    model_error: float | None = None,
    n_leads: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """The model's ensemble forecast ``(M, N, L + 1, J)`` from :func:`initial_ensemble` (float64)."""
    w = _check_world(world)
    start = initial_ensemble(w, n_members, amplitude, kind=kind, model_error=model_error, seed=seed)
    return w.forecast(start, model_error=model_error, n_leads=n_leads)
