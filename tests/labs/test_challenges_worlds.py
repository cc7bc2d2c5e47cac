"""Challenges on the notebooks' own worlds: the Lab as the notebook builds it solves none of its goals, and the
state given in CHANGELOG.md (issue 16) solves each one.

These worlds are the ones notebooks 01-05 load; the session's cache is shared with the notebook runs (nbval), so
building them here moves their cost earlier in the suite rather than adding to it.
"""

from types import SimpleNamespace

import pytest

from ensemble_lab.artefacts import zoo
from ensemble_lab.artefacts.soup_world import soup_world
from ensemble_lab.artefacts.zeroshot import ZeroShotData
from ensemble_lab.data.captions import (
    CLASS_NAMES,
    HAND_CRAFTED,
    PLAIN_PROMPT,
    PROMPT_POOL,
    pretraining_sample,
    zero_shot_domains,
)
from ensemble_lab.labs import CalibrationLab, CascadesLab, DeepEnsemblesLab, PromptsLab, SoupsLab
from ensemble_lab.labs.calibration import experiments as calibration_ex
from ensemble_lab.labs.deep_ensembles import experiments as deep_ex
from ensemble_lab.models import macs
from ensemble_lab.models.miniclip import load_miniclip


def _check(lab, solutions: dict) -> None:
    assert {c.key for c in type(lab).CHALLENGES} == set(solutions)
    for c, solved, progress in lab.challenge_status():
        print(f"{type(lab).__name__} default, {c.key}: {progress}")
        assert not solved, f"the notebook's default state solves {c.key!r}: {progress}"
    defaults = lab.state.to_dict()
    for key, solve in solutions.items():
        assert lab.set(**defaults), lab.status
        solve(lab)
        (row,) = [(solved, p) for c, solved, p in lab.challenge_status() if c.key == key]
        print(f"{type(lab).__name__} solution, {key}: {row[1]}")
        assert row[0], f"the known solution does not solve {key!r} on the notebook's world: {row[1]}"


def _set(**changes):
    def solve(lab):
        assert lab.set(**changes), lab.status

    return solve


def test_deep_ensembles_notebook_01():
    lab = DeepEnsemblesLab(deep_ex.load_seeds((0,))[0])
    _check(
        lab,
        {"calm-noise": _set(split="noise-3", temperature=1.5), "three-beat-best": _set(weights=[0] * 5 + [1] * 3)},
    )


def test_calibration_notebook_02():
    lab = CalibrationLab(calibration_ex.load_seeds((0,), progress=False)[0])

    def few(lab):
        assert lab.set(n_cal=100), lab.status
        assert lab.press("fit"), lab.status

    _check(lab, {"calm-the-shift": _set(split="noise-3", temperature=1.75), "few-samples": few})


def test_prompts_notebook_03():
    data = ZeroShotData(load_miniclip(), zero_shot_domains(), pretraining_sample(), CLASS_NAMES, progress=False)
    lab = PromptsLab(data, PROMPT_POOL, hand_crafted=HAND_CRAFTED, plain=PLAIN_PROMPT)
    best = ["a rotated photo of the number {}.", "a sideways image of a {}.", "a tilted {}."]
    (goal,) = PromptsLab.CHALLENGES
    _check(lab, {goal.key: _set(domain="rotated", selected=best, weighting="zpe-both")})


def test_cascades_notebook_04():
    medium = zoo.ensemble_predictions("distorted", "mlp-m", k=8)
    large = zoo.ensemble_predictions("distorted", "mlp-l", k=2)
    members = SimpleNamespace(logits={s: z[:4] for s, z in medium.logits.items()}, labels=medium.labels)
    singles = {
        f"mlp-l #{i + 1}": (SimpleNamespace(logits={s: z[i] for s, z in large.logits.items()}), macs("mlp-l"))
        for i in range(2)
    }
    lab = CascadesLab(members, [macs("mlp-m")] * 4, singles=singles)
    _check(lab, {"cover-cheaply": _set(half_width=0.5), "as-good-as-all": _set(half_width=0.2)})


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_soups_notebook_05():
    lab = SoupsLab(soup_world(seed=0))
    (goal,) = SoupsLab.CHALLENGES
    _check(lab, {goal.key: _set(alpha=0.6)})


def test_selection_notebook_06():
    from ensemble_lab.artefacts.library import model_library
    from ensemble_lab.artefacts.transfer_world import transfer_world
    from ensemble_lab.labs import SelectionLab

    lab = SelectionLab(model_library(progress=False), transfer_world(progress=False))
    _check(
        lab,
        {
            "small-hill-set": _set(hill_size=100, bagging=True, steps=50),
            "winning-team": _set(target="faint + noise", team_size=3, estimator="E-LEEP"),
        },
    )
