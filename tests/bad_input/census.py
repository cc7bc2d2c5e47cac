"""Run the bad-input census: every case of the catalogue, counted by category and by routine family.

    python tests/bad_input/census.py                       # counts
    python tests/bad_input/census.py --list crash --list silent   # and the failing cases of those categories
    python tests/bad_input/census.py --list failing --routine calibration.   # the failures of one module
    python tests/bad_input/census.py --compact --list failing     # one line per routine and argument
    python tests/bad_input/census.py --tree ../other-checkout     # census another checkout's ensemble_lab

Output is deterministic (timings go to stderr).  Each call runs under a time guard (``--timeout``, 1 s); a call
still running then was accepted and counts as silent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _tree_from_argv(argv) -> Path:
    """``--tree DIR`` (default: the checkout this file is in), read before anything imports ensemble_lab."""
    args = list(sys.argv[1:] if argv is None else argv)
    for i, a in enumerate(args):
        if a == "--tree" and i + 1 < len(args):
            return Path(args[i + 1]).resolve()
        if a.startswith("--tree="):
            return Path(a.split("=", 1)[1]).resolve()
    return HERE.parents[1]


import catalogue  # noqa: E402  (after the path set-up, so the script runs from anywhere)


def main(argv=None) -> int:
    sys.path.insert(0, str(_tree_from_argv(argv)))  # this tree's ensemble_lab, not an editable install's
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=str(HERE.parents[1]), help="the checkout whose ensemble_lab is censused")
    parser.add_argument(
        "--list",
        action="append",
        default=[],
        metavar="CATEGORY",
        help=f"list the cases of a category ({', '.join(catalogue.CATEGORIES)}, or 'failing' for all four failures)",
    )
    parser.add_argument(
        "--compact", action="store_true", help="with --list: one line per routine and argument, values only"
    )
    parser.add_argument("--routine", default="", help="only routines whose id starts with this")
    parser.add_argument("--family", default="", help="only this family")
    parser.add_argument(
        "--timeout", type=float, default=catalogue.TIMEOUT, help=f"seconds per call (default {catalogue.TIMEOUT:g})"
    )
    parser.add_argument("--slowest", type=int, default=0, metavar="N", help="print the N slowest calls to stderr")
    args = parser.parse_args(argv)
    wanted = []
    for name in args.list:
        wanted += list(catalogue.FAILING) if name == "failing" else [name]
    unknown = [w for w in wanted if w not in catalogue.CATEGORIES]
    if unknown:
        parser.error(f"unknown category {unknown[0]!r}; choose from {', '.join(catalogue.CATEGORIES)} or 'failing'")

    created = None
    if "ENSEMBLE_LAB_CACHE" not in os.environ:  # never touch a user's cache
        created = tempfile.mkdtemp(prefix="ensemble_lab_census_")
        os.environ["ENSEMBLE_LAB_CACHE"] = created
    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        report(args, wanted)
    finally:
        if created:
            shutil.rmtree(created, ignore_errors=True)
    return 0


def report(args, wanted) -> None:
    import ensemble_lab

    selected = [
        r
        for r in catalogue.routines()
        if r.id.startswith(args.routine) and (not args.family or r.family == args.family)
    ]
    todo = catalogue.cases(selected)
    catalogue.warm_up(selected)
    start = time.perf_counter()
    results, durations = [], []
    for case in todo:
        t0 = time.perf_counter()
        results.append((case, catalogue.run(case, args.timeout)))
        durations.append((time.perf_counter() - t0, case.id))
    elapsed = time.perf_counter() - start

    renamed = sorted(
        {(r.target, catalogue.resolve_name(r.target)) for r in selected if r.available()}
        - {(r.target, r.target) for r in selected}
    )
    routines_run = sorted({case.routine.id for case in todo})
    print(f"bad-input census of {Path(ensemble_lab.__file__).parent}")
    print(f"routines: {len(routines_run)}   calls: {len(todo)}   ", end="")
    by_expect = Counter(case.expect for case in todo)
    print("   ".join(f"{k}: {by_expect[k]}" for k in ("bad", "extreme", "valid")))
    missing = [t for t in catalogue.missing_routines() if any(r.target == t for r in selected)]
    if missing:
        print(f"missing on this tree ({len(missing)}): {', '.join(missing)}")
    print(f"resolved under another layout's name: {len(renamed)} of {len(routines_run)}")
    absent = [f"{r.id}({', '.join(r.absent())})" for r in selected if r.available() and r.absent()]
    if absent:
        print(f"catalogue arguments these routines do not take on this tree: {'; '.join(absent)}")
    print()

    counts = Counter(outcome.category for _, outcome in results)
    print("category        calls")
    for cat in catalogue.CATEGORIES:
        print(f"{cat:<15} {counts[cat]:>5}")
    print(f"{'failing':<15} {sum(counts[c] for c in catalogue.FAILING):>5}")
    print()

    table = defaultdict(Counter)
    n_routines = defaultdict(set)
    for case, outcome in results:
        table[case.family][outcome.category] += 1
        n_routines[case.family].add(case.routine.id)
    header = f"{'family':<18} {'routines':>8} {'calls':>6} " + " ".join(f"{c:>13}" for c in catalogue.CATEGORIES)
    print(header)
    for fam in catalogue.FAMILIES:
        if fam not in table:
            continue
        row = table[fam]
        cells = " ".join(f"{row[c]:>13}" for c in catalogue.CATEGORIES)
        print(f"{fam:<18} {len(n_routines[fam]):>8} {sum(row.values()):>6} {cells}")
    print()

    failing_routines = Counter(case.routine.id for case, o in results if o.category in catalogue.FAILING)
    print(f"routines with at least one failing call: {len(failing_routines)} of {len(routines_run)}")
    print()

    if args.compact and wanted:
        print_compact(results, wanted)
        wanted = []
    for cat in wanted:
        listed = [(case, o) for case, o in results if o.category == cat]
        print(f"==== {cat}: {len(listed)} call(s)")
        current = None
        for case, outcome in listed:
            if case.routine.id != current:
                current = case.routine.id
                note = f"   ({case.routine.note})" if case.routine.note else ""
                print(f"{current}{note}")
            where = f"{case.arg}={case.value}" if case.arg else "valid call"
            print(f"    {where}  [{case.expect}]  ->  {outcome.what}")
        print()
    root = Path(ensemble_lab.__file__).resolve().parent
    foreign = sorted(
        name
        for name, module in list(sys.modules.items())
        if name.startswith("ensemble_lab")
        and getattr(module, "__file__", None)
        and not Path(module.__file__).resolve().is_relative_to(root)
    )
    if foreign:
        print(f"WARNING: modules imported from another tree: {', '.join(foreign)}")
    print(f"{len(todo)} calls in {elapsed:.1f} s", file=sys.stderr)
    for seconds, case_id in sorted(durations, reverse=True)[: args.slowest]:
        print(f"{seconds:7.3f} s  {case_id}", file=sys.stderr)


def print_compact(results, wanted) -> None:
    """Per routine, per category: ``arg: value, value, ...`` (what happened is in the full listing)."""
    by_routine = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    order = []
    for case, outcome in results:
        if outcome.category in wanted:
            if case.routine.id not in by_routine:
                order.append(case.routine.id)
            by_routine[case.routine.id][outcome.category][case.arg or "(valid call)"].append(case.value)
    print(f"==== {', '.join(wanted)}: {len(order)} routine(s), compact")
    for rid in order:
        print(rid)
        for cat in wanted:
            for arg, values in by_routine[rid].get(cat, {}).items():
                print(f"    {cat:<13} {arg}: {', '.join(v for v in values if v) or '-'}")
    print()


if __name__ == "__main__":
    sys.exit(main())
