"""Every notebook from a cold cache: wall time and peak memory of `jupyter nbconvert --execute` on 2 cores.

The cache folder is a fresh temporary one for each notebook, so the run generates the data, trains the members
and predicts, as on a learner's first visit.  Peak memory is the largest resident set of any process under
that one nbconvert (the kernel), from getrusage in a wrapper process per notebook.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


_WRAPPER = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, capture_output=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def run_cold(notebook: str) -> tuple[float, float]:
    """(seconds, peak MiB) of executing ``notebook`` with an empty cache."""
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, ENSEMBLE_LAB_CACHE=cache)
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _WRAPPER,
                sys.executable,
                "-m",
                "jupyter",
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                str(ROOT / "notebooks" / notebook),
                "--output-dir",
                out,
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
    return seconds, int(done.stdout.split()[-1]) / 1024


def main() -> str:
    lines = [
        "## Notebooks from a cold cache (`jupyter nbconvert --execute`, fresh cache folder)",
        "",
        "| notebook | wall time | peak memory | target |",
        "|---|---|---|---|",
    ]
    for nb in NOTEBOOKS:
        seconds, mib = run_cold(nb)
        lines.append(f"| {nb} | {seconds:.0f} s | {mib:.0f} MiB | <= 60 s, <= 1.5 GB |")
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
