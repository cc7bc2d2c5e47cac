"""The course's exercises by id, and the four things a notebook does with them: list, describe, check, hint and
show the solution.

In a notebook::

    from ensemble_lab import exercises

    def my_weighted_average(member_probs, weights):
        ...  # the learner's few lines

    exercises.check("01.1", my_weighted_average)

``check`` prints its verdict once and returns a :class:`~ensemble_lab.exercises.checking.Verdict` whose repr is
the short ``Verdict(passed=...)``, so a check that ends a cell shows the message exactly once.  ``hint``,
``solution`` and ``describe`` print their text and return it too, as a string that a notebook does not display a
second time when the call ends a cell.

>>> [i for i, _ in list_exercises()][:3]
['01.1', '01.2', '01.3']
>>> v = check("04.2", lambda scores, lo, hi: (lo < scores) & (scores < hi))
04.2 Who is passed on: correct: 6 cases passed.
>>> v
Verdict(passed=True)
>>> check("01.2", lambda probs, labels: None).passed  # doctest: +ELLIPSIS
01.2 The NLL of a prediction: not done yet: your function returned None (on random input 1 of 3); ...
False
"""

from __future__ import annotations

from collections.abc import Callable

from .._validation import check_seed
from . import nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08
from .checking import Verdict, run_check
from .exercise import Exercise

__all__ = ["EXERCISES", "list_exercises", "get", "describe", "check", "hint", "solution"]

#: every exercise of the course, by id, in course order
EXERCISES: dict[str, Exercise] = {
    ex.id: ex for module in (nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08) for ex in module.EXERCISES
}


class PrintedText(str):
    """Text that has already been printed: a str that IPython does not display again at the end of a cell."""

    def _ipython_display_(self) -> None:
        pass


def _known() -> str:
    return ", ".join(repr(i) for i in EXERCISES)


def get(exercise_id) -> Exercise:
    """The :class:`Exercise` with this id, or an error naming ``exercise_id`` and listing the known ids.

    >>> get("05.2").function
    'my_greedy_soup'
    """
    if not isinstance(exercise_id, str):
        raise TypeError(f"exercise_id must be a string such as '01.1' (one of {_known()}), got {exercise_id!r}")
    key = exercise_id.strip()
    if key not in EXERCISES:
        raise ValueError(f"exercise_id must be one of {_known()}, got {exercise_id!r}")
    return EXERCISES[key]


def list_exercises() -> list[tuple[str, str]]:
    """``(id, title)`` of every exercise, in course order.

    >>> list_exercises()[0]
    ('01.1', 'The weighted probability average')
    """
    return [(ex.id, ex.title) for ex in EXERCISES.values()]


def describe(exercise_id) -> str:
    """The exercise's task: its title, the function to write and what it must compute.  Printed and returned.

    >>> text = describe("03.2")  # doctest: +ELLIPSIS
    03.2 ZPE weights
    Write my_zpe_weights(scores, temperature).
    ...
    """
    ex = get(exercise_id)
    text = (
        f"{ex.id} {ex.title}\nWrite {ex.signature}.\n{ex.task}\n"
        f"Check it with exercises.check({ex.id!r}, {ex.function}); "
        f"hints: exercises.hint({ex.id!r}, level) with level 1 to {len(ex.hints)}."
    )
    print(text)
    return PrintedText(text)


def check(exercise_id, fn: Callable, *, seed: int = 0) -> Verdict:
    """Run the learner's ``fn`` on fresh random inputs and the edge cases of the exercise, against the package.

    Prints the verdict's message once and returns the :class:`Verdict` (``passed``, ``message``, and for a
    failure the ``case`` and its ``inputs``).  Nothing ``fn`` does makes ``check`` raise: an exception from
    ``fn`` is reported by name in the message.  ``seed`` draws other random inputs (the same seed, the same
    inputs and message).  Bad arguments to ``check`` itself (an unknown id, a ``fn`` that is not callable)
    raise ``ValueError``/``TypeError`` naming the argument.

    >>> check("03.2", lambda scores, temperature: scores / scores.sum()).message  # doctest: +ELLIPSIS
    03.2 ZPE weights: not yet, on random input 1 of 3 (...): largest difference ... at [...]: expected ..., got ...
    '03.2 ZPE weights: not yet, ...'
    """
    ex = get(exercise_id)
    if not callable(fn):
        raise TypeError(
            f"fn must be the function you wrote (e.g. check({ex.id!r}, {ex.function})), got {type(fn).__name__}"
        )
    seed = check_seed(seed)
    verdict = run_check(ex, fn, seed)
    print(verdict.message)
    return verdict


def hint(exercise_id, level: int = 1) -> str:
    """Hint number ``level`` (1 = a nudge; the last one nearly gives the answer away).  Printed and returned.

    >>> text = hint("01.1", 2)  # doctest: +ELLIPSIS
    Hint 2 of 3 for 01.1: To multiply each member's (N, C) slice by its weight...
    """
    ex = get(exercise_id)
    n = len(ex.hints)
    if isinstance(level, bool) or not isinstance(level, int):
        raise TypeError(f"level must be an int from 1 to {n} for exercise {ex.id!r}, got {level!r}")
    if not 1 <= level <= n:
        raise ValueError(f"level must be from 1 to {n} for exercise {ex.id!r} (it has {n} hints), got {level!r}")
    text = f"Hint {level} of {n} for {ex.id}: {ex.hints[level - 1]}"
    print(text)
    return PrintedText(text)


def solution(exercise_id) -> str:
    """The reference solution's source code (shown only when asked).  Printed and returned.

    >>> text = solution("04.2")
    def my_passed_on(scores, lo, hi):
        return (lo < scores) & (scores < hi)  # the window is open: a score on an edge exits
    """
    ex = get(exercise_id)
    text = ex.solution_source
    print(text.rstrip())
    return PrintedText(text)
