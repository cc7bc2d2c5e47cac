"""Headless tests of the forecasting Lab's View on a small world (8 cases): every control is bound and drives the
State through ``lab.set``, a refused change goes to the status line, the drawings and tables follow
``lab.result``, and moving the lead, the variable or the case moves the same artists (blitted, no full redraw)."""

import pytest

from ensemble_lab.forecast import FORECASTERS, lorenz96
from ensemble_lab.labs.base import lab_work
from ensemble_lab.labs.forecast import MAX_MEMBERS, ForecastLab
from ensemble_lab.labs.forecast.view import cost_table_html, macs_text, seconds_text

from .conftest import html_table_rows

CONTROLS = ("forecaster", "members", "kind", "amplitude", "model_error", "seed", "lead", "variable", "case", "quantile")


@pytest.fixture(autouse=True)
def one_thread():
    with lab_work():
        yield


@pytest.fixture(scope="module")
def shared_lab():
    lab = ForecastLab(lorenz96(n_cases=8, seed=3), progress=False)
    lab.view  # noqa: B018 - built once (a figure per test would cost more than the tests)
    return lab, lab.state.to_dict()


@pytest.fixture
def lab(shared_lab, monkeypatch):
    """The shared Lab at its defaults; a full redraw the View asks for is recorded in ``lab.full_draws`` instead
    of rendered (the figure rendered once when the View was built; the tests read the artists).  Only the
    matplotlib canvas is patched, nothing of the package."""
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
    assert "el-forecast" in v.widget._dom_classes
    assert "ok" in v.status.value
    for name in CONTROLS:
        control = getattr(v, name)
        assert f"el-{name.replace('_', '-')}" in control._dom_classes
        assert control.value == getattr(lab.state, name)
    assert set(CONTROLS) == set(lab.state.settings())
    assert list(v.forecaster.options) == list(FORECASTERS)
    assert (v.members.min, v.members.max) == (2, MAX_MEMBERS)
    assert (v.lead.max, v.variable.max, v.case.max) == (10, 39, 7)


def test_the_drawings_show_the_result(lab):
    v, r = lab.view, lab.result
    assert list(v.crps_plot.lines[0].get_ydata()) == pytest.approx(r.crps_fair.tolist())
    assert list(v.crps_plot.lines[1].get_ydata()) == pytest.approx(r.crps.tolist())
    assert not v.crps_plot.reference.get_visible()  # the physics is its own reference
    assert list(v.ratio_plot.lines[0].get_ydata()) == pytest.approx(r.ratio.tolist())
    assert list(v.crps_plot.now.get_xdata()) == [3.0, 3.0]
    heights = [b.get_height() for b in v.rank_bars.bars if b.get_visible()]
    assert heights == r.rank_counts.tolist()
    assert sum(b.get_visible() for b in v.rank_bars.bars) == r.members + 1
    present = r.reliability.present
    assert list(v.reliability_plot.points.get_xdata()) == pytest.approx(r.reliability.probability[present].tolist())
    assert list(v.reliability_plot.points.get_ydata()) == pytest.approx(
        r.reliability.observed_frequency[present].tolist()
    )
    visible = [line for line in v.plume.members if line.get_visible()]
    assert len(visible) == r.members
    for line, member in zip(visible, r.plume, strict=True):
        assert list(line.get_ydata()) == pytest.approx(member.tolist())
    assert list(v.plume.truth.get_ydata()) == pytest.approx(r.truth.tolist())
    assert list(v.plume.obs.get_ydata()) == pytest.approx(r.observations.tolist())
    assert v.plume.threshold.get_ydata()[0] == pytest.approx(r.threshold)
    assert v.plume.label.get_text() == "case 0, variable x0"
    assert f"fair CRPS {float(r.crps_fair[3]):.3f}" in v.summary.value
    assert f"spread-skill {float(r.ratio[3]):.2f}" in v.summary.value
    assert f"fair CRPS is {float(r.crps_fair[3]):.3f}" in v.figure.description


