"""What the browser tests share: finding Chromium, the served notebooks, the servers, and each Lab's scenario.

The tests drive the Labs as a learner does (the menu's Run All, typing into a slider's readout, ticking a box,
picking from a dropdown) in headless Chromium through Playwright's sync API.  They never download a browser:
they use the system's Chromium (``apt-get install chromium``) or ``$ENSEMBLE_LAB_CHROMIUM``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Generous waits: a notebook from a cold cache takes about 80 s on 2 cores, and CI may be slower.
RUN_TIMEOUT_S = float(os.environ.get("ENSEMBLE_LAB_BROWSER_TIMEOUT", "600"))
ACTION_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1920, "height": 1500}


# -- what must be installed -------------------------------------------------------------------------------
def chromium_path() -> str | None:
    """The system Chromium: ``$ENSEMBLE_LAB_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on PATH."""
    explicit = os.environ.get("ENSEMBLE_LAB_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing(*modules: str) -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "browser tests skipped: Playwright for Python is not installed (pip install playwright; "
            "no `playwright install` needed, the tests use the system Chromium)"
        )
    if chromium_path() is None:
        return (
            "browser tests skipped: no Chromium found (apt-get install chromium, or set "
            "ENSEMBLE_LAB_CHROMIUM to a Chromium/Chrome binary)"
        )
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            return f"browser tests skipped: {module} is not installed (pip install {module})"
    return None


# -- servers ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A server started in its own process group, with its log file."""

    name: str
    url: str
    process: subprocess.Popen
    log: Path
    token: str = ""

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def api(self, method: str, path: str) -> object:
        """A call to the server's REST API (``/api/...``), answered as JSON (None when empty)."""
        request = urllib.request.Request(self.url.rstrip("/") + path, method=method)
        if self.token:
            request.add_header("Authorization", f"token {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def stop(self) -> None:
        """SIGTERM (the server shuts its kernels down), then SIGKILL to the whole process group."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def start_server(
    name: str,
    command: list[str],
    url: str,
    probe: str,
    log: Path,
    token: str = "",
    timeout: float = 180.0,
    env: dict | None = None,
) -> Server:
    """Start ``command`` (its own process group, output to ``log``) and wait until ``url + probe`` answers."""
    handle = log.open("w")
    process = subprocess.Popen(
        command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
    )
    handle.close()
    server = Server(name, url, process, log, token)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before answering:\n{server.log_tail()}")
        try:
            request = urllib.request.Request(url.rstrip("/") + probe)
            if token:
                request.add_header("Authorization", f"token {token}")
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} did not answer within {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.25)


# -- reading what a Lab shows ---------------------------------------------------------------------------
# The numbers of an element (or of one table row: the row whose first cell starts with ``row``, its other
# cells only, so a row label such as "WiSE-FT (alpha 0.5)" does not count as a changed number).
READ_NUMBERS = r"""([sel, row]) => {
  const el = document.querySelector(sel);
  if (!el) return null;
  let text = el.textContent;
  if (row) {
    const tr = Array.from(el.querySelectorAll('tr')).find(
      r => r.cells.length > 1 && r.cells[0].textContent.trim().startsWith(row));
    if (!tr) return null;
    text = Array.from(tr.cells).slice(1).map(c => c.textContent).join(' ');
  }
  return (text.match(/-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?/gi) || []).join(' ');
}"""

CHANGED = (
    "([sel, row, before]) => { const now = (" + READ_NUMBERS + ")([sel, row]); "
    "return now !== null && now !== '' && now !== before; }"
)

# A figure's pixels (ipympl draws each image into its first canvas); '' while nothing is drawn on it.
CANVAS_PIXELS = r"""(sel) => {
  const c = document.querySelector(sel);
  if (!c || !c.width || !c.height) return '';
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let ink = 0, h = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) ink++;
    h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2] + 17 * d[i + 3]) >>> 0;
  }
  return ink > 100 ? `${ink}:${h}` : '';
}"""


def numbers(text: str) -> list[float]:
    return [float(x.replace(",", "")) for x in text.split()] if text else []


# -- the learner's moves ---------------------------------------------------------------------------------
def type_readout(control, value: str) -> None:
    """Type ``value`` into a slider's readout and press Enter (as a learner does for an exact value)."""
    readout = control.locator(".widget-readout")
    readout.click()
    readout.fill(value)
    readout.press("Enter")


