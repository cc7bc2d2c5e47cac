"""Fixtures of the browser tests: a copy of the notebooks, JupyterLab and Voila servers (one per test module, so
only one runs at a time), headless Chromium, and one notebook at a time opened and run in each (kept open for the
tests of that notebook, then closed and its kernel shut down: one kernel alive at a time).

The servers inherit this session's environment, so their kernels share the session's ENSEMBLE_LAB_CACHE with the
unit tests and nbval (see the root conftest.py): whichever runs a notebook first builds its cached artefacts.
They serve a temporary copy of notebooks/ (JupyterLab autosaves), so the repository is never written.

Artefacts (screenshots, server logs, browser_timings.json) go to build/browser-artefacts/, or to
$ENSEMBLE_LAB_ARTEFACTS.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_support import (
    ACTION_TIMEOUT_MS,
    ROOT,
    RUN_TIMEOUT_S,
    VIEWPORT,
    chromium_path,
    free_port,
    missing,
    move_and_wait,
    scenario,
    start_server,
    status_text,
    wait_for_figure,
)

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(session, config, items):
    """Keep the tests of one notebook together (per module, in their written order), so that each notebook is
    opened and run once per mode and its page is shared by its tests."""
    positions = [i for i, item in enumerate(items) if HERE in Path(str(item.path)).resolve().parents]

    def key(pos: int):
        item = items[pos]
        params = getattr(getattr(item, "callspec", None), "params", {})
        return str(item.path), params.get("notebook", ""), pos

    ordered = [items[p] for p in sorted(positions, key=key)]
    for pos, item in zip(positions, ordered, strict=False):
        items[pos] = item


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.el_failed = report.failed


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request, artefacts):
    """A failed test leaves a screenshot of the page it used (failed-<test>.png in the artefacts)."""
    yield
    if not getattr(request.node, "el_failed", False):
        return
    for name in ("lab_runner", "voila_runner"):
        if name in request.fixturenames:
            runner = request.getfixturevalue(name)
            if runner.current is not None:
                safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)
                with contextlib.suppress(Exception):
                    runner.current.page.screenshot(path=str(artefacts / f"failed-{safe}.png"), full_page=True)


# -- artefacts and timings -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def artefacts() -> Path:
    path = Path(os.environ.get("ENSEMBLE_LAB_ARTEFACTS") or ROOT / "build" / "browser-artefacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Timings:
    """browser_timings.json: written again after every record, started afresh by each session."""

    def __init__(self, path: Path, meta: dict):
        self.path = path
        self.data: dict = {"meta": meta}

    def record(self, section: str, key: str, values: dict) -> None:
        self.data.setdefault(section, {}).setdefault(key, {}).update(values)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True))
        tmp.replace(self.path)


@pytest.fixture(scope="session")
def timings(artefacts) -> Timings:
    cache = Path(os.environ.get("ENSEMBLE_LAB_CACHE", ""))
    meta = {
        "cache": str(cache),
        "cache_empty_at_start": not (cache.is_dir() and any(cache.iterdir())),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return Timings(artefacts / "browser_timings.json", meta)


# -- what is served ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def served_notebooks(tmp_path_factory) -> Path:
    """A temporary copy of notebooks/: the browser may save (autosave) without touching the repository."""
    target = tmp_path_factory.mktemp("served") / "notebooks"
    shutil.copytree(ROOT / "notebooks", target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return target


def _server_env(tmp: Path) -> dict:
    env = dict(os.environ)
    env["JUPYTER_CONFIG_DIR"] = str(tmp / "jupyter-config")  # no user configuration (~/.jupyter)
    env.pop("JUPYTER_TOKEN", None)
    return env


_LAB_SETTINGS = {
    # never write the served notebooks behind the tests' back (they are a copy anyway)
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # no "news" or "updates" pop-ups (no network here)
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # every cell in the DOM
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


@pytest.fixture(scope="module")
def jupyter_lab(served_notebooks, artefacts, tmp_path_factory):
    """``jupyter lab`` on a free local port over the copy of the notebooks, with fresh workspaces and settings.
    Yields the :class:`~browser_support.Server` (``url``, ``token``, ``api``)."""
    reason = missing("jupyterlab")
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("jupyterlab")
    for name, values in _LAB_SETTINGS.items():
        path = tmp / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    (tmp / "workspaces").mkdir()
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={served_notebooks}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        f"--LabApp.user_settings_dir={tmp / 'settings'}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",
        "--ServerApp.terminals_enabled=False",
    ]
    server = start_server(
        "jupyter lab",
        command,
        f"http://127.0.0.1:{port}",
        "/api/status",
        artefacts / "jupyterlab.log",
        token=token,
        env=_server_env(tmp),
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def voila_server(served_notebooks, artefacts, tmp_path_factory):
    """``voila`` (app mode) on a free local port over the copy of the notebooks: /voila/render/NN_topic.ipynb."""
    reason = missing("voila")
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("voila")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "voila",
        str(served_notebooks),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        "--show_tracebacks=True",
    ]
    server = start_server(
        "voila", command, f"http://127.0.0.1:{port}", "/voila/tree", artefacts / "voila.log", env=_server_env(tmp)
    )
    yield server
    server.stop()


# -- the browser -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser():
    """Headless system Chromium through Playwright (never a downloaded browser)."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
    except Exception as exc:  # a broken or incompatible binary: say so and skip
        playwright.stop()
        pytest.skip(
            f"browser tests skipped: Chromium at {chromium_path()} did not start ({exc}); "
            "apt-get install chromium, or set ENSEMBLE_LAB_CHROMIUM"
        )
    yield chromium
    chromium.close()
    playwright.stop()


