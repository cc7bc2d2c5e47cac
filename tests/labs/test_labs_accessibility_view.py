"""Headless tests of what the Views do for accessibility: every Lab's widget tree holds the accessibility helper
(labs/accessibility.py), and every Lab figure has a one-line text description under it that follows the State.

The browser side (names on slider handles, figures out of the Tab order, the axe audit, a keyboard run) is tested
in tests/browser/test_voila.py.
"""

import ast
import html
from pathlib import Path

import pytest
from soups_fixtures import tiny_world

import ensemble_lab
from ensemble_lab.artefacts.zeroshot import ZeroShotData
from ensemble_lab.labs import CalibrationLab, CascadesLab, DeepEnsemblesLab, PromptsLab, SoupsLab
from ensemble_lab.labs.accessibility import CSS, ESM, AccessibilityHelper
from ensemble_lab.labs.view import pct

from .conftest import synthetic_predictions
from .test_calibration import overconfident_predictions
from .test_cascades import COSTS, _predictions
from .test_prompts import NAMES, POOL, FakeModel, _domain


def _prompts_lab():
    domains = {"clean": _domain(1, 400, 0.6), "noisy": _domain(2, 300, 1.0)}
    data = ZeroShotData(FakeModel(), domains, _domain(3, 500, 0.6).images, NAMES, progress=False)
    return PromptsLab(data, POOL, hand_crafted=POOL[:3])


# each Lab, a change of its State, and a number its figure's description must show (from the result)
LABS = {
    "deep_ensembles": (
        lambda: DeepEnsemblesLab(synthetic_predictions()),
        {"weights": [1.0, 0.0, 0.0, 0.0]},
        lambda r: pct(r.metrics["ensemble"]["ece"]),
    ),
    "calibration": (
        lambda: CalibrationLab(overconfident_predictions()),
        {"temperature": 2.0},
        lambda r: pct(r.after["ece"]),
    ),
    "cascades": (lambda: CascadesLab(_predictions(), COSTS), {"target": 0.7}, lambda r: pct(r.cascade["coverage"])),
    "prompts": (_prompts_lab, {"domain": "noisy"}, lambda r: pct(r.metrics["ece"])),
    "soups": (lambda: SoupsLab(tiny_world()), {"alpha": 0.3}, lambda r: f"{r.alpha:.2f}"),
}


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


@pytest.fixture(params=list(LABS), scope="module")
def built(request):
    make, change, number = LABS[request.param]
    return make(), change, number


def test_every_lab_holds_the_accessibility_helper(built):
    lab, _, _ = built
    helpers = [w for w in _walk(lab.view.widget) if isinstance(w, AccessibilityHelper)]
    assert len(helpers) == 1
    assert helpers[0].lab_name == f"{lab.view.CSS_NAME.replace('-', ' ')} Lab"


def test_every_lab_figure_has_a_description_that_follows_the_state(built):
    lab, change, number = built
    figure = lab.view.figure
    children = list(_walk(figure.widget))
    assert figure.caption in children
    assert "el-figure-description" in figure.caption._dom_classes
    assert figure.box.widget in children  # the caption sits with the canvas, under it
    before = figure.description
    assert before, "no description"
    assert "\n" not in before, before
    assert len(before) < 600, before
    assert number(lab.result) in before  # the figure's headline number, as the result has it
    assert figure.caption.value == html.escape(before)
    assert lab.set(**change), lab.status
    lab.view.refresh()  # headless, outside IPython: the View has already redrawn; refresh is idempotent
    after = figure.description
    assert after != before
    assert number(lab.result) in after


def test_the_helper_script_names_handles_and_releases_figures():
    """The front end's duties, as the script states them (the browser tests check their effect)."""
    for needle in (
        "aria-labelledby",
        "aria-valuetext",
        ".noUi-handle",
        ".widget-readout",
        ".jupyter-matplotlib-canvas-div",
        "'tabindex', '-1'",
        "'Escape'",
        "MutationObserver",
        "closest('.el-lab')",
    ):
        assert needle in ESM, needle
    assert "outline: 3px solid" in CSS


def test_every_figure_function_attaches_a_default_description():
    """Each ``*_figure`` function of the Labs' figures modules returns through ``plots.describe``, so a
    StaticFigure built on it has a one-line description even when the notebook gives none."""
    missing = []
    for path in sorted(Path(ensemble_lab.__file__).parent.glob("labs/*/figures.py")):
        tree = ast.parse(path.read_text())
        for fn in tree.body:
            if isinstance(fn, ast.FunctionDef) and fn.name.endswith("_figure") and not fn.name.startswith("_"):
                returns = [n for n in ast.walk(fn) if isinstance(n, ast.Return)]
                if not returns or not all(
                    isinstance(r.value, ast.Call) and getattr(r.value.func, "id", "") == "describe" for r in returns
                ):
                    missing.append(f"{path.parent.name}.{fn.name}")
    assert not missing, f"figure functions without a default description: {missing}"