def readout_value(control) -> str:
    return control.locator(".widget-readout").inner_text().strip()


def cycle_readout(values: tuple[str, ...]) -> Callable:
    """A move that types the next of ``values`` differing from what the readout shows."""

    def move(control, i: int) -> str:
        now = float(readout_value(control) or "nan")
        # a log slider rounds to its grid (1.50 shows as 1.51): skip values within 5% of the one shown
        options = [v for v in values if not abs(float(v) - now) <= 0.05 * max(abs(now), 0.1)]
        value = options[i % len(options)]
        type_readout(control, value)
        return value

    return move


def cycle_dropdown(labels: tuple[str, ...]) -> Callable:
    """A move that picks the next of the option ``labels`` other than the one shown."""

    def move(control, i: int) -> str:
        select = control.locator("select")
        now = select.evaluate("s => s.options[s.selectedIndex] ? s.options[s.selectedIndex].text : ''")
        options = [label for label in labels if label != now]
        label = options[i % len(options)]
        select.select_option(label=label)
        return label

    return move


def toggle_checkbox(control, i: int) -> str:
    """A move that ticks or unticks a checkbox."""
    box = control.locator("input[type=checkbox]")
    box.click()
    return "ticked" if box.is_checked() else "unticked"


@dataclass
class Scenario:
    """How to move one control of a notebook's Lab and which number must respond.

    ``lab``: the Lab's CSS class; ``control``: the control's; ``probe``: the element with the numbers, and ``row``
    the table row to read (None: every number in ``probe``); ``move(control, i)`` makes the i-th move and says
    what it did; ``check(move)`` an extra check of a :class:`Move` (a message when it fails, else None).
    """

    lab: str
    control: str
    move: Callable
    probe: str = ".el-metrics"
    row: str | None = None
    check: Callable | None = None

    def selector(self, css: str) -> str:
        return f".{self.lab} {css}"


def _one_prompt_more_or_less(move: Move) -> str | None:
    """Ticking (unticking) a prompt adds (removes) one prompt from those the Lab counts."""
    counts = [re.search(r"(\d+) prompts", t) for t in (move.text_before, move.text_after)]
    if not all(counts):
        return f"no prompt count in the Lab's numbers: {move.text_after!r}"
    n0, n1 = (int(c.group(1)) for c in counts)
    want = n0 + (1 if move.did == "ticked" else -1)
    return None if n1 == want else f"{move.did} one prompt: expected {want} prompts, the Lab shows {n1}"


SCENARIOS: dict[str, Scenario] = {
    # a dropdown: the combination rule; the ensemble's numbers change
    # (not between "geometric mean" and "average logits": normalised, the two give the same probabilities)
    "01": Scenario(
        "el-deep-ensembles", ".el-rule", cycle_dropdown(("majority vote", "average probabilities")), row="ensemble"
    ),
    # a log slider's readout: the temperature; the "after" row changes
    "02": Scenario("el-calibration", ".el-temperature", cycle_readout(("2.00", "0.50", "1.50", "0.70")), row="after"),
    # a checkbox of the prompt pool: one prompt fewer or more, and the numbers of the zero-shot classifier
    "03": Scenario("el-prompts", ".el-prompt-0", toggle_checkbox, check=_one_prompt_more_or_less),
    # a slider's readout: the window's half-width; the cascade's cost and coverage change
    "04": Scenario("el-cascades", ".el-half-width", cycle_readout(("0.05", "0.30", "0.10", "0.40")), row="cascade"),
    # a slider's readout: WiSE-FT's alpha; the WiSE-FT row changes
    "05": Scenario(
        "el-soups",
        ".el-alpha",
        cycle_readout(("0.0", "1.0", "0.2", "0.8", "0.4", "0.6", "0.1", "0.9", "0.3", "0.7")),
        row="WiSE-FT",
    ),
    # a slider's readout: the number of selection steps; the forward selection's row changes
    "06": Scenario(
        "el-selection", ".el-steps", cycle_readout(("5", "40", "10", "30", "2", "45")), row="forward selection"
    ),
    # a slider's readout: the ensemble size (a prefix of the cached members); the summary's scores change
    "07": Scenario(
        "el-forecast", ".el-members", cycle_readout(("5", "31", "10", "25", "3", "15")), probe=".el-summary"
    ),
    # a slider's readout: the number of trees (a prefix of one fitted forest); the summary's numbers change
    "08": Scenario(
        "el-forests", ".el-n-trees", cycle_readout(("5", "100", "10", "50", "1", "25")), probe=".el-summary"
    ),
}


