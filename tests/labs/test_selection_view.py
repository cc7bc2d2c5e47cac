"""Headless tests of the selection Lab's View on the tiny library and world: widgets drive the State through
``lab.set``, a refused value comes back to the status line with the control put back, and the table, the library
grid, the team table, the drawings and the figure's description follow ``lab.result``; moving the steps slider
blits (no full redraw) while no range or title changes."""

import pytest

from ensemble_lab.artefacts.transfer_world import ESTIMATORS
from ensemble_lab.labs.base import lab_work
from ensemble_lab.labs.selection import SelectionLab

from .conftest import html_table_rows
from .selection_fixtures import tiny_library, tiny_transfer_world

HEADER = ["", "hill-climb", "held out", "NLL", "accuracy", "ECE", "Brier", "models"]


@pytest.fixture(autouse=True)
def one_thread():
    with lab_work():
        yield


@pytest.fixture(scope="module")
def library():
    return tiny_library()


@pytest.fixture(scope="module")
def world():
    return tiny_transfer_world()


@pytest.fixture(scope="module")
def shared_lab(library, world):
    lab = SelectionLab(library, world)
    lab.view  # noqa: B018 - built once (a figure per test would cost more than the tests)
    return lab, lab.state.to_dict()


@pytest.fixture
def lab(shared_lab, monkeypatch):
    """The shared Lab at its defaults; a full redraw the View asks for is recorded in ``lab.full_draws`` instead
    of rendered (a render costs about 0.3 s; the View built its figure once, rendered, and the tests read the
    artists, not the pixels)."""
    lab, defaults = shared_lab
    draws = []
    monkeypatch.setattr(lab.view.figure.fig.canvas, "draw_idle", lambda *a, **k: draws.append(1))
    assert lab.set(**defaults)
    assert lab.status == ""
    draws.clear()
    lab.full_draws = draws
    return lab


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _score(metric: str, x: float) -> str:
    return _pct(x) if metric in ("ece", "error") else f"{x:.3f}"


def _rows(markup: str) -> dict[str, tuple[bool, list[str]]]:
    """Data rows of the first table in ``markup`` by name: (bold, the other cells)."""
    rows = html_table_rows(markup)
    return {cells[0]: ("el-bold" in classes, cells[1:]) for classes, cells in rows[1:]}


def _check_table(lab) -> None:
    r = lab.result
    rows = html_table_rows(lab.view.table.value)
    assert rows[0][1] == HEADER
    got = _rows(lab.view.table.value)
    assert list(got) == list(r.table)
    for name, row in r.table.items():
        bold, cells = got[name]
        assert bold == (name == "forward selection")
        assert cells == [
            _score(r.metric, row["hill"]),
            _score(r.metric, row["held_out"]),
            f"{row['nll']:.3f}",
            _pct(row["accuracy"]),
            _pct(row["ece"]),
            f"{row['brier']:.3f}",
            str(int(row["models"])),
        ]


def test_the_view_shows_the_result(lab, library):
    v = lab.view
    r = lab.result
    assert "el-selection" in v.widget._dom_classes
    assert "ok" in v.status.value
    _check_table(lab)
    assert "metric: NLL (lower is better)" in v.table.value
    assert "greedy soup: not applicable" in v.table.value
    s = lab.state
    assert list(v.path_plot.now.get_xdata()) == [s.init + s.steps] * 2
    assert list(v.path_plot.hill.get_ydata()) == pytest.approx(r.path["hill"].tolist())
    assert list(v.path_plot.held.get_ydata()) == pytest.approx(r.path["held_out"].tolist())
    assert list(v.path_plot.best.get_xdata()) == [r.best_step]
    d = r.decomposition
    for i, name in enumerate(("forward selection", "uniform")):
        parts = (d[name].mean_member_loss, d[name].diversity, d[name].ensemble_loss)
        assert [v.bars.bars[j][i].get_height() for j in range(3)] == pytest.approx(parts)
    offsets = v.scatter.points.get_offsets()
    assert offsets.shape == (len(r.teams), 2)
    assert offsets[:, 0].tolist() == pytest.approx(r.scores.tolist())
    assert offsets[:, 1].tolist() == pytest.approx(r.truth.tolist())
    assert list(v.scatter.pick.get_xdata()) == pytest.approx([float(r.scores[r.pick_index])])
    assert list(v.scatter.best.get_ydata()) == pytest.approx([r.best[1]])


def test_the_library_grid_shows_each_models_count(lab, library):
    for steps in (25, 2):
        assert lab.set(steps=steps, hill_size=100)
        team = lab.result.team
        assert sum(team.values()) == (lab.result.best_step or 0)  # the pruned path: the best step's ensemble
        rows = html_table_rows(lab.view.grid.value)
        groups = list(dict.fromkeys(library.groups))
        assert [cells[0] for _, cells in rows] == groups
        for (_, cells), group in zip(rows, groups, strict=True):
            members = [n for n, g in zip(library.names, library.groups, strict=True) if g == group]
            assert cells[1:] == [str(team[n]) if team.get(n, 0) else "·" for n in members]
        assert "·" in lab.view.grid.value  # some models are never taken
        for name, count in team.items():
            assert f"aria-label='{name}: {count}×'" in lab.view.grid.value


