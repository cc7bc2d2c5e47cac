"""Each notebook as an app (Voila renders it with its code hidden): the page loads without errors, the Lab is
there, moving a control changes a number, its figure is drawn and follows; a screenshot of each Lab.

Seconds from asking for the page to the Lab visible and to the first control answering go to
browser_timings.json ("voila").

Accessibility, on the same pages (no notebook is loaded twice): an axe-core audit of every app-mode page (no
critical or serious violation in the project's own content; the page chrome's are allow-listed with a reason in
browser_support.CHROME_ALLOWED), and one Lab operated from the keyboard alone.  The audit's seconds and its
counts by impact go to browser_timings.json ("voila", "axe_s", "axe").
"""

from __future__ import annotations

import time

import pytest
from browser_support import (
    CHROME_ALLOWED,
    LAB_NAMED,
    NOTEBOOKS,
    RENDERED,
    RUN_TIMEOUT_S,
    WITH_LAB,
    audit_problems,
    audit_summary,
    axe_audit,
    keyboard_run,
    missing,
)

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


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_app_passes_an_axe_audit(notebook, voila_runner, timings):
    """axe-core on the app page: nothing critical or serious from the project's own cells, widgets and outputs."""
    reason = missing("axe_playwright_python")
    if reason:
        pytest.skip(reason)
    opened = voila_runner.get(notebook)
    opened.page.wait_for_function(RENDERED, timeout=RUN_TIMEOUT_S * 1000)
    if opened.scenario is not None:  # the accessibility helper has named the Lab's controls
        opened.page.wait_for_function(LAB_NAMED, arg=f".{opened.scenario.lab}")
    start = time.perf_counter()
    findings = axe_audit(opened.page)
    seconds = round(time.perf_counter() - start, 2)
    summary = audit_summary(findings)
    timings.record("voila", notebook, {"axe_s": seconds, "axe": summary})
    print(f"\naxe on {notebook} ({seconds} s): {summary or 'no violation'}")
    for f in findings:
        allowed = f" [chrome allowed: {CHROME_ALLOWED[f.rule]}]" if f.chrome and f.rule in CHROME_ALLOWED else ""
        print(f"  {f.impact:9s} {f.rule}: {f.own} own, {f.chrome} chrome nodes: {f.help}{allowed}")
    problems = audit_problems(findings)
    assert not problems, f"{notebook}: " + "\n".join(problems)


# the Lab driven from the keyboard (one page: every Lab's controls are the same widget kinds, named by one helper)
KEYBOARD = [nb for nb in WITH_LAB if nb.startswith("01")][:1]


@pytest.mark.parametrize("notebook", KEYBOARD)
def test_app_lab_works_from_the_keyboard_alone(notebook, voila_runner, timings):
    opened = voila_runner.get(notebook)
    start = time.perf_counter()
    seen = keyboard_run(opened.page, opened.scenario)
    timings.record("voila", notebook, {"keyboard_s": round(time.perf_counter() - start, 2), "keyboard": seen})


@pytest.mark.parametrize("notebook", WITH_LAB)
def test_app_figure_is_drawn_and_follows_the_controls(notebook, voila_runner):
    voila_runner.get(notebook).figure_follows_a_move()


@pytest.mark.parametrize("notebook", WITH_LAB)
def test_app_kernel_goes_quiet_after_a_move(notebook, voila_runner):
    voila_runner.get(notebook).goes_quiet_after_a_move()