def scenario(notebook: str) -> Scenario | None:
    """The notebook's scenario (None for a notebook without a Lab, such as 00_start_here)."""
    return SCENARIOS.get(notebook[:2])


WITH_LAB = [nb for nb in NOTEBOOKS if scenario(nb) is not None]


# -- moves that must change a number --------------------------------------------------------------------
@dataclass
class Move:
    """What a move did and the probed numbers (and the probe's whole text) before and after it."""

    did: str
    before: str
    after: str
    text_before: str
    text_after: str
    action_s: float  # the move itself (Playwright's click, fill, select: waits until the control can take it)
    response_s: float  # from the end of the move to the changed number


def move_and_wait(
    page,
    sc: Scenario,
    i: int = 0,
    timeout_ms: int = ACTION_TIMEOUT_MS,
    control: str | None = None,
    move: Callable | None = None,
    probe: str | None = None,
    row: str | None = "",
) -> Move:
    """Make the scenario's i-th move (or ``move`` on ``control``) and wait until the probed numbers change;
    an assertion error says what stayed the same."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    probe = sc.selector(probe or sc.probe)
    row = sc.row if row == "" else row
    text = lambda: page.locator(probe).first.text_content()  # noqa: E731
    before, text_before = page.evaluate(READ_NUMBERS, [probe, row]), text()
    assert before, f"the Lab shows no numbers in {probe!r}" + (f" (row {row!r})" if row else "")
    start = time.perf_counter()
    did = (move or sc.move)(page.locator(sc.selector(control or sc.control)).first, i)
    moved = time.perf_counter()
    try:
        page.wait_for_function(CHANGED, arg=[probe, row, before], timeout=timeout_ms, polling=50)
    except PlaywrightTimeout:
        raise AssertionError(
            f"{control or sc.control} -> {did}: the numbers in {probe!r}"
            + (f" (row {row!r})" if row else "")
            + f" did not change within {timeout_ms / 1000:.0f} s: {before}"
        ) from None
    responded = time.perf_counter()
    return Move(
        did,
        before,
        page.evaluate(READ_NUMBERS, [probe, row]),
        text_before,
        text(),
        round(moved - start, 3),
        round(responded - moved, 3),
    )


def status_text(page, sc: Scenario) -> str:
    return page.locator(sc.selector(".el-status")).first.inner_text().strip()


def wait_for_status(page, sc: Scenario, fragment: str) -> str:
    """Wait until the Lab's status line contains ``fragment``; returns the status line."""
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).textContent.includes(text)",
        arg=[sc.selector(".el-status"), fragment],
    )
    return status_text(page, sc)


def wait_for_figure(page, sc: Scenario, before: str = "", timeout_ms: int = 30_000) -> str:
    """Wait until the Lab's figure shows a drawing (other than ``before``); returns its pixel signature."""
    canvas = sc.selector(".el-figure canvas")
    drawn = f"([sel, before]) => {{ const p = ({CANVAS_PIXELS})(sel); return p !== '' && p !== before; }}"
    page.wait_for_function(drawn, arg=[canvas, before], timeout=timeout_ms, polling=100)
    return page.evaluate(CANVAS_PIXELS, canvas)


# -- accessibility: an axe-core audit, and the keyboard ----------------------------------------------------------
# axe-core rules that fail the audit; the others (moderate, minor: landmarks, heading order) are printed only
FAILING_IMPACTS = ("critical", "serious")

