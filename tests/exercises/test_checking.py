"""The checker's behaviour for anything a learner's function does: constants, None, exceptions, other return
types and dtypes; the Verdict shown once; reproducible random inputs; the comparisons' messages."""

import numpy as np
import pytest
import torch

from ensemble_lab import exercises
from ensemble_lab.exercises import catalogue
from ensemble_lab.exercises.checking import Verdict, compare_scalar, compare_values

IDS = [i for i, _ in exercises.list_exercises()]


@pytest.mark.parametrize("exercise_id", IDS)
@pytest.mark.parametrize(
    "constant",
    [lambda *a: 0.0, lambda *a: torch.zeros(3), lambda *a: "done"],
    ids=["zero", "tensor", "string"],
)
def test_a_constant_fails_every_exercise_with_a_message(exercise_id, constant, capsys):
    verdict = exercises.check(exercise_id, constant)
    assert isinstance(verdict, Verdict)
    assert not verdict.passed
    assert verdict.message.startswith(f"{exercise_id} ")
    assert "not yet, on random input 1 of 3" in verdict.message
    assert "expected" in verdict.message
    assert "got" in verdict.message
    assert verdict.case == "random input 1 of 3"
    assert len(verdict.inputs) == len(catalogue.get(exercise_id).params)
    assert capsys.readouterr().out == verdict.message + "\n"


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_function_that_raises_gives_a_verdict_naming_the_exception(exercise_id):
    def my_function(*args):
        return 1 / 0

    verdict = exercises.check(exercise_id, my_function)
    assert not verdict.passed
    assert "my_function raised ZeroDivisionError: division by zero on random input 1 of 3 (" in verdict.message


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_stub_is_not_done_yet(exercise_id):
    ex = catalogue.get(exercise_id)
    namespace = {}
    exec(f"def {ex.function}({', '.join(ex.params)}):\n    ...\n", namespace)
    verdict = exercises.check(exercise_id, namespace[ex.function])
    assert verdict.message == (
        f"{exercise_id} {ex.title}: not done yet: {ex.function} returned None (on random input 1 of 3); "
        "write its body and end it with `return ...`"
    )
    verdict = exercises.check(exercise_id, lambda *a: (_ for _ in ()).throw(NotImplementedError))
    assert "not done yet: your function raised NotImplementedError" in verdict.message


def test_a_wrong_number_of_parameters_is_reported_not_raised():
    verdict = exercises.check("01.1", lambda member_probs: member_probs.mean(0))
    assert "raised TypeError" in verdict.message
    assert "on random input 1 of 3" in verdict.message


def test_numpy_lists_float32_and_python_numbers_are_accepted():
    avg = catalogue.get("01.1").reference
    assert exercises.check("01.1", lambda mp, w: avg(mp, w).numpy()).passed
    assert exercises.check("01.1", lambda mp, w: avg(mp.float(), w.float())).passed  # float32 tolerance
    assert exercises.check("01.1", lambda mp, w: avg(mp, w).tolist()).passed
    nll = catalogue.get("01.2").reference
    assert exercises.check("01.2", lambda p, y: torch.tensor(nll(p, y))).passed  # a 0-d tensor
    assert exercises.check("01.2", lambda p, y: np.float32(nll(p, y))).passed
    window = catalogue.get("04.1").reference
    assert exercises.check("04.1", lambda v, t, q: torch.tensor(window(v, t, q))).passed
    assert exercises.check("04.1", lambda v, t, q: list(window(v, t, q))).passed
    passed = catalogue.get("04.2").reference
    assert exercises.check("04.2", lambda s, lo, hi: passed(s, lo, hi).int().numpy()).passed  # 0/1 ints
    soup = catalogue.get("05.2").reference
    assert exercises.check("05.2", lambda st, ev: sorted(soup(st, ev), reverse=True)).passed  # any order
    assert exercises.check("05.2", lambda st, ev: np.array(soup(st, ev))).passed


def test_float32_results_get_a_float32_tolerance_and_no_more():
    avg = catalogue.get("01.1").reference
    assert exercises.check("01.1", lambda mp, w: avg(mp, w).float()).passed
    verdict = exercises.check("01.1", lambda mp, w: avg(mp, w).float() + 1e-3)
    assert not verdict.passed
    assert "largest difference 0.001" in verdict.message


def test_the_verdict_is_shown_once():
    verdict = exercises.check("04.2", catalogue.get("04.2").reference)
    assert repr(verdict) == "Verdict(passed=True)"
    assert bool(verdict)
    assert not hasattr(verdict, "_repr_markdown_")
    assert not hasattr(verdict, "_repr_html_")
    failed = exercises.check("04.2", lambda s, lo, hi: s > lo)
    assert repr(failed) == "Verdict(passed=False)"
    assert not failed
    assert failed.message not in repr(failed)


def test_the_same_seed_gives_the_same_message_and_another_seed_other_inputs():
    wrong = WRONG_SOFTMAX = lambda mp, w: torch.softmax((w[:, None, None] * mp).sum(0), dim=0)  # noqa: E731
    first = exercises.check("01.4", wrong).message
    assert exercises.check("01.4", WRONG_SOFTMAX).message == first
    other = exercises.check("01.4", wrong, seed=1)
    assert not other.passed
    assert other.message != first
    assert exercises.check("01.4", catalogue.get("01.4").reference, seed=1).passed
    assert not torch.equal(other.inputs[0], exercises.check("01.4", wrong).inputs[0])


def test_the_failing_inputs_are_returned_for_trying_by_hand():
    verdict = exercises.check("01.1", lambda mp, w: (w[:, None, None] * mp).sum(0))
    member_probs, weights = verdict.inputs
    assert member_probs.shape == (3, 200, 4)
    assert weights.shape == (3,)


def test_compare_values_messages():
    assert compare_values(torch.ones(2, 3), torch.ones(2, 3)) is None
    assert compare_values(torch.ones(2, 3), torch.ones(3, 2)) == "expected shape (2, 3), got shape (3, 2)"
    assert compare_values(torch.ones(2), 1.0) == "expected shape (2,), got a number"
    msg = compare_values(torch.zeros(2, 2), torch.tensor([[0.0, 0.0], [0.0, 0.5]]))
    assert msg == "largest difference 0.5 at [1, 1]: expected 0, got 0.5"
    msg = compare_values(torch.zeros(3), torch.tensor([0.0, float("nan"), float("nan")]))
    assert msg.startswith("got nan at [1] (2 NaN values), expected 0")
    assert compare_values(torch.tensor([float("inf")]), [float("inf")]) is None
    assert compare_values(torch.zeros(2), {"a": 1}).startswith("expected a tensor of shape (2,), got a state dict")
    assert compare_scalar(0.5, torch.tensor([0.5])) is None
    assert compare_scalar(0.5, 0.5 + 1e-7) is None
    assert compare_scalar(0.5, 0.5 + 1e-5) is not None
    assert compare_scalar(0.5, np.float32(0.5) + np.float32(1e-5)) is None  # float32: rtol 1e-4
