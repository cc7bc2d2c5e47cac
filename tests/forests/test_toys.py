"""The toy worlds (ensemble_lab.forests.toys): closed forms, determinism, test points at a distance, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ensemble_lab.forests import TOYS, ToyWorld, toy_1d, toy_2d, toy_world


def test_truths_in_closed_form():
    x = torch.tensor([[0.0], [0.25], [0.75]], dtype=torch.float64)
    assert torch.allclose(toy_1d().truth(x), torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64), atol=1e-15)
    x2 = torch.tensor([[0.5, 0.5], [1.0, 1.0], [0.1, 0.2]], dtype=torch.float64)
    want = torch.tensor([0.0, math.tanh(6.0), math.tanh(6 * -0.7)], dtype=torch.float64)
    assert torch.allclose(toy_2d().truth(x2), want, atol=1e-15)
    assert toy_world("diagonal", 0.3) == ToyWorld("diagonal", 0.3)
    assert TOYS == {"sine": 1, "diagonal": 2}


@pytest.mark.parametrize("world", [toy_1d(0.5), toy_2d(1.0)])
def test_deterministic_given_a_seed(world):
    x, y = world.sample(50, seed=3)
    x2, y2 = world.sample(50, seed=3)
    assert torch.equal(x, x2)
    assert torch.equal(y, y2)
    assert not torch.equal(world.sample(50, seed=4)[1], y)
    assert x.shape == (50, world.n_features)
    assert x.dtype == torch.float64
    assert float(x.min()) >= 0
    assert float(x.max()) <= 1
    resid = y - world.truth(x)
    assert abs(float(resid.std()) - world.noise) < 0.3 * world.noise  # noise of the stated size
    assert torch.equal(world.outcomes(x, noise=0.0), world.truth(x))


def test_near_moves_each_input_by_at_most_the_distance():
    w = toy_2d()
    x = w.inputs(200, seed=1)
    moved = w.near(x, 0.1, seed=2)
    assert torch.equal(w.near(x, 0.0), x)
    step = (moved - x).abs()
    assert float(step.max()) <= 0.1
    assert float(step.max()) > 0.09  # uniform on (-0.1, 0.1): the edges are reached
    assert torch.equal(w.near(x.numpy(), 0.1, seed=2), moved)


def test_refuses_bad_input():
    with pytest.raises(ValueError, match=r"name must be one of 'sine', 'diagonal'"):
        ToyWorld("cosine")
    with pytest.raises(ValueError, match=r"noise must be a finite number >= 0"):
        toy_1d(-1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 2\)"):
        toy_2d().truth(np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"x must be finite"):
        toy_1d().truth([[np.nan]])
    with pytest.raises(ValueError, match=r"distance must be a finite number >= 0"):
        toy_1d().near([[0.5]], -0.1)
    with pytest.raises(ValueError, match=r"n must be in \[1"):
        toy_1d().inputs(0)
    with pytest.raises(TypeError, match=r"seed must be an int"):
        toy_1d().sample(3, seed=1.5)
