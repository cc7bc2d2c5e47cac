"""The examples in the package's docstrings run, and every routine the design's contracts name has one."""

import doctest
import importlib
import pkgutil

import pytest

import ensemble_lab

# modules that need a display, a network or minutes of work to import or run are still imported and searched;
# none is skipped: an example that cannot run here is a bug in the example
MODULES = sorted(
    info.name for info in pkgutil.walk_packages(ensemble_lab.__path__, prefix="ensemble_lab.") if not info.ispkg
) + ["ensemble_lab"]

#: the routines named under Contracts in the design document, by module
CONTRACTS = {
    "ensemble_lab.metrics": (
        "accuracy",
        "nll",
        "brier",
        "ece",
        "classwise_ece",
        "reliability",
        "disagreement",
        "mutual_information",
    ),
    "ensemble_lab.selective": ("risk_coverage", "aurc"),
    "ensemble_lab.combine": ("combine", "learn_weights"),
    "ensemble_lab.prompts": ("zpe_scores", "zpe_weights", "zpe_select"),
    "ensemble_lab.cascades": ("window_cascade",),
    "ensemble_lab.soups": ("interpolate", "uniform_soup", "greedy_soup"),
    "ensemble_lab.stats": ("paired_bootstrap",),
    "ensemble_lab.exercises": ("list_exercises", "check", "hint", "solution"),
    "ensemble_lab.selection": ("forward_select", "leep"),
    "ensemble_lab.selection.transferability": ("leep", "ms_leep", "e_leep", "osborn", "select_team"),
    "ensemble_lab.decompositions": ("brier_decomposition", "nll_decomposition"),
    "ensemble_lab.forecast": ("crps_ensemble", "spread_skill_ratio", "rank_histogram", "lorenz96"),
    "ensemble_lab.forests": ("smoother_weights", "effective_parameters"),
}


def _skip_if_absent(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - an optional dependency (open_clip) missing
        pytest.skip(f"{name} needs an optional dependency: {exc}")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = _skip_if_absent(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs=dict(vars(module))):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples in {name} failed"


@pytest.mark.parametrize(("name", "routine"), [(m, r) for m, routines in CONTRACTS.items() for r in routines])
def test_every_contract_routine_has_an_example(name, routine):
    fn = getattr(importlib.import_module(name), routine)
    examples = [e for t in doctest.DocTestFinder().find(fn, routine) for e in t.examples]
    assert examples, f"{name}.{routine} has no doctested example"