# Violations that come from Voila's or JupyterLab's own page (its template, its chrome), not from a notebook's
# cells, widgets or outputs, with the reason they cannot be fixed here: rule id -> reason.  A node counts as the
# project's own when it lies in a notebook cell, an output or a Lab (OWN_CONTENT); any other node of a rule that
# is not listed here fails the audit, so that a new one gets a reason or a fix.
CHROME_ALLOWED = {
    "region": (
        "Voila's lab template renders the notebook in plain <div>s with no <main> landmark; a template change "
        "(a custom Voila template) is outside this project"
    ),
    "landmark-one-main": "Voila's lab template has no <main> element (the page's chrome, as for 'region')",
    "page-has-heading-one": "the page's first heading is the notebook's own h1, rendered by Voila's template",
}
OWN_CONTENT = ".jp-Cell, .jp-OutputArea, .jp-OutputArea-output, .el-lab"

_CLASSIFY = r"""([targets, own]) => targets.map(t => {
  const el = document.querySelector(t[t.length - 1]);
  return !!(el && el.closest(own));
})"""


@dataclass
class AxeFinding:
    rule: str
    impact: str
    help: str
    own: int  # nodes in the project's own content
    chrome: int  # nodes in Voila's or JupyterLab's page around it
    examples: list[str]


def axe_audit(page) -> list[AxeFinding]:
    """Run axe-core (bundled by axe-playwright-python) on ``page``; one finding per violated rule, its nodes
    split into the project's own content and the page's chrome."""
    from axe_playwright_python.sync_playwright import Axe

    response = Axe().run(page).response
    findings = []
    for v in response["violations"]:
        targets = [n["target"] for n in v["nodes"]]
        own = page.evaluate(_CLASSIFY, [targets, OWN_CONTENT])
        examples = [f"{n['target'][-1]}: {n['html'][:120]}" for n in v["nodes"][:3]]
        findings.append(AxeFinding(v["id"], v["impact"] or "minor", v["help"], sum(own), len(own) - sum(own), examples))
    return findings


def audit_problems(findings: list[AxeFinding]) -> list[str]:
    """What fails the audit: a critical or serious violation in the project's own content, or in the page's
    chrome unless its rule is in CHROME_ALLOWED."""
    problems = []
    for f in findings:
        if f.impact not in FAILING_IMPACTS:
            continue
        if f.own:
            problems.append(f"{f.impact} {f.rule} ({f.own} own nodes): {f.help}; e.g. {f.examples}")
        if f.chrome and f.rule not in CHROME_ALLOWED:
            problems.append(f"{f.impact} {f.rule} ({f.chrome} nodes of the page's chrome, not allow-listed): {f.help}")
    return problems


def audit_summary(findings: list[AxeFinding]) -> dict[str, int]:
    """Violated nodes by impact (own and chrome together)."""
    out: dict[str, int] = {}
    for f in findings:
        out[f.impact] = out.get(f.impact, 0) + f.own + f.chrome
    return out


# Where the keyboard focus is: a short description of document.activeElement
FOCUSED = r"""() => {
  const a = document.activeElement;
  if (!a || a === document.body) return {where: 'body'};
  const label = document.getElementById(a.getAttribute('aria-labelledby') || ''), slider = a.closest('.widget-slider');
  const readout = slider && slider.querySelector('.widget-readout');
  return {
    where: a.className && typeof a.className === 'string' ? a.className.split(' ').slice(0, 3).join('.') : a.tagName,
    tag: a.tagName, handle: a.classList.contains('noUi-handle'),
    canvas: a.classList.contains('jupyter-matplotlib-canvas-div'),
    inLab: !!a.closest('.el-lab'), name: a.getAttribute('aria-label') || '',
    labelledby: label ? label.textContent : '', valuetext: a.getAttribute('aria-valuetext') || '',
    readout: readout ? readout.textContent : '',
  };
}"""

# Voila has rendered every cell (its "Executing i of n" spinner, #loading, is gone)
RENDERED = "() => !document.getElementById('loading') && !!document.querySelector('.jp-Cell')"

