"""Notebook 08's experiments (ensemble_lab.labs.forests.experiments) on small settings: their numbers are the
routines' (effective_parameters on the same fitted forest), Jensen's inequality holds, identical trees give an
exactly zero difference, and the figures draw."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure
from sklearn.ensemble import RandomForestRegressor

from ensemble_lab.forests import effective_parameters, toy_world, tree_effective_parameters
from ensemble_lab.labs.forests import experiments as ex
from ensemble_lab.labs.forests import figures


@pytest.fixture(scope="module")
def smooth():
    return ex.smoother_than_trees(problems=("sine", "diagonal"), recipes=tuple(ex.RECIPES)[::2], seeds=(0,))


def test_smoothness_numbers_are_the_routines_on_the_same_forest(smooth):
    r = next(r for r in smooth if r.problem == "diagonal" and r.recipe == "fully grown, bootstrap")
    world = toy_world("diagonal", ex.NOISE)
    x, y = world.sample(ex.N_TRAIN["diagonal"], seed=0)
    forest = RandomForestRegressor(n_estimators=ex.N_TREES, random_state=0).fit(x.numpy(), y.numpy())
    x_test = world.inputs(ex.N_TEST, seed=1000)
    assert r.forest_train == pytest.approx(effective_parameters(forest, x), rel=1e-12)
    assert r.forest_test == pytest.approx(effective_parameters(forest, x, x_test), rel=1e-12)
    assert r.trees_test == pytest.approx(float(tree_effective_parameters(forest, x, x_test).mean()), rel=1e-12)
    assert r.test_difference.difference == pytest.approx(r.forest_test - r.trees_test, abs=1e-9)


def test_a_forest_is_never_less_smooth_than_its_trees_and_identical_trees_change_nothing(smooth):
    for r in smooth:
        assert r.forest_train <= r.trees_train + 1e-9
        assert r.forest_test <= r.trees_test + 1e-9
    # one feature and no bootstrap: every tree is the same tree, so the forest is that tree
    same = next(r for r in smooth if r.problem == "sine" and r.recipe == "no bootstrap")
    assert same.train_difference.difference == 0.0
    assert not same.train_difference.resolved
    assert same.forest_test == same.trees_test == ex.N_TRAIN["sine"]
    grown = next(r for r in smooth if r.problem == "sine" and r.recipe == "fully grown, bootstrap")
    assert grown.trees_train == pytest.approx(ex.N_TRAIN["sine"])  # a fully grown tree puts all weight on one point
    assert grown.train_difference.resolved
    assert grown.train_difference.high < 0


def test_smoothing_with_distance_starts_at_the_training_inputs():
    runs = ex.smoothing_with_distance(problems=("diagonal",), seeds=(1,), distances=(0.0, 0.05))
    (r,) = runs
    world = toy_world("diagonal", ex.NOISE)
    x, y = world.sample(ex.N_TRAIN["diagonal"], seed=1)
    forest = RandomForestRegressor(n_estimators=ex.N_TREES, random_state=1).fit(x.numpy(), y.numpy())
    assert float(r.forest[0]) == pytest.approx(effective_parameters(forest, x), rel=1e-12)
    assert r.difference.difference == pytest.approx(float(r.forest[0] - r.forest[1]), abs=1e-9)
    assert r.difference.resolved
    assert r.difference.low > 0
    with pytest.raises(ValueError, match="distances must include 0 and 0.05"):
        ex.smoothing_with_distance(distances=(0.0, 0.1))


def test_mechanisms_margins_compare_the_dominant_gain_with_the_others():
    (r,) = ex.mechanisms_by_noise(problems=("sine",), noises=(1.0,), n_inputs=2)
    m = r.mechanisms
    assert r.dominant == m.dominant == max(m.gains, key=m.gains.get)
    assert set(r.margins) == {"noise", "variability", "bias"} - {r.dominant}
    for other, d in r.margins.items():
        assert d.difference == pytest.approx(m.gains[r.dominant] - m.gains[other], abs=1e-12)
    assert m.noise_gain + m.variability_gain + m.bias_gain == pytest.approx(m.gain, abs=1e-12)


def test_the_figures_draw(smooth):
    runs = ex.smoothing_with_distance(problems=("sine",), seeds=(0,), distances=(0.0, 0.05))
    mech = ex.mechanisms_by_noise(problems=("sine",), noises=(0.1,), n_inputs=2)
    for fig in (figures.smoothness_figure(smooth), figures.distance_figure(runs), figures.mechanisms_figure(mech)):
        assert isinstance(fig, Figure)
        assert 20 <= len(fig.el_description) <= 300
        fig.canvas.draw()