# -- one notebook at a time, run in JupyterLab ---------------------------------------------------------------
# The state of a notebook panel, read from the JupyterLab application (exposed with expose_app_in_browser):
# its kernel's status and, per code cell, its execution count, whether it is running or queued, and its errors.
_PANEL_STATE = r"""(path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
  if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) return null;
  const session = panel.sessionContext.session;
  const kernel = session && session.kernel;
  const m = panel.content.model, cells = [];
  for (let i = 0; i < m.cells.length; i++) {
    const c = m.cells.get(i);
    if (c.type !== 'code') continue;
    const errors = c.outputs.toJSON().filter(o => o.output_type === 'error')
      .map(o => `${o.ename}: ${o.evalue}`);
    cells.push({index: i, count: c.executionCount, running: c.executionState === 'running', errors});
  }
  return {kernel: kernel ? kernel.status : null, cells};
}"""
_KERNEL_READY = f"(path) => {{ const s = ({_PANEL_STATE})(path); return !!s && s.kernel === 'idle'; }}"
_RUN_STARTED = f"(path) => {{ const s = ({_PANEL_STATE})(path); return !!s && s.cells.some(c => c.running); }}"
_RUN_DONE = (
    f"(path) => {{ const s = ({_PANEL_STATE})(path); "
    "return !!s && s.kernel === 'idle' && !s.cells.some(c => c.running); }"
)


class OpenNotebook:
    """A notebook open in a page, run once; ``t0`` is when the run began (perf_counter seconds)."""

    def __init__(self, notebook: str, mode: str, page):
        self.notebook, self.mode, self.page = notebook, mode, page
        self.scenario = scenario(notebook)
        self.lab = page.locator(f".{self.scenario.lab}" if self.scenario else ".el-lab")
        self.t0 = time.perf_counter()
        self.times: dict[str, float] = {}
        self.errors: list[str] = []
        self.failure: str | None = None
        # (when, what) of each websocket frame the page sent (to a kernel): message type, start of its content
        self.sent: list[tuple[float, str]] = []
        page.on("websocket", lambda ws: ws.on("framesent", self._on_frame))

    def _on_frame(self, payload) -> None:
        text = payload.decode("latin-1") if isinstance(payload, (bytes, bytearray)) else str(payload)
        kind = re.search(r'"msg_type"\s*:\s*"([^"]+)"', text)
        content = re.search(r'"content"\s*:\s*(\{.{0,160})', text)
        self.sent.append(
            (time.monotonic(), f"{kind.group(1) if kind else '?'} {content.group(1) if content else text[:120]}")
        )

    def wait_quiet(self, quiet_s: float = 1.0, timeout_s: float = 20.0) -> int:
        """Wait until the page has sent nothing to its kernel for ``quiet_s`` seconds; returns the frames sent
        meanwhile, or raises AssertionError (something, such as a redraw loop, keeps the kernel busy)."""
        start = time.monotonic()
        while True:
            now = time.monotonic()
            last = self.sent[-1][0] if self.sent else 0.0
            if now - max(last, start) >= quiet_s:
                return sum(t >= start for t, _ in self.sent)
            if now - start > timeout_s:
                recent = sum(t >= now - 5 for t, _ in self.sent)
                last = "\n  ".join(what for _, what in self.sent[-4:])
                raise AssertionError(
                    f"the page keeps messaging its kernel ({recent} frames in the last 5 s, "
                    f"{timeout_s:.0f} s after the move): a redraw loop keeps the kernel busy; "
                    f"the last frames:\n  {last}"
                )
            self.page.wait_for_timeout(100)

    def mark(self, name: str) -> float:
        self.times[name] = round(time.perf_counter() - self.t0, 2)
        return self.times[name]

    # -- the checks both modes make (test_jupyterlab.py, test_voila.py) ---------------------------------------
    def assert_no_lab(self) -> None:
        """A notebook without a scenario (00_start_here) must show no Lab."""
        assert self.lab.count() == 0, f"{self.notebook} shows a Lab: add its scenario to browser_support.SCENARIOS"

    def first_move(self) -> dict:
        """The Lab is shown once; moving its control changes a number (and passes the scenario's own check) and
        leaves no warning in the status line.  Returns the move's timings for browser_timings.json."""
        sc = self.scenario
        assert self.lab.count() == 1, f"expected one .{sc.lab} in {self.mode}, found {self.lab.count()}"
        assert self.lab.first.is_visible()
        move = move_and_wait(self.page, sc)
        self.mark("interactive_s")
        if sc.check:
            problem = sc.check(move)
            assert problem is None, problem
        assert "⚠" not in status_text(self.page, sc), status_text(self.page, sc)
        return {
            "control": sc.control,
            "move": move.did,
            "first_move_action_s": move.action_s,
            "first_move_response_s": move.response_s,
        }

    def figure_follows_a_move(self) -> None:
        """The Lab's figure is drawn, and drawn anew after a move."""
        drawn = wait_for_figure(self.page, self.scenario)
        move_and_wait(self.page, self.scenario, i=1)
        wait_for_figure(self.page, self.scenario, before=drawn)

    def goes_quiet_after_a_move(self) -> None:
        """After a move the page stops messaging the kernel (no endless redraw requests)."""
        move_and_wait(self.page, self.scenario, i=2)
        self.wait_quiet()


