"""The checker: runs a learner's function on an exercise's cases and says, in one message, what differs.

:func:`run_check` never raises because of the learner's function: an exception it raises, a ``None`` it returns,
a wrong shape, a wrong value or an input it modified all become a failing :class:`Verdict` whose message names
the case ("random input 2 of 3", "a member with weight 0") and the expected value against the one returned.

The comparisons accept torch tensors (float32 or float64), numpy arrays, python numbers and lists.  The
tolerance is that of float64 (``rtol = 1e-6``, ``atol = 1e-8``) unless the function returned float32 (or
float16) values or the case's inputs are float32: then ``rtol = 1e-4``, ``atol = 1e-5``.

>>> from ensemble_lab.exercises.checking import compare_values
>>> compare_values(torch.tensor([1.0, 2.0]), [1.0, 2.5])
'largest difference 0.5 at [1]: expected 2, got 2.5'
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from .exercise import Case, Exercise

__all__ = [
    "Verdict",
    "run_check",
    "as_values",
    "compare_values",
    "compare_scalar",
    "as_number",
    "describe_value",
    "describe_result",
    "fmt",
    "TIGHT",
    "LOOSE",
]

#: (rtol, atol) for float64 results, and for float32 results or inputs
TIGHT = (1e-6, 1e-8)
LOOSE = (1e-4, 1e-5)

_LOW_PRECISION = (torch.float32, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Verdict:
    """The outcome of ``check``: ``passed`` and the ``message`` that ``check`` printed.

    ``case`` names the first case that failed and ``inputs`` holds its arguments (a copy, to try by hand), both
    ``None`` when the check passed.  ``bool(verdict)`` is ``passed``.  The repr is short on purpose
    (``Verdict(passed=False)``): ``check`` has already printed the message, so a check that ends a notebook
    cell shows the message once, followed by this one line.
    """

    passed: bool
    message: str
    exercise_id: str = ""
    case: str | None = None
    inputs: tuple | None = None

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"Verdict(passed={self.passed})"


def fmt(x: float) -> str:
    """A number for a message: 6 significant digits, ``inf``/``nan`` as such."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.6g}"


def describe_value(x) -> str:
    """A short description of an input or a result: small tensors by value, others by shape and dtype."""
    if x is None:
        return "None"
    if isinstance(x, bool):
        return repr(x)
    if isinstance(x, (int, float, np.integer, np.floating)):
        return fmt(x) if isinstance(x, (float, np.floating)) else str(int(x))
    if isinstance(x, (torch.Tensor, np.ndarray)):
        kind = "tensor" if isinstance(x, torch.Tensor) else "array"
        dtype = str(x.dtype).replace("torch.", "")
        if x.ndim == 0:
            return f"a 0-d {kind} ({dtype}) {fmt(x.item()) if dtype != 'bool' else bool(x.item())}"
        if x.size == 0 if isinstance(x, np.ndarray) else x.numel() == 0:
            return f"an empty {kind} of shape {tuple(x.shape)}"
        if (x.size if isinstance(x, np.ndarray) else x.numel()) <= 6 and x.ndim == 1:
            items = np.asarray(torch.as_tensor(x).detach().cpu()).tolist()
            vals = ", ".join(str(bool(v)) if dtype == "bool" else fmt(v) for v in items)
            return f"{kind}([{vals}]) ({dtype})"
        return f"a {kind} of shape {tuple(x.shape)} ({dtype})"
    if isinstance(x, Mapping):
        keys = list(x)
        shown = ", ".join(repr(k) for k in keys[:4]) + (", ..." if len(keys) > 4 else "")
        return f"a state dict with keys [{shown}]"
    if isinstance(x, (list, tuple)):
        if x and all(isinstance(v, Mapping) for v in x):
            return f"a list of {len(x)} state dicts"
        if len(x) <= 6 and all(isinstance(v, (int, float, bool, np.number)) for v in x):
            return f"{type(x).__name__} {list(x)!r}"
        return f"a {type(x).__name__} of {len(x)} items"
    if callable(x):
        return f"a function ({getattr(x, '__name__', type(x).__name__)})"
    text = repr(x)
    return text if len(text) <= 40 else f"a {type(x).__name__}"


