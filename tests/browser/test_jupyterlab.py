"""Each notebook in JupyterLab, as a learner uses it: open it, Run All from the menu, find the Lab, move a control
and see a number change; a bad entry shows a message in the status line and the Lab keeps working.

Timings (seconds from Run All to the Lab visible, to the run done, to the first control answering; the in-browser
latency of each Lab's control) go to browser_timings.json in the artefacts folder, with a screenshot of each Lab.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import pytest
from browser_support import (
    NOTEBOOKS,
    READ_NUMBERS,
    ROOT,
    VIEWPORT,
    WITH_LAB,
    cycle_dropdown,
    cycle_readout,
    missing,
    move_and_wait,
    wait_for_status,
)

reason = missing("jupyterlab")
if reason:
    pytest.skip(reason, allow_module_level=True)

PROMPTS = "03_prompt_ensembling.ipynb"
DEEP_ENSEMBLES = "01_deep_ensembles.ipynb"
# moves per Lab for the latency test (bench_browser asks for more through the environment)
LATENCY_MOVES = max(20, int(os.environ.get("ENSEMBLE_LAB_LATENCY_MOVES", "20")))


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_run_all_then_a_control_changes_a_number(notebook, lab_runner, timings):
    opened = lab_runner.get(notebook)
    assert not opened.errors, f"{notebook} ran with errors: {opened.errors}"
    if opened.scenario is None:  # a notebook without a Lab (00_start_here): it runs without errors
        opened.assert_no_lab()
        timings.record(
            "jupyterlab", notebook, {"open_s": opened.times["open_s"], "run_all_to_done_s": opened.times["run_done_s"]}
        )
        return
    # After Run All and the page's own exchanges with the kernel, and before anyone moves a control, the Lab's
    # State is what the notebook set: no widget wrote back a value (a slider's rounding, a late echo) that the
    # State did not send it.  (Checked here, on the first run, rather than on a second Run All of its own.)
    opened.wait_quiet()
    printed = opened.page.evaluate(_EXECUTE, [notebook, "print(lab.state.to_json())"])
    assert json.loads(printed) == _saved_state(notebook), f"{notebook}: the State after Run All is not the saved one"
    move = opened.first_move()
    timings.record(
        "jupyterlab",
        notebook,
        {
            "open_s": opened.times["open_s"],
            "run_all_to_lab_visible_s": opened.times.get("lab_visible_s"),
            "run_all_to_done_s": opened.times["run_done_s"],
            "run_all_to_interactive_s": opened.times["interactive_s"],
            **move,
        },
    )
    lab_runner.screenshot(opened, "lab", opened.lab.first)


@pytest.mark.parametrize("notebook", WITH_LAB)
def test_figure_is_drawn_and_follows_the_controls(notebook, lab_runner):
    lab_runner.get(notebook).figure_follows_a_move()


@pytest.mark.parametrize("notebook", WITH_LAB)
def test_kernel_goes_quiet_after_a_move(notebook, lab_runner):
    """After a control move the page stops messaging the kernel (no endless redraw requests)."""
    lab_runner.get(notebook).goes_quiet_after_a_move()


@pytest.mark.parametrize("notebook", [n for n in NOTEBOOKS if n == DEEP_ENSEMBLES])
def test_text_in_the_weights_box_is_refused_with_a_message(notebook, lab_runner):
    opened = lab_runner.get(notebook)
    page, sc = opened.page, opened.scenario
    box = page.locator(sc.selector(".el-weights-text input"))
    before = box.input_value()
    box.fill("1, two, 3")
    box.press("Enter")
    assert "two" in wait_for_status(page, sc, "weights must be numbers")
    page.wait_for_function(
        "([sel, v]) => document.querySelector(sel).value === v", arg=[sc.selector(".el-weights-text input"), before]
    )  # the box shows the weights again
    lab_runner.screenshot(opened, "bad-weights", opened.lab.first)  # with the message in the status line
    # the Lab still answers: a member's weight typed into its slider's readout
    move_and_wait(page, sc, control=".el-weight-0", move=cycle_readout(("0.00", "1.00", "0.50")))


@pytest.mark.parametrize("notebook", [n for n in NOTEBOOKS if n == PROMPTS])
def test_template_without_placeholder_is_refused_with_a_message(notebook, lab_runner):
    opened = lab_runner.get(notebook)
    page, sc = opened.page, opened.scenario
    pool = page.locator(sc.selector(".el-pool input[type=checkbox]"))
    n_prompts = pool.count()
    page.locator(sc.selector(".el-new-template input")).fill("a photo of a digit")
    page.locator(sc.selector(".el-add-template")).click()
    status = wait_for_status(page, sc, "{}")
    assert "placeholder" in status, status
    assert pool.count() == n_prompts, "a refused template must leave the pool as it was"
    lab_runner.screenshot(opened, "bad-template", opened.lab.first)  # with the message in the status line
    # a good one, with Enter: added, and its row is in view in the pool's scrolling box
    box = page.locator(sc.selector(".el-new-template input"))
    box.fill("a sketch of the digit {}.")
    box.press("Enter")
    checkboxes = sc.selector(".el-pool input[type=checkbox]")
    page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length === n", arg=[checkboxes, n_prompts + 1])
    in_view = page.evaluate(
        """(sel) => {
      const pool = document.querySelector(sel), rows = Array.from(pool.querySelectorAll('.widget-checkbox'));
      const row = rows.find(r => r.textContent.includes('a sketch of the digit {}.'));
      const a = pool.getBoundingClientRect(), b = row.getBoundingClientRect();
      return b.top >= a.top - 1 && b.bottom <= a.bottom + 1;
    }""",
        sc.selector(".el-pool"),
    )
    assert in_view, "the new template's row is not in view in the pool box"
    # the Lab still answers: another weighting of the prompts
    move_and_wait(
        page,
        sc,
        control=".el-weighting",
        move=cycle_dropdown(
            ("equal average (CLIP)", "max-logit score (no debiasing)", "ZPE, debiased (pre-train + test)")
        ),
    )


# In-page clock: the time of the learner's action (Enter on a slider's readout, or the `change` event of a
# dropdown or checkbox) and of the first change of the probed numbers after it; window.__elArm() starts a move.
_INSTALL_CLOCK = """([sel, row]) => {
  const numbers = READ_NUMBERS;
  const c = window.__elClock = {armed: false, t0: null, t1: null, before: null};
  window.__elArm = () => { c.armed = true; c.t0 = null; c.t1 = null; c.before = numbers([sel, row]); };
  const start = () => { if (c.armed && c.t0 === null) c.t0 = performance.now(); };
  document.addEventListener('keydown', e => { if (e.key === 'Enter') start(); }, true);
  document.addEventListener('change', start, true);
  new MutationObserver(() => {
    if (c.t0 !== null && c.t1 === null && numbers([sel, row]) !== c.before) c.t1 = performance.now();
  }).observe(document.querySelector(sel), {subtree: true, childList: true, characterData: true});
}""".replace("READ_NUMBERS", READ_NUMBERS)


@pytest.mark.parametrize("notebook", WITH_LAB)
def test_control_latency(notebook, lab_runner, timings):
    """Move the Lab's control (its scenario) LATENCY_MOVES times and time each move from the learner's action
    to the changed number, with the page's own clock (Playwright's round trips left out).  Moves follow each other
    at once: the next is made as soon as the number has changed, so it may wait for the last move's figure."""
    opened = lab_runner.get(notebook)
    page, sc = opened.page, opened.scenario
    opened.wait_quiet()  # steady state: the page's first draws after Run All are done (the first move after Run
    # All is timed by test_run_all_then_a_control_changes_a_number)
    probe = sc.selector(sc.probe)
    page.evaluate(_INSTALL_CLOCK, [probe, sc.row])
    in_page, round_trip = [], []
    for i in range(LATENCY_MOVES):
        page.evaluate("() => window.__elArm()")
        start = time.perf_counter()
        move = move_and_wait(page, sc, i=i + 3)
        page.wait_for_function("() => window.__elClock.t1 !== null", polling=50)
        round_trip.append(1e3 * (time.perf_counter() - start))
        clock = page.evaluate("() => window.__elClock")
        assert clock["t0"] is not None, f"the page's clock saw no action for {move.did!r}"
        in_page.append(clock["t1"] - clock["t0"])
    p95 = statistics.quantiles(in_page, n=20, method="inclusive")[-1]
    result = {
        "control": sc.control,
        "moves": len(in_page),
        "median_ms": round(statistics.median(in_page), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(max(in_page), 1),
        "round_trip_median_ms": round(statistics.median(round_trip), 1),
        "samples_ms": [round(x, 1) for x in in_page],
    }
    timings.record("control_latency", notebook, result)
    assert len(in_page) == LATENCY_MOVES
    assert all(x > 0 for x in in_page)


def _saved_state(notebook: str) -> dict:
    """The State the notebook's last cell printed when it was saved (``print(lab.state.to_json())``; nbval checks
    that output against a headless run, where no front end can echo anything back)."""
    cells = json.loads((ROOT / "notebooks" / notebook).read_text())["cells"]
    last = [c for c in cells if c["cell_type"] == "code"][-1]
    assert "lab.state.to_json()" in "".join(last["source"]), f"{notebook}'s last cell must print the Lab's State"
    text = "".join("".join(o.get("text", "")) for o in last["outputs"] if o.get("output_type") == "stream")
    return json.loads(text)


# Runs code in the notebook's own kernel and returns what it printed (the page's kernel connection).
_EXECUTE = """async ([path, code]) => {
  const panel = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === path);
  const future = panel.sessionContext.session.kernel.requestExecute({code, store_history: false});
  let out = '';
  future.onIOPub = msg => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
  await future.done;
  return out;
}"""


# Where the Lab's parts end, against the notebook's visible area: a part whose right edge is past it is cut off
# unless a column that scrolls holds it.
_CUT_OFF = """(sel) => {
  const lab = document.querySelector(sel);
  const area = lab.closest('.jp-WindowedPanel-outer, .jp-Notebook') || document.body;
  const right = area.getBoundingClientRect().right;
  const scrolls = e => {
    for (let p = e.parentElement; p && p !== lab; p = p.parentElement) {
      const s = getComputedStyle(p);
      if (/(auto|scroll)/.test(s.overflowX) && p.getBoundingClientRect().right <= right + 1) return true;
    }
    return false;
  };
  const parts = lab.querySelectorAll(['.el-status', '.el-metrics', '.widget-slider', '.widget-dropdown',
    '.widget-toggle-buttons', '.el-figure', '.widget-checkbox', '.widget-text', 'button'].join(', '));
  const name = e => e.className.split(' ').filter(c => c.startsWith('el-') || c.startsWith('widget-')).join('.');
  return Array.from(parts).filter(e => e.getBoundingClientRect().width > 0)
    .filter(e => e.getBoundingClientRect().right > right + 1 && !scrolls(e))
    .map(e => `${name(e)} ends at ${Math.round(e.getBoundingClientRect().right)} px, ` +
              `the notebook at ${Math.round(right)} px`);
}"""


@pytest.mark.parametrize("width", [1366, 800])
@pytest.mark.parametrize("notebook", WITH_LAB)
def test_the_lab_fits_the_notebook(notebook, width, lab_runner, artefacts):
    """In JupyterLab's default layout (file browser open) at a laptop's 1366 px and at 800 px, no part of the Lab
    is cut off: the columns wrap, and what is still wider (a figure) scrolls in its column."""
    opened = lab_runner.get(notebook)
    page = opened.page
    try:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(500)  # the layout settles
        lab_runner.screenshot(opened, f"width-{width}", opened.lab.first)
        cut = page.evaluate(_CUT_OFF, f".{opened.scenario.lab}")
        assert not cut, f"at {width} px: " + "; ".join(cut[:6])
    finally:
        page.set_viewport_size(VIEWPORT)
