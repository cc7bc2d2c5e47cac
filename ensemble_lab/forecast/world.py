"""The forecasting world: a Lorenz-96 truth, noisy observations of it, and an imperfect model to forecast with.

What a weather service has, in miniature:

- the TRUTH: ``n_cases`` independent stretches of the Lorenz-96 attractor (each spun up from its own random state,
  so the cases are independent and exchangeable), from ``breeding_window`` time units before the forecast's
  start to ``n_leads`` lead times after it;
- OBSERVATIONS: the truth plus independent Gaussian noise of standard deviation ``obs_noise`` at every lead; the
  observation at lead 0 is the ANALYSIS, the best guess of the initial state the forecasts start from (real
  analyses blend observations with a forecast; a noisy copy of the truth keeps the error's size explicit);
- the MODEL: the same equations with a forcing error, ``forcing + model_error`` (a biased parametrisation in one
  number; -0.5 by default, so the model's forecasts drift from the truth), integrated from perturbed analyses
  to make an ensemble forecast.  Every method that runs the model takes ``model_error=None``: the world's.

Lead times are ``lead_interval`` model time units apart (0.2 by default: one "day" in Lorenz's calibration of
0.05 units ~ 6 hours).  Everything is float64 on the cpu and a deterministic function of the arguments.

>>> from ensemble_lab.forecast import lorenz96
>>> w = lorenz96(n_cases=8, n_leads=3, seed=0)
>>> tuple(w.truth.shape), tuple(w.observations.shape), tuple(w.analysis.shape)
((8, 4, 40), (8, 4, 40), (8, 40))
>>> w.forecast(w.analysis[None]).shape   # the imperfect model from the analysis
torch.Size([1, 8, 4, 40])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validation import MAX_COUNT, as_tensor, check_finite_tensor, check_in_range, check_int, check_seed
from .dynamics import DEFAULT_DT, integrate

__all__ = ["Lorenz96World", "lorenz96", "climate_run", "check_world"]

#: time units of spin-up that take a random state onto the attractor
SPIN_UP = 20.0


def _steps(interval: float, dt: float, name: str) -> int:
    n = round(interval / dt)
    if n < 1 or abs(n * dt - interval) > 1e-9 * max(1.0, interval):
        raise ValueError(f"{name}={interval} must be a whole number of RK4 steps of dt={dt}")
    return n


def _spun_up(n: int, n_variables: int, forcing: float, dt: float, gen: torch.Generator) -> torch.Tensor:
    x = forcing + torch.randn(n, n_variables, generator=gen, dtype=torch.float64)
    return integrate(x, round(SPIN_UP / dt), dt=dt, forcing=forcing, every=round(SPIN_UP / dt))[-1]


@dataclass(frozen=True)
class Lorenz96World:
    """``n_cases`` forecast cases of a Lorenz-96 world (build it with :func:`lorenz96`).

    Attributes (float64, cpu):
        truth: ``(N, L + 1, J)``, the true state at leads ``0 .. L``.
        observations: ``(N, L + 1, J)``, the truth plus noise of std ``obs_noise``.
        analysis: ``(N, J)``, the observation at lead 0: where forecasts start.
        history: ``(N, J)``, the truth ``breeding_window`` time units before lead 0 (where breeding starts).
        forcing: the true forcing F; model_error: the model's forcing error (the model runs with
            ``forcing + model_error``); ``obs_noise``, ``dt``, ``lead_interval``, ``breeding_window``, ``seed``.
    """

    truth: torch.Tensor
    observations: torch.Tensor
    analysis: torch.Tensor
    history: torch.Tensor
    forcing: float
    model_error: float
    obs_noise: float
    dt: float
    lead_interval: float
    breeding_window: float
    seed: int

    @property
    def n_cases(self) -> int:
        return self.truth.shape[0]

    @property
    def n_leads(self) -> int:
        """L: the number of lead times after the start (the tensors hold ``L + 1`` including lead 0)."""
        return self.truth.shape[1] - 1

    @property
    def n_variables(self) -> int:
        return self.truth.shape[-1]

    @property
    def lead_times(self) -> torch.Tensor:
        """``(L + 1,)`` lead times in model time units."""
        return torch.arange(self.n_leads + 1, dtype=torch.float64) * self.lead_interval

    @property
    def lead_days(self) -> torch.Tensor:
        """``(L + 1,)`` lead times in "days" (0.2 model time units = 1 day, Lorenz 1996)."""
        return self.lead_times / 0.2

    @property
    def steps_per_lead(self) -> int:
        return _steps(self.lead_interval, self.dt, "lead_interval")

    def model_forcing(self, model_error=None) -> float:
        """The forecast model's forcing: ``forcing + model_error`` (``None``: the world's model error)."""
        if model_error is None:
            return self.forcing + self.model_error
        return self.forcing + check_in_range(model_error, "model_error", -20.0, 20.0)

    def forecast(self, initial, *, model_error=None, n_leads: int | None = None) -> torch.Tensor:
        """Run the imperfect model from ``initial`` ``(..., N, J)`` (e.g. ``(M, N, J)`` perturbed analyses).

        Returns ``(..., N, n_leads + 1, J)`` in ``initial``'s dtype and device, lead 0 first (``n_leads``
        defaults to the world's L).  The model's forcing is ``forcing + model_error`` (``None``: the world's;
        0: the perfect model).
        """
        x = as_tensor(initial, "initial")
        if x.ndim < 2 or tuple(x.shape[-2:]) != (self.n_cases, self.n_variables):
            raise ValueError(
                f"initial must have shape (..., {self.n_cases}, {self.n_variables}) (cases, variables), "
                f"got {tuple(x.shape)}"
            )
        if x.numel() == 0:
            raise ValueError(f"initial must not be empty, got shape {tuple(x.shape)}")
        check_finite_tensor(x, "initial")
        leads = self.n_leads if n_leads is None else check_int(n_leads, "n_leads", minimum=0, maximum=MAX_COUNT)
        f = self.model_forcing(model_error)
        spl = self.steps_per_lead
        traj = integrate(x, leads * spl, dt=self.dt, forcing=f, every=spl)  # (L + 1, ..., N, J)
        return traj.movedim(0, -2)


def check_world(world, name: str = "world") -> Lorenz96World:
    """``world`` if it is a :class:`Lorenz96World`, else a TypeError naming ``name``."""
    if not isinstance(world, Lorenz96World):
        raise TypeError(
            f"{name} must be a Lorenz96World (from ensemble_lab.forecast.lorenz96(...)), got {type(world).__name__}"
        )
    return world


def lorenz96(
    n_variables: int = 40,
    forcing: float = 8.0,
    *,
    model_error: float = -0.5,
    n_cases: int = 200,
    n_leads: int = 10,
    lead_interval: float = 0.2,
    obs_noise: float = 0.5,
    breeding_window: float = 1.0,
    dt: float = DEFAULT_DT,
    seed: int = 0,
) -> Lorenz96World:
    """Build a :class:`Lorenz96World` of ``n_cases`` independent cases (about 0.1 s for 200 cases).

    Args:
        n_variables: J, the size of the ring (>= 4; 40 is Lorenz's choice).
        forcing: the true forcing F (8: chaotic; ~ 4 or less: periodic).
        model_error: the forecast model's forcing error (its forcing is ``forcing + model_error``).
        n_cases: independent forecast cases N (each spun up from its own random state for 20 time units).
        n_leads: L, the lead times after the start; ``lead_interval`` model time units apart (a whole number of
            RK4 steps of ``dt``).
        obs_noise: std of the observation noise, in the units of ``x`` (the climatological std is about 3.6).
        breeding_window: time units of truth kept before the start (:attr:`Lorenz96World.history`).
        seed: everything random (initial states, noise) comes from a cpu generator seeded with it.

    >>> w = lorenz96(n_cases=3, n_leads=2, seed=0)
    >>> tuple(w.truth.shape), w.forcing + w.model_error  # (cases, leads 0..2, variables); the model's forcing
    ((3, 3, 40), 7.5)
    """
    n_variables = check_int(n_variables, "n_variables", minimum=4, maximum=10_000)
    forcing = check_in_range(forcing, "forcing", -100.0, 100.0)
    model_error = check_in_range(model_error, "model_error", -20.0, 20.0)
    n_cases = check_int(n_cases, "n_cases", minimum=1, maximum=1_000_000)
    n_leads = check_int(n_leads, "n_leads", minimum=0, maximum=10_000)
    lead_interval = check_in_range(lead_interval, "lead_interval", 0.0, 10.0, lo_open=True)
    obs_noise = check_in_range(obs_noise, "obs_noise", 0.0, 100.0)
    breeding_window = check_in_range(breeding_window, "breeding_window", 0.0, 100.0)
    dt = check_in_range(dt, "dt", 0.0, 0.5, lo_open=True)
    seed = check_seed(seed)
    spl = _steps(lead_interval, dt, "lead_interval")
    window = _steps(breeding_window, dt, "breeding_window") if breeding_window > 0 else 0
    gen = torch.Generator().manual_seed(seed)
    history = _spun_up(n_cases, n_variables, forcing, dt, gen)
    start = integrate(history, window, dt=dt, forcing=forcing, every=max(window, 1))[-1]
    truth = integrate(start, n_leads * spl, dt=dt, forcing=forcing, every=spl).movedim(0, 1).contiguous()
    noise = torch.randn(truth.shape, generator=gen, dtype=torch.float64)
    observations = truth + obs_noise * noise
    return Lorenz96World(
        truth=truth,
        observations=observations,
        analysis=observations[:, 0].contiguous(),
        history=history,
        forcing=forcing,
        model_error=model_error,
        obs_noise=obs_noise,
        dt=dt,
        lead_interval=lead_interval,
        breeding_window=breeding_window,
        seed=seed,
    )


def climate_run(
    n_samples: int,
    *,
    n_variables: int = 40,
    forcing: float = 8.0,
    interval: float = 0.2,
    n_chains: int = 16,
    dt: float = DEFAULT_DT,
    seed: int = 0,
) -> torch.Tensor:
    """States along long runs of Lorenz-96 with ``forcing``: ``(n_chains, n_samples // n_chains + 1, J)``.

    ``n_chains`` independent runs, each spun up, then sampled every ``interval`` time units: consecutive
    states of a chain are (state, state one interval later) pairs, the training data of a learned time step.
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1, maximum=10_000_000)
    n_chains = check_int(n_chains, "n_chains", minimum=1, maximum=100_000)
    n_variables = check_int(n_variables, "n_variables", minimum=4, maximum=10_000)
    forcing = check_in_range(forcing, "forcing", -100.0, 100.0)
    dt = check_in_range(dt, "dt", 0.0, 0.5, lo_open=True)
    spl = _steps(check_in_range(interval, "interval", 0.0, 10.0, lo_open=True), dt, "interval")
    gen = torch.Generator().manual_seed(check_seed(seed))
    x0 = _spun_up(n_chains, n_variables, forcing, dt, gen)
    per_chain = -(-n_samples // n_chains)
    return integrate(x0, per_chain * spl, dt=dt, forcing=forcing, every=spl).movedim(0, 1).contiguous()