def describe_result(x) -> str:
    """:func:`describe_value` for what a function returned: a plain number reads ``the number 0``."""
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool):
        return f"the number {describe_value(x)}"
    return describe_value(x)


def as_values(got) -> tuple[torch.Tensor | None, str | None, bool]:
    """``got`` as a float64 CPU tensor, a reason it cannot be one, and whether it was low precision."""
    low = False
    if isinstance(got, torch.Tensor):
        low = got.dtype in _LOW_PRECISION
        t = got.detach().cpu()
    elif isinstance(got, (np.ndarray, np.generic)):
        arr = np.asarray(got)
        if arr.dtype.kind not in "biuf":
            return None, f"an array of dtype {arr.dtype}", False
        low = arr.dtype in (np.float32, np.float16)
        t = torch.from_numpy(np.ascontiguousarray(arr))
    elif isinstance(got, bool):
        t = torch.tensor(got)
    elif isinstance(got, (int, float)):
        t = torch.tensor(float(got), dtype=torch.float64)
    elif isinstance(got, (list, tuple)):
        try:
            t = torch.as_tensor(np.asarray([float(v) if isinstance(v, torch.Tensor) else v for v in got]))
        except (TypeError, ValueError, RuntimeError):
            return None, f"a {type(got).__name__} that is not a list of numbers", False
        if not (t.is_floating_point() or t.dtype in (torch.bool, torch.int64, torch.int32)):
            return None, f"a {type(got).__name__} of {t.dtype}", False
    else:
        return None, describe_result(got), False
    if torch.is_complex(t):
        return None, f"complex numbers ({t.dtype})", False
    if t.dtype == torch.bool:
        return t, None, low
    return t.to(torch.float64), None, low


def _index(flat_index: int, shape: tuple) -> str:
    if not shape:
        return ""
    idx = np.unravel_index(flat_index, shape)
    return "[" + ", ".join(str(int(i)) for i in idx) + "]"


def compare_values(expected, got, *, loose: bool = False, what: str = "") -> str | None:
    """``None`` when ``got`` equals ``expected`` (a tensor) within the tolerance, else what differs: the shape,
    a NaN, or the largest difference and where it is.  ``what`` names the quantity (e.g. ``"the weights"``)."""
    exp = torch.as_tensor(expected).detach().cpu().to(torch.float64)
    t, reason, low = as_values(got)
    label = f"{what}: " if what else ""
    shape = tuple(exp.shape)
    if t is None:
        want = "a number" if not shape else f"a tensor of shape {shape}"
        return f"{label}expected {want}, got {reason}"
    t = t.to(torch.float64)
    if tuple(t.shape) != shape:
        if not shape and t.numel() == 1:
            t = t.reshape(())
        else:
            want = "a number" if not shape else f"shape {shape}"
            got_shape = "a number" if t.ndim == 0 else f"shape {tuple(t.shape)}"
            return f"{label}expected {want}, got {got_shape}"
    rtol, atol = LOOSE if (loose or low) else TIGHT
    bad_nan = torch.isnan(t) & ~torch.isnan(exp)
    if bool(bad_nan.any()):
        i = int(bad_nan.reshape(-1).nonzero()[0])
        where = f" at {_index(i, shape)}" if shape else ""
        n = int(bad_nan.sum())
        count = f" ({n} NaN values)" if n > 1 else ""
        return f"{label}got nan{where}{count}, expected {fmt(exp.reshape(-1)[i])} (a 0/0 or inf - inf somewhere?)"
    close = torch.isclose(t, exp, rtol=rtol, atol=atol, equal_nan=True)
    if bool(close.all()):
        return None
    diff = torch.where(close, torch.zeros_like(t), (t - exp).abs().nan_to_num(nan=0.0, posinf=math.inf))
    i = int(diff.reshape(-1).argmax())
    e, g = exp.reshape(-1)[i], t.reshape(-1)[i]
    if not shape:
        return f"{label}expected {fmt(e)}, got {fmt(g)}"
    n_bad = int((~close).sum())
    many = f" ({n_bad} of {exp.numel()} entries differ)" if n_bad > 1 else ""
    return f"{label}largest difference {fmt(abs(g - e))} at {_index(i, shape)}: expected {fmt(e)}, got {fmt(g)}{many}"


