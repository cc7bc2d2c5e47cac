"""Challenges: goals in a Lab, in the TensorFlow Playground's spirit, defined as data.

A :class:`Challenge` names a goal ("get ECE under 3% on noise-3 without losing accuracy") and decides it with a
predicate on the Lab's ``(result, state)``; its progress text says where the learner stands.  Most goals are a
few :class:`Target` objects (a number read off the result, a comparison, a bound), built with
:func:`challenge`; a Lab lists its goals in ``CHALLENGES`` and ``lab.challenge_status()`` reports them.

>>> ece_goal = challenge(
...     "calm", "Calm down", "get ECE under 3%",
...     Target("ECE", lambda r, s: r["ece"], "<", 0.03),
...     Target("accuracy", lambda r, s: r["acc"], ">=", 0.9))
>>> ece_goal.status({"ece": 0.041, "acc": 0.912}, None)[1:]
(False, 'ECE 4.1% (goal < 3.0%) · accuracy 91.2% (goal ≥ 90.0%) ✓')
>>> ece_goal.solved({"ece": 0.02, "acc": 0.95}, None)
True
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Challenge", "Target", "challenge", "pct"]

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
_SHOWN_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥", "==": "="}


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal.

    >>> pct(0.0291)
    '2.9%'
    """
    return f"{100 * x:.1f}%"


@dataclass(frozen=True)
class Target:
    """One condition of a goal: ``value(result, state) <op> bound``.

    ``bound`` is a number or string, or a function of ``(result, state)`` (a bound that depends on the data, e.g.
    "the best member's accuracy"); ``fmt`` formats both sides (percentages by default); ``bound_label`` names a
    bound computed from the result (shown as "goal ≥ best member 91.0%").
    """

    label: str
    value: Callable[[Any, Any], Any]
    op: str
    bound: Any
    fmt: Callable[[Any], str] = pct
    bound_label: str = ""

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"op must be one of {', '.join(_OPS)}, got {self.op!r}")

    def _bound(self, result, state):
        return self.bound(result, state) if callable(self.bound) else self.bound

    def met(self, result, state) -> bool:
        value, bound = self.value(result, state), self._bound(result, state)
        if isinstance(value, float) and math.isnan(value):
            return False
        return bool(_OPS[self.op](value, bound))

    def text(self, result, state) -> str:
        """``"ECE 4.1% (goal < 3.0%)"``."""
        value, bound = self.value(result, state), self._bound(result, state)
        named = f"{self.bound_label} " if self.bound_label else ""
        return f"{self.label} {self.fmt(value)} (goal {_SHOWN_OPS[self.op]} {named}{self.fmt(bound)})"


@dataclass(frozen=True)
class Challenge:
    """A goal of a Lab.

    ``key``: a short identifier; ``title``: a few words; ``goal``: one line for the learner; ``predicate(result,
    state) -> bool``: whether it is solved; ``progress(result, state) -> str``: where the learner stands (short).
    """

    key: str
    title: str
    goal: str
    predicate: Callable[[Any, Any], bool]
    progress: Callable[[Any, Any], str]

    def solved(self, result, state) -> bool:
        """Whether ``result`` (computed for ``state``) meets the goal; False when there is no result."""
        return result is not None and bool(self.predicate(result, state))

    def status(self, result, state) -> tuple[Challenge, bool, str]:
        """``(self, solved, progress text)``."""
        if result is None:
            return self, False, "no result yet"
        return self, self.solved(result, state), self.progress(result, state)


def challenge(key: str, title: str, goal: str, *targets: Target) -> Challenge:
    """A challenge solved when every one of ``targets`` is met; its progress lists them, ``✓`` after each one
    met."""
    if not targets:
        raise ValueError("targets must hold at least one Target")

    def predicate(result, state) -> bool:
        return all(t.met(result, state) for t in targets)

    def progress(result, state) -> str:
        return " · ".join(t.text(result, state) + (" ✓" if t.met(result, state) else "") for t in targets)

    return Challenge(key, title, goal, predicate, progress)
