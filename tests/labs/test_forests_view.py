"""Headless tests of the forests Lab's View: every control is bound and drives the State through ``lab.set``, a
refused change goes to the status line, the drawings and the summary follow ``lab.result``, query moves move the
same artists (blitted, no full redraw), and switching the world swaps the 1-D and 2-D drawings on the same Axes."""

import numpy as np
import pytest

from ensemble_lab.labs.base import lab_work
from ensemble_lab.labs.forests import ForestsLab
from ensemble_lab.labs.forests.view import ignored_html, mechanisms_html, summary_html

CONTROLS = (
    "problem",
    "n_trees",
    "max_features",
    "min_samples_leaf",
    "bootstrap",
    "noise",
    "query_x",
    "query_y",
    "distance",
    "mechanisms",
    "seed",
)


@pytest.fixture(autouse=True)
def one_thread():
    with lab_work():
        yield


@pytest.fixture(scope="module")
def shared_lab():
    lab = ForestsLab(progress=False, mechanism_runs={"n_inputs": 2, "n_noise": 1, "n_seeds": 2, "n_test": 50})
    lab.view  # noqa: B018 - built once
    return lab, lab.state.to_dict()


@pytest.fixture
def lab(shared_lab, monkeypatch):
    """The shared Lab at its defaults; full redraws are recorded in ``lab.full_draws`` (only the canvas is
    patched)."""
    lab, defaults = shared_lab
    draws = []
    monkeypatch.setattr(lab.view.figure.fig.canvas, "draw_idle", lambda *a, **k: draws.append(1))
    assert lab.set(**defaults)
    assert lab.status == ""
    draws.clear()
    lab.full_draws = draws
    return lab


def test_every_setting_has_a_control_showing_the_state(lab):
    v = lab.view
    assert "el-forests" in v.widget._dom_classes
    for name in CONTROLS:
        control = getattr(v, name)
        assert f"el-{name.replace('_', '-')}" in control._dom_classes
        assert control.value == getattr(lab.state, name)
    assert set(CONTROLS) == set(lab.state.settings())
    assert (v.n_trees.min, v.n_trees.max) == (1, 100)
    assert "el-summary" in v.summary.value


def test_the_drawings_show_the_result(lab):
    v, r = lab.view, lab.result
    assert v.curve.visible
    assert v.stems.visible
    assert not v.forest_field.visible
    assert not v.tree_field.visible
    assert list(v.curve.forest.get_ydata()) == pytest.approx(r.prediction_forest.tolist())
    assert list(v.curve.tree.get_ydata()) == pytest.approx(r.prediction_tree.tolist())
    assert list(v.curve.truth.get_ydata()) == pytest.approx(r.truth.tolist())
    assert len(v.curve.used.get_offsets()) == r.support_forest
    assert len(v.stems.stems.get_segments()) == r.support_forest
    assert len(v.stems.tree.get_xdata()) == r.support_tree
    assert max(seg[1][1] for seg in v.stems.stems.get_segments()) == pytest.approx(r.top_share_forest)
    assert list(v.p_plot.lines[0].get_ydata()) == pytest.approx(r.p_forest.tolist())
    assert list(v.p_plot.lines[1].get_ydata()) == pytest.approx(r.p_trees.tolist())
    assert list(v.error_plot.lines[2].get_ydata()) == pytest.approx(r.error_tree.tolist())
    assert v.p_plot.dots[0].get_ydata()[0] == pytest.approx(r.p_forest_at)
    assert v.summary.value == summary_html(r)
    assert f"predicts {r.query_forest:.3f} from {r.support_forest} of the 200" in v.summary.value
    assert v.mechanism_line.value == mechanisms_html(r)
    assert "Tick" in v.mechanism_line.value
    assert v.ignored.value == ignored_html(r)
    assert "the sine has one feature" in v.ignored.value
    assert not any(b.get_visible() for b in v.mechanism_bars.bars)
    assert f"at 0.05: {r.p_forest_at:.1f}" in v.figure.description


def test_widgets_drive_the_state(lab):
    v = lab.view
    v.n_trees.value = 60
    assert lab.state.n_trees == 60 == lab.result.n_trees
    v.query_x.value = 0.7
    assert lab.result.query == (0.7,)
    v.distance.value = 0.2
    assert lab.result.distance == 0.2
    assert list(v.p_plot.now.get_xdata()) == [5.0, 5.0]
    v.min_samples_leaf.value = 5
    v.bootstrap.value = False
    v.noise.value = 1.0
    v.seed.value = 2
    assert (lab.state.min_samples_leaf, lab.state.bootstrap, lab.state.noise, lab.state.seed) == (5, False, 1.0, 2)
    v.problem.value = "diagonal"
    r = lab.result
    assert r.n_features == 2
    assert v.ignored.value == ""
    assert not v.curve.visible
    assert not v.stems.visible
    assert v.forest_field.visible
    assert v.tree_field.visible
    assert np.allclose(np.asarray(v.forest_field.image.get_array()), r.prediction_forest.numpy())
    assert len(v.tree_field.used.get_offsets()) == r.support_tree
    v.query_y.value = 0.2
    v.max_features.value = 1
    assert lab.result.query == (0.7, 0.2)
    assert lab.state.max_features == 1
    v.mechanisms.value = True
    m = lab.result.mechanisms
    assert [b.get_height() for b in v.mechanism_bars.bars] == pytest.approx(
        [m.noise_gain, m.variability_gain, m.bias_gain, m.gain]
    )
    assert "Mechanisms" in v.mechanism_line.value
    v.problem.value = "sine"  # back: the 1-D drawings again
    assert v.curve.visible
    assert not v.forest_field.visible
    assert lab.set(n_trees=9, query_x=0.1)  # from code: the controls follow
    assert (v.n_trees.value, v.query_x.value) == (9, 0.1)
    v.figure.fig.canvas.draw()


def test_a_refused_change_shows_in_the_status_line_and_the_controls_stay(lab):
    v = lab.view
    state, result = lab.state.to_dict(), lab.result
    assert not v.send(n_trees=500)
    assert "n_trees must be in [1, 100]" in v.status.value
    assert "⚠" in v.status.value
    assert lab.state.to_dict() == state
    assert lab.result is result
    assert v.n_trees.value == state["n_trees"]
    v.query_x.value = 0.5
    assert "ok" in v.status.value


def test_query_and_distance_moves_blit_the_same_artists(lab, monkeypatch):
    v = lab.view
    blits = []
    canvas = v.figure.fig.canvas
    restore = canvas.restore_region
    monkeypatch.setattr(canvas, "restore_region", lambda *a, **k: (blits.append(1), restore(*a, **k))[1])
    drawings = (v.curve, v.forest_field, v.stems, v.tree_field, v.p_plot, v.error_plot, v.mechanism_bars)
    artists = [a for d in drawings for a in d.artists]
    moves = [{"query_x": 0.3}, {"query_x": 0.325}, {"query_x": 0.35}, {"distance": 0.1}]
    for change in moves:
        for name, value in change.items():
            getattr(v, name).value = value
        assert [a for d in drawings for a in d.artists] == artists
    assert lab.full_draws == []
    assert len(blits) == len(moves)
    v.problem.value = "diagonal"  # other drawings on the same Axes: one full draw, the same artists
    assert lab.full_draws == [1]
    assert [a for d in drawings for a in d.artists] == artists
    for q in (0.8, 0.825):
        v.query_y.value = q
    assert lab.full_draws == [1]
