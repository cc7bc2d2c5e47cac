"""Effective parameters (ensemble_lab.forests.effective) on closed-form cases and against the dense definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import BaggingRegressor, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

from ensemble_lab.forests import (
    effective_parameters,
    effective_parameters_of,
    forest_leaves,
    pointwise_parameters,
    smoother_weights,
    toy_1d,
    tree_effective_parameters,
    tree_parameters_of_leaves,
)


def _data(seed=0, n=60, d=2):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, d))
    return x, np.sin(4 * x[:, 0]) + rng.normal(size=n), rng.uniform(size=(30, d))


def test_a_fully_grown_tree_on_distinct_inputs_has_n_parameters():
    x, y, xq = _data()
    tree = DecisionTreeRegressor(random_state=0).fit(x, y)
    assert effective_parameters(tree, x) == 60.0
    assert effective_parameters(tree, x, xq) == 60.0  # every query lands in a leaf of one point
    forest = ExtraTreesRegressor(n_estimators=7, random_state=0).fit(x, y)  # no bootstrap: every tree is S = I
    assert effective_parameters(forest, x) == pytest.approx(60.0, abs=1e-9)
    assert torch.allclose(tree_effective_parameters(forest, x), torch.full((7,), 60.0, dtype=torch.float64))


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10])
def test_constant_leaves_of_k_points_give_n_over_k(k):
    n = 30
    x = np.arange(float(n))[:, None]
    y = (np.arange(n) // k).astype(float)  # pure blocks of k: the grown tree's leaves are the blocks
    tree = DecisionTreeRegressor().fit(x, y)
    assert effective_parameters(tree, x) == pytest.approx(n / k, rel=1e-12)
    assert effective_parameters_of(np.kron(np.eye(n // k), np.full((k, k), 1 / k))) == pytest.approx(n / k)


def test_the_constant_mean_has_one_parameter():
    assert effective_parameters_of(np.full((5, 60), 1 / 60)) == pytest.approx(1.0)


def test_a_forest_has_fewer_than_its_trees():
    x, y, xq = _data(2)
    for forest in (
        RandomForestRegressor(n_estimators=20, random_state=0).fit(x, y),
        RandomForestRegressor(n_estimators=20, max_features=1, bootstrap=False, random_state=0).fit(x, y),
        BaggingRegressor(
            DecisionTreeRegressor(min_samples_leaf=3), n_estimators=10, max_features=1, random_state=0
        ).fit(x, y),
    ):
        for q in (None, xq):
            p = effective_parameters(forest, x, q)
            per_tree = tree_effective_parameters(forest, x, q)
            assert per_tree.shape == (len(forest.estimators_),)
            if q is None and not getattr(forest, "bootstrap", True):
                assert p == pytest.approx(float(per_tree.mean()))  # no bootstrap: every tree interpolates, S = I
            else:
                assert p < float(per_tree.mean())
            assert p >= 1.0 - 1e-9


def test_equals_the_dense_definition_and_per_tree_weights():
    x, y, xq = _data(3)
    forest = RandomForestRegressor(n_estimators=8, min_samples_leaf=2, max_samples=0.7, random_state=0).fit(x, y)
    for q in (x, xq):
        s = smoother_weights(forest, x, q).numpy()
        assert effective_parameters(forest, x, q) == pytest.approx(60 * np.mean(np.sum(s**2, axis=1)), rel=1e-12)
        assert effective_parameters_of(torch.from_numpy(s)) == pytest.approx(effective_parameters(forest, x, q))
    # per tree: the first tree alone is the forest cut to one tree
    first = smoother_weights(forest, x, xq, n_trees=1).numpy()
    assert float(tree_effective_parameters(forest, x, xq)[0]) == pytest.approx(60 * np.mean(np.sum(first**2, 1)))
    assert effective_parameters(forest, x, xq, n_trees=1) == pytest.approx(60 * np.mean(np.sum(first**2, 1)))


def test_classifiers_and_the_test_time_drop():
    x, y, xq = _data(4)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y > 0)
    assert 1.0 <= effective_parameters(forest, x) <= 60.0
    w = toy_1d(noise=1.0)
    xt, yt = w.sample(150, seed=1)
    forest = ExtraTreesRegressor(n_estimators=30, random_state=0).fit(xt.numpy(), yt.numpy())
    near = [effective_parameters(forest, xt, w.near(xt, d, seed=2)) for d in (0.0, 0.05, 0.2)]
    assert near[0] == pytest.approx(150.0)  # no bootstrap: it interpolates the training outcomes
    assert max(near[1:]) < 0.8 * near[0]  # smoother away from the training inputs (the paper's Sec. 3.3)


def test_refuses_bad_weights():
    with pytest.raises(ValueError, match=r"weights must have shape \(n_query, n_train\)"):
        effective_parameters_of(np.ones(3))
    with pytest.raises(ValueError, match=r"weights must have shape"):
        effective_parameters_of(np.ones((0, 3)))
    with pytest.raises(ValueError, match=r"weights must be finite"):
        effective_parameters_of([[0.5, np.nan]])
    with pytest.raises(ValueError, match=r"weights' squared norms is not finite"):
        effective_parameters_of([[1e200, 0.0]])
    with pytest.raises(TypeError, match=r"weights must"):
        effective_parameters_of("abc")
    x, y, xq = _data(5)
    forest = RandomForestRegressor(n_estimators=3, random_state=0).fit(x, y)
    with pytest.raises(ValueError, match=r"^x_query must have 2 columns \(the forest's n_features_in_\), got 3$"):
        effective_parameters(forest, x, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"x_query must have 2 columns"):
        tree_effective_parameters(forest, x, np.ones((2, 3)))


def test_pointwise_parameters_are_the_dense_squared_norms_of_the_forest_and_of_each_tree():
    x, y, xq = _data(4)
    forest = RandomForestRegressor(n_estimators=5, min_samples_leaf=2, random_state=1).fit(x, y)
    for q in (x, xq):
        s = smoother_weights(forest, x, q).numpy()
        got = pointwise_parameters(forest, x, q).numpy()
        np.testing.assert_allclose(got, 60 * np.sum(s**2, axis=1), rtol=1e-12)
        assert float(got.mean()) == pytest.approx(effective_parameters(forest, x, q), rel=1e-12)
        per_tree = pointwise_parameters(forest, x, q, per_tree=True).numpy()
        assert per_tree.shape == (5, q.shape[0])
        for t in range(5):  # tree t's weights: the first t + 1 trees' sum minus the first t trees' sum
            w = smoother_weights(forest, x, q, n_trees=t + 1).numpy() * (t + 1)
            if t:
                w = w - smoother_weights(forest, x, q, n_trees=t).numpy() * t
            np.testing.assert_allclose(per_tree[t], 60 * np.sum(w**2, axis=1), rtol=1e-9)
        np.testing.assert_allclose(per_tree.mean(axis=1), tree_effective_parameters(forest, x, q).numpy(), rtol=1e-12)
    with pytest.raises(TypeError, match="per_tree"):
        pointwise_parameters(forest, x, per_tree="yes")


def test_tree_parameters_of_leaves_are_the_per_tree_pointwise_parameters():
    x, y, xq = _data(5)
    forest = RandomForestRegressor(n_estimators=4, max_samples=0.8, random_state=2).fit(x, y)
    got = tree_parameters_of_leaves(forest_leaves(forest, x, xq))
    assert torch.equal(got, pointwise_parameters(forest, x, xq, per_tree=True))
    assert got.shape == (4, 30)
    with pytest.raises(TypeError, match="leaves must be a ForestLeaves"):
        tree_parameters_of_leaves(np.zeros((2, 3)))
