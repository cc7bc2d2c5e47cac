"""Run every benchmark: ``python -m benchmarks [names...] [--write]``.

Prints each section; ``--write`` also rewrites BENCHMARKS.md with the sections and the machine they ran on.
"""

from __future__ import annotations

import importlib
import sys
from datetime import date
from pathlib import Path

from ._timing import machine

ALL = ["bench_training", "bench_ece", "bench_calibration", "bench_lab", "bench_notebook"]


def run(names: list[str]) -> str:
    sections = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}", flush=True)
        sections.append(module.main())
    head = (f"# Benchmarks\n\nMeasured {date.today().isoformat()} with `make bench` (that is, "
            f"`python -m benchmarks --write`) on: {machine()}.\n"
            "Every ratio compares implementations timed side by side in the same run.\n")
    return head + "\n" + "\n\n".join(sections) + "\n"


def main(argv: list[str]) -> None:
    write = "--write" in argv
    names = [a for a in argv if not a.startswith("--")] or ALL
    text = run(names)
    if write:
        Path(__file__).resolve().parents[1].joinpath("BENCHMARKS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
