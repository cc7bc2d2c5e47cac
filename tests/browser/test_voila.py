"""Each notebook as an app (Voila renders it with its code hidden): the page loads without errors, the Lab is
there, moving a control changes a number, its figure is drawn and follows; a screenshot of each Lab.

Seconds from asking for the page to the Lab visible and to the first control answering go to
browser_timings.json ("voila").
"""

from __future__ import annotations

import pytest
from browser_support import NOTEBOOKS, WITH_LAB, missing

reason = missing("voila")
if reason:
    pytest.skip(reason, allow_module_level=True)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_app_loads_then_a_control_changes_a_number(notebook, voila_runner, timings):
    opened = voila_runner.get(notebook)
    assert not opened.errors, f"{notebook} in Voila shows errors: {opened.errors}"
    if opened.scenario is None:  # no Lab in this notebook (00_start_here): it renders without errors
        opened.assert_no_lab()
        timings.record("voila", notebook, {"load_s": opened.times["page_loaded_s"]})
        return
    move = opened.first_move()
    timings.record(
        "voila",
        notebook,
        {
            "load_s": opened.times["page_loaded_s"],
            "load_to_lab_visible_s": opened.times["lab_visible_s"],
            "load_to_interactive_s": opened.times["interactive_s"],
            **move,
        },
    )
    voila_runner.screenshot(opened, "lab", opened.lab.first)


@pytest.mark.parametrize("notebook", WITH_LAB)
def test_app_figure_is_drawn_and_follows_the_controls(notebook, voila_runner):
    voila_runner.get(notebook).figure_follows_a_move()


@pytest.mark.parametrize("notebook", WITH_LAB)
def test_app_kernel_goes_quiet_after_a_move(notebook, voila_runner):
    voila_runner.get(notebook).goes_quiet_after_a_move()
