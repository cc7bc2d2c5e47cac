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