# The Lab's controls have been named by the accessibility helper (it runs after the widgets render)
LAB_NAMED = r"""(lab) => {
  const root = document.querySelector(lab);
  if (!root || root.getAttribute('role') !== 'region') return false;
  const handles = root.querySelectorAll('.noUi-handle');
  return Array.from(handles).every(h => h.getAttribute('aria-labelledby') || h.getAttribute('aria-label'));
}"""


def tab_until(page, want: Callable[[dict], bool], presses: int = 40, key: str = "Tab") -> tuple[dict, list[dict]]:
    """Press ``key`` until the focused element satisfies ``want``; returns it and every element focused on the
    way (an AssertionError names them when none did)."""
    seen = []
    for _ in range(presses):
        page.keyboard.press(key)
        now = page.evaluate(FOCUSED)
        seen.append(now)
        if want(now):
            return now, seen
    went = [s["where"] for s in seen]
    raise AssertionError(f"{presses} x {key} never reached the element wanted; focus went: {went}")


def keyboard_run(page, sc: Scenario) -> dict:
    """A Lab from the keyboard alone: Tab from the Lab's first control reaches a named slider handle, the arrow
    keys move it (the Lab's numbers change, and the handle announces the readout's value), Tab goes on past the
    figure (no canvas in the Tab order) and out of the Lab; a figure given focus by a click lets Tab, Shift+Tab
    and Escape take it away.  Returns what it saw."""
    lab = f".{sc.lab}"
    page.wait_for_function(LAB_NAMED, arg=lab, timeout=ACTION_TIMEOUT_MS)
    page.evaluate(
        "(lab) => document.querySelector(lab).querySelector('select, input, button, [tabindex=\"0\"]').focus()", lab
    )
    handle, on_the_way = tab_until(page, lambda f: f.get("handle") and f.get("inLab"))
    assert handle["labelledby"] or handle["name"], f"a slider handle without an accessible name: {handle}"
    assert handle["valuetext"] == handle["readout"].strip(), f"the handle announces {handle['valuetext']!r}: {handle}"
    ring = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth), s.outlineColor]; }"
    )
    assert ring[0] != "none", f"the focused handle shows no focus ring: {ring}"
    assert ring[1] >= 2, f"the focused handle's focus ring is thinner than 2 px: {ring}"

    def arrow(control, i):
        page.keyboard.press("ArrowRight")
        return "ArrowRight on the focused slider handle"

    move = move_and_wait(page, sc, move=arrow, row=None)
    page.wait_for_function(
        "() => { const a = document.activeElement, s = a.closest('.widget-slider');"
        " return a.getAttribute('aria-valuetext') === s.querySelector('.widget-readout').textContent.trim(); }"
    )
    moved = page.evaluate(FOCUSED)
    assert moved["valuetext"] != handle["valuetext"], f"the handle still announces {handle['valuetext']!r}"
    out, after = tab_until(page, lambda f: not f.get("inLab"), presses=80)
    visited = on_the_way + after
    canvases = [f for f in visited if f.get("canvas")]
    assert not canvases, f"Tab stopped on a figure's canvas: {canvases}"
    # a click gives a figure the focus: each of Tab, Shift+Tab and Escape takes it away
    canvas = page.locator(f"{lab} .jupyter-matplotlib-canvas-div").first
    for key in ("Tab", "Shift+Tab", "Escape"):
        canvas.focus()
        assert page.evaluate(FOCUSED).get("canvas"), "the figure's canvas could not be focused"
        page.keyboard.press(key)
        assert not page.evaluate(FOCUSED).get("canvas"), f"{key} did not leave the figure: the canvas swallowed it"
    return {
        "handle": handle["labelledby"] or handle["name"],
        "value_before": handle["valuetext"],
        "value_after": moved["valuetext"],
        "numbers_before": move.before,
        "numbers_after": move.after,
        "focus_ring": f"{ring[1]:g}px {ring[0]} {ring[2]}",
        "tab_stops_in_lab": sum(1 for f in visited if f.get("inLab")),
        "left_the_lab_to": out["where"],
    }
