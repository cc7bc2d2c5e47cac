"""Run every benchmark: ``python -m benchmarks [names...] [--write]``.

Prints each section; ``--write`` also puts the sections that ran into BENCHMARKS.md, each stamped with the date
and the machine it ran on, and keeps the sections that did not run as they were.
"""

from __future__ import annotations

import importlib
import re
import sys
from datetime import date
from pathlib import Path

from ._timing import machine

ALL = [
    "bench_training",
    "bench_ece",
    "bench_calibration",
    "bench_lab",
    "bench_calibration_lab",
    "bench_prompts_lab",
    "bench_cascades",
    "bench_soups",
    "bench_selection",
    "bench_selection_lab",
    "bench_forecast_scores",
    "bench_forecast_lab",
    "bench_forests",
    "bench_forests_lab",
    "bench_browser",
    "bench_notebook",
]


HEAD = (
    "# Benchmarks\n\nMade with `make bench` (that is, `python -m benchmarks --write`); each section says when and "
    "on which machine it ran.\nEvery ratio compares implementations timed side by side in the same run.\n"
)


def _sections(text: str) -> dict[str, str]:
    """The ``<!-- begin NAME -->`` ... ``<!-- end NAME -->`` sections of an existing BENCHMARKS.md."""
    found = re.findall(r"<!-- begin (\w+) -->\n(.*?)\n<!-- end \1 -->", text, flags=re.S)
    return dict(found)


def run(names: list[str]) -> dict[str, str]:
    sections = {}
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}", flush=True)
        body = module.main()
        sections[name] = f"{body}\n\n_Measured {date.today().isoformat()} on: {machine()}._"
    return sections


def main(argv: list[str]) -> None:
    write = "--write" in argv
    names = [a for a in argv if not a.startswith("--")] or ALL
    sections = run(names)
    if write:
        path = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
        merged = _sections(path.read_text()) if path.exists() else {}
        merged.update(sections)
        order = ALL + sorted(set(merged) - set(ALL))
        body = "\n\n".join(f"<!-- begin {n} -->\n{merged[n]}\n<!-- end {n} -->" for n in order if n in merged)
        path.write_text(HEAD + "\n" + body + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
