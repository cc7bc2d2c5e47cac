"""Headless tests of the forests Lab: every number against the routines on the same fitted forest (the weights are
``smoother_weights(..., n_trees=k)`` rows, the effective parameters ``effective_parameters`` and
``tree_effective_parameters``), the prefix property (an ``n_trees`` move refits nothing), the caches, refusals to
the status line, links, the settings the 1-D world ignores, and the two challenges."""

import numpy as np
import pytest
import torch
from sklearn.ensemble import RandomForestRegressor

from ensemble_lab.forests import (
    effective_parameters,
    forest_mechanisms,
    smoother_weights,
    toy_world,
    tree_effective_parameters,
)
from ensemble_lab.labs import ForestsLab, ForestsState, Lab, links
from ensemble_lab.labs.base import lab_work
from ensemble_lab.labs.forests.lab import (
    CHALLENGE_ERROR,
    DISTANCES,
    N_TRAIN,
    NEAR_SEED,
    fit_key,
)

from .conftest import assert_refused

SMALL_RUNS = {"n_inputs": 2, "n_noise": 1, "n_seeds": 2, "n_test": 50}


@pytest.fixture(autouse=True)
def one_thread():
    with lab_work():
        yield


@pytest.fixture(scope="module")
def shared_lab():
    lab = ForestsLab(progress=False, mechanism_runs=SMALL_RUNS)
    return lab, lab.state.to_dict()


@pytest.fixture
def lab(shared_lab):
    lab, defaults = shared_lab
    assert lab.set(**defaults)
    return lab


def _forest(problem, noise, leaf, max_features, bootstrap, seed):
    world = toy_world(problem, noise)
    x, y = world.sample(N_TRAIN[problem], seed=seed)
    forest = RandomForestRegressor(
        n_estimators=100, min_samples_leaf=leaf, max_features=max_features, bootstrap=bootstrap, random_state=seed
    ).fit(x.numpy(), y.numpy())
    return world, x, y, forest


CASES = [
    # problem, noise, leaf, max_features, bootstrap, seed, n_trees, query_x, query_y, distance
    ("sine", 0.3, 1, 2, True, 0, 10, 0.25, 0.75, 0.05),
    ("sine", 1.0, 10, 1, False, 1, 37, 0.6, 0.0, 0.0),
    ("diagonal", 0.1, 2, 1, True, 2, 100, 0.375, 0.5, 0.2),
    ("diagonal", 0.3, 5, 2, False, 0, 1, 1.0, 0.025, 0.01),
]


@pytest.mark.parametrize(
    ("problem", "noise", "leaf", "max_features", "bootstrap", "seed", "k", "qx", "qy", "distance"), CASES
)
def test_numbers_are_the_routines_on_the_same_forest(
    lab, problem, noise, leaf, max_features, bootstrap, seed, k, qx, qy, distance
):
    s = dict(
        problem=problem,
        noise=noise,
        min_samples_leaf=leaf,
        max_features=max_features,
        bootstrap=bootstrap,
        seed=seed,
        n_trees=k,
        query_x=qx,
        query_y=qy,
        distance=distance,
    )
    assert lab.set(**s), lab.status
    r = lab.result
    mf = max_features if problem == "diagonal" else 1.0
    world, x, y, forest = _forest(problem, noise, leaf, mf, bootstrap, seed)
    assert torch.equal(r.x_train, x)
    assert torch.equal(r.y_train, y)
    fitted = lab.fit(fit_key(lab.state)).forest
    q = np.array([[qx, qy]] if problem == "diagonal" else [[qx]])
    assert np.array_equal(fitted.predict(q), forest.predict(q))  # the same forest
    w_forest = smoother_weights(forest, x, q, n_trees=k)[0]
    w_tree = smoother_weights(forest, x, q, n_trees=1)[0]
    assert torch.allclose(r.weights_forest, w_forest, rtol=0, atol=1e-15)
    assert torch.allclose(r.weights_tree, w_tree, rtol=0, atol=1e-15)
    assert r.query_forest == pytest.approx(float(w_forest @ y), abs=1e-12)
    assert r.query_tree == pytest.approx(float(forest.estimators_[0].predict(q)[0]), abs=1e-12)
    assert r.support_forest == int((w_forest > 0).sum())
    assert r.top_share_forest == float(w_forest.max())
    assert r.support_tree == int((w_tree > 0).sum())
    assert r.top_share_tree == float(w_tree.max())
    assert r.query_truth == pytest.approx(float(world.truth(q)[0]))
    for j, d in enumerate(DISTANCES):
        near = world.near(x, d, seed=seed + NEAR_SEED)
        assert float(r.p_forest[j]) == pytest.approx(effective_parameters(forest, x, near, n_trees=k), rel=1e-12)
        trees = tree_effective_parameters(forest, x, near, n_trees=k)
        assert float(r.p_trees[j]) == pytest.approx(float(trees.mean()), rel=1e-12)
        f0 = world.truth(near)
        s_near = smoother_weights(forest, x, near, n_trees=k)
        assert float(r.error_forest[j]) == pytest.approx(float(((s_near @ y - f0) ** 2).mean()), rel=1e-10)
        tree0 = torch.from_numpy(forest.estimators_[0].predict(near.numpy()))
        assert float(r.error_tree[j]) == pytest.approx(float(((tree0 - f0) ** 2).mean()), rel=1e-10)
        if j == 3:
            per = [((torch.from_numpy(t.predict(near.numpy())) - f0) ** 2).mean() for t in forest.estimators_[:k]]
            assert float(r.error_trees[j]) == pytest.approx(float(torch.stack(per).mean()), rel=1e-10)
    j = DISTANCES.index(distance)
    assert (r.p_forest_at, r.error_forest_at) == (float(r.p_forest[j]), float(r.error_forest[j]))
    if problem == "sine":
        assert r.prediction_forest.shape == (401,)
        assert r.grid.shape == (401,)
        g = r.grid[:, None].numpy()
    else:
        assert r.prediction_forest.shape == (41, 41)
        gy, gx = np.meshgrid(r.grid.numpy(), r.grid.numpy(), indexing="ij")
        g = np.stack([gx.ravel(), gy.ravel()], axis=1)
    want = smoother_weights(forest, x, g, n_trees=k) @ y
    assert torch.allclose(r.prediction_forest.reshape(-1), want, atol=1e-12)
    assert torch.allclose(r.prediction_tree.reshape(-1), torch.from_numpy(forest.estimators_[0].predict(g)), atol=1e-12)
    assert torch.allclose(r.truth.reshape(-1), world.truth(g))
    assert r.error_forest_grid == pytest.approx(float(((want - world.truth(g)) ** 2).mean()), rel=1e-10)


