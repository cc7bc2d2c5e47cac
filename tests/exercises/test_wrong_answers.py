"""Every reference solution passes its checker, and each typical wrong answer fails with the intended message
(the case it fails on and what differs).  The expected answers come from the package's routines, so the
reference solutions are themselves checked against the library here."""

import pytest

from ensemble_lab import exercises
from ensemble_lab.exercises import catalogue

from .wrong_answers import WRONG_ANSWERS

IDS = [i for i, _ in exercises.list_exercises()]


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_reference_solution_passes(exercise_id, capsys):
    ex = catalogue.get(exercise_id)
    verdict = exercises.check(exercise_id, ex.reference)
    assert verdict.passed, verdict.message
    n = len(ex.cases_for(0))
    assert verdict.message == f"{exercise_id} {ex.title}: correct: {n} cases passed."
    assert capsys.readouterr().out == verdict.message + "\n"


@pytest.mark.parametrize("exercise_id", IDS)
def test_every_exercise_has_wrong_answers_and_edge_cases(exercise_id):
    assert len(WRONG_ANSWERS[exercise_id]) >= 4
    names = [c.name for c in catalogue.get(exercise_id).cases_for(0)]
    assert names[:3] == ["random input 1 of 3", "random input 2 of 3", "random input 3 of 3"]
    assert len(names) >= 6
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("exercise_id", "wrong", "parts"),
    [(i, fn, parts) for i, items in WRONG_ANSWERS.items() for fn, parts in items],
    ids=[f"{i}-{fn.__name__}" for i, items in WRONG_ANSWERS.items() for fn, _ in items],
)
def test_a_typical_wrong_answer_fails_with_the_intended_message(exercise_id, wrong, parts, capsys):
    verdict = exercises.check(exercise_id, wrong)
    assert not verdict.passed
    for part in parts:
        assert part in verdict.message, f"{part!r} not in {verdict.message!r}"
    assert verdict.message.startswith(f"{exercise_id} ")
    assert "Traceback" not in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_cached_cases_survive_a_function_that_modifies_its_inputs(exercise_id):
    def vandal(*args):
        for a in args:
            if hasattr(a, "mul_"):
                a.mul_(0)
            elif isinstance(a, (dict, list)):
                a.clear()
        return None

    assert not exercises.check(exercise_id, vandal)
    ex = catalogue.get(exercise_id)
    assert exercises.check(exercise_id, ex.reference).passed