class NotebookRunner:
    """Opens and runs one notebook at a time and keeps it open for the next test of the same notebook."""

    mode = ""

    def __init__(self, browser, server, artefacts: Path):
        self.browser, self.server, self.artefacts = browser, server, artefacts
        self.current: OpenNotebook | None = None

    def get(self, notebook: str, fresh: bool = False) -> OpenNotebook:
        """The notebook open and run (the page of the notebook's earlier tests, unless ``fresh``: run anew)."""
        if self.current is not None and self.current.notebook == notebook and not fresh:
            if self.current.failure:
                pytest.skip(f"{notebook} did not run in {self.mode} (see its first test): {self.current.failure}")
            return self.current
        self.close()
        self.current = opened = OpenNotebook(notebook, self.mode, self.page_for(notebook))
        try:
            self.run(opened)
        except Exception as exc:
            opened.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.screenshot(opened, "failed")
            raise
        return opened

    def screenshot(self, opened: OpenNotebook, what: str, element=None) -> Path:
        path = self.artefacts / f"{self.mode}-{Path(opened.notebook).stem}-{what}.png"
        with contextlib.suppress(Exception):  # a screenshot is evidence, never the reason a test fails
            (element or opened.page).screenshot(path=str(path), **({} if element else {"full_page": True}))
        return path

    def new_page(self):
        page = self.browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(ACTION_TIMEOUT_MS)
        return page

    def page_for(self, notebook: str):
        return self.new_page()

    def run(self, opened: OpenNotebook) -> None:
        raise NotImplementedError

    def release(self, opened: OpenNotebook) -> None:
        opened.page.close(run_before_unload=True)

    def close(self) -> None:
        """Close the current notebook (and shut its kernel down)."""
        if self.current is not None:
            try:
                self.release(self.current)
            finally:
                self.current = None


