"""What an exercise is: its text, its hints, its reference solution and the cases its checker runs.

An :class:`Exercise` is data.  The checker (:mod:`ensemble_lab.exercises.checking`) runs the learner's function
on every :class:`Case` that ``exercise.cases(seed)`` builds; each case carries the expected answer computed by
the PACKAGE's routine (``metrics.ece``, ``combine.combine``, ...), never by the reference solution, so that the
reference solution is itself checked against the library by the tests.
"""

from __future__ import annotations

import inspect
import textwrap
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Case", "Exercise", "generator"]

_CASES: dict[tuple[str, int], list] = {}
_MAX_CACHED = 64


@dataclass(frozen=True)
class Case:
    """One input the checker gives the learner's function.

    Attributes:
        name: how a message names the case ("random input 2 of 3", "a member with weight 0").
        args: the positional arguments of the learner's function (the checker passes copies).
        expected: the answer, computed by the package's routine.
        loose: compare with a float32 tolerance (the inputs are float32).
        extra: anything the comparison needs besides ``expected`` (e.g. the inputs, to compute an NLL).
    """

    name: str
    args: tuple
    expected: Any
    loose: bool = False
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Exercise:
    """One coding exercise of the course.

    Attributes:
        id: ``"NN.k"``: notebook NN, exercise k.
        title: a few words.
        function: the name of the function the notebook asks the learner to write (``my_weighted_average``).
        params: the names of its parameters, in order (messages name the inputs by them).
        task: what the function must compute: shapes, conventions, the package routine it must agree with.
        hints: two or three hints, from a nudge to nearly the answer.
        reference: the reference solution, a small function named ``function`` (its source is the solution).
        cases: ``seed -> list[Case]``: fresh random inputs first, then the edge cases that matter.
        compare: ``(case, got) -> str | None``: ``None`` when ``got`` is right, else what differs.
    """

    id: str
    title: str
    function: str
    params: tuple[str, ...]
    task: str
    hints: tuple[str, ...]
    reference: Callable
    cases: Callable[[int], list[Case]]
    compare: Callable[[Case, Any], str | None]

    @property
    def signature(self) -> str:
        """``my_weighted_average(member_probs, weights)``."""
        return f"{self.function}({', '.join(self.params)})"

    def cases_for(self, seed: int) -> list[Case]:
        """``cases(seed)``, built once per seed and kept (the checker passes copies of the arguments, so the
        cached inputs and expected answers are never modified)."""
        key = (self.id, seed)
        if key not in _CASES:
            if len(_CASES) >= _MAX_CACHED:
                _CASES.pop(next(iter(_CASES)))
            _CASES[key] = self.cases(seed)
        return _CASES[key]

    @property
    def solution_source(self) -> str:
        """The reference solution's source code, dedented."""
        return textwrap.dedent(inspect.getsource(self.reference))


def generator(exercise_id: str, seed: int, case: int) -> torch.Generator:
    """A torch generator seeded by the exercise, the ``seed`` given to ``check`` and the case number, so that
    the same call always draws the same inputs (and the same message)."""
    return torch.Generator().manual_seed(zlib.crc32(exercise_id.encode()) + 1_000_003 * seed + 7919 * case)
