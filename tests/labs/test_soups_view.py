"""Headless tests of the soups Lab's View: widgets drive the State through ``lab.set``, refused values come back
to the status line with the controls put back, and the plots and the table follow ``lab.result``."""

import pytest
from soups_fixtures import tiny_world

from ensemble_lab.artefacts.soup_world import ENDPOINT_LRS, endpoint_name
from ensemble_lab.labs.soups import SoupsLab

from .conftest import html_table_rows


@pytest.fixture(scope="module")
def world():
    return tiny_world()


@pytest.fixture
def lab(world):
    return SoupsLab(world)


def _bold_rows(table: str) -> list[str]:
    return [cells[0] for classes, cells in html_table_rows(table) if "el-bold" in classes]


def test_the_view_shows_the_result(lab):
    v = lab.view
    r = lab.result
    assert "el-soups" in v.widget._dom_classes
    assert "ok" in v.status.value
    assert [c.description for c in v.checks] == list(lab.names)
    assert all(c.value for c in v.checks)
    assert list(v.wise_plot.acc["id"].get_ydata()) == pytest.approx(r.curve["id_acc"].tolist())
    assert list(v.line_plot.loss.get_ydata()) == pytest.approx(r.line["loss"].tolist())
    title = v.figure.axes["wise"].get_title()
    assert r.endpoint in title
    assert r.shift_name in title
    assert "greedy soup kept: " + ", ".join(r.greedy_kept) in v.table.value


def test_alpha_slider_moves_the_marker(lab):
    v = lab.view
    v.alpha.value = 0.3
    assert lab.state.alpha == 0.3
    assert "ok" in v.status.value
    assert list(v.wise_plot.alpha_line.get_xdata()) == pytest.approx([0.3, 0.3])
    assert list(v.wise_plot.dots["id"].get_xdata()) == pytest.approx([0.3])
    assert list(v.wise_plot.dots["shift"].get_ydata()) == pytest.approx([lab.result.point["shift_acc"]])
    assert lab.result.point["id_acc"] == pytest.approx(float(lab.result.curve["id_acc"][3]))
    assert "WiSE-FT (alpha 0.3)" in _bold_rows(v.table.value)


def test_unchecking_the_last_ingredient_is_refused(lab):
    v = lab.view
    first, second = lab.names[:2]
    assert lab.set(ingredients=[first])  # from code: the checklist follows
    assert [c.value for c in v.checks] == [name == first for name in lab.names]
    shown = []
    v.status.observe(lambda ch: shown.append(ch.new), names="value")
    v.checks[1].value = True  # a tick waits for "apply": nothing is computed yet
    assert lab.state.ingredients == [first]
    assert "press <b>apply</b>" in v.pending.value
    v.apply_button.click()
    assert lab.state.ingredients == [first, second]
    assert v.pending.value == ""
    assert any("⏳ computing soups for 2 ingredients" in s for s in shown)
    assert "ok" in v.status.value
    assert lab.busy == ""
    assert lab.set(ingredients=[first])
    state, result = lab.state.to_dict(), lab.result
    v.checks[0].value = False  # nothing left checked
    v.apply_button.click()
    assert "at least one ingredient" in v.status.value
    assert lab.state.to_dict() == state
    assert lab.result is result
    assert [c.value for c in v.checks] == [name == first for name in lab.names]  # the box is ticked again


def test_the_chosen_soup_bolds_its_row_and_moves_the_soup_lines(lab):
    v = lab.view
    assert set(_bold_rows(v.table.value)) == {"greedy soup", "WiSE-FT (alpha 0.5)"}
    v.soup.value = "learned"
    assert lab.state.soup == "learned"
    assert lab.result.current == "learned soup"
    assert set(_bold_rows(v.table.value)) == {"learned soup", "WiSE-FT (alpha 0.5)"}
    row = lab.result.table["learned soup"]
    assert list(v.wise_plot.soup["shift"].get_ydata()) == pytest.approx([row["acc_shift"]] * 2)
    assert [t.get_text() for t in v.wise_plot._soup_texts] == ["learned soup, ID", "learned soup, shifted"]
    v.soup.value = "output ensemble"
    assert "output ensemble" in _bold_rows(v.table.value)
    assert "×" in v.table.value


def test_endpoint_split_and_line_controls(lab):
    v = lab.view
    v.lr.value = ENDPOINT_LRS[-1]
    v.bang.value = True
    assert lab.result.endpoint == endpoint_name(ENDPOINT_LRS[-1], True)
    assert lab.result.endpoint in v.figure.axes["wise"].get_title()
    v.head_scale.value = 0.5
    assert lab.state.head_scale == 0.5
    assert "head ×0.5" in v.figure.axes["wise"].get_title()
    lab.set(lr=ENDPOINT_LRS[0])  # from code: the dropdown follows
    assert v.lr.value == ENDPOINT_LRS[0]
    assert v.lr.label == f"{ENDPOINT_LRS[0]:.0e}".replace("e-0", "e-")
    v.split.value = v.split.options[-1]
    assert lab.state.split == v.split.options[-1]
    assert lab.result.shift_name in v.table.value
    v.line_a.value = "zero-shot"
    assert lab.state.line_a == "zero-shot"
    assert "val loss from zero-shot" in v.figure.axes["line"].get_title()
    before = lab.state.line_b
    v.line_b.value = "zero-shot"  # both ends the same: refused, the dropdown put back
    assert "must differ" in v.status.value
    assert lab.state.line_b == before
    assert v.line_b.value == before