def test_n_trees_and_the_query_take_a_prefix_and_a_row_without_refitting():
    lab = ForestsLab(progress=False)
    fits, prefixes = lab.fit.cache_info, lab.prefix.cache_info
    assert (fits().misses, prefixes().misses) == (1, 2)  # the forest; its 10-tree and 1-tree prefixes
    for k in (1, 50, 100, 2):
        assert lab.set(n_trees=k)
    assert (fits().misses, prefixes().misses) == (1, 5)
    for changes in ({"query_x": 0.9}, {"distance": 0.2}, {"query_x": 0.0, "distance": 0.0}, {"n_trees": 50}):
        assert lab.set(**changes)
    assert (fits().misses, prefixes().misses) == (1, 5)
    for changes in ({"max_features": 1}, {"query_y": 0.1}):  # ignored in 1-D: no refit, the same numbers
        before = lab.result
        assert lab.set(**changes)
        assert torch.equal(lab.result.prediction_forest, before.prediction_forest)
        assert lab.result.ignored == ("max_features", "query_y")
    assert fits().misses == 1
    for changes in ({"min_samples_leaf": 5}, {"bootstrap": False}, {"noise": 1.0}, {"seed": 3}):
        assert lab.set(**changes)
    assert fits().misses == 5
    assert lab.set(min_samples_leaf=1, bootstrap=True, noise=0.3, seed=0)  # back: cached
    assert fits().misses == 5
    assert lab.set(problem="diagonal")
    assert lab.result.ignored == ()
    assert lab.result.query == (0.0, 0.1)
    assert lab.set(max_features=2)  # in 2-D it is a recipe
    assert fits().misses == 7


