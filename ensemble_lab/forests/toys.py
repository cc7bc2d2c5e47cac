"""Toy regression worlds for forests: a 1-D and a 2-D truth, inputs, noisy outcomes, and test points away from the data.

- ``"sine"`` (1-D, :func:`toy_1d`): ``f(x) = sin(2 pi x)`` on ``x ~ U[0, 1]``: smooth, so a tree's staircase is
  a poor fit that averaging staircases with different steps improves;
- ``"diagonal"`` (2-D, :func:`toy_2d`): ``f(x) = tanh(6 (x1 + x2 - 1))`` on ``x ~ U[0, 1]^2``: a boundary oblique
  to the axes, which axis-aligned trees can only approximate by a staircase.

Outcomes are ``y = f(x) + noise * N(0, 1)``.  Test points "away from the data" follow the authors' design
(``generate_test_x_from_train_with_offset`` in their ``src/data_utils.py``): each training input moved by
``U(-distance, distance)`` in every coordinate (:meth:`ToyWorld.near`); ``distance = 0`` gives the training inputs
themselves.  Their simulations use the MARS functions of Friedman (d >= 5); these two are smaller, to draw.

Everything is float64 on the cpu and a deterministic function of the arguments (``seed=`` seeds a
``torch.Generator``); the outcomes are unitless.

>>> from ensemble_lab.forests import toy_1d
>>> world = toy_1d(noise=0.5)
>>> x, y = world.sample(4, seed=0)
>>> tuple(x.shape), tuple(y.shape), world.n_features
((4, 1), (4,), 1)
>>> bool((world.sample(4, seed=0)[1] == y).all())
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validation import (
    MAX_COUNT,
    as_tensor,
    check_choice,
    check_finite_result,
    check_finite_tensor,
    check_int,
    check_positive,
    check_seed,
)

__all__ = ["ToyWorld", "TOYS", "toy_1d", "toy_2d", "toy_world"]

#: the toy worlds, by name: their number of input features
TOYS = {"sine": 1, "diagonal": 2}


@dataclass(frozen=True)
class ToyWorld:
    """A toy regression world: ``name`` one of :data:`TOYS`, ``noise`` the outcome noise's standard deviation
    (the default of :meth:`outcomes` and :meth:`sample`; unitless, >= 0)."""

    name: str = "sine"
    noise: float = 0.5

    def __post_init__(self):
        check_choice(self.name, "name", tuple(TOYS))
        object.__setattr__(self, "noise", check_positive(self.noise, "noise", allow_zero=True))

    @property
    def n_features(self) -> int:
        return TOYS[self.name]

    def _x(self, x, name: str = "x") -> torch.Tensor:
        t = as_tensor(x, name).detach()
        if t.device.type != "cpu":
            raise ValueError(f"{name} must be on the cpu, got a tensor on {t.device}")
        d = self.n_features
        if t.ndim != 2 or t.shape[1] != d or t.shape[0] < 1:
            raise ValueError(
                f"{name} must have shape (n, {d}) with n >= 1 for the {self.name!r} world, got shape {tuple(t.shape)}"
            )
        check_finite_tensor(t, name)
        return t.to(torch.float64)

    def truth(self, x) -> torch.Tensor:
        """``f(x)`` ``(n,)`` float64 at inputs ``x`` ``(n, d)``.

        >>> ToyWorld("sine").truth([[0.25], [0.5]]).tolist()
        [1.0, 1.2246467991473532e-16]
        """
        t = self._x(x)
        if self.name == "sine":
            return torch.sin(2 * math.pi * t[:, 0])
        return torch.tanh(6.0 * (t[:, 0] + t[:, 1] - 1.0))

    def inputs(self, n: int, *, seed: int = 0) -> torch.Tensor:
        """``n`` inputs ``(n, d)`` drawn uniformly on ``[0, 1]^d``.

        >>> tuple(toy_2d().inputs(3).shape)
        (3, 2)
        """
        n = check_int(n, "n", minimum=1, maximum=MAX_COUNT)
        g = torch.Generator().manual_seed(check_seed(seed))
        return torch.rand(n, self.n_features, generator=g, dtype=torch.float64)

    def outcomes(self, x, *, noise: float | None = None, seed: int = 0) -> torch.Tensor:
        """Noisy outcomes ``(n,)`` at ``x`` ``(n, d)``: ``f(x) + noise * N(0, 1)`` (``noise=None``: the world's).

        >>> ToyWorld("sine", noise=0.0).outcomes([[0.25]]).tolist()
        [1.0]
        """
        f = self.truth(x)
        sd = self.noise if noise is None else check_positive(noise, "noise", allow_zero=True)
        g = torch.Generator().manual_seed(check_seed(seed))
        y = f + sd * torch.randn(f.shape[0], generator=g, dtype=torch.float64)
        return check_finite_result(y, f"the outcomes f(x) + noise * N(0, 1) (noise={sd!r})")

    def sample(self, n: int, *, noise: float | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """A training set: inputs ``(n, d)`` and noisy outcomes ``(n,)`` (both drawn from ``seed``).

        >>> x, y = toy_1d(noise=0.0).sample(3, seed=1)
        >>> bool(torch.equal(y, toy_1d().truth(x)))
        True
        """
        x = self.inputs(n, seed=seed)
        seed = check_seed(seed)
        return x, self.outcomes(x, noise=noise, seed=(seed + 1) % (2**63 - 1))

    def near(self, x, distance: float, *, seed: int = 0) -> torch.Tensor:
        """Test points away from ``x`` ``(n, d)``: each row moved by ``U(-distance, distance)`` in every
        coordinate (``distance`` >= 0, in input units; 0 gives ``x`` itself).

        >>> toy_1d().near([[0.5]], 0.0).tolist()
        [[0.5]]
        """
        t = self._x(x)
        dist = check_positive(distance, "distance", allow_zero=True)
        g = torch.Generator().manual_seed(check_seed(seed))
        return t + dist * (2 * torch.rand(t.shape, generator=g, dtype=torch.float64) - 1)


def toy_world(name: str = "sine", noise: float = 0.5) -> ToyWorld:
    """The toy world called ``name`` (one of :data:`TOYS`) with outcome noise ``noise``.

    >>> toy_world("diagonal").n_features
    2
    """
    return ToyWorld(name, noise)


def toy_1d(noise: float = 0.5) -> ToyWorld:
    """The 1-D world ``f(x) = sin(2 pi x)``, ``x ~ U[0, 1]``.

    >>> toy_1d().name
    'sine'
    """
    return ToyWorld("sine", noise)


def toy_2d(noise: float = 0.5) -> ToyWorld:
    """The 2-D world ``f(x) = tanh(6 (x1 + x2 - 1))``, ``x ~ U[0, 1]^2``.

    >>> toy_2d().name
    'diagonal'
    """
    return ToyWorld("diagonal", noise)
