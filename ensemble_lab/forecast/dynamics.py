"""The Lorenz-96 system: the "physics" of the forecasting world.

Lorenz (1996, "Predictability: a problem partly solved") introduced a ring of ``J`` variables ``x_j`` (think of
one quantity around a latitude circle) with advection, damping and a constant forcing ``F``:

    dx_j/dt = (x_{j+1} - x_{j-2}) x_{j-1} - x_j + F,        indices modulo J.

With ``F = 8`` and ``J = 40`` it is chaotic: small errors double in about 0.4 time units, and one time unit is
about 5 days of the atmosphere's error growth (Lorenz's own calibration: 0.05 units ~ 6 hours).  That is why
weather services forecast with ensembles, and why it is the standard toy for data assimilation and ensemble
forecasting (used by ECMWF's training material, by the DAPPER library and by many learned-emulator papers).

Shapes and units
----------------
- a state is ``(..., J)``: the last axis is the ring, leading axes are cases and members (any number);
- time is in model time units; ``dt`` is the RK4 step (0.05 by default, stable for ``F`` up to ~ 20);
- ``forcing`` is a python float or a tensor that broadcasts against the state (per case or per variable).

Integration is the classical fourth-order Runge-Kutta scheme, vectorised over every leading axis, so one call
steps a whole ensemble of a whole set of cases at once.  The computation stays in the input's dtype and device
(the world uses float64 so that its truth runs are the same on every machine up to float round-off).

>>> import torch
>>> from ensemble_lab.forecast.dynamics import tendency, integrate
>>> x = torch.full((5,), 8.0, dtype=torch.float64)   # the fixed point x_j = F
>>> float(tendency(x, 8.0).abs().max())
0.0
>>> integrate(x + torch.tensor([0.01, 0, 0, 0, 0], dtype=torch.float64), n_steps=10, every=5).shape
torch.Size([3, 5])
"""

from __future__ import annotations

import torch

from .._validation import MAX_COUNT, as_tensor, check_finite_tensor, check_int, check_positive

__all__ = ["tendency", "rk4_step", "integrate", "DEFAULT_DT"]

#: the RK4 step in model time units (Lorenz's 6 hours)
DEFAULT_DT = 0.05


def tendency(x: torch.Tensor, forcing) -> torch.Tensor:
    """``dx/dt`` of Lorenz-96 for states ``x`` ``(..., J)``, ``J >= 4``; same shape, dtype and device.

    No input checks (it is the inner loop); :func:`integrate` checks its arguments once.
    """
    return (torch.roll(x, -1, -1) - torch.roll(x, 2, -1)) * torch.roll(x, 1, -1) - x + forcing


def rk4_step(x: torch.Tensor, dt: float, forcing) -> torch.Tensor:
    """One classical RK4 step of length ``dt`` (model time units) from states ``x`` ``(..., J)``."""
    k1 = tendency(x, forcing)
    k2 = tendency(x + 0.5 * dt * k1, forcing)
    k3 = tendency(x + 0.5 * dt * k2, forcing)
    k4 = tendency(x + dt * k3, forcing)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _check_state(x, name: str) -> torch.Tensor:
    t = as_tensor(x, name)
    if t.ndim < 1 or t.shape[-1] < 4:
        raise ValueError(f"{name} must have shape (..., J) with J >= 4 variables on the ring, got {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    check_finite_tensor(t, name)
    return t


def check_forcing(forcing, like: torch.Tensor, name: str = "forcing"):
    """``forcing`` as a float, or as a finite real tensor on ``like``'s device that broadcasts against it."""
    if isinstance(forcing, torch.Tensor) or hasattr(forcing, "__array__") or isinstance(forcing, (list, tuple)):
        f = as_tensor(forcing, name).to(like.dtype)
        check_finite_tensor(f, name)
        if f.device != like.device:
            raise ValueError(f"{name} is on {f.device} but the state is on {like.device}")
        try:
            torch.broadcast_shapes(f.shape, like.shape)
        except RuntimeError as exc:
            raise ValueError(
                f"{name} of shape {tuple(f.shape)} does not broadcast against states of shape {tuple(like.shape)}"
            ) from exc
        if f.abs().max() > 1e3:
            raise ValueError(f"{name} must be at most 1e3 in size (the RK4 step is unstable far beyond F ~ 20)")
        return f
    from .._validation import check_in_range

    return check_in_range(forcing, name, -1e3, 1e3)


def integrate(x0, n_steps: int, *, dt: float = DEFAULT_DT, forcing=8.0, every: int = 1) -> torch.Tensor:
    """Integrate from ``x0`` ``(..., J)`` for ``n_steps`` RK4 steps of ``dt``; keep every ``every``-th state.

    Returns ``(n_steps // every + 1, ..., J)``: the initial state first, then the state after ``every``,
    ``2 * every``, ... steps.  Raises ``ValueError`` if the run leaves the finite numbers (a ``dt`` or forcing too
    large for RK4), instead of returning NaNs.
    """
    x = _check_state(x0, "x0")
    n_steps = check_int(n_steps, "n_steps", minimum=0, maximum=MAX_COUNT)
    every = check_int(every, "every", minimum=1, maximum=MAX_COUNT)
    dt = check_positive(dt, "dt")
    if dt > 0.5:
        raise ValueError(f"dt must be at most 0.5 model time units (RK4 is unstable beyond ~0.1 for F = 8), got {dt}")
    f = check_forcing(forcing, x)
    out = [x]
    for step in range(1, n_steps + 1):
        x = rk4_step(x, dt, f)
        if step % every == 0:
            out.append(x)
    traj = torch.stack(out)
    if not torch.isfinite(traj[-1]).all():
        raise ValueError(f"the integration left the finite numbers: dt={dt} is too large for this forcing")
    return traj
