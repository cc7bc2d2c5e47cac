"""The notebooks in a real browser: seconds from Run All (JupyterLab) or from asking for the page (Voila) to the Lab
answering its first control, from a cold and from a warm cache, and the in-browser latency of each Lab's control.

Runs the browser tests (tests/browser, headless system Chromium through Playwright) twice in subprocesses over one
fresh cache folder: first with the cache empty (a learner's first visit: the notebooks train and embed what they
need, as in CI), then with the cache that run filled (a second visit, or Binder, whose image is prebuilt).  The
tests write their timings to browser_timings.json in an artefacts folder per run, read here.  The latency of each
Lab's control is taken in the warm run, with more moves than the test suite makes.
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
LATENCY_MOVES = 40  # per Lab in the warm run (the test suite makes 20)


def _run_browser_tests(cache: str, moves: int) -> tuple[dict, str, float]:
    """Run tests/browser over ``cache``; returns (timings, pytest's summary line, seconds)."""
    with tempfile.TemporaryDirectory() as artefacts:
        env = dict(
            os.environ,
            ENSEMBLE_LAB_CACHE=cache,
            ENSEMBLE_LAB_ARTEFACTS=artefacts,
            ENSEMBLE_LAB_LATENCY_MOVES=str(moves),
        )
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "tests/browser", "-q", "-p", "no:cacheprovider", "-ra"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        path = Path(artefacts) / "browser_timings.json"
        data = json.loads(path.read_text()) if path.exists() else {}
    lines = done.stdout.strip().splitlines() or ["(no output)"]
    data["_tail"] = "\n".join(lines[-15:])
    return data, lines[-1].strip("= "), seconds


def _s(x) -> str:
    return "-" if x is None else f"{x:.1f} s"


def main() -> str:
    with tempfile.TemporaryDirectory() as cache:
        cold, cold_summary, cold_s = _run_browser_tests(cache, moves=20)
        warm, warm_summary, warm_s = _run_browser_tests(cache, moves=LATENCY_MOVES)

    lines = ["## Notebooks in the browser (headless Chromium: JupyterLab, and Voila app mode)", ""]
    if not warm.get("jupyterlab") and not warm.get("voila"):
        lines += [
            f"No browser timings: the browser tests did not run ({warm_summary}).",
            "",
            "```",
            warm["_tail"],
            "```",
        ]
        text = "\n".join(lines)
        print(text)
        return text

    def row(data: dict, mode: str, nb: str, key: str):
        return data.get(mode, {}).get(nb, {}).get(key)

    notebooks = sorted(set(warm.get("jupyterlab", {})) | set(warm.get("voila", {})))
    lines += [
        "Seconds until the Lab answers its first control (a number it shows changes), cold cache (first visit: "
        "the notebook trains or embeds what it needs) / warm cache (second visit, or Binder's prebuilt image). "
        "JupyterLab: from Run All (kernel already started); Voila: from asking for the page (kernel start "
        "included). The first control answers only once the whole notebook has run, because its later cells "
        "drive the same Lab.",
        "",
        "| notebook | JupyterLab: Run All -> run done | -> Lab answers | Voila: page asked -> Lab answers |",
        "|---|---|---|---|",
    ]
    for nb in notebooks:
        cells = [
            " / ".join(_s(row(d, mode, nb, key)) for d in (cold, warm))
            for mode, key in (
                ("jupyterlab", "run_all_to_done_s"),
                ("jupyterlab", "run_all_to_interactive_s"),
                ("voila", "load_to_interactive_s"),
            )
        ]
        if row(warm, "voila", nb, "load_to_interactive_s") is None:  # no Lab (00_start_here): the page's load
            cells[2] = " / ".join(_s(row(d, "voila", nb, "load_s")) for d in (cold, warm)) + " (loaded, no Lab)"
        lines.append(f"| {nb} | " + " | ".join(cells) + " |")

    latency = warm.get("control_latency", {})
    if latency:
        lines += [
            "",
            f"Latency of each Lab's control in JupyterLab (warm run): the control moved {LATENCY_MOVES} times, "
            "each move made as soon as the last one's number had changed, and timed by the page's own clock "
            "from the learner's action (Enter on a slider's readout, or the change event of a dropdown or "
            "checkbox) to the changed number on the page. Target: p95 <= "
            f"{TARGET_P95_MS} ms. The last column adds the test driver's round trips (Playwright).",
            "",
            "| notebook | control | median | p95 | max | target | seen from the driver (median) |",
            "|---|---|---|---|---|---|---|",
        ]
        for nb, lat in sorted(latency.items()):
            verdict = "met" if lat["p95_ms"] <= TARGET_P95_MS else "**missed**"
            lines.append(
                f"| {nb} | `{lat['control']}` | {lat['median_ms']:.0f} ms | {lat['p95_ms']:.0f} ms | "
                f"{lat['max_ms']:.0f} ms | {verdict} | {lat['round_trip_median_ms']:.0f} ms |"
            )
    firsts = {nb: row(warm, "jupyterlab", nb, "first_move_response_s") for nb in notebooks}
    firsts = {nb: v for nb, v in firsts.items() if v is not None}
    if firsts:
        lines += [
            "",
            "The first move right after Run All (warm) waits for the page's first figure draws: "
            + ", ".join(f"{nb[:2]} {1000 * v:.0f} ms" for nb, v in firsts.items())
            + ".",
        ]
    lines += ["", f"Browser test runs: cold {cold_summary} ({cold_s:.0f} s); warm {warm_summary} ({warm_s:.0f} s)."]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
