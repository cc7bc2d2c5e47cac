"""The public API of ensemble_lab.exercises: the ids and signatures the notebooks use, hints, solutions,
describe, and bad arguments refused naming the argument."""

import inspect

import pytest
import torch

from ensemble_lab import exercises
from ensemble_lab.exercises import catalogue

#: the agreed ids, titles and learner functions (the notebooks call exactly these)
AGREED = {
    "01.1": ("The weighted probability average", "my_weighted_average(member_probs, weights)"),
    "01.2": ("The NLL of a prediction", "my_nll(probs, labels)"),
    "01.3": ("Mutual information per image", "my_mutual_information(member_probs)"),
    "01.4": ("Geometric pooling", "my_geometric_pool(member_probs, weights)"),
    "02.1": ("A binned ECE", "my_ece(probs, labels, n_bins)"),
    "02.2": ("Fitting one temperature", "my_temperature(logits, labels)"),
    "03.1": ("The ZPE score", "my_zpe_scores(logits, pretrain_logits)"),
    "03.2": ("ZPE weights", "my_zpe_weights(scores, temperature)"),
    "04.1": ("The window", "my_window(val_scores, tau, q)"),
    "04.2": ("Who is passed on", "my_passed_on(scores, lo, hi)"),
    "05.1": ("WiSE-FT: interpolating weights", "my_wise_ft(a, b, alpha)"),
    "05.2": ("The greedy soup", "my_greedy_soup(states, evaluate)"),
    "06.1": ("Forward selection with replacement", "my_forward_select(member_probs, labels, steps)"),
    "06.2": ("The ambiguity decomposition", "my_ambiguity(member_probs, labels)"),
    "07.1": ("The fair CRPS", "my_fair_crps(members, observations)"),
    "07.2": ("The rank histogram", "my_rank_histogram(members, observations)"),
    "08.1": ("Smoother weights of one tree", "my_tree_weights(train_leaves, query_leaves, counts)"),
    "08.2": ("Effective parameters", "my_effective_parameters(weights)"),
}


def test_the_ids_titles_and_signatures_are_the_agreed_ones():
    assert exercises.list_exercises() == [(i, title) for i, (title, _) in AGREED.items()]
    for i, (_, signature) in AGREED.items():
        ex = catalogue.get(i)
        assert ex.signature == signature
        ref = inspect.signature(ex.reference)
        assert f"{ex.reference.__name__}({', '.join(ref.parameters)})" == signature


def test_every_notebook_has_at_least_two_exercises():
    per_notebook = {}
    for i, _ in exercises.list_exercises():
        per_notebook.setdefault(i.split(".")[0], []).append(i)
    assert sorted(per_notebook) == ["01", "02", "03", "04", "05", "06", "07", "08"]
    assert all(len(v) >= 2 for v in per_notebook.values())


@pytest.mark.parametrize("exercise_id", list(AGREED))
def test_hints_are_tiered_and_printed(exercise_id, capsys):
    ex = catalogue.get(exercise_id)
    assert 2 <= len(ex.hints) <= 3
    texts = [exercises.hint(exercise_id, level) for level in range(1, len(ex.hints) + 1)]
    out = capsys.readouterr().out
    for level, text in enumerate(texts, start=1):
        assert text.startswith(f"Hint {level} of {len(ex.hints)} for {exercise_id}: ")
        assert text in out
    assert exercises.hint(exercise_id) == texts[0]  # level 1 by default
    assert len(set(texts)) == len(texts)


@pytest.mark.parametrize("exercise_id", list(AGREED))
def test_the_solution_is_the_reference_source(exercise_id, capsys):
    ex = catalogue.get(exercise_id)
    text = exercises.solution(exercise_id)
    assert text == inspect.getsource(ex.reference)
    assert text.startswith(f"def {ex.function}(")
    assert len(text.splitlines()) <= 16  # a few readable lines
    assert capsys.readouterr().out == text.rstrip() + "\n"
    namespace = {}
    exec(compile("import math\nimport torch\n" + text, "<solution>", "exec"), namespace)  # it runs as shown
    assert exercises.check(exercise_id, namespace[ex.function]).passed


@pytest.mark.parametrize("exercise_id", list(AGREED))
def test_describe_states_the_function_and_the_package_routine(exercise_id, capsys):
    text = exercises.describe(exercise_id)
    ex = catalogue.get(exercise_id)
    assert f"Write {ex.signature}." in text
    assert "ensemble_lab." in text  # names the routine it must agree with
    assert f"exercises.check({exercise_id!r}, {ex.function})" in text
    assert capsys.readouterr().out == text + "\n"


def test_an_unknown_id_names_the_argument_and_lists_the_known_ones():
    for call in (
        lambda: exercises.check("9.9", lambda: 0),
        lambda: exercises.hint("9.9"),
        lambda: exercises.solution("9.9"),
        lambda: exercises.describe("9.9"),
    ):
        with pytest.raises(
            ValueError, match=r"exercise_id must be one of '01.1', '01.2', .*'07.1', '07.2', '08.1', '08.2', got '9.9'"
        ):
            call()
    with pytest.raises(TypeError, match="exercise_id must be a string such as '01.1'.*got 1.1"):
        exercises.check(1.1, lambda: 0)


def test_a_level_out_of_range_or_not_an_int_names_level():
    with pytest.raises(ValueError, match=r"level must be from 1 to 3 for exercise '01.1' \(it has 3 hints\), got 4"):
        exercises.hint("01.1", 4)
    with pytest.raises(ValueError, match="level must be from 1 to 3"):
        exercises.hint("01.1", 0)
    for bad in (True, 1.0, "2"):
        with pytest.raises(TypeError, match="level must be an int from 1 to 3"):
            exercises.hint("01.1", bad)


def test_fn_that_is_not_callable_names_fn():
    with pytest.raises(TypeError, match=r"fn must be the function you wrote \(e.g. check\('01.1', my_weighted_average"):
        exercises.check("01.1", torch.zeros(3))
    with pytest.raises(TypeError, match="fn must be"):
        exercises.check("01.1", None)


def test_a_bad_seed_names_seed():
    with pytest.raises(ValueError, match="seed must be in"):
        exercises.check("01.1", lambda *a: None, seed=-1)
    with pytest.raises(TypeError, match="seed must be an int"):
        exercises.check("01.1", lambda *a: None, seed=0.5)
