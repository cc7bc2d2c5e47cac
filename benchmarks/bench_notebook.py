"""Notebook 01 from a cold cache: wall time and peak memory of `jupyter nbconvert --execute` on 2 cores.

The cache folder is a fresh temporary one, so the run generates the data, trains the members and predicts, as
on a learner's first visit.  Peak memory is the largest resident set of any finished child process (the
kernel), from getrusage.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_deep_ensembles.ipynb"]


def run_cold(notebook: str) -> tuple[float, float]:
    """(seconds, peak MiB) of executing ``notebook`` with an empty cache."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, ENSEMBLE_LAB_CACHE=cache)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                        str(ROOT / "notebooks" / notebook), "--output-dir", out], env=env, check=True,
                       capture_output=True)
        seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kib / 1024


def main() -> str:
    lines = ["## Notebooks from a cold cache (`jupyter nbconvert --execute`, fresh cache folder)", "",
             "| notebook | wall time | peak memory | target |", "|---|---|---|---|"]
    for nb in NOTEBOOKS:
        seconds, mib = run_cold(nb)
        lines.append(f"| {nb} | {seconds:.0f} s | {mib:.0f} MiB | <= 60 s, <= 1.5 GB |")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
