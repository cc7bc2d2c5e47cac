"""The three mechanisms (ensemble_lab.forests.mechanisms): the identity, determinism, closed-form limits, bad input.

Small sizes (30-60 training points, a few trees): the decomposition's arithmetic and bookkeeping are what is
tested here; the notebook-sized numbers and their timings are in the module's docstring and the report.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import (
    BaggingRegressor,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeRegressor

from ensemble_lab.forests import PARTS, Mechanisms, forest_mechanisms, toy_1d, toy_2d

SMALL = dict(n_train=40, n_test=60, n_inputs=3, n_noise=2, n_seeds=4)


def _exact(m: Mechanisms):
    assert m.tree_noise + m.tree_variability + m.tree_bias == pytest.approx(m.tree_error, abs=1e-12)
    assert m.forest_noise + m.forest_variability + m.forest_bias == pytest.approx(m.forest_error, abs=1e-12)
    assert m.noise_gain + m.variability_gain + m.bias_gain == pytest.approx(m.gain, abs=1e-12)
    assert m.gain == pytest.approx(m.tree_error - m.forest_error, abs=1e-12)
    assert m.tree_parts.shape == (m.n_inputs, len(PARTS))
    assert torch.allclose(
        m.tree_parts.mean(0), torch.tensor([m.tree_noise, m.tree_variability, m.tree_bias], dtype=torch.float64)
    )
    assert m.tree_variability >= 0
    assert m.forest_variability >= 0
    assert m.tree_bias >= 0
    assert m.forest_bias >= 0


@pytest.mark.parametrize(
    ("world", "forest", "tree"),
    [
        (toy_1d(0.5), RandomForestRegressor(n_estimators=5), None),
        (toy_2d(0.3), RandomForestRegressor(n_estimators=5, max_features=1, min_samples_leaf=3), None),
        (toy_1d(0.5), ExtraTreesRegressor(n_estimators=4, max_leaf_nodes=8), DecisionTreeRegressor(max_leaf_nodes=8)),
        (toy_2d(0.3), BaggingRegressor(n_estimators=4, max_features=1), None),
    ],
)
def test_the_identity_is_exact(world, forest, tree):
    _exact(forest_mechanisms(world, forest, tree, **SMALL, seed=1))


def test_deterministic_given_a_seed_and_the_clean_parts_shared_across_noise():
    forest = RandomForestRegressor(n_estimators=4, max_leaf_nodes=10)
    a = forest_mechanisms(toy_1d(0.5), forest, **SMALL, seed=7)
    b = forest_mechanisms(toy_1d(0.5), forest, **SMALL, seed=7)
    assert a.gain == b.gain
    assert torch.equal(a.tree_parts, b.tree_parts)
    assert torch.equal(a.forest_parts, b.forest_parts)
    c = forest_mechanisms(toy_1d(2.0), forest, **SMALL, seed=7)
    # the noiseless fits do not depend on the noise level: common random numbers across noise levels
    assert torch.equal(a.forest_parts[:, 1:], c.forest_parts[:, 1:])
    assert c.noise_gain > a.noise_gain


def test_no_noise_no_noise_part_and_distance_zero_is_in_sample():
    m = forest_mechanisms(toy_1d(0.0), RandomForestRegressor(n_estimators=4), **SMALL)
    assert m.tree_noise == m.forest_noise == m.noise_gain == 0.0
    _exact(m)
    # fully grown trees interpolate the noiseless outcomes: in-sample, a tree's error is 0
    m0 = forest_mechanisms(toy_1d(0.0), DecisionTreeRegressor(), DecisionTreeRegressor(), **SMALL, distance=0.0)
    assert m0.tree_error == 0.0
    assert m0.forest_error == 0.0
    assert m0.n_test == 40
    assert m0.p_test_tree == pytest.approx(40.0)


def test_the_noise_part_of_a_fully_grown_tree_is_the_noise_variance():
    """A fully grown tree copies one training outcome: its noise part at fresh inputs is about noise^2 (the
    fixed-smoother value noise^2 p / n with p = n)."""
    sigma = 2.0
    m = forest_mechanisms(
        toy_1d(sigma),
        DecisionTreeRegressor(),
        DecisionTreeRegressor(),
        n_train=60,
        n_test=200,
        n_inputs=4,
        n_noise=6,
        n_seeds=2,
        seed=3,
    )
    assert m.p_test_tree == pytest.approx(60.0)
    assert m.tree_noise == pytest.approx(sigma**2, rel=0.25)


def test_high_noise_makes_the_noise_mechanism_dominate():
    forest = RandomForestRegressor(n_estimators=8)
    high = forest_mechanisms(toy_2d(2.0), forest, **SMALL, seed=2)
    assert high.dominant == "noise"
    assert high.noise_gain > 3 * high.noise_gain_se
    assert high.p_test_forest < high.p_test_tree
    low = forest_mechanisms(toy_2d(0.0), RandomForestRegressor(n_estimators=8, max_features=1), **SMALL, seed=2)
    assert low.dominant in ("variability", "bias")
    assert set(low.gains) == set(PARTS)


def test_refuses_bad_input():
    forest = RandomForestRegressor(n_estimators=2)
    with pytest.raises(TypeError, match=r"world must be a ToyWorld"):
        forest_mechanisms("sine", forest)
    with pytest.raises(TypeError, match=r"forest must be a regressor"):
        forest_mechanisms(toy_1d(), RandomForestClassifier())
    with pytest.raises(TypeError, match=r"forest must be .*GradientBoostingRegressor"):
        forest_mechanisms(toy_1d(), GradientBoostingRegressor())
    with pytest.raises(TypeError, match=r"tree must be .*got str"):
        forest_mechanisms(toy_1d(), forest, "tree")
    with pytest.raises(ValueError, match=r"forest must average its leaves"):
        forest_mechanisms(toy_1d(), RandomForestRegressor(criterion="absolute_error"))
    with pytest.raises(ValueError, match=r"n_inputs must be in \[2"):
        forest_mechanisms(toy_1d(), forest, n_inputs=1)
    with pytest.raises(ValueError, match=r"noise must be a finite number >= 0"):
        forest_mechanisms(toy_1d(), forest, noise=np.inf)
    with pytest.raises(ValueError, match=r"distance must be a finite number >= 0"):
        forest_mechanisms(toy_1d(), forest, distance=-1.0)
    with pytest.raises(ValueError, match=r"ask for .* tree fits"):
        forest_mechanisms(toy_1d(), RandomForestRegressor(n_estimators=1000), n_inputs=100, n_seeds=100, n_noise=100)