def test_widgets_drive_the_state(lab):
    v = lab.view
    v.members.value = 5
    assert lab.state.members == 5 == lab.result.members
    assert sum(b.get_visible() for b in v.rank_bars.bars) == 6
    assert sum(line.get_visible() for line in v.plume.members) == 5
    v.lead.value = 7
    assert lab.result.lead == 7
    assert list(v.ratio_plot.now.get_xdata()) == [7.0, 7.0]
    v.variable.value = 12
    v.case.value = 6
    assert (lab.state.variable, lab.state.case) == (12, 6)
    assert v.plume.label.get_text() == "case 6, variable x12"
    v.quantile.value = 0.9
    assert lab.result.quantile == 0.9
    v.kind.value = "bred"
    v.amplitude.value = 0.5
    v.model_error.value = 0.0
    v.seed.value = 3
    assert (lab.state.kind, lab.state.amplitude, lab.state.model_error, lab.state.seed) == ("bred", 0.5, 0.0, 3)
    v.forecaster.value = "gaussian-members"
    assert lab.result.forecaster == "gaussian-members"
    assert v.crps_plot.reference.get_visible()
    assert list(v.crps_plot.reference.get_ydata()) == pytest.approx(lab.result.reference_crps_fair.tolist())
    assert "starts from the analysis" in v.ignored.value
    assert "ok" in v.status.value
    assert lab.set(members=9, lead=2)  # from code: the controls follow
    assert (v.members.value, v.lead.value) == (9, 2)
    v.figure.fig.canvas.draw()  # and the changed drawings render


def test_a_refused_change_shows_in_the_status_line_and_the_controls_stay(lab):
    v = lab.view
    state, result = lab.state.to_dict(), lab.result
    assert not v.send(case=8)  # the slider stops at 7; from code a larger case is refused
    assert "case must be in [0, 7]" in v.status.value
    assert "⚠" in v.status.value
    assert lab.state.to_dict() == state
    assert lab.result is result
    assert v.case.value == state["case"]
    v.lead.value = 4  # a valid change clears the message
    assert "ok" in v.status.value


def test_lead_variable_and_case_moves_blit_the_same_artists(lab, monkeypatch):
    v = lab.view
    blits = []  # a blit restores the background first (the canvas's own method, spied on; nothing of the package)
    canvas = v.figure.fig.canvas
    restore = canvas.restore_region
    monkeypatch.setattr(canvas, "restore_region", lambda *a, **k: (blits.append(1), restore(*a, **k))[1])
    drawings = (v.crps_plot, v.ratio_plot, v.rank_bars, v.reliability_plot, v.plume)
    artists = [a for d in drawings for a in d.artists]
    statics = [d._static for d in drawings]
    moves = [{"lead": 5}, {"lead": 9}, {"variable": 30}, {"case": 2}, {"lead": 0, "variable": 1}]
    for change in moves:
        for name, value in change.items():
            getattr(v, name).value = value
        assert [a for d in drawings for a in d.artists] == artists  # moved, not re-created
        assert [d._static for d in drawings] == statics  # no range or title moved: the precondition of a blit
    assert lab.full_draws == []
    assert len(blits) == 6
    assert list(v.crps_plot.now.get_xdata()) == [0.0, 0.0]
    v.members.value = 12  # the histogram gets other bars and range: one full draw, same artists
    assert lab.full_draws == [1]
    assert [a for d in drawings for a in d.artists] == artists


def test_the_cost_table(lab):
    assert lab.set(forecaster="crps-generator")
    v, r = lab.view, lab.result
    rows = html_table_rows(v.costs.value)
    assert rows[0][1] == ["", "MACs per member-lead", "seconds per member (8 cases)"]
    got = {cells[0]: ("el-bold" in classes, cells[1:]) for classes, cells in rows[1:]}
    assert list(got) == list(FORECASTERS)
    for name, cost in r.costs.items():
        assert got[name] == (name == "crps-generator", [macs_text(cost["macs"]), seconds_text(cost["seconds"])])
    assert got["physics"][1][0] == "4.3 k"
    assert got["crps-generator"][1][1].endswith(" ms")
    assert cost_table_html(r) == v.costs.value
    assert (macs_text(float("nan")), seconds_text(float("nan")), macs_text(2_964_480.0)) == ("–", "–", "3.0 M")
