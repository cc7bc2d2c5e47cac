"""Every Lab, 240 seeded actions each (1,200 in all): settings set to good, bad and absurd values, buttons pressed.

After every action no exception has escaped, every setting is one its table allows, and ``lab.result`` is what
``compute`` gives for the State (nothing half-applied)."""

import math
import random

import pytest
import torch
from soups_fixtures import tiny_world

from ensemble_lab.labs import CalibrationLab, CascadesLab, DeepEnsemblesLab, PromptsLab, SoupsLab

from .conftest import synthetic_predictions
from .test_prompts import POOL, data  # noqa: F401 - the prompts world, a fixture

ACTIONS = 240
_FLOATS = [0.0, -1.0, 1e-39, 1e-3, 0.05, 0.3, 0.5, 1.0, 2.0, 1e39, math.nan, math.inf, "0.5", None, True]
_INTS = [0, -1, 1, 3, 15, 10**9, 1.5, "3", True]
_STRS = ["", "tset", 3, None]


def _candidates(lab, name, spec, rng):
    choices = list(lab.state.choices(name) or ())
    if spec.kind is float:
        return choices + _FLOATS
    if spec.kind is int:
        return choices + _INTS
    if spec.kind is str:
        return choices + _STRS
    if spec.kind is bool:
        return [True, False, 0, "yes"]
    items = choices or ([0.0, 0.5, 1.0, 2.0, -1.0, math.nan] if spec.item is float else [0, 1, 2, 3, -1, 99])
    k = len(getattr(lab.state, name)) or 3
    picks = [rng.sample(items, min(len(items), n)) for n in (1, 2, k)]
    return [[], "abc", [items[0]] * k, *picks, list(reversed(items))]


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a.nan_to_num(), b.nan_to_num()))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (
            isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=False))
        )
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def _fuzz(lab, seed, extra=()):
    rng = random.Random(seed)
    table = type(lab.state).table()
    names = [n for n in table if n != "seed"]
    for _ in range(ACTIONS):
        if lab.BUTTONS and rng.random() < 0.1:
            lab.press(rng.choice([*lab.BUTTONS, "explode"]))
        elif extra and rng.random() < 0.1:
            rng.choice(extra)(lab, rng)
        else:
            name = rng.choice(names)
            lab.set(**{name: rng.choice(_candidates(lab, name, table[name], rng))})
        for name, value in lab.state.to_dict().items():
            assert table[name].check(name, value, lab.state.choices(name)) == value
        assert _same(lab.result, lab.compute(lab.state)), f"result out of step with the State {lab.state.to_dict()}"


def test_deep_ensembles():
    _fuzz(DeepEnsemblesLab(synthetic_predictions(n=200)), 1)


def test_calibration():
    _fuzz(CalibrationLab(synthetic_predictions(n=200)), 2)


def test_cascades():
    _fuzz(CascadesLab(synthetic_predictions(n=200), [1.0, 2.0, 3.0, 4.0]), 3)


def test_prompts(data):  # noqa: F811
    def add(lab, rng):
        lab.add_template(rng.choice(["a tilted {}.", "no placeholder", "{} and {}", "zzz qqq {}", POOL[0], 7]))

    _fuzz(PromptsLab(data, POOL, hand_crafted=POOL[:3]), 4, extra=(add,))


@pytest.mark.slow
def test_soups():
    _fuzz(SoupsLab(tiny_world()), 5)
