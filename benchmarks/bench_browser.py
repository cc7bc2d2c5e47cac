"""The notebooks in a real browser: seconds from Run All (JupyterLab) or from asking for the page (Voila) to the Lab
answering its first control, and the in-browser latency of a slider move.

Runs the browser tests (tests/browser, headless system Chromium through Playwright) in a subprocess over a fresh
cache folder that is filled first with ``python -m ensemble_lab.zoo --prebuild``, so every notebook runs warm, as
on a learner's second visit (the cold first visit is in the bench_notebook section).  The tests write their
timings to browser_timings.json in a temporary artefacts folder, read here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_P95_MS = 250
LATENCY_MOVES = 40  # per Lab (the test suite makes 20)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.1f} s"


def main() -> str:
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as artefacts:
        env = dict(os.environ, ENSEMBLE_LAB_CACHE=cache, ENSEMBLE_LAB_ARTEFACTS=artefacts,
                   ENSEMBLE_LAB_LATENCY_MOVES=str(LATENCY_MOVES))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ensemble_lab.zoo", "--prebuild"], env=env, cwd=ROOT, check=True,
                       capture_output=True)
        prebuild_s = time.perf_counter() - start
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "tests/browser", "-q", "-p", "no:cacheprovider",
                               "-ra"], env=env, cwd=ROOT, capture_output=True, text=True)
        tests_s = time.perf_counter() - start
        summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1].strip("= ")
        path = Path(artefacts) / "browser_timings.json"
        data = json.loads(path.read_text()) if path.exists() else {}

    lines = ["## Notebooks in the browser (headless Chromium; JupyterLab and Voila app mode; warm cache)", ""]
    if not data.get("jupyterlab") and not data.get("voila"):
        tail = "\n".join(done.stdout.strip().splitlines()[-15:])
        lines += [f"No browser timings: the browser tests did not run ({summary}).", "", "```", tail, "```"]
        text = "\n".join(lines)
        print(text)
        return text
    lab, voila = data.get("jupyterlab", {}), data.get("voila", {})
    lines += ["| notebook | JupyterLab: Run All -> Lab shown | -> run done | -> first control answered | "
              "Voila: page asked -> Lab shown | -> first control answered |",
              "|---|---|---|---|---|---|"]
    for nb in sorted(set(lab) | set(voila)):
        a, b = lab.get(nb, {}), voila.get(nb, {})
        lines.append(f"| {nb} | {_fmt(a.get('run_all_to_lab_visible_s'))} | {_fmt(a.get('run_all_to_done_s'))} | "
                     f"{_fmt(a.get('run_all_to_interactive_s'))} | {_fmt(b.get('load_to_lab_visible_s'))} | "
                     f"{_fmt(b.get('load_to_interactive_s'))} |")
    lines += ["", "The first control answers after the whole notebook has run: its later cells drive the same Lab, "
              "and the kernel handles the control's message after them. Voila's times include starting the kernel; "
              "JupyterLab's start at Run All, with the kernel already started."]
    latency = data.get("control_latency", {})
    if latency:
        lines += ["", f"Latency of a control in JupyterLab: each Lab's control moved {LATENCY_MOVES} times, timed by the "
                      "page's own clock from the learner's action (Enter on a slider's readout, or a dropdown's or "
                      "checkbox's change event) to the changed number on the page; target p95 <= "
                      f"{TARGET_P95_MS} ms. The last column adds the test driver's round trips (Playwright).", "",
                  "| notebook | control | median | p95 | max | target | seen from the driver (median) |",
                  "|---|---|---|---|---|---|---|"]
        for nb, lat in sorted(latency.items()):
            verdict = "met" if lat["p95_ms"] <= TARGET_P95_MS else "**missed**"
            lines.append(f"| {nb} | `{lat['control']}` | {lat['median_ms']:.0f} ms | {lat['p95_ms']:.0f} ms | "
                         f"{lat['max_ms']:.0f} ms | {verdict} | {lat['round_trip_median_ms']:.0f} ms |")
    lines += ["", f"Browser tests: {summary} in {tests_s:.0f} s; building the cache first "
                  f"(`python -m ensemble_lab.zoo --prebuild`): {prebuild_s:.0f} s."]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
