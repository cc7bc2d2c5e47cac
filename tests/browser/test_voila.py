"""Each notebook as an app (Voila renders it with its code hidden): the page loads without errors, the Lab is
there, moving a control changes a number, its figure is drawn and follows; a screenshot of each Lab.

Seconds from asking for the page to the Lab visible and to the first control answering go to
browser_timings.json ("voila").
"""

from __future__ import annotations

import pytest
from browser_support import NOTEBOOKS, WITH_LAB, missing, move_and_wait, status_text, wait_for_figure

reason = missing("voila")
if reason:
    pytest.skip(reason, allow_module_level=True)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_app_loads_then_a_control_changes_a_number(notebook, voila_runner, timings):
    opened = voila_runner.get(notebook)
    sc = opened.scenario
    assert not opened.errors, f"{notebook} in Voila shows errors: {opened.errors}"
    if sc is None:  # no Lab in this notebook (00_start_here): it renders without errors
        assert opened.lab.count() == 0, f"{notebook} shows a Lab: add its scenario to browser_support.SCENARIOS"
        timings.record("voila", notebook, {"load_s": opened.times["page_loaded_s"]})
        return
    assert opened.lab.count() == 1, f"expected one .{sc.lab} in the app, found {opened.lab.count()}"
    move = move_and_wait(opened.page, sc)
    opened.mark("interactive_s")
    if sc.check:
        problem = sc.check(move)
        assert problem is None, problem
    assert "⚠" not in status_text(opened.page, sc), status_text(opened.page, sc)
    timings.record("voila", notebook, {
        "load_s": opened.times["page_loaded_s"], "load_to_lab_visible_s": opened.times["lab_visible_s"],
        "load_to_interactive_s": opened.times["interactive_s"], "control": sc.control, "move": move.did,
        "first_move_action_s": move.action_s, "first_move_response_s": move.response_s})
    voila_runner.screenshot(opened, "lab", opened.lab.first)


@pytest.mark.parametrize("notebook", WITH_LAB)
def test_app_figure_is_drawn_and_follows_the_controls(notebook, voila_runner):
    opened = voila_runner.get(notebook)
    page, sc = opened.page, opened.scenario
    drawn = wait_for_figure(page, sc)
    move_and_wait(page, sc, i=1)
    wait_for_figure(page, sc, before=drawn)


@pytest.mark.parametrize("notebook", WITH_LAB)
def test_app_kernel_goes_quiet_after_a_move(notebook, voila_runner):
    opened = voila_runner.get(notebook)
    move_and_wait(opened.page, opened.scenario, i=2)
    opened.wait_quiet()