def test_the_team_table_lists_every_estimators_tau(lab, world):
    for size, estimator in ((2, "OSBORN"), (3, "MS-LEEP")):
        assert lab.set(team_size=size, estimator=estimator, label_seed=1)
        r = lab.result
        rows = html_table_rows(lab.view.teams.value)
        assert rows[0][1] == ["", "tau", "its top team", "accuracy"]
        got = _rows(lab.view.teams.value)
        assert list(got) == [*ESTIMATORS, "OSBORN greedy", "best team"]

        def team(t):
            return " + ".join(world.sources[i] for i in t)

        for e in ESTIMATORS:
            assert got[e] == (False, [f"{r.tau[e]:.2f}", team(r.picks[e][0]), _pct(r.picks[e][1])])
        greedy_team, greedy_accuracy = r.picks["OSBORN greedy"]
        assert got["OSBORN greedy"] == (False, ["–", team(greedy_team), _pct(greedy_accuracy)])
        assert got["best team"] == (True, ["", team(r.best[0]), _pct(r.best[1])])
        assert f"all {len(world.teams[size])} teams" in lab.view.teams.value


def test_widgets_drive_the_state(lab, world):
    v = lab.view
    v.steps.value = 7
    assert lab.state.steps == 7
    assert lab.result.steps == 7
    assert list(v.path_plot.now.get_xdata()) == [7, 7]
    v.metric.value = "brier"
    assert lab.state.metric == "brier" == lab.result.metric
    assert "metric: Brier" in v.table.value
    assert v.figure.axes["path"].get_ylabel() == "Brier (lower is better)"
    _check_table(lab)
    v.hill_size.value = 250
    assert lab.state.hill_size == 250
    assert v.figure.axes["path"].get_title() == "Selection path on 250 images"
    v.bagging.value = True
    assert lab.state.bagging
    assert lab.result.best_step is None
    assert "(mean over bags)" in v.figure.axes["path"].get_title()
    assert list(v.path_plot.best.get_xdata()) == []  # no best step with bagging
    _check_table(lab)
    v.target.value = "t-b"
    assert lab.state.target == "t-b"
    assert v.figure.axes["teams"].get_title().startswith("t-b: teams of 2, OSBORN")
    v.team_size.value = 3
    assert lab.state.team_size == 3
    assert v.scatter.points.get_offsets().shape == (len(world.teams[3]), 2)
    v.estimator.value = "E-LEEP"
    v.label_seed.value = 2
    assert (lab.state.estimator, lab.state.label_seed) == ("E-LEEP", 2)
    assert f"(tau {lab.result.tau['E-LEEP']:.2f})" in v.figure.axes["teams"].get_title()
    assert "ok" in v.status.value
    assert lab.set(steps=3, init=1)  # from code: the controls follow
    assert (v.steps.value, v.init.value) == (3, 1)
    v.figure.fig.canvas.draw()  # and the changed drawings render


def test_a_refused_value_shows_in_the_status_line_and_the_control_goes_back(lab):
    v = lab.view
    assert lab.set(bagging=True, init=3)  # bags of 3 of the 6 models
    state, result = lab.state.to_dict(), lab.result
    v.init.value = 4
    assert "init must be at most the bag size" in v.status.value
    assert "⚠" in v.status.value
    assert v.init.value == 3
    assert lab.state.to_dict() == state
    assert lab.result is result
    v.bagging.value = False  # a valid change clears the message
    assert "ok" in v.status.value
    v.init.value = 4  # without bagging it is allowed
    assert lab.state.init == 4


def test_the_figure_description_mentions_the_current_numbers(lab):
    v = lab.view
    for changes in ({}, {"steps": 4, "init": 2, "metric": "brier", "team_size": 3, "estimator": "MS-LEEP"}):
        assert lab.set(**changes)
        r, s = lab.result, lab.state
        sel = r.decomposition["forward selection"]
        text = v.figure.description
        assert f"{sel.mean_member_loss:.3f} − {sel.diversity:.3f} = {sel.ensemble_loss:.3f}" in text
        assert f"marks {s.init + s.steps} additions" in text
        assert f"on the {s.hill_size} hill-climbing images" in text
        assert f"each of the {len(r.teams)} teams of {s.team_size} source models by its {s.estimator} score" in text
        assert f"Kendall's tau is {r.tau[s.estimator]:.2f}" in text
        assert ("held-out NLL" if s.metric == "nll" else "held-out Brier") in text


def test_moving_the_steps_slider_blits_without_a_full_redraw(lab, monkeypatch):
    v = lab.view
    full, blits = lab.full_draws, []
    update = v.figure.blit.update
    monkeypatch.setattr(v.figure.blit, "update", lambda: (blits.append(1), update())[1])
    statics = (v.path_plot._static, v.bars._static, v.scatter._static)
    for steps in (26, 30, 12):
        v.steps.value = steps
        assert list(v.path_plot.now.get_xdata()) == [steps, steps]
        # the ranges and titles stay (the path is the same long path): the precondition of a blit
        assert (v.path_plot._static, v.bars._static, v.scatter._static) == statics
    assert full == []
    assert blits == [1, 1, 1]
    v.target.value = "t-b"  # the scatter's title and ranges change: one full draw
    assert full == [1]
    assert blits == [1, 1, 1]
