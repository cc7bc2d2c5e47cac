"""A deterministic emulator of the imperfect model's time step, trained on mean squared error.

The baseline every learned weather model starts from (Pangu, GraphCast, FuXi's deterministic half): learn the
map from a state to the state one lead interval later from a long run of the model, with MSE, and forecast by
feeding the output back in.  Trained on MSE it predicts the conditional MEAN, so a single run has no spread
and its forecasts blur towards climatology at long leads; an ensemble of it needs perturbed initial states, as
the physics does.  Here it emulates the world's IMPERFECT model (forcing ``F + model_error``), so it inherits
that model's error.

Shapes: states ``(..., J)`` in the units of ``x``; :meth:`StepEmulator.rollout` gives ``(..., L + 1, J)``.

>>> import torch
>>> emu = StepEmulator(hidden=4, layers=1)        # untrained: the last layer starts at zero -> persistence
>>> x = torch.randn(2, 40)
>>> bool(torch.equal(emu.step(x), x)), tuple(emu.rollout(x, 3).shape)
(True, (2, 4, 40))
"""

from __future__ import annotations

import torch
from torch import nn

from .._validation import MAX_COUNT, as_tensor, check_finite_tensor, check_int, check_positive, check_seed
from .networks import CLIMATE_STD, RingNet, macs_per_state, normalise, train_loop

__all__ = ["StepEmulator", "train_emulator", "check_states"]


def check_states(x, name: str, n_variables: int | None = None) -> torch.Tensor:
    """States ``(..., J)`` as a finite float32 tensor (``J`` = ``n_variables`` when given, else >= 4)."""
    t = as_tensor(x, name)
    if t.ndim < 1 or t.shape[-1] < 4 or (n_variables is not None and t.shape[-1] != n_variables):
        want = f"{n_variables}" if n_variables is not None else "J >= 4"
        raise ValueError(f"{name} must have shape (..., {want}) (variables last), got {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    check_finite_tensor(t, name)
    return t.float()


class StepEmulator(nn.Module):
    """``x -> x + CLIMATE_STD * net(normalise(x))``: one lead interval of the emulated model."""

    def __init__(self, *, hidden: int = 24, layers: int = 4, kernel: int = 5):
        super().__init__()
        self.net = RingNet(1, 1, hidden=hidden, layers=layers, kernel=kernel)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., J)`` -> ``(..., J)``, one lead interval later (float32; no input checks: the inner loop)."""
        shape = x.shape
        flat = x.reshape(-1, 1, shape[-1])
        return (flat + CLIMATE_STD * self.net(normalise(flat))).reshape(shape)

    @torch.no_grad()
    def rollout(self, initial, n_leads: int) -> torch.Tensor:
        """Feed the emulator its own output ``n_leads`` times from ``initial`` ``(..., J)``: ``(..., L + 1, J)``."""
        x = check_states(initial, "initial")
        n_leads = check_int(n_leads, "n_leads", minimum=0, maximum=MAX_COUNT)
        out = [x]
        for _ in range(n_leads):
            x = self.step(x)
            out.append(x)
        return torch.stack(out, -2)

    def macs_per_lead(self, n_variables: int) -> int:
        """Multiply-accumulates of one member for one lead interval."""
        return macs_per_state(self.net, n_variables)


def train_emulator(
    states,
    *,
    iterations: int = 800,
    batch_size: int = 256,
    lr: float = 3e-3,
    hidden: int = 24,
    layers: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> tuple[StepEmulator, list[float]]:
    """Train a :class:`StepEmulator` on consecutive states of model runs ``(chains, T, J)`` (one lead apart,
    e.g. :func:`~ensemble_lab.forecast.world.climate_run`), on MSE.  Returns the emulator and the losses."""
    s = check_states(states, "states")
    if s.ndim != 3 or s.shape[1] < 2:
        raise ValueError(f"states must have shape (chains, T >= 2, J), got {tuple(s.shape)}")
    iterations = check_int(iterations, "iterations", minimum=1, maximum=MAX_COUNT)
    batch_size = check_int(batch_size, "batch_size", minimum=1, maximum=MAX_COUNT)
    lr = check_positive(lr, "lr")
    gen = torch.Generator().manual_seed(check_seed(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        emu = StepEmulator(hidden=hidden, layers=layers)
    x, y = s[:, :-1].reshape(-1, s.shape[-1]), s[:, 1:].reshape(-1, s.shape[-1])

    def loss(_step):
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen)
        return (emu.step(x[idx]) - y[idx]).pow(2).mean()

    losses = train_loop(emu, loss, iterations=iterations, lr=lr, desc="emulator (MSE)", progress=progress)
    return emu.eval(), losses