def as_number(got, what: str = "a number") -> tuple[float | None, str | None]:
    """``got`` (a python number, a 0-d or one-element tensor or array) as a float, or what is wrong with it."""
    t, reason, _ = as_values(got)
    if t is None:
        return None, f"expected {what}, got {reason}"
    if t.numel() != 1:
        return None, f"expected {what}, got shape {tuple(t.shape)}"
    return float(t.reshape(())), None


def compare_scalar(expected: float, got, *, loose: bool = False, what: str = "") -> str | None:
    """:func:`compare_values` for one number (a python float, a 0-d or one-element tensor or array)."""
    return compare_values(torch.tensor(float(expected), dtype=torch.float64), got, loose=loose, what=what)


def _copy(x):
    if isinstance(x, torch.Tensor):
        return x.clone()
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, Mapping):
        return {k: _copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_copy(v) for v in x]
    if callable(x):
        return x
    return copy.deepcopy(x)


def _changed(before, after) -> str | None:
    """Where ``after`` (an input after the call) differs from ``before`` (its copy), or None."""
    if isinstance(before, torch.Tensor):
        if not isinstance(after, torch.Tensor) or after.shape != before.shape or not torch.equal(after, before):
            return ""
        return None
    if isinstance(before, Mapping):
        if not isinstance(after, Mapping) or list(after) != list(before):
            return " (its keys)"
        for k in before:
            if _changed(before[k], after[k]) is not None:
                return f" (key {k!r})"
        return None
    if isinstance(before, list):
        if not isinstance(after, list) or len(after) != len(before):
            return " (its length)"
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            if _changed(b, a) is not None:
                return f" (item {i})"
        return None
    return None


def _inputs(exercise: Exercise, case: Case) -> str:
    return "; ".join(f"{p} = {describe_value(a)}" for p, a in zip(exercise.params, case.args, strict=False))


def run_check(exercise: Exercise, fn: Callable, seed: int = 0) -> Verdict:
    """Run ``fn`` on every case of ``exercise`` (drawn with ``seed``); the first case that fails decides the
    verdict.  Never raises for anything ``fn`` does (``Exception`` subclasses; ``KeyboardInterrupt`` still
    stops it)."""
    name = getattr(fn, "__name__", "") or ""
    who = "your function" if name in ("", "<lambda>") else name
    head = f"{exercise.id} {exercise.title}"
    cases = exercise.cases_for(seed)

    def fail(case: Case, text: str) -> Verdict:
        message = f"{head}: not yet, on {case.name} ({_inputs(exercise, case)}): {text}"
        return Verdict(False, message, exercise.id, case.name, tuple(_copy(a) for a in case.args))

    for case in cases:
        args = tuple(_copy(a) for a in case.args)
        try:
            got = fn(*args)
        except Exception as exc:  # the learner's code: anything it raises becomes the verdict
            text = f"{type(exc).__name__}: {exc}".rstrip(": ")
            if isinstance(exc, NotImplementedError):
                message = f"{head}: not done yet: {who} raised {text} (on {case.name}); write its body"
            else:
                message = f"{head}: {who} raised {text} on {case.name} ({_inputs(exercise, case)})"
            return Verdict(False, message, exercise.id, case.name, tuple(_copy(a) for a in case.args))
        if got is None:
            message = (
                f"{head}: not done yet: {who} returned None (on {case.name}); "
                f"write its body and end it with `return ...`"
            )
            return Verdict(False, message, exercise.id, case.name, tuple(_copy(a) for a in case.args))
        for p, before, after in zip(exercise.params, case.args, args, strict=False):
            where = _changed(before, after)
            if where is not None:
                return fail(case, f"{who} modified its input {p}{where}; compute a new result instead of changing it")
        try:
            problem = exercise.compare(case, got)
        except Exception as exc:  # a result so odd that the comparison itself failed
            problem = f"could not read the result ({describe_result(got)}): {type(exc).__name__}: {exc}"
        if problem is not None:
            return fail(case, problem)
    return Verdict(True, f"{head}: correct: {len(cases)} cases passed.", exercise.id)