class LabRunner(NotebookRunner):
    """One JupyterLab page for the session; each notebook is opened from the file browser, run with the Run menu's
    Run All Cells, then closed and its kernel shut down."""

    mode = "jupyterlab"

    def __init__(self, *args):
        super().__init__(*args)
        self.page = None

    def page_for(self, notebook: str):
        if self.page is None or self.page.is_closed():
            self.page = self.new_page()
            self.page.goto(f"{self.server.url}/lab?reset&token={self.server.token}")
            self.page.wait_for_function("() => !!window.jupyterapp", timeout=120_000)
        return self.page

    def run(self, opened: OpenNotebook) -> None:
        page, nb = opened.page, opened.notebook
        page.locator(".jp-DirListing-content").get_by_text(nb, exact=True).dblclick()
        page.wait_for_function(_KERNEL_READY, arg=nb, timeout=180_000)  # the kernel has started
        opened.mark("open_s")
        page.locator("#jp-MainMenu").get_by_text("Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        opened.t0 = time.perf_counter()
        page.wait_for_function(_RUN_STARTED, arg=nb, timeout=30_000)
        # the Lab appears (or the run ends without it, e.g. stopped by an error)
        timeout = RUN_TIMEOUT_S * 1000
        page.wait_for_function(
            f"(path) => !!document.querySelector('.el-lab') || ({_RUN_DONE})(path)", arg=nb, timeout=timeout
        )
        if opened.lab.count():
            opened.lab.first.wait_for(state="visible")
            opened.mark("lab_visible_s")
        page.wait_for_function(_RUN_DONE, arg=nb, timeout=timeout)
        opened.mark("run_done_s")
        state = page.evaluate(_PANEL_STATE, nb)
        for cell in state["cells"]:
            opened.errors += [f"cell {cell['index']}: {e}" for e in cell["errors"]]
            if cell["count"] is None:
                opened.errors.append(f"cell {cell['index']} did not run")
        opened.errors += page.evaluate(_WIDGET_ERRORS)

    def release(self, opened: OpenNotebook) -> None:
        """Close the notebook's tab without saving, then shut its kernel down (its memory back before the next)."""
        try:
            opened.page.evaluate(
                """(path) => {
              const panel = Array.from(window.jupyterapp.shell.widgets('main'))
                .find(w => w.context && w.context.path === path);
              if (panel) { panel.context.model.dirty = false; panel.close(); }
            }""",
                opened.notebook,
            )
        except Exception:  # the page is in a bad state: start a fresh one for the next notebook
            opened.page.close()
        try:
            for session in self.server.api("GET", "/api/sessions") or []:
                if session.get("path", "").endswith(opened.notebook):
                    self.server.api("DELETE", f"/api/sessions/{session['id']}")
        except Exception:
            pass
        if opened.failure and not opened.page.is_closed():
            opened.page.close()


# Voila renders the executed notebook: errors are shown as stderr outputs with a traceback (--show_tracebacks)
# or, without tracebacks, as "There was an error when executing cell".
_VOILA_ERRORS = r"""() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
  .filter(e => (e.getAttribute('data-mime-type') || '').includes('stderr'))
  .map(e => e.textContent)
  .filter(t => /Traceback \(most recent call last\)|\b\w*(Error|Exception): /.test(t)
            || t.includes('There was an error when executing cell'))
  .map(t => t.trim().split('\n').slice(-3).join(' | ').slice(0, 500))"""
# A widget that the page could not display (a missing or mismatched front-end extension).
_WIDGET_ERRORS = r"""() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
  .map(e => e.textContent).filter(t => t.includes('Error displaying widget'))
  .map(t => t.trim().slice(0, 300))"""


class VoilaRunner(NotebookRunner):
    """One page per notebook: /voila/render/NN_topic.ipynb (Voila runs the notebook, then sends the page)."""

    mode = "voila"

    def release(self, opened: OpenNotebook) -> None:
        """Close the page and shut its kernel down.  Voila's own shutdown on leaving the page (a beacon to
        /voila/api/shutdown/<kernel>) is refused by Voila 0.5.13 when no _xsrf cookie was set (voila#1458), so
        kernels would pile up until the server stops: send it here with a matching cookie and header."""
        kernel = None
        with contextlib.suppress(Exception):
            kernel = opened.page.evaluate(
                "() => JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId"
            )
        opened.page.close()
        if kernel:
            xsrf = secrets.token_hex(16)
            request = urllib.request.Request(
                f"{self.server.url}/voila/api/shutdown/{kernel}",
                data=b"",
                method="POST",
                headers={"Cookie": f"_xsrf={xsrf}", "X-XSRFToken": xsrf},
            )
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=30).close()

    def run(self, opened: OpenNotebook) -> None:
        page, nb = opened.page, opened.notebook
        opened.t0 = time.perf_counter()
        page.goto(f"{self.server.url}/voila/render/{nb}", timeout=RUN_TIMEOUT_S * 1000)
        opened.mark("page_loaded_s")
        if opened.scenario is not None:
            opened.lab.first.wait_for(state="visible", timeout=RUN_TIMEOUT_S * 1000)
            opened.mark("lab_visible_s")
        opened.errors += page.evaluate(_VOILA_ERRORS) + page.evaluate(_WIDGET_ERRORS)


@pytest.fixture(scope="module")
def lab_runner(browser, jupyter_lab, artefacts):
    runner = LabRunner(browser, jupyter_lab, artefacts)
    yield runner
    runner.close()
    if runner.page is not None:
        runner.page.close()


@pytest.fixture(scope="module")
def voila_runner(browser, voila_server, artefacts):
    runner = VoilaRunner(browser, voila_server, artefacts)
    yield runner
    runner.close()
