"""Coding exercises checked by the package: the learner writes a method's core in a few lines, the package
runs it on fresh random inputs and on the edge cases that matter, against its own routines.

- :func:`list_exercises`: ``(id, title)`` of every exercise (``"01.1"`` ... ``"08.2"``);
- :func:`describe`: the task of one exercise (the function to write, shapes, conventions);
- :func:`check`: runs the learner's function, prints a verdict that says what differs (which input, expected
  against got) and returns a :class:`Verdict`; it never raises for anything the function does;
- :func:`hint`: tiered hints, level 1 to 3; :func:`solution`: the reference solution's source.

One module per notebook holds that notebook's exercises (:mod:`.nb01` ... :mod:`.nb08`); :mod:`.exercise` says
what an exercise is, :mod:`.checking` runs and compares, :mod:`.catalogue` holds the public functions.
"""

from .catalogue import EXERCISES, check, describe, get, hint, list_exercises, solution
from .checking import Verdict
from .exercise import Case, Exercise

__all__ = ["list_exercises", "describe", "check", "hint", "solution", "get", "Verdict", "Exercise", "Case", "EXERCISES"]