def test_mechanisms_are_forest_mechanisms_once_per_recipe(lab):
    seen = []
    lab.observe(lambda change: seen.append(change.new), names="busy")
    assert lab.result.mechanisms is None
    assert lab.set(mechanisms=True, noise=1.0)
    m = lab.result.mechanisms
    assert any(text.startswith("simulating the three mechanisms") for text in seen)
    assert lab.busy == ""
    recipe = RandomForestRegressor(n_estimators=50, min_samples_leaf=1, max_features=1.0, bootstrap=True)
    want = forest_mechanisms(toy_world("sine", 1.0), recipe, n_train=200, seed=0, **SMALL_RUNS)
    assert (m.gain, m.noise_gain, m.bias_gain) == (want.gain, want.noise_gain, want.bias_gain)
    misses = lab.mechanisms.cache_info().misses
    assert lab.set(n_trees=70, query_x=0.5)
    assert lab.result.mechanisms is m
    assert lab.mechanisms.cache_info().misses == misses


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"n_trees": 0}, "n_trees must be in [1, 100], got 0"),
        ({"n_trees": 101}, "n_trees must be in [1, 100], got 101"),
        ({"problem": "friedman"}, "problem must be one of sine, diagonal"),
        ({"min_samples_leaf": 3}, "min_samples_leaf must be one of 1, 2, 5, 10, 20; got 3"),
        ({"max_features": 3}, "max_features must be one of 1, 2"),
        ({"noise": 0.5}, "noise must be one of 0.1, 0.3, 1; got 0.5"),
        ({"query_x": 0.01}, "query_x must be one of 0, 0.025"),
        ({"query_y": 1.5}, "query_y must be one of 0, 0.025"),
        ({"distance": 0.3}, "distance must be one of 0, 0.01, 0.02, 0.05, 0.1, 0.2"),
        ({"bootstrap": 1}, "bootstrap must be True or False"),
        ({"n_trees": 5, "seed": -1}, "seed must be >= 0"),  # all or nothing
        ({"trees": 3}, "unknown setting(s) ['trees']"),
    ],
)
def test_bad_settings_are_refused_to_the_status_line(lab, change, fragment):
    assert_refused(lab, change, fragment)
    assert lab.set(n_trees=4)
    assert lab.status == ""


def test_query_positions_from_a_slider_snap_to_the_grid(lab):
    assert lab.set(query_x=0.025 * 12)  # 0.30000000000000004
    assert lab.state.query_x == 0.3


def test_wrong_constructor_arguments_are_named():
    with pytest.raises(ValueError, match=r"mechanism_runs has unknown key\(s\) \['n_trees'\]"):
        ForestsLab(mechanism_runs={"n_trees": 3})
    with pytest.raises(TypeError, match="mechanism_runs must be a dict"):
        ForestsLab(mechanism_runs=[1])
    with pytest.raises(TypeError, match="state must be a ForestsState"):
        ForestsLab(state=object())


def test_link_round_trip(lab):
    default = lab.link()
    assert default.startswith("el1.forests.")
    assert links.decode_link(default)["settings"] == {}
    changes = dict(problem="diagonal", n_trees=33, max_features=1, min_samples_leaf=2, bootstrap=False, noise=0.1)
    changes.update(query_x=0.675, query_y=0.125, distance=0.02, seed=2)
    assert lab.set(**changes), lab.status
    text = lab.link()
    assert links.decode_link(text)["settings"] == changes
    for opener in (ForestsLab, Lab):
        again = opener.from_link(text, progress=False)
        assert type(again) is ForestsLab
        assert again.state.to_dict() == lab.state.to_dict()
        assert torch.equal(again.result.weights_forest, lab.result.weights_forest)
        assert torch.equal(again.result.p_forest, lab.result.p_forest)
    assert ForestsState.from_dict(lab.state.to_dict()).to_dict() == lab.state.to_dict()


def _solved(lab, key):
    return {c.key: (solved, text) for c, solved, text in lab.challenge_status()}[key]


def test_smooth_the_noise_default_fails_and_larger_leaves_with_more_trees_solve_it(lab):
    assert lab.set(noise=1.0)  # the default recipe on the noisy sine
    solved, text = _solved(lab, "smooth-the-noise")
    assert not solved
    assert lab.result.error_forest_grid > 3 * CHALLENGE_ERROR
    assert "problem sine (goal = sine) ✓ · noise 1 (goal = 1) ✓ · " in text
    assert lab.set(n_trees=100)  # more trees alone: a forest of interpolating trees still follows the noise
    assert not _solved(lab, "smooth-the-noise")[0]
    assert lab.set(min_samples_leaf=10, n_trees=10)
    assert not _solved(lab, "smooth-the-noise")[0]  # 0.108: close
    assert lab.set(n_trees=100)  # the known solution
    assert _solved(lab, "smooth-the-noise")[0]
    assert lab.result.error_forest_grid < CHALLENGE_ERROR
    assert lab.set(noise=0.3)
    assert not _solved(lab, "smooth-the-noise")[0]  # the goal is on the noisy sine


def test_take_the_randomness_away(lab):
    assert lab.set(n_trees=50)
    assert not _solved(lab, "identical-trees")[0]  # bootstrap: the forest is about half as rough as its trees
    assert lab.set(bootstrap=False)  # one feature, no bootstrap: every tree is the same tree
    assert _solved(lab, "identical-trees")[0]
    assert lab.set(n_trees=10)
    assert not _solved(lab, "identical-trees")[0]
    assert lab.set(problem="diagonal", n_trees=50, max_features=1)  # a random feature per split: trees differ
    assert not _solved(lab, "identical-trees")[0]
    assert lab.set(max_features=2, min_samples_leaf=5)
    assert _solved(lab, "identical-trees")[0]
