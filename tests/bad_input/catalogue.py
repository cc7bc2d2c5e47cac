"""The bad-input census: every public routine, a cheap valid call for each, and bad or unusual values per argument.

A :class:`Routine` names its target by a dotted name in the FUTURE layout (``ensemble_lab.selective.aurc``);
:func:`resolve` falls back to today's name (``ensemble_lab.metrics.aurc``) and the other way round, so the census
runs on both trees.  Every argument is an :class:`Arg` of a kind (``"pos"``, ``"int"``, ``"probs"``, ...) whose
values come from generic families (wrong type, None, bool for numbers, numeric strings, complex, NaN/inf, empty,
wrong shape, out-of-range and huge ints, extremes, generators, bad devices) plus the argument's own extras.

Each value is expected to be one of:

- ``bad``: must be refused, a ValueError/TypeError whose message names the argument as the caller wrote it;
- ``extreme``: valid-looking but at the edge of float arithmetic (1e308, 1e-320, logits of 3e38): refused as
  above, or accepted with a finite (and, where the routine has one, sane) result;
- ``valid``: valid but unusual (numpy arrays, float64, non-contiguous views, reordered keys): accepted with a
  finite result.

:func:`run` makes one call under a time guard and classifies what happened (see :data:`CATEGORIES`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import importlib.util
import inspect
import io
import math
import os
import re
import signal
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ALLOWED",
    "CATEGORIES",
    "FAMILIES",
    "Arg",
    "Case",
    "Outcome",
    "Routine",
    "Value",
    "cases",
    "make_case",
    "resolve",
    "routines",
    "run",
    "warm_up",
]

FAMILIES = (
    "metrics",
    "calibration_error",
    "selective",
    "calibration",
    "combine",
    "prompts",
    "cascades",
    "soups",
    "stats",
    "data",
    "models",
    "training",
    "device",
    "selection",
    "decompositions",
    "forecast",
    "forests",
)
#: what happened: the first two are what the contract asks for, the other four are failures
CATEGORIES = ("refused", "ok", "vague", "crash", "silent", "refused-valid")
FAILING = ("crash", "silent", "vague", "refused-valid")
ALLOWED = {"bad": ("refused",), "extreme": ("refused", "ok"), "valid": ("ok",)}

# ----------------------------------------------------------------------------------------------------------
# resolving names on either layout
# ----------------------------------------------------------------------------------------------------------

_SELECTIVE_TODAY = {
    "risk_coverage": "metrics",
    "aurc": "metrics",
    "selective_risk": "cascades",
    "threshold_for_risk": "cascades",
    "threshold_for_coverage": "cascades",
    "risk_at_coverage": "cascades",
    "coverage_at_risk": "cascades",
    "coverages_at_risks": "cascades",
    "ood_auroc": "cascades",
    "fpr_at_tpr": "cascades",
}
#: (future name, today's name); a name or a dotted prefix of one
RENAMES: tuple[tuple[str, str], ...] = (
    *((f"ensemble_lab.selective.{f}", f"ensemble_lab.{m}.{f}") for f, m in _SELECTIVE_TODAY.items()),
    ("ensemble_lab.calibration_error", "ensemble_lab.estimators"),
    ("ensemble_lab.artefacts.zeroshot.ZeroShotData", "ensemble_lab.zeroshot.ZeroShotData"),
    ("ensemble_lab.recipe.Recipe", "ensemble_lab.finetune.FineTuneRecipe"),
)


def _package_root() -> Path:
    return Path(importlib.import_module("ensemble_lab").__file__).resolve().parent


def _in_tree(module_name: str) -> bool:
    """Whether ``module_name`` exists in the tree ``ensemble_lab`` was imported from.

    An editable install's finder can serve a submodule missing here from another checkout; such a module is
    treated as missing (and never imported)."""
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    origin = spec.origin if spec.origin not in (None, "namespace") else None
    paths = [origin] if origin else list(spec.submodule_search_locations or [])
    return bool(paths) and all(Path(p).resolve().is_relative_to(_package_root()) for p in paths)


def _lookup(dotted: str) -> Any:
    """The object at ``dotted``: the longest importable module prefix (in this tree), then attributes."""
    parts = dotted.split(".")
    i = 0  # shortest prefix first: finding a submodule's spec imports its parent
    while i < len(parts) and _in_tree(".".join(parts[: i + 1])):
        i += 1
    if i == 0:
        raise ModuleNotFoundError(dotted)
    obj = importlib.import_module(".".join(parts[:i]))
    for attr in parts[i:]:
        obj = getattr(obj, attr)
    return obj


def _alternatives(dotted: str) -> list[str]:
    pairs = [*RENAMES, *((b, a) for a, b in RENAMES)]
    pairs.sort(key=lambda p: -len(p[0]))
    return [new + dotted[len(old) :] for old, new in pairs if dotted == old or dotted.startswith(old + ".")]


@functools.cache
def resolve_name(dotted: str) -> str:
    """The name under which ``dotted`` exists on this tree (itself, or its name on the other layout)."""
    for name in (dotted, *_alternatives(dotted)):
        try:
            _lookup(name)
        except (ImportError, AttributeError):
            continue
        return name
    raise LookupError(f"{dotted} exists neither under that name nor under {_alternatives(dotted) or 'another'}")


def resolve(dotted: str) -> Any:
    """The object named ``dotted`` in the future layout, or under today's name when the tree has not moved it."""
    return _lookup(resolve_name(dotted))


# ----------------------------------------------------------------------------------------------------------
# values and arguments
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """One value to try: ``make()`` builds it afresh; ``expect`` is ``bad``, ``extreme`` or ``valid``."""

    desc: str
    make: Callable[[], Any]
    expect: str = "bad"

    def __repr__(self) -> str:
        return f"<{self.expect} {self.desc}>"


def _const(value) -> Callable[[], Any]:
    return lambda: copy.deepcopy(value)


def bad(desc: str, value) -> Value:
    return Value(desc, _const(value), "bad")


def extreme(desc: str, value) -> Value:
    return Value(desc, _const(value), "extreme")


def valid(desc: str, value) -> Value:
    return Value(desc, _const(value), "valid")


def bad_f(desc: str, make: Callable[[], Any]) -> Value:
    return Value(desc, make, "bad")


def extreme_f(desc: str, make: Callable[[], Any]) -> Value:
    return Value(desc, make, "extreme")


def valid_f(desc: str, make: Callable[[], Any]) -> Value:
    return Value(desc, make, "valid")


@dataclass(frozen=True)
class Arg:
    """An argument: its ``kind``, the value of the valid call (``base()``), the values to try and, for the
    property tests, what a valid value looks like (``meta``)."""

    kind: str
    base: Callable[[], Any]
    values: tuple[Value, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


def _arg(kind, base, values, *, extra=(), skip=(), meta=None) -> Arg:
    base_f = base if callable(base) and not isinstance(base, type) else _const(base)
    kept = [v for v in values if v.desc not in skip]
    descs = [v.desc for v in kept]
    for v in extra:
        if v.desc in descs:
            kept[descs.index(v.desc)] = v
        else:
            kept.append(v)
            descs.append(v.desc)
    return Arg(kind, base_f, tuple(kept), dict(meta or {}))


_NAN, _INF = math.nan, math.inf


def _not_numbers(optional: bool) -> list[Value]:
    out = [
        bad("str '1.5'", "1.5"),
        bad("str 'abc'", "abc"),
        bad("True", True),
        bad("False", False),
        bad("complex 1+1j", 1 + 1j),
        bad("list [0.5]", [0.5]),
        bad("array of 2", np.array([0.5, 0.5])),
        bad_f("tensor of 2", lambda: torch.tensor([0.5, 0.5])),
        bad("NaN", _NAN),
        bad("inf", _INF),
        bad("-inf", -_INF),
    ]
    return out if optional else [bad("None", None), *out]


def real(base=0.0, *, lo=-_INF, hi=_INF, lo_open=False, hi_open=False, optional=False, extra=(), skip=()) -> Arg:
    """A float in [lo, hi] (either end open); 0-d tensors and numpy scalars are valid."""
    values = _not_numbers(optional)
    width = hi - lo
    step = 1.0 if width >= 2 else 0.1
    if math.isfinite(lo):
        if lo_open:
            values.append(bad(f"{lo:g} (excluded)", float(lo)))
        values.append(bad(f"{lo - step:g} (below {lo:g})", lo - step))
    if math.isfinite(hi):
        if hi_open:
            values.append(bad(f"{hi:g} (excluded)", float(hi)))
        values.append(bad(f"{hi + step:g} (above {hi:g})", hi + step))
    if hi == _INF:
        values.append(extreme("1e308", 1e308))
        values.append(extreme("2**70 (int)", 2**70))
    if lo == 0 and hi >= 1:
        values.append(extreme("1e-320", 1e-320))
    if lo == -_INF:
        values.append(extreme("-1e308", -1e308))
    if base is not None:
        values += [
            valid(f"numpy float64 {base:g}", np.float64(base)),
            valid_f(f"0-d tensor {base:g}", lambda: torch.tensor(float(base), dtype=torch.float64)),
        ]
        if float(base).is_integer():
            values.append(valid(f"int {int(base)}", int(base)))
    meta = dict(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, optional=optional)
    return _arg("real", base, values, extra=extra, skip=skip, meta=meta)


def pos(base=1.0, **kw) -> Arg:
    return real(base, lo=0.0, lo_open=True, **kw)


def nonneg(base=0.0, **kw) -> Arg:
    return real(base, lo=0.0, **kw)


def integer(base=1, *, minimum=None, maximum=None, optional=False, extra=(), skip=()) -> Arg:
    """An int in [minimum, maximum]; numpy integers are valid, bools and floats are not."""
    values = [] if optional else [bad("None", None)]
    values += [
        bad(f"str '{base}'", str(base)),
        bad("True", True),
        bad("False", False),
        bad(f"float {base + 0.5:g}", base + 0.5),
        bad(f"float {float(base):g}", float(base)),
        bad("complex 1+1j", 1 + 1j),
        bad("NaN", _NAN),
        bad("inf", _INF),
        bad(f"list [{base}]", [base]),
        bad("array of 2", np.array([base, base])),
    ]
    if minimum is not None:
        values.append(bad(f"{minimum - 1} (below {minimum})", minimum - 1))
        if minimum - 1 != -1:
            values.append(bad("-1", -1))
    if maximum is not None:
        values.append(bad(f"{maximum + 1} (above {maximum})", maximum + 1))
    for p in (64, 70):
        values.append((bad if maximum is not None else extreme)(f"2**{p}", 2**p))
    if base is not None:
        values += [valid(f"numpy int64 {base}", np.int64(base)), valid(f"numpy int32 {base}", np.int32(base))]
    meta = dict(minimum=minimum, maximum=maximum, optional=optional)
    return _arg("int", base, values, extra=extra, skip=skip, meta=meta)


def seed(base=0, *, maximum=None, optional=False, extra=(), skip=()) -> Arg:
    return integer(base, minimum=0, maximum=maximum, optional=optional, extra=extra, skip=skip)


def choice(choices, base=None, *, extra=(), skip=()) -> Arg:
    """One of ``choices`` (strings); a numpy str equal to one is valid."""
    base = choices[0] if base is None else base
    values = [
        bad("None", None),
        bad("empty str", ""),
        bad("str 'nope'", "nope"),
        bad("int 1", 1),
        bad(f"list ['{base}']", [base]),
        bad(f"bytes b'{base}'", base.encode()),
        bad(f"' {base}' (leading space)", " " + base),
    ]
    if base.upper() != base:
        values.append(bad(f"'{base.upper()}' (upper case)", base.upper()))
    values.append(valid(f"numpy str '{base}'", np.str_(base)))
    return _arg("choice", base, values, extra=extra, skip=skip, meta=dict(choices=tuple(choices)))


def flag(base=False, *, extra=(), skip=()) -> Arg:
    """A bool."""
    values = [
        bad("str 'no'", "no"),
        bad("str 'False'", "False"),
        bad("None", None),
        bad("int 2", 2),
        bad("float 0.5", 0.5),
        bad("empty list", []),
        bad("array [True, False]", np.array([True, False])),
    ]
    return _arg("flag", base, values, extra=extra, skip=skip)


def _device_values(optional: bool) -> list[Value]:
    out = [
        bad("'foo'", "foo"),
        bad("'cuda:7'", "cuda:7"),
        bad("empty str", ""),
        bad("'CPU'", "CPU"),
        bad("int 7", 7),
        bad("int -1", -1),
        bad("float 1.5", 1.5),
        bad("list ['cpu']", ["cpu"]),
    ]
    if not torch.cuda.is_available():
        out.append(bad("'cuda' (none here)", "cuda"))
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        out.append(bad("'mps' (none here)", "mps"))
    if not optional:
        out.insert(0, bad("None", None))
    out.append(valid_f("torch.device('cpu')", lambda: torch.device("cpu")))
    return out


def device(base="cpu", *, optional=True, extra=(), skip=()) -> Arg:
    return _arg("device", base, _device_values(optional), extra=extra, skip=skip)


def text(base, *, optional=False, extra=(), skip=()) -> Arg:
    """A str."""
    values = [] if optional else [bad("None", None)]
    values += [bad("int 1", 1), bad("bytes", base.encode()), bad("empty str", ""), bad("list of it", [base])]
    return _arg("text", base, values, extra=extra, skip=skip, meta=dict(optional=optional))


def texts(base, *, extra=(), skip=()) -> Arg:
    """A sequence of str; a tuple is valid."""
    values = [
        bad("None", None),
        bad(f"bare str '{base[0]}'", base[0]),
        bad_f("generator of str", lambda: (t for t in base)),
        bad("empty list", []),
        bad("list of ints", [1, 2]),
        bad("[''] (empty name)", [""]),
        bad("dict", {t: t for t in base}),
        valid("tuple", tuple(base)),
    ]
    return _arg("texts", list(base), values, extra=extra, skip=skip)


def reals(base, *, lo=-_INF, hi=_INF, extra=(), skip=()) -> Arg:
    """A sequence of floats; tuples, numpy arrays and tensors are valid."""
    rest = list(base[1:])
    values = [
        bad("None", None),
        bad(f"bare float {base[0]:g}", base[0]),
        bad_f("generator", lambda: (v for v in base)),
        bad("str", "0.5"),
        bad("[NaN, ...]", [_NAN, *rest]),
        bad("[inf, ...]", [_INF, *rest]),
        bad("[True, ...]", [True, *rest]),
        bad("['0.5', ...]", ["0.5", *rest]),
        bad("[1+1j, ...]", [1 + 1j, *rest]),
        bad("nested [[...]]", [list(base)]),
        valid("tuple", tuple(base)),
        valid("numpy array", np.asarray(base, dtype=np.float64)),
        valid_f("tensor", lambda: torch.tensor(base, dtype=torch.float64)),
    ]
    if math.isfinite(lo):
        values.append(bad(f"[{lo - 1:g}, ...] (below {lo:g})", [lo - 1, *rest]))
    if math.isfinite(hi):
        values.append(bad(f"[{hi + 1:g}, ...] (above {hi:g})", [hi + 1, *rest]))
    return _arg("reals", list(base), values, extra=extra, skip=skip, meta=dict(lo=lo, hi=hi))


# tensors ---------------------------------------------------------------------------------------------------


def _inject(x: torch.Tensor, value) -> torch.Tensor:
    y = x.clone() if torch.is_floating_point(x) else x.to(torch.float64)
    y.view(-1)[y.numel() // 2] = value
    return y


def _strided(x: torch.Tensor) -> torch.Tensor:
    """A non-contiguous view holding the same values (stride 2 along the last axis)."""
    return torch.stack([x, x], dim=-1)[..., 0]


def _transposed(x: torch.Tensor) -> torch.Tensor:
    """A non-contiguous view holding the same values: ``.mT`` of a contiguous copy of ``x.mT``."""
    return x.mT.contiguous().mT


def tensor(
    kind: str,
    base: Callable[[], torch.Tensor],
    *,
    floating: bool = True,
    secondary: bool = False,
    optional: bool = False,
    extreme_logits: bool = False,
    extra=(),
    skip=(),
    meta=None,
) -> Arg:
    """A tensor argument (numpy arrays valid).  ``secondary``: it goes with another tensor, whose device it
    must share (a tensor on the meta device is refused, never moved)."""

    def nd() -> int:
        return base().ndim

    values = [] if optional else [bad("None", None)]
    values += [
        bad("str 'abc'", "abc"),
        bad("dict", {}),
        bad("python float 0.5", 0.5),
        bad_f("generator of rows", lambda: (r for r in base().tolist())),
        bad("ragged nested list", [[0.5, 0.5], [1.0]]),
        bad("array of str", np.array(["a", "b"])),
        bad_f("complex dtype", lambda: base().to(torch.complex64)),
        bad_f("empty (0 rows)", lambda: base()[:0]),
        bad_f("one dim fewer", lambda: base()[0]),
        bad_f("extra leading dim", lambda: base().unsqueeze(0)),
    ]
    if floating:
        values += [
            bad_f("NaN entry", lambda: _inject(base(), _NAN)),
            bad_f("inf entry", lambda: _inject(base(), _INF)),
            bad_f("-inf entry", lambda: _inject(base(), -_INF)),
        ]
    if secondary:
        values.append(bad_f("meta-device tensor", lambda: base().to("meta")))
    if extreme_logits:
        values += [
            extreme_f("logits of 3e38 (float32)", lambda: (base() / base().abs().max() * 3e38).float()),
            extreme_f("logits of 1e308 (float64)", lambda: base().double() / base().abs().max() * 1e308),
        ]
    values.append(valid_f("numpy array", lambda: base().numpy()))
    if floating:
        values.append(valid_f("float64", lambda: base().double()))
        values.append(valid_f("requires_grad", lambda: base().requires_grad_(True)))
    values.append(valid_f("strided view", lambda: _strided(base())))
    if nd() >= 2:
        values.append(valid_f("transposed view (.mT of a contiguous copy)", lambda: _transposed(base())))
    m = dict(meta or {})
    m.update(floating=floating, optional=optional)
    return _arg(kind, base, values, extra=extra, skip=skip, meta=m)


def probs_arg(base, *, secondary=False, extra=(), skip=()) -> Arg:
    """Probabilities, rows on the simplex."""
    own = [
        bad_f("rows summing to 2", lambda: base() * 2),
        bad_f("negative entry", lambda: _shift_mass(base())),
        bad_f("logits, not probabilities", lambda: torch.log(base()) * 3),
        valid_f("one-hot (exact zeros)", lambda: _one_hot_like(base())),
    ]
    return tensor("probs", base, secondary=secondary, extra=[*own, *extra], skip=skip)


def _shift_mass(p: torch.Tensor) -> torch.Tensor:
    q = p.clone()
    flat = q.view(-1, q.shape[-1])
    flat[0, 0] -= 0.5
    flat[0, 1] += 0.5
    return q


def _one_hot_like(p: torch.Tensor) -> torch.Tensor:
    return nn.functional.one_hot(p.argmax(dim=-1), p.shape[-1]).to(p.dtype)


def labels_arg(base, n_classes, *, secondary=True, extra=(), skip=()) -> Arg:
    """Integer class indices in [0, n_classes)."""
    own = [
        bad_f(f"label {n_classes} (= C)", lambda: _set(base(), n_classes)),
        bad_f("label -1", lambda: _set(base(), -1)),
        bad_f("label 2**62", lambda: _set(base(), 2**62)),
        bad_f("non-integer floats", lambda: base().double() + 0.5),
        bad_f("NaN float labels", lambda: _inject(base(), _NAN)),
        bad_f("bool labels", lambda: base() > 0),
        bad_f("one label short", lambda: base()[:-1]),
        bad_f("complex labels", lambda: base().to(torch.complex64)),
        valid_f("int32", lambda: base().to(torch.int32)),
        valid_f("uint8", lambda: base().to(torch.uint8)),
        valid_f("numpy int32", lambda: base().numpy().astype(np.int32)),
    ]
    return tensor(
        "labels",
        base,
        floating=False,
        secondary=secondary,
        extra=[*own, *extra],
        skip=skip,
        meta=dict(n_classes=n_classes),
    )


def _set(x: torch.Tensor, value) -> torch.Tensor:
    y = x.clone()
    y[len(y) // 2] = value
    return y


def correct_arg(base, *, extra=(), skip=()) -> Arg:
    """Bool or 0/1 correctness flags."""
    own = [
        bad_f("value 2", lambda: _set(base().to(torch.int64), 2)),
        bad_f("float 0.5", lambda: base().double() * 0.5),
        bad_f("one short", lambda: base()[:-1]),
        bad_f("complex values 0.5j", lambda: base().to(torch.complex64) * 0.5j),
        bad_f("NaN float", lambda: _inject(base().double(), _NAN)),
        valid_f("0/1 int64", lambda: base().to(torch.int64)),
        valid_f("0/1 float", lambda: base().double()),
    ]
    return tensor("correct", base, floating=False, secondary=True, extra=[*own, *extra], skip=skip)


def weights_arg(k, base=None, *, zeros_ok=False, extra=(), skip=(), kind="weights") -> Arg:
    """``k`` finite non-negative numbers with a positive sum (None: uniform)."""
    values = [
        bad("negative entry", [-1.0] + [1.0] * (k - 1)),
        bad("NaN entry", [_NAN] + [1.0] * (k - 1)),
        bad("inf entry", [_INF] + [1.0] * (k - 1)),
        bad(f"length {k - 1}", [1.0] * (k - 1)),
        bad("2-D", [[1.0] * k]),
        bad("str 'abc'", "abc"),
        bad("numeric strings", ["1"] * k),
        bad("bools", [True] * k),
        bad_f("complex tensor", lambda: torch.ones(k, dtype=torch.complex64)),
        bad_f("generator", lambda: (1.0 for _ in range(k))),
        bad("dict", {i: 1.0 for i in range(k)}),
        bad("scalar 1.0", 1.0),
        bad_f("meta-device tensor", lambda: torch.ones(k, device="meta")),
        valid("tuple", tuple([1.0] + [2.0] * (k - 1))),
        valid("numpy float32", np.array([1.0] + [2.0] * (k - 1), dtype=np.float32)),
        valid_f("tensor float64", lambda: torch.tensor([1.0] + [2.0] * (k - 1), dtype=torch.float64)),
        valid_f("strided tensor view", lambda: _strided(torch.tensor([1.0] + [2.0] * (k - 1)))),
        extreme("[1e308] * k", [1e308] * k),
        extreme("[1e-320] * k", [1e-320] * k),
    ]
    if not zeros_ok:
        values.insert(1, bad("all zeros", [0.0] * k))
    return _arg(kind, base, values, extra=extra, skip=skip, meta=dict(k=k))


def index_list(k, base=None, *, extra=(), skip=()) -> Arg:
    """Member indices in [0, k), no repeats (None: all, in order)."""
    values = [
        bad(f"[{k}] (out of range)", [k]),
        bad("[-1]", [-1]),
        bad("repeat [0, 0]", [0, 0]),
        bad("empty list", []),
        bad("[0.5]", [0.5]),
        bad("[True, False]", [True, False]),
        bad("str '01'", "01"),
        bad_f("generator", lambda: (i for i in range(k))),
        bad("2-D [[0, 1]]", [[0, 1]]),
        bad("[2**70]", [2**70]),
        valid("tuple reversed", tuple(range(k - 1, -1, -1))),
        valid("numpy int64", np.arange(k)),
        valid_f("tensor", lambda: torch.arange(k)),
        valid("range", range(k)),
    ]
    return _arg("indices", base, values, extra=extra, skip=skip, meta=dict(k=k))


def other(kind, base, values, *, extra=(), skip=()) -> Arg:
    """An argument of its own kind (state dicts, callables, models, datasets, ...): values given in full."""
    return _arg(kind, base, values, extra=extra, skip=skip)


# ----------------------------------------------------------------------------------------------------------
# fixtures: small, deterministic, built afresh on every call
# ----------------------------------------------------------------------------------------------------------

K, N, C, P, D, M = 3, 20, 4, 5, 8, 10


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def member_logits() -> torch.Tensor:
    return torch.randn(K, N, C, generator=_g(1)) * 2


def logits() -> torch.Tensor:
    return member_logits()[0].clone()


def probs() -> torch.Tensor:
    return torch.softmax(logits(), dim=-1)


def member_probs() -> torch.Tensor:
    return torch.softmax(member_logits(), dim=-1)


def labels() -> torch.Tensor:
    """Mostly the argmax of the mean logits (about 70% right), so fits and thresholds are not degenerate."""
    y = member_logits().mean(dim=0).argmax(dim=-1)
    flip = torch.rand(N, generator=_g(2)) < 0.3
    return torch.where(flip, torch.randint(0, C, (N,), generator=_g(3)), y)


def confidence() -> torch.Tensor:
    return probs().amax(dim=-1)


def correct() -> torch.Tensor:
    return probs().argmax(dim=-1) == labels()


def scores_in() -> torch.Tensor:
    return torch.randn(N, generator=_g(4)) + 1


def scores_out() -> torch.Tensor:
    return torch.randn(15, generator=_g(5))


def image_embeddings() -> torch.Tensor:
    return torch.randn(N, D, generator=_g(6))


def text_embeddings() -> torch.Tensor:
    return torch.randn(P, C, D, generator=_g(7))


def class_embeddings() -> torch.Tensor:
    return torch.randn(C, D, generator=_g(8))


def _unit(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm(dim=-1, keepdim=True)


def prompt_logits() -> torch.Tensor:
    return 10 * torch.einsum("nd,pcd->npc", _unit(image_embeddings()), _unit(text_embeddings()))


def pretrain_logits() -> torch.Tensor:
    x = torch.randn(M, D, generator=_g(9))
    return 10 * torch.einsum("nd,pcd->npc", _unit(x), _unit(text_embeddings()))


def prompt_scores() -> torch.Tensor:
    return torch.randn(P, generator=_g(10))


def images(size: int = 8, n: int = N) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=_g(11))


CLASSES = ("a", "b", "c", "d")
DIGITS = ("zero", "one", "two", "three")


def dataset():
    return resolve("ensemble_lab.data.ImageDataset")(images(), labels(), CLASSES, "tiny")


class TinyNet(nn.Module):
    """``body`` (with a batch norm: float and int buffers) then a linear ``head``; inputs (N, 1, 4, 4)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.head = nn.Linear(8, C)

    def forward(self, x):
        return self.head(self.body(x))


def tiny_net(seed: int = 0) -> TinyNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyNet().eval()


class OtherNet(nn.Module):
    """A different architecture (other keys)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(16, C)

    def forward(self, x):
        return self.lin(x.flatten(1))


def state(seed: int = 0) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in tiny_net(seed).state_dict().items()}


def soup_inputs() -> torch.Tensor:
    return torch.randn(N, 1, 4, 4, generator=_g(12))


def _state_nan(seed=1):
    sd = state(seed)
    sd["head.weight"][0, 0] = _NAN
    return sd


def _state_missing(seed=1):
    sd = state(seed)
    del sd["head.bias"]
    return sd


def _state_extra(seed=1):
    sd = state(seed)
    sd["extra.weight"] = torch.zeros(2)
    return sd


def _state_shape(seed=1):
    sd = state(seed)
    sd["head.weight"] = torch.zeros(C + 1, 8)
    return sd


def _state_float64(seed=1):
    return {k: (v.double() if v.is_floating_point() else v) for k, v in state(seed).items()}


def _state_reordered(seed=1):
    return dict(reversed(list(state(seed).items())))


def _state_strided(seed=1):
    return {k: (_transposed(v) if v.ndim >= 2 else v) for k, v in state(seed).items()}


def _state_not_tensor(seed=1):
    sd = state(seed)
    sd["head.bias"] = sd["head.bias"].tolist()
    return sd


def state_arg(seed: int, *, single: bool = False, extra=(), skip=()) -> Arg:
    """A state dict of :class:`TinyNet` (``single``: the only one, nothing to match)."""
    values = [
        bad("None", None),
        bad_f("list [state]", lambda: [state(seed)]),
        bad("str", "state"),
        bad_f("NaN entry", lambda: _state_nan(seed)),
        bad_f("value not a tensor", lambda: _state_not_tensor(seed)),
        valid_f("keys reordered", lambda: _state_reordered(seed)),
        valid_f("non-contiguous tensors", lambda: _state_strided(seed)),
        valid_f("OrderedDict", lambda: OrderedDict(state(seed))),
    ]
    if not single:
        values += [
            bad_f("missing key", lambda: _state_missing(seed)),
            bad_f("extra key", lambda: _state_extra(seed)),
            bad_f("another shape", lambda: _state_shape(seed)),
            bad_f("float64 (other dtype)", lambda: _state_float64(seed)),
        ]
    return _arg("state", lambda: state(seed), values, extra=extra, skip=skip)


def states_arg(seeds=(0, 1, 2), *, extra=(), skip=()) -> Arg:
    """A list of TinyNet state dicts."""

    def base():
        return [state(s) for s in seeds]

    values = [
        bad("None", None),
        bad_f("a single state dict", lambda: state(seeds[0])),
        bad("empty list", []),
        bad_f("generator", lambda: (state(s) for s in seeds)),
        bad_f("[state, 'x']", lambda: [state(seeds[0]), "x"]),
        bad_f("second missing a key", lambda: [state(seeds[0]), _state_missing(seeds[1])]),
        bad_f("second with NaN", lambda: [state(seeds[0]), _state_nan(seeds[1])]),
        bad_f("second of another shape", lambda: [state(seeds[0]), _state_shape(seeds[1])]),
        bad_f("second float64", lambda: [state(seeds[0]), _state_float64(seeds[1])]),
        valid_f("tuple", lambda: tuple(base())),
        valid_f("second with keys reordered", lambda: [state(seeds[0]), _state_reordered(seeds[1])]),
    ]
    return _arg("states", base, values, extra=extra, skip=skip)


def module_arg(base, *, extra=(), skip=()) -> Arg:
    values = [
        bad("None", None),
        bad("str", "model"),
        bad_f("a function", lambda: lambda x: x),
        bad_f("another architecture", lambda: OtherNet().eval()),
    ]
    return _arg("module", base, values, extra=extra, skip=skip)


def generator_arg() -> Arg:
    values = [
        bad("None", None),
        bad("int seed 0", 0),
        bad("str", "gen"),
        bad_f("numpy Generator", lambda: np.random.default_rng(0)),
        bad_f("an RNG state tensor", lambda: torch.random.get_rng_state()),
    ]
    return _arg("generator", lambda: _g(0), values)


def dataset_arg(base=dataset, *, pair_ok: bool, extra=(), skip=()) -> Arg:
    """An ImageDataset (``pair_ok``: an ``(images, labels)`` pair is documented as valid too)."""
    values = [
        bad("None", None),
        bad("str", "digits"),
        bad("dict", {}),
        bad_f("images tensor alone", lambda: images()),
    ]
    pair = [
        valid_f("(images, labels) pair", lambda: (images(), labels())),
        valid_f("numpy (images, labels) pair", lambda: (images().numpy(), labels().numpy())),
        bad_f("pair with NaN images", lambda: (_inject(images(), _NAN), labels())),
        bad_f("pair with labels one short", lambda: (images(), labels()[:-1])),
        bad_f("pair of str", lambda: ("a", "b")),
        bad_f("triple", lambda: (images(), labels(), labels())),
    ]
    if pair_ok:
        values += pair
    else:
        values.append(bad_f("(images, labels) pair", lambda: (images(), labels())))
    return _arg("dataset", base, values, extra=extra, skip=skip)


# the shipped MiniCLIP (loaded once) and a tiny random one of the same class ---------------------------------

VOCAB = ("a", "photo", "of", "the", "number", "zero", "one", "two", "three")


@functools.lru_cache(maxsize=1)
def shipped_miniclip():
    return resolve("ensemble_lab.models.miniclip.load_miniclip")("cpu")


def small_miniclip_kwargs() -> dict:
    return dict(
        vocab=list(VOCAB),
        embed_dim=8,
        context_length=6,
        image_widths=[4],
        image_hidden=8,
        text_width=8,
        text_layers=1,
        text_heads=2,
        image_size=8,
    )


@functools.lru_cache(maxsize=1)
def small_miniclip():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return resolve("ensemble_lab.models.miniclip.MiniCLIP")(**small_miniclip_kwargs()).eval()


def zeroshot_domains() -> dict:
    ds = resolve("ensemble_lab.data.ImageDataset")(images(16, 8), torch.arange(8) % 4, DIGITS, "clean")
    return {"clean": ds}


def zeroshot_data():
    cls = resolve("ensemble_lab.artefacts.zeroshot.ZeroShotData")
    return cls(shipped_miniclip(), zeroshot_domains(), images(16, 8), list(DIGITS), progress=False)


def stacked_ensemble():
    return resolve("ensemble_lab.models.stacked.StackedEnsemble")("mlp-xs", 2, (1, 8, 8), C, seed=0)


def clip_visual() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, D))


def clip_classifier():
    cls = resolve("ensemble_lab.models.clip_classifier.ClipClassifier")
    return cls(clip_visual(), torch.randn(C, D, generator=_g(13))).eval()


def finetune_model() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(64, C))


def recipe(**kw):
    return resolve("ensemble_lab.recipe.Recipe")(**{"epochs": 1, "batch_size": 10, **kw})


# ----------------------------------------------------------------------------------------------------------
# sanity of results (beyond finiteness)
# ----------------------------------------------------------------------------------------------------------


def simplex(result) -> str | None:
    """Rows of a probability tensor: in [0, 1] and summing to 1."""
    if not isinstance(result, torch.Tensor) or not torch.is_floating_point(result):
        return f"expected a float tensor of probabilities, got {_describe(result)}"
    t = result.detach().double()
    if t.numel() and (bool((t < -1e-6).any()) or bool((t > 1 + 1e-6).any())):
        return f"probabilities outside [0, 1]: [{float(t.min()):.3g}, {float(t.max()):.3g}]"
    sums = t.sum(dim=-1)
    if sums.numel() and float((sums - 1).abs().max()) > 1e-3:
        return f"rows sum to {float(sums.flatten()[(sums - 1).abs().flatten().argmax()]):.6g}, not 1"
    return None


def log_simplex(result) -> str | None:
    if not isinstance(result, torch.Tensor):
        return f"expected a tensor of log-probabilities, got {_describe(result)}"
    return simplex(result.detach().double().exp())


# ----------------------------------------------------------------------------------------------------------
# routines
# ----------------------------------------------------------------------------------------------------------


def _identity(x):
    return x


@dataclass(frozen=True)
class Routine:
    """A public routine: ``target`` (future layout), its ``family`` and arguments (in call order).

    ``owner`` builds the instance for a method (``target`` then names the function on the class); ``invoke``
    replaces the plain ``fn(**kwargs)`` call; ``view`` picks the part of the result that must be finite (some
    results hold documented NaNs); ``sane`` checks a result further (returns a problem or None); ``work`` names
    internal functions of expensive routines that are replaced by a stub ending the call once the arguments
    are accepted (so only the checks run).
    """

    target: str
    family: str
    args: Mapping[str, Arg]
    owner: Callable[[], Any] | None = None
    invoke: Callable[[Callable, dict], Any] | None = None
    view: Callable[[Any], Any] = _identity
    sane: Callable[[Any], str | None] | None = None
    work: tuple[str, ...] = ()
    note: str = ""

    @property
    def id(self) -> str:
        return self.target.removeprefix("ensemble_lab.")

    def available(self) -> bool:
        try:
            resolve_name(self.target)
        except LookupError:
            return False
        return True

    def function(self) -> Callable:
        fn = resolve(self.target)
        return functools.partial(fn, self.owner()) if self.owner is not None else fn

    def present(self) -> tuple[str, ...]:
        """The arguments the routine takes on this tree (a catalogue argument it lacks is left out)."""
        return _present(self.target, self.owner is not None, tuple(self.args), self.invoke is not None)

    def absent(self) -> tuple[str, ...]:
        return tuple(name for name in self.args if name not in self.present())

    def call(self, overrides: Mapping[str, Callable[[], Any]]) -> Any:
        kwargs = {name: overrides.get(name, self.args[name].base)() for name in self.present()}
        fn = self.function()
        with _work_stubs(self.work):
            return self.invoke(fn, kwargs) if self.invoke is not None else fn(**kwargs)


@functools.cache
def _present(target: str, method: bool, names: tuple[str, ...], custom: bool) -> tuple[str, ...]:
    if custom:  # the routine's own invoke decides what the names mean
        return names
    try:
        params = list(inspect.signature(resolve(target)).parameters.values())
    except (TypeError, ValueError):
        return names
    if method and params:
        params = params[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return names
    taken = {p.name for p in params if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    return tuple(n for n in names if n in taken)


class _ReachedWork(BaseException):
    """Raised by a work stub: the arguments were accepted."""


@contextlib.contextmanager
def _work_stubs(names):
    saved = []
    for dotted in names:
        module_name, _, attr = dotted.rpartition(".")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if hasattr(module, attr):
            saved.append((module, attr, getattr(module, attr)))

            def stub(*args, **kwargs):
                raise _ReachedWork

            setattr(module, attr, stub)
    try:
        yield
    finally:
        for module, attr, original in saved:
            setattr(module, attr, original)


def _fit_then(method: str, *args_f):
    def invoke(fn, kwargs):
        return getattr(fn(**kwargs), method)(*(a() for a in args_f))

    return invoke


def _env_invoke(var: str):
    def invoke(fn, kwargs):
        old = os.environ.get(var)
        value = kwargs[var]
        try:
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value  # a non-str raises TypeError here, as it would for the caller
            return fn()
        finally:
            if old is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = old

    return invoke


def _metric_nan(p, y, **kw):
    return math.nan


def _metric_str(p, y, **kw):
    return "x"


def _metric_vector(p, y, **kw):
    return torch.ones(2)


def _metric_numpy(p, y, **kw):
    return np.float64(0.25)


def _square(seed):
    return float(seed * seed)


def _metric_nan_seed(seed):
    return math.nan


def _metric_str_seed(seed):
    return "x"


def _metric_numpy_seed(seed):
    return np.float64(seed)


def _evaluate(sd) -> float:
    return float(sd["head.bias"].sum())


def _stage_rows():
    return member_probs()[:2].amax(-1)  # (2, N): two stages' val scores


def _stage_correct():
    return member_probs()[:2].argmax(-1) == labels()


def _cascade_windows():
    return resolve("ensemble_lab.cascades.fit_windows")(_stage_rows(), _stage_correct(), 0.1, target_risk=1.0)


def _windows_view(w):
    return (w.tau, w.level, w.half_width, [x for x in (*w.lo, *w.hi) if not math.isinf(x)])


def _cascade_result():
    return resolve("ensemble_lab.cascades.threshold_cascade")(member_logits(), 0.7)


@functools.lru_cache(maxsize=1)
def routines() -> tuple[Routine, ...]:
    """Every routine of the census, in a fixed order."""
    R = Routine
    probs_ = probs_arg(probs)
    mprobs_ = probs_arg(member_probs)
    labels_ = labels_arg(labels, C)
    mlogits_ = tensor("member_logits", member_logits, extreme_logits=True)
    logits_ = tensor("logits", logits, extreme_logits=True)
    val = flag(True)
    bins = integer(15, minimum=1)
    bins5 = integer(5, minimum=1)
    strat = choice(("uniform", "quantile"))
    strat_q = choice(("uniform", "quantile"), "quantile")
    conf_ = tensor("scores", confidence)
    corr_ = correct_arg(correct)
    risk = real(0.5, lo=0.0, hi=1.0, lo_open=True)
    cov_open = real(0.5, lo=0.0, hi=1.0, lo_open=True)
    cov = real(0.5, lo=0.0, hi=1.0)
    weights_k = weights_arg(K)
    max_iter = integer(20, minimum=1)
    pool_rule = choice(("prob", "logit", "geo"), extra=[bad("'vote'", "vote")])
    bandwidth = pos(None, optional=True, extra=[bad("1e-5 (below 1e-4)", 1e-5), bad("11 (above 10)", 11.0)])
    n_boot = integer(20, minimum=2)
    metric_fn = other(
        "callable",
        lambda: resolve("ensemble_lab.metrics.accuracy"),
        [
            bad("None", None),
            bad("str 'accuracy'", "accuracy"),
            bad_f("returns NaN", lambda: _metric_nan),
            bad_f("returns 'x'", lambda: _metric_str),
            bad_f("returns a 2-vector", lambda: _metric_vector),
            valid_f("returns a numpy float", lambda: _metric_numpy),
        ],
    )
    clusters_ = tensor(
        "clusters",
        lambda: torch.arange(N) // 2,
        floating=False,
        secondary=True,
        optional=True,
        extra=[
            bad_f("float ids", lambda: torch.arange(N) / 2),
            bad_f("one id short", lambda: torch.arange(N - 1)),
            bad_f("bool ids", lambda: torch.arange(N) % 2 == 0),
            valid_f("numpy ids", lambda: np.arange(N) // 4),
            valid_f("one cluster", lambda: torch.zeros(N, dtype=torch.long)),
        ],
    )
    level = real(0.9, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    p_logits = tensor("prompt_logits", prompt_logits, extreme_logits=True)
    pre_logits = tensor("prompt_logits", pretrain_logits, secondary=True, optional=True)
    p_weights = weights_arg(P, [1.0] * P)
    p_weights_opt = weights_arg(P)
    img_emb = tensor(
        "embeddings", image_embeddings, extra=[bad_f("an all-zero vector", lambda: _zero_row(image_embeddings()))]
    )
    txt_emb = tensor(
        "embeddings",
        text_embeddings,
        secondary=True,
        extra=[bad_f("an all-zero vector", lambda: _zero_row(text_embeddings()))],
    )
    cls_emb = tensor(
        "embeddings",
        class_embeddings,
        secondary=True,
        extra=[bad_f("an all-zero vector", lambda: _zero_row(class_embeddings()))],
    )
    scale = pos(10.0)
    template = text(
        "a photo of {}.",
        extra=[
            bad("no placeholder", "a photo"),
            bad("two placeholders", "{} and {}"),
            bad("format field '{0}'", "a {0}"),
        ],
    )
    templates_ = texts(["a photo of the {}.", "the number {}"], extra=[bad("['no placeholder']", ["a photo"])])
    score = choice(("msp", "neg_entropy", "max_logit", "neg_energy", "max_logit_of_mean", "neg_energy_of_mean"))
    windows_arg = other(
        "windows",
        _cascade_windows,
        [
            bad("None", None),
            bad("dict", {}),
            bad_f("a tensor", lambda: torch.ones(2)),
            bad("tuple of floats", (0.5,)),
        ],
    )
    order = index_list(K)
    costs = weights_arg(K, zeros_ok=True, kind="costs", skip=("[1e-320] * k",))
    cas_weights = weights_arg(K, extra=[bad("first member weighs 0", [0.0, 1.0, 1.0])])
    threshold = real(0.7)
    val_scores = tensor("scores", lambda: member_probs()[0].amax(-1), optional=True, secondary=True)
    alphas = reals([0.0, 0.5, 1.0], lo=0.0, hi=1.0, extra=[bad("empty list", [])], skip=("bare float 0",))
    model_ = module_arg(lambda: tiny_net(0))
    inputs_ = tensor(
        "images",
        soup_inputs,
        extra=[valid_f("float64", lambda: soup_inputs().double())],
        skip=("requires_grad", "one dim fewer"),
    )
    ds_images = tensor(
        "images",
        images,
        extra=[
            bad_f("values above 1", lambda: images() * 2),
            bad_f("negative values", lambda: images() - 1),
            bad_f("uint8 0..255", lambda: (images() * 255).to(torch.uint8)),
        ],
    )
    spec = other(
        "spec",
        "mlp-xs",
        [
            bad("None", None),
            bad("unknown name", "mlp-xxl"),
            bad("int 1", 1),
            bad("bytes", b"mlp-xs"),
            bad("dict", {"name": "mlp-xs"}),
            valid_f("a ModelSpec", lambda: resolve("ensemble_lab.models.family.FAMILY")["mlp-xs"]),
        ],
    )
    shape = other(
        "shape",
        (1, 8, 8),
        [
            bad("None", None),
            bad("length 2", (1, 8)),
            bad("zero side", (1, 0, 8)),
            bad("negative side", (1, -8, 8)),
            bad("float side", (1, 8.5, 8)),
            bad("bool side", (True, 8, 8)),
            bad("str", "1x8x8"),
            extreme("side 2**70", (1, 2**70, 8)),
            valid("list", [1, 8, 8]),
            valid("numpy ints", tuple(np.int64(v) for v in (1, 8, 8))),
        ],
    )
    n_classes = integer(4, minimum=2)
    images16 = tensor(
        "images",
        lambda: images(16, 8),
        extra=[bad_f("values above 1", lambda: images(16, 8) * 2), bad_f("wrong size 8x8", lambda: images(8, 8))],
    )
    images8 = tensor(
        "images",
        lambda: images(8, 6),
        extra=[bad_f("values above 1", lambda: images(8, 6) * 2), bad_f("wrong size 16x16", lambda: images(16, 6))],
    )
    train_ds = dataset_arg(pair_ok=True)
    train_recipe = other(
        "recipe",
        recipe,
        [
            bad("None", None),
            bad("dict", {"epochs": 1}),
            bad("str", "default"),
            bad_f("a recipe with mixup (fine-tuning only)", lambda: recipe(mixup=0.4)),
            extreme_f("a recipe with lr=1e308", lambda: recipe(lr=1e308)),
            extreme_f("a recipe with weight_decay=1e308", lambda: recipe(weight_decay=1e308)),
            extreme_f("a recipe with lr=2**70", lambda: recipe(lr=2**70)),
            extreme_f("a recipe with epochs=2**64", lambda: recipe(epochs=2**64)),
            valid_f(
                "a Recipe with label smoothing, constant schedule",
                lambda: recipe(lr=1e-2, weight_decay=0.0, label_smoothing=0.1, schedule="constant", seed=3),
            ),
            valid_f("a Recipe of numpy scalars", lambda: recipe(epochs=np.int64(1), lr=np.float64(3e-3))),
        ],
    )
    batch6 = tensor(
        "images",
        lambda: images(8, 6),
        extra=[extreme_f("empty batch", lambda: images(8, 0))],
        skip=("empty (0 rows)",),
    )
    k_int = integer(2, minimum=1)

    out = [
        # --------------------------------------------------------------------------- metrics
        *(
            R(f"ensemble_lab.metrics.{f}", "metrics", dict(probs=probs_, labels=labels_, validate=val))
            for f in ("accuracy", "nll", "brier")
        ),
        R(
            "ensemble_lab.metrics.ece",
            "metrics",
            dict(
                probs=probs_,
                labels=labels_,
                n_bins=bins,
                strategy=strat,
                norm=choice(("l1", "l2", "max")),
                validate=val,
            ),
        ),
        R(
            "ensemble_lab.metrics.classwise_ece",
            "metrics",
            dict(probs=probs_, labels=labels_, n_bins=bins, strategy=strat, validate=val),
        ),
        R(
            "ensemble_lab.metrics.reliability",
            "metrics",
            dict(probs=probs_, labels=labels_, n_bins=bins, strategy=strat, validate=val),
            view=lambda r: (r.edges, r.count, r.ece),
            note="confidence/accuracy are NaN for empty bins by design",
        ),
        R(
            "ensemble_lab.metrics.entropy",
            "metrics",
            dict(probs=probs_arg(probs, skip=("extra leading dim",)), validate=val),
        ),
        *(
            R(f"ensemble_lab.metrics.{f}", "metrics", dict(member_probs=mprobs_, validate=val))
            for f in ("disagreement", "kl_to_ensemble", "mutual_information", "diversity")
        ),
        R(
            "ensemble_lab.metrics.summary",
            "metrics",
            dict(probs=probs_, labels=labels_, n_bins=bins, strategy=strat, validate=val),
        ),
        # --------------------------------------------------------------------------- selective
        R("ensemble_lab.selective.risk_coverage", "selective", dict(confidence=conf_, correct=corr_, validate=val)),
        R("ensemble_lab.selective.aurc", "selective", dict(confidence=conf_, correct=corr_, validate=val)),
        R(
            "ensemble_lab.selective.selective_risk",
            "selective",
            dict(confidence=conf_, correct=corr_, threshold=real(0.5)),
            view=lambda r: (r[1], r[0] if r[1] > 0 else 0.0),
            note="risk is NaN when nothing is accepted, by design",
        ),
        R(
            "ensemble_lab.selective.threshold_for_risk",
            "selective",
            dict(confidence=conf_, correct=corr_, target_risk=risk),
        ),
        R(
            "ensemble_lab.selective.threshold_for_coverage",
            "selective",
            dict(confidence=conf_, coverage=cov),
        ),
        R(
            "ensemble_lab.selective.risk_at_coverage",
            "selective",
            dict(confidence=conf_, correct=corr_, coverage=cov_open),
        ),
        R(
            "ensemble_lab.selective.coverage_at_risk",
            "selective",
            dict(confidence=conf_, correct=corr_, target_risk=risk),
        ),
        R(
            "ensemble_lab.selective.coverages_at_risks",
            "selective",
            dict(confidence=conf_, correct=corr_, target_risks=reals([0.3, 0.5], lo=0.0, hi=1.0)),
        ),
        R(
            "ensemble_lab.selective.ood_auroc",
            "selective",
            dict(scores_in=tensor("scores", scores_in), scores_out=tensor("scores", scores_out, secondary=True)),
        ),
        R(
            "ensemble_lab.selective.fpr_at_tpr",
            "selective",
            dict(
                scores_in=tensor("scores", scores_in),
                scores_out=tensor("scores", scores_out, secondary=True),
                tpr=real(0.95, lo=0.0, hi=1.0),
            ),
        ),
        # --------------------------------------------------------------------------- calibration error
        R(
            "ensemble_lab.calibration_error.debiased_ece",
            "calibration_error",
            dict(probs=probs_, labels=labels_, n_bins=bins5, strategy=strat_q, squared=flag(True)),
        ),
        R(
            "ensemble_lab.calibration_error.bootstrap_ci",
            "calibration_error",
            dict(
                metric=other(
                    "callable",
                    lambda: resolve("ensemble_lab.metrics.ece"),
                    [
                        bad("None", None),
                        bad("str 'ece'", "ece"),
                        bad("int 1", 1),
                        bad_f("returns NaN", lambda: _metric_nan),
                        bad_f("returns 'x'", lambda: _metric_str),
                        bad_f("returns a 2-vector", lambda: _metric_vector),
                        valid_f("returns a numpy float", lambda: _metric_numpy),
                    ],
                ),
                probs=probs_,
                labels=labels_,
                n_boot=n_boot,
                level=level,
                seed=seed(0),
            ),
        ),
        R(
            "ensemble_lab.calibration_error.bootstrap_ece",
            "calibration_error",
            dict(
                probs=probs_,
                labels=labels_,
                estimator=choice(("binned", "debiased", "smooth")),
                n_bins=bins5,
                strategy=strat,
                bandwidth=bandwidth,
                n_boot=n_boot,
                level=level,
                seed=seed(0),
            ),
        ),
        # --------------------------------------------------------------------------- stats
        R(
            "ensemble_lab.stats.paired_bootstrap",
            "stats",
            dict(
                metric=metric_fn,
                pred_a=probs_,
                pred_b=probs_arg(probs, secondary=True),
                labels=labels_,
                clusters=clusters_,
                n_resamples=n_boot,
                level=level,
                seed=seed(0),
            ),
            view=lambda r: (r.difference, r.low, r.high),
        ),
        R(
            "ensemble_lab.stats.two_sample_bootstrap",
            "stats",
            dict(
                metric=metric_fn,
                pred_a=probs_,
                labels_a=labels_,
                pred_b=probs_arg(probs, secondary=True),
                labels_b=labels_,
                clusters_a=clusters_,
                clusters_b=clusters_,
                n_resamples=n_boot,
                level=level,
                seed=seed(0),
            ),
            view=lambda r: (r.difference, r.low, r.high),
        ),
        R(
            "ensemble_lab.stats.over_seeds",
            "stats",
            dict(
                experiment=other(
                    "callable",
                    lambda: _square,
                    [
                        bad("None", None),
                        bad("int 1", 1),
                        bad_f("returns NaN", lambda: _metric_nan_seed),
                        bad_f("returns 'x'", lambda: _metric_str_seed),
                        valid_f("returns a numpy float", lambda: _metric_numpy_seed),
                    ],
                ),
                seeds=other(
                    "seeds",
                    lambda: (0, 1, 2),
                    [
                        bad("None", None),
                        bad("empty tuple", ()),
                        bad("repeated seed", (1, 1)),
                        bad("negative seed", (0, -1)),
                        bad("str '012'", "012"),
                        bad("float seed", (0.5,)),
                        valid("range", range(3)),
                        valid("list", [4, 5]),
                    ],
                ),
            ),
            view=lambda r: (r.mean, r.std),
        ),
        R(
            "ensemble_lab.calibration_error.smooth_ece",
            "calibration_error",
            dict(probs=probs_, labels=labels_, bandwidth=bandwidth),
        ),
        R(
            "ensemble_lab.calibration_error.smooth_ece_bandwidth",
            "calibration_error",
            dict(probs=probs_, labels=labels_),
        ),
        R(
            "ensemble_lab.calibration_error.smooth_reliability",
            "calibration_error",
            dict(probs=probs_, labels=labels_, bandwidth=bandwidth, grid=integer(50, minimum=2)),
            view=lambda r: r[0],
            note="y is NaN where the smoothed density underflows, by design",
        ),
        # --------------------------------------------------------------------------- calibration
        R(
            "ensemble_lab.calibration.fit_temperature",
            "calibration",
            dict(logits=logits_, labels=labels_, max_iter=max_iter),
        ),
        R(
            "ensemble_lab.calibration.fit_member_temperatures",
            "calibration",
            dict(member_logits=mlogits_, labels=labels_, max_iter=max_iter),
        ),
        R(
            "ensemble_lab.calibration.apply_temperature",
            "calibration",
            dict(
                logits=tensor(
                    "logits", logits, extreme_logits=True, skip=("extra leading dim", "one dim fewer", "empty (0 rows)")
                ),
                temperature=pos(1.5),
            ),
            sane=simplex,
        ),
        R(
            "ensemble_lab.calibration.VectorScaling",
            "calibration",
            dict(
                w=tensor("vector", lambda: torch.ones(C), extra=[bad_f("length C+1", lambda: torch.ones(C + 1))]),
                b=tensor("vector", lambda: torch.zeros(C), extra=[bad_f("length C+1", lambda: torch.zeros(C + 1))]),
            ),
            invoke=_fit_then("apply", logits),
            note="built, then applied to valid logits",
        ),
        R(
            "ensemble_lab.calibration.VectorScaling.apply",
            "calibration",
            dict(
                logits=tensor(
                    "logits", logits, extreme_logits=True, extra=[bad_f("C+1 classes", lambda: torch.randn(N, C + 1))]
                )
            ),
            owner=lambda: resolve("ensemble_lab.calibration.VectorScaling")(torch.ones(C) * 0.8, torch.zeros(C)),
        ),
        R(
            "ensemble_lab.calibration.fit_vector_scaling",
            "calibration",
            dict(logits=logits_, labels=labels_, max_iter=max_iter),
        ),
        R(
            "ensemble_lab.calibration.HistogramBinning",
            "calibration",
            dict(
                edges=tensor(
                    "edges",
                    lambda: _hist().edges,
                    extra=[
                        bad_f("decreasing edges", lambda: _hist().edges.flip(-1)),
                        bad_f("edges beyond [0, 1]", lambda: _hist().edges * 3 - 1),
                        bad_f("edges for C+1 classes", lambda: torch.cat([_hist().edges, _hist().edges[:1]])),
                        bad_f("1-D edges", lambda: _hist().edges[0]),
                    ],
                    skip=("one dim fewer",),
                ),
                values=tensor(
                    "bin_values",
                    lambda: _hist().values.nan_to_num(0.5),
                    extra=[
                        valid_f("NaN entry (an empty bin)", lambda: _inject(_hist().values.nan_to_num(0.5), _NAN)),
                        bad_f("values above 1", lambda: _hist().values.nan_to_num(0.5) + 2),
                        bad_f("negative values", lambda: _hist().values.nan_to_num(0.5) - 2),
                        bad_f("B+1 bins", lambda: torch.full((C, 6), 0.5, dtype=torch.float64)),
                    ],
                    skip=("NaN entry",),
                ),
                count=tensor(
                    "counts",
                    lambda: _hist().count,
                    floating=False,
                    extra=[bad_f("negative counts", lambda: _hist().count - 10)],
                ),
            ),
            invoke=_fit_then("apply", probs),
            note="built by hand, then applied to valid probabilities",
        ),
        R(
            "ensemble_lab.calibration.HistogramBinning.apply",
            "calibration",
            dict(probs=probs_arg(probs, extra=[bad_f("C+1 classes", lambda: torch.full((N, C + 1), 1 / (C + 1)))])),
            owner=_hist,
            sane=simplex,
        ),
        R(
            "ensemble_lab.calibration.fit_histogram_binning",
            "calibration",
            dict(probs=probs_, labels=labels_, n_bins=bins5, strategy=strat_q),
            view=lambda h: (h.edges, h.count),
            note="values are NaN for empty bins, by design",
        ),
        R(
            "ensemble_lab.calibration.pooled_logits",
            "calibration",
            dict(member_logits=mlogits_, weights=weights_k, rule=pool_rule),
            sane=log_simplex,
        ),
        R(
            "ensemble_lab.calibration.PooledCalibrator",
            "calibration",
            dict(
                rule=pool_rule,
                temperature=pos(1.5),
                member_temperatures=tensor(
                    "temperatures",
                    lambda: torch.full((K,), 1.2),
                    extra=[
                        bad_f("zero entry", lambda: torch.tensor([0.0, 1.0, 1.0])),
                        bad_f("negative entry", lambda: torch.tensor([-1.0, 1.0, 1.0])),
                        extreme_f("[1e-320] * K (float64)", lambda: torch.full((K,), 1e-320, dtype=torch.float64)),
                        extreme_f("[1e-40] * K (float32)", lambda: torch.full((K,), 1e-40)),
                        extreme_f("[1e308] * K (float64)", lambda: torch.full((K,), 1e308, dtype=torch.float64)),
                    ],
                ),
                weights=weights_k,
                order=choice(("pool-then-calibrate", "calibrate-then-pool")),
            ),
            invoke=_fit_then("apply", member_logits),
            sane=simplex,
            note="built by hand, then applied to valid member logits",
        ),
        *(
            R(
                f"ensemble_lab.calibration.PooledCalibrator.{m}",
                "calibration",
                dict(
                    member_logits=tensor(
                        "member_logits",
                        member_logits,
                        extreme_logits=True,
                        extra=[bad_f("K+1 members", lambda: torch.randn(K + 1, N, C))],
                    )
                ),
                owner=_pooled_calibrator,
                sane=sane,
            )
            for m, sane in (("apply", simplex), ("log_probs", log_simplex))
        ),
        *(
            R(
                f"ensemble_lab.calibration.{f}",
                "calibration",
                dict(member_logits=mlogits_, labels=labels_, rule=pool_rule, weights=weights_k, max_iter=max_iter),
            )
            for f in ("pool_then_calibrate", "calibrate_then_pool")
        ),
        # --------------------------------------------------------------------------- combine
        R(
            "ensemble_lab.combine.Combiner",
            "combine",
            dict(member_logits=mlogits_, temperature=pos(1.0)),
        ),
        R(
            "ensemble_lab.combine.Combiner.__call__",
            "combine",
            dict(weights=weights_k, rule=choice(("prob", "logit", "geo", "vote"))),
            owner=lambda: resolve("ensemble_lab.combine.Combiner")(member_logits()),
            sane=simplex,
        ),
        R(
            "ensemble_lab.combine.Combiner.prepared",
            "combine",
            dict(rule=choice(("prob", "logit", "geo", "vote"))),
            owner=lambda: resolve("ensemble_lab.combine.Combiner")(member_logits()),
        ),
        R(
            "ensemble_lab.combine.combine",
            "combine",
            dict(
                member_logits=mlogits_,
                weights=weights_k,
                rule=choice(("prob", "logit", "geo", "vote")),
                temperature=pos(1.0),
            ),
            sane=simplex,
        ),
        R(
            "ensemble_lab.combine.learn_weights",
            "combine",
            dict(
                member_logits=mlogits_,
                labels=labels_,
                rule=choice(("prob", "logit", "geo"), extra=[bad("'vote'", "vote")]),
                temperature=pos(1.0),
                max_iter=max_iter,
            ),
            sane=lambda w: simplex(w.unsqueeze(0)) if isinstance(w, torch.Tensor) else simplex(w),
        ),
        R(
            "ensemble_lab.combine.best_member",
            "combine",
            dict(member_logits=mlogits_, labels=labels_, by=choice(("accuracy", "nll"))),
        ),
        # --------------------------------------------------------------------------- prompts
        R(
            "ensemble_lab.prompts.prompt_logits",
            "prompts",
            dict(image_embeddings=img_emb, text_embeddings=txt_emb, logit_scale=scale),
        ),
        R(
            "ensemble_lab.prompts.zpe_scores",
            "prompts",
            dict(logits=p_logits, pretrain_logits=pre_logits, debias=choice(("both", "pretrain", "test", "none"))),
        ),
        R(
            "ensemble_lab.prompts.zpe_weights",
            "prompts",
            dict(scores=tensor("scores", prompt_scores, extreme_logits=True), temperature=pos(1.0)),
            sane=lambda w: simplex(w.unsqueeze(0)) if isinstance(w, torch.Tensor) else simplex(w),
        ),
        R(
            "ensemble_lab.prompts.zpe_select",
            "prompts",
            dict(scores=tensor("scores", prompt_scores, extreme_logits=True), tau=real(0.0)),
            sane=lambda w: simplex(w.unsqueeze(0)) if isinstance(w, torch.Tensor) else simplex(w),
        ),
        R(
            "ensemble_lab.prompts.ensemble_prompt_logits",
            "prompts",
            dict(logits=p_logits, weights=p_weights, validate=val),
        ),
        R(
            "ensemble_lab.prompts.average_text_embeddings",
            "prompts",
            dict(
                text_embeddings=tensor(
                    "embeddings",
                    text_embeddings,
                    extra=[bad_f("an all-zero vector", lambda: _zero_row(text_embeddings()))],
                ),
                weights=p_weights_opt,
            ),
        ),
        R(
            "ensemble_lab.prompts.equal_average_logits",
            "prompts",
            dict(logits=p_logits, text_embeddings=txt_emb, weights=p_weights_opt, validate=val),
        ),
        R(
            "ensemble_lab.prompts.zero_shot_logits",
            "prompts",
            dict(image_embeddings=img_emb, class_embeddings=cls_emb, logit_scale=scale),
        ),
        R("ensemble_lab.prompts.check_template", "prompts", dict(template=template)),
        R(
            "ensemble_lab.prompts.fill_template",
            "prompts",
            dict(template=template, class_name=text("seven", extra=[valid("braces '{}'", "{}")])),
        ),
        R(
            "ensemble_lab.prompts.fill_templates",
            "prompts",
            dict(templates=templates_, class_names=texts(["one", "two"])),
        ),
        R(
            "ensemble_lab.artefacts.zeroshot.ZeroShotData",
            "prompts",
            dict(
                model=other(
                    "model",
                    shipped_miniclip,
                    [
                        bad("None", None),
                        bad("str", "miniclip"),
                        bad_f("a plain nn.Linear", lambda: nn.Linear(2, 2)),
                    ],
                ),
                domains=other(
                    "domains",
                    zeroshot_domains,
                    [
                        bad("None", None),
                        bad("empty dict", {}),
                        bad_f("a list of datasets", lambda: list(zeroshot_domains().values())),
                        bad("a str", "clean"),
                        bad("value a str", {"clean": "digits"}),
                        bad_f("value an images tensor", lambda: {"clean": images(16, 8)}),
                        bad_f(
                            "value a dataset of 8x8 images",
                            lambda: {
                                "clean": resolve("ensemble_lab.data.ImageDataset")(
                                    images(8, 8), torch.arange(8) % 4, DIGITS
                                )
                            },
                        ),
                        bad_f("key not a str", lambda: {1: zeroshot_domains()["clean"]}),
                    ],
                ),
                pretrain_images=images16,
                class_names=texts(list(DIGITS), extra=[bad("unknown words", ["qqq", "zzz", "one", "two"])]),
                progress=flag(False),
            ),
        ),
        R(
            "ensemble_lab.artefacts.zeroshot.ZeroShotData.text_embeddings",
            "prompts",
            dict(templates=templates_),
            owner=zeroshot_data,
        ),
        R(
            "ensemble_lab.artefacts.zeroshot.ZeroShotData.logits",
            "prompts",
            dict(
                domain=text(
                    "clean",
                    extra=[bad("unknown domain", "noisy"), bad("list ['clean']", ["clean"])],
                    skip=("list of it",),
                ),
                templates=templates_,
            ),
            owner=zeroshot_data,
        ),
        R(
            "ensemble_lab.artefacts.zeroshot.ZeroShotData.pretrain_logits",
            "prompts",
            dict(templates=templates_),
            owner=zeroshot_data,
        ),
        R(
            "ensemble_lab.artefacts.zeroshot.ZeroShotData.unknown_words",
            "prompts",
            dict(
                template=text(
                    "a qqq photo of {}",
                    extra=[bad("only unknown words", "qqq zzz {}"), bad("no placeholder", "a photo")],
                )
            ),
            owner=zeroshot_data,
        ),
        # --------------------------------------------------------------------------- cascades
        R(
            "ensemble_lab.cascades.confidence_score",
            "cascades",
            dict(logits=tensor("logits", logits, extreme_logits=True, skip=("extra leading dim",)), score=score),
        ),
        R(
            "ensemble_lab.cascades.stage_probs",
            "cascades",
            dict(member_logits=mlogits_, order=order, weights=cas_weights),
            sane=simplex,
        ),
        R(
            "ensemble_lab.cascades.stage_scores",
            "cascades",
            dict(member_logits=mlogits_, score=score, order=order, weights=cas_weights),
        ),
        R(
            "ensemble_lab.cascades.threshold_cascade",
            "cascades",
            dict(
                member_logits=mlogits_, threshold=threshold, score=score, costs=costs, order=order, weights=cas_weights
            ),
        ),
        R(
            "ensemble_lab.cascades.window_cascade",
            "cascades",
            dict(
                member_logits=mlogits_,
                threshold=threshold,
                half_width=nonneg(0.1, extra=[bad("list [0.1, 0.2]", [0.1, 0.2])], skip=("list [0.5]",)),
                score=score,
                costs=costs,
                order=order,
                weights=cas_weights,
                val_scores=val_scores,
            ),
        ),
        R(
            "ensemble_lab.cascades.window_edges",
            "cascades",
            dict(
                threshold=threshold,
                half_width=nonneg(
                    0.1,
                    extra=[bad("empty list", []), bad("2-D", [[0.1]])],
                    skip=("list [0.5]", "array of 2", "tensor of 2"),
                ),
                val_scores=tensor("scores", lambda: member_probs()[0].amax(-1), optional=True),
            ),
            view=_without_inf,
            note="edges are +-inf where the window reaches an end of the validation scores, by design",
        ),
        R(
            "ensemble_lab.cascades.window_sweep",
            "cascades",
            dict(
                member_logits=mlogits_,
                threshold=threshold,
                half_widths=reals([0.0, 0.1, 0.2], lo=0.0, extra=[bad("empty list", [])], skip=("bare float 0",)),
                score=score,
                costs=costs,
                val_scores=val_scores,
                labels=labels_,
                order=order,
                weights=cas_weights,
            ),
            view=lambda r: (r[0], r[2]),
            note="risk is NaN where nothing is accepted, by design",
        ),
        R(
            "ensemble_lab.cascades.expected_cost",
            "cascades",
            dict(
                result=other(
                    "result",
                    _cascade_result,
                    [bad("None", None), bad("dict", {}), bad_f("a cost tensor", lambda: torch.ones(N))],
                )
            ),
        ),
        R(
            "ensemble_lab.cascades.fit_windows",
            "cascades",
            dict(
                scores=tensor("scores", _stage_rows),
                correct=correct_arg(_stage_correct),
                half_width=real(
                    0.1,
                    lo=0.0,
                    hi=0.5,
                    extra=[
                        valid("list of 2 (one per row)", [0.1, 0.2]),
                        valid("numpy array of 2", np.array([0.1, 0.2])),
                        valid_f("tensor of 2 (one per row)", lambda: torch.tensor([0.1, 0.2])),
                        bad("list of 3 (2 rows)", [0.1, 0.2, 0.3]),
                        bad("list [0.1, 0.6]", [0.1, 0.6]),
                    ],
                    skip=("list [0.5]", "array of 2", "tensor of 2"),
                ),
                target_risk=real(1.0, lo=0.0, hi=1.0, lo_open=True),
            ),
            view=_windows_view,
            note="edges are +-inf where a window reaches an end of the scores, by design",
        ),
        R(
            "ensemble_lab.cascades.adjust_windows",
            "cascades",
            dict(windows=windows_arg, scores=tensor("scores", lambda: member_probs()[1:].amax(-1))),
            view=_windows_view,
            note="edges are +-inf where a window reaches an end of the scores, by design",
        ),
        R(
            "ensemble_lab.cascades.fitted_cascade",
            "cascades",
            dict(
                member_logits=mlogits_,
                windows=windows_arg,
                score=score,
                costs=costs,
                order=order,
                weights=cas_weights,
                policy=choice(("window", "threshold")),
            ),
        ),
        # --------------------------------------------------------------------------- soups
        R(
            "ensemble_lab.soups.interpolate",
            "soups",
            dict(a=state_arg(0), b=state_arg(1), alpha=real(0.5, lo=0.0, hi=1.0), extrapolate=flag(False)),
        ),
        R("ensemble_lab.soups.uniform_soup", "soups", dict(states=states_arg())),
        R(
            "ensemble_lab.soups.greedy_soup",
            "soups",
            dict(
                states=states_arg(),
                evaluate=other(
                    "callable",
                    lambda: _evaluate,
                    [
                        bad("None", None),
                        bad("int 1", 1),
                        bad("str", "accuracy"),
                        bad_f("returns NaN", lambda: lambda sd: math.nan),
                        bad_f("returns 'x'", lambda: lambda sd: "x"),
                        bad_f("returns None", lambda: lambda sd: None),
                        valid_f("returns a 0-d tensor", lambda: lambda sd: sd["head.bias"].sum()),
                    ],
                ),
                scores=_optional(reals([0.3, 0.2, 0.1], extra=[bad("length 2", [0.3, 0.2])])),
            ),
        ),
        R(
            "ensemble_lab.soups.task_arithmetic",
            "soups",
            dict(
                base=state_arg(0),
                states=states_arg((1, 2)),
                lambdas=reals([0.5, 0.25], extra=[bad("length 1", [0.5]), extreme("[1e308, 1e308]", [1e308, 1e308])]),
            ),
        ),
        R(
            "ensemble_lab.soups.interpolation_logits",
            "soups",
            dict(
                model=model_,
                a=state_arg(0),
                b=state_arg(1),
                alphas=alphas,
                inputs=inputs_,
                extrapolate=flag(False),
                batch_size=integer(8, minimum=1),
                vectorise=flag(False),
            ),
        ),
        R(
            "ensemble_lab.soups.scale_head",
            "soups",
            dict(
                state=state_arg(0, single=True),
                head=text("head", extra=[bad("not a module", "body"), bad("a bias", "head.bias")]),
                scale=pos(0.5),
            ),
        ),
        R(
            "ensemble_lab.soups.interpolation_head_terms",
            "soups",
            dict(
                model=model_,
                a=state_arg(0),
                b=state_arg(1),
                alphas=alphas,
                inputs=inputs_,
                head=text("head", extra=[bad("not a module", "body")]),
                extrapolate=flag(False),
                batch_size=integer(8, minimum=1),
                vectorise=flag(False),
            ),
        ),
        R(
            "ensemble_lab.soups.combine_head_terms",
            "soups",
            dict(
                terms=tensor("terms", _head_terms, extra=[bad_f("(A, 3, N, C)", lambda: torch.randn(3, 3, N, C))]),
                alphas=reals([0.0, 0.5, 1.0], extra=[bad("length 2", [0.0, 0.5])]),
                scale=pos(1.0),
            ),
        ),
        R(
            "ensemble_lab.soups.learned_soup",
            "soups",
            dict(
                model=module_arg(lambda: tiny_net(0), extra=[bad_f("in training mode", lambda: tiny_net(0).train())]),
                states=states_arg((0, 1)),
                inputs=inputs_,
                labels=labels_,
                by_layer=flag(True),
                steps=integer(2, minimum=1),
                lr=pos(0.1),
            ),
        ),
        # --------------------------------------------------------------------------- data
        R(
            "ensemble_lab.data.ImageDataset",
            "data",
            dict(
                images=ds_images,
                labels=labels_arg(labels, C, secondary=False),
                classes=texts(list(CLASSES), extra=[bad("too few for the labels", ["a", "b"])]),
                name=text("tiny", skip=("empty str",)),
            ),
        ),
        R(
            "ensemble_lab.data.ImageDataset.subset",
            "data",
            dict(
                index=other(
                    "index",
                    lambda: [0, 2, 4],
                    [
                        bad("None", None),
                        bad(f"int {N} (out of range)", N),
                        bad(f"int -{N + 1}", -(N + 1)),
                        bad("list with 99", [0, 99]),
                        bad("float 1.5", 1.5),
                        bad("str '0'", "0"),
                        bad("True", True),
                        bad("2**70", 2**70),
                        bad("float array", np.array([0.5])),
                        bad_f("bool mask of wrong length", lambda: torch.ones(N - 1, dtype=torch.bool)),
                        bad("2-D index", [[0, 1]]),
                        bad_f("generator", lambda: (i for i in range(3))),
                        valid("slice", slice(0, 5)),
                        valid("int -1", -1),
                        valid("numpy int64", np.int64(3)),
                        valid("numpy array", np.array([1, 3])),
                        valid_f("int tensor", lambda: torch.tensor([1, 3])),
                        valid_f("bool mask", lambda: torch.arange(N) % 2 == 0),
                        valid("tuple", (0, 1)),
                    ],
                ),
                name=text("part", optional=True, skip=("empty str",)),
            ),
            owner=dataset,
        ),
        R("ensemble_lab.data.ImageDataset.to", "data", dict(device=device("cpu", optional=False)), owner=dataset),
        R(
            "ensemble_lab.data.load_distorted_digits",
            "data",
            dict(
                seed=seed(0, maximum=2**32 - 1),
                n_train=integer(20, minimum=1),
                n_val=integer(20, minimum=1),
                n_test=integer(20, minimum=1),
                size=integer(8, minimum=8, maximum=64),
            ),
            work=("ensemble_lab.data.digits._load_distorted_tensors",),
            note="argument checks only: the build is stubbed out",
        ),
        R(
            "ensemble_lab.data.load_digits",
            "data",
            dict(seed=seed(0, maximum=2**32 - 1)),
            work=("ensemble_lab.data.digits._raw_digits",),
            note="argument checks only: reading the digits is stubbed out",
        ),
        R(
            "ensemble_lab.data.shift",
            "data",
            dict(
                dataset=dataset_arg(pair_ok=False),
                kind=choice(("noise", "blur", "contrast", "rotation", "occlusion", "salt_pepper")),
                severity=other(
                    "severity",
                    2,
                    [
                        bad("None", None),
                        bad("0", 0),
                        bad("4", 4),
                        bad("str '2'", "2"),
                        bad("float 2.0", 2.0),
                        bad("True", True),
                        bad("2**70", 2**70),
                        valid("numpy int64 2", np.int64(2)),
                    ],
                ),
                seed=seed(0, maximum=2**32 - 1),
            ),
        ),
        R(
            "ensemble_lab.data.shifted_sets",
            "data",
            dict(dataset=dataset_arg(lambda: _small_dataset(), pair_ok=False), seed=seed(0, maximum=2**32 - 1)),
        ),
        # --------------------------------------------------------------------------- models
        R(
            "ensemble_lab.models.family.ModelSpec",
            "models",
            dict(
                name=text("tiny"),
                kind=choice(("mlp", "cnn")),
                widths=_widths((16,)),
                hidden=_widths(()),
                kernel_size=integer(3, minimum=1, extra=[bad("even 2", 2)]),
            ),
        ),
        R("ensemble_lab.models.family.get_spec", "models", dict(spec_or_name=_alias(spec, "spec"))),
        R(
            "ensemble_lab.models.family.layer_plan",
            "models",
            dict(spec=spec, input_shape=shape, n_classes=n_classes),
        ),
        R(
            "ensemble_lab.models.family.macs",
            "models",
            dict(spec_or_name=_alias(spec, "spec"), input_shape=shape, n_classes=n_classes),
        ),
        R(
            "ensemble_lab.models.family.build_model",
            "models",
            dict(
                spec_or_name=_alias(spec, "spec"), input_shape=shape, n_classes=n_classes, seed=seed(0, optional=True)
            ),
        ),
        R(
            "ensemble_lab.models.stacked.StackedLinear",
            "models",
            dict(k=k_int, d_in=integer(4, minimum=1), d_out=integer(3, minimum=1)),
            view=_no_values,
            note="weights are left uninitialised (torch.empty) by design",
        ),
        R(
            "ensemble_lab.models.stacked.StackedConv2d",
            "models",
            dict(k=k_int, c_in=integer(1, minimum=1), c_out=integer(2, minimum=1), kernel_size=integer(3, minimum=1)),
            view=_no_values,
            note="weights are left uninitialised (torch.empty) by design",
        ),
        R(
            "ensemble_lab.models.stacked.StackedEnsemble",
            "models",
            dict(spec=spec, k=k_int, input_shape=shape, n_classes=n_classes, seed=seed(0)),
        ),
        R(
            "ensemble_lab.models.stacked.StackedEnsemble.forward",
            "models",
            dict(
                x=tensor(
                    "images",
                    lambda: images(8, 6),
                    extra=[
                        extreme_f("empty batch", lambda: images(8, 0)),
                        bad_f("wrong image size", lambda: images(16, 6)),
                    ],
                    skip=("empty (0 rows)",),
                )
            ),
            owner=stacked_ensemble,
        ),
        R(
            "ensemble_lab.models.stacked.StackedEnsemble.subset",
            "models",
            dict(indices=index_list(2, [1, 0], skip=("repeat [0, 0]",))),
            owner=stacked_ensemble,
        ),
        R(
            "ensemble_lab.models.stacked.StackedEnsemble.from_members",
            "models",
            dict(
                members=other(
                    "members",
                    lambda: _members(),
                    [
                        bad("None", None),
                        bad("empty list", []),
                        bad_f("a single model", lambda: _members()[0]),
                        bad_f("[model, 'x']", lambda: [_members()[0], "x"]),
                        bad_f("models of another spec", lambda: [_members()[0], _members("mlp-s")[0]]),
                        bad_f("generator", lambda: (m for m in _members())),
                        valid_f("tuple", lambda: tuple(_members())),
                    ],
                ),
                spec=_optional(spec),
                input_shape=_optional(shape),
                n_classes=_optional(n_classes),
            ),
        ),
        R("ensemble_lab.models.stacked.StackedEnsemble.members", "models", {}, owner=stacked_ensemble),
        R(
            "ensemble_lab.models.miniclip.WordTokenizer",
            "models",
            dict(vocab=texts(list(VOCAB), extra=[bad("upper case", ["A", "Photo"]), bad("repeated word", ["a", "a"])])),
        ),
        R(
            "ensemble_lab.models.miniclip.WordTokenizer.encode",
            "models",
            dict(
                texts=texts(["a photo of one", "the number two"], extra=[bad("only unknown words", ["qqq zzz"])]),
                max_len=integer(6, minimum=1, extra=[bad("1 (too short for the texts)", 1)]),
            ),
            owner=lambda: resolve("ensemble_lab.models.miniclip.WordTokenizer")(list(VOCAB)),
        ),
        R(
            "ensemble_lab.models.miniclip.WordTokenizer.words",
            "models",
            dict(text=text("A photo of the number 7.", skip=("empty str",))),
        ),
        R(
            "ensemble_lab.models.miniclip.WordTokenizer.unknown_words",
            "models",
            dict(text=text("a qqq photo", skip=("empty str",))),
            owner=lambda: resolve("ensemble_lab.models.miniclip.WordTokenizer")(list(VOCAB)),
        ),
        R(
            "ensemble_lab.models.miniclip.MiniCLIP",
            "models",
            dict(
                vocab=texts(list(VOCAB)),
                embed_dim=integer(8, minimum=1),
                context_length=integer(6, minimum=1),
                image_widths=_widths([4], as_list=True),
                image_hidden=integer(8, minimum=1),
                text_width=integer(8, minimum=1, extra=[bad("9 (not divisible by text_heads)", 9)]),
                text_layers=integer(1, minimum=0),
                text_heads=integer(2, minimum=1),
                image_size=integer(8, minimum=2),
            ),
        ),
        R(
            "ensemble_lab.models.miniclip.MiniCLIP.encode_image",
            "models",
            dict(images=images8, batch_size=integer(4, minimum=1)),
            owner=small_miniclip,
        ),
        R(
            "ensemble_lab.models.miniclip.MiniCLIP.encode_text",
            "models",
            dict(texts=texts(["a photo of one", "the number two"])),
            owner=small_miniclip,
        ),
        R(
            "ensemble_lab.models.miniclip.MiniCLIP.forward",
            "models",
            dict(images=images8, texts=texts(["a photo of one", "the number two"])),
            owner=small_miniclip,
        ),
        R(
            "ensemble_lab.models.miniclip.load_miniclip",
            "models",
            dict(
                device=device("cpu"),
                weights_dir=other("path", None, [bad("int 1", 1), bad("list", ["weights"]), bad("bytes", b"\x00")]),
            ),
        ),
        R(
            "ensemble_lab.models.clip_classifier.ClipClassifier",
            "models",
            dict(
                visual=other(
                    "module",
                    clip_visual,
                    [bad("None", None), bad("str", "cnn"), bad_f("a function", lambda: lambda x: x)],
                ),
                head_weight=tensor(
                    "head",
                    lambda: torch.randn(C, D, generator=_g(13)),
                    extra=[bad_f("D+1 columns", lambda: torch.randn(C, D + 1))],
                ),
                head_bias=tensor(
                    "head",
                    lambda: torch.zeros(C),
                    optional=True,
                    extra=[bad_f("length C+1", lambda: torch.zeros(C + 1))],
                ),
            ),
        ),
        R(
            "ensemble_lab.models.clip_classifier.zero_shot_classifier",
            "models",
            dict(
                clip=other(
                    "model",
                    small_miniclip,
                    [bad("None", None), bad("str", "clip"), bad_f("nn.Linear", lambda: nn.Linear(2, 2))],
                ),
                class_names=texts(["one", "two", "three"]),
                templates=texts(["a photo of the {}", "the number {}"], extra=[bad("['no placeholder']", ["a photo"])]),
                scale=pos(None, optional=True),
            ),
        ),
        R(
            "ensemble_lab.models.clip_classifier.ClipClassifier.macs",
            "models",
            dict(
                image_shape=other(
                    "shape",
                    (1, 8, 8),
                    [
                        bad("None", None),
                        bad("length 2", (1, 8)),
                        bad("zero side", (1, 0, 8)),
                        bad("str", "1x8x8"),
                        bad("wrong size", (1, 4, 4)),
                    ],
                )
            ),
            owner=clip_classifier,
        ),
        R(
            "ensemble_lab.models.clip_classifier.ClipClassifier.forward",
            "models",
            dict(
                images=tensor(
                    "images",
                    lambda: images(8, 6),
                    extra=[
                        bad_f("wrong image size", lambda: images(4, 6)),
                        extreme_f("empty batch", lambda: images(8, 0)),
                    ],
                    skip=("one dim fewer", "empty (0 rows)"),
                )
            ),
            owner=clip_classifier,
        ),
        # --------------------------------------------------------------------------- training
        *(
            R(
                f"ensemble_lab.train.{f}",
                "training",
                dict(
                    spec=spec,
                    train=train_ds,
                    k=k_int,
                    recipe=train_recipe,
                    device=device("cpu"),
                    progress=flag(False),
                ),
            )
            for f in ("train_ensemble", "train_members_one_by_one")
        ),
        R(
            "ensemble_lab.train.predict_logits",
            "training",
            dict(
                ensemble=other(
                    "ensemble",
                    stacked_ensemble,
                    [bad("None", None), bad_f("an nn.Linear", lambda: nn.Linear(2, 2)), bad("str", "ens")],
                ),
                images=tensor(
                    "images",
                    lambda: images(8, 6),
                    extra=[valid_f("an ImageDataset", dataset), extreme_f("empty batch", lambda: images(8, 0))],
                    skip=("empty (0 rows)",),
                ),
                batch_size=integer(4, minimum=1),
            ),
        ),
        R(
            "ensemble_lab.recipe.Recipe",
            "training",
            dict(
                lr=pos(1e-3),
                weight_decay=nonneg(0.1),
                epochs=integer(5, minimum=1),
                batch_size=integer(128, minimum=1),
                label_smoothing=real(0.0, lo=0.0, hi=1.0, hi_open=True),
                mixup=nonneg(0.0),
                augment=flag(False, extra=[valid("numpy bool", np.bool_(True))]),
                seed=seed(0),
                schedule=choice(("cosine", "constant")),
            ),
        ),
        R(
            "ensemble_lab.finetune.fine_tune",
            "training",
            dict(
                model=other(
                    "module",
                    finetune_model,
                    [bad("None", None), bad("str", "model"), bad_f("a function", lambda: lambda x: x)],
                ),
                train=train_ds,
                recipe=other(
                    "recipe",
                    recipe,
                    [
                        bad("None", None),
                        bad("dict", {"lr": 1e-3}),
                        bad("str", "default"),
                        extreme_f("a recipe with lr=1e308", lambda: recipe(lr=1e308)),
                        extreme_f("a recipe with weight_decay=1e308", lambda: recipe(weight_decay=1e308)),
                        extreme_f("a recipe with mixup=1e-320", lambda: recipe(mixup=1e-320)),
                        extreme_f("a recipe with epochs=2**64", lambda: recipe(epochs=2**64)),
                        valid_f("a recipe with mixup and augment", lambda: recipe(mixup=0.4, augment=True)),
                    ],
                ),
            ),
        ),
        R(
            "ensemble_lab.finetune.mixup_batch",
            "training",
            dict(
                images=batch6,
                labels=tensor(
                    "labels",
                    lambda: labels()[:6],
                    floating=False,
                    secondary=True,
                    extra=[bad_f("one label short", lambda: labels()[:5])],
                ),
                alpha=pos(0.4),
                generator=generator_arg(),
            ),
        ),
        R(
            "ensemble_lab.finetune.shift_augment",
            "training",
            dict(images=batch6, generator=generator_arg()),
        ),
        # --------------------------------------------------------------------------- device and seeds
        R(
            "ensemble_lab.device.default_device",
            "device",
            dict(
                ENSEMBLE_LAB_DEVICE=other(
                    "env",
                    None,
                    [
                        bad("'foo'", "foo"),
                        bad("'cuda:7'", "cuda:7"),
                        bad("'7'", "7"),
                        bad("'CPU'", "CPU"),
                        *([bad("'cuda' (none here)", "cuda")] if not torch.cuda.is_available() else []),
                        valid("'cpu'", "cpu"),
                    ],
                )
            ),
            invoke=_env_invoke("ENSEMBLE_LAB_DEVICE"),
            note="the argument is the environment variable",
        ),
        R("ensemble_lab.device.resolve_device", "device", dict(device=device(None))),
        R("ensemble_lab.device.seed_everything", "device", dict(seed=seed(0))),
        R("ensemble_lab.device.make_generator", "device", dict(seed=seed(0), device=device("cpu", optional=False))),
        R("ensemble_lab.device.cpu_quota", "device", {}),
        R(
            "ensemble_lab.models.family.member_seed",
            "device",
            dict(seed=seed(0), index=integer(1, minimum=0), stream=integer(0, minimum=0, maximum=1)),
        ),
        # --------------------------------------------------------------------------- selection
        R(
            "ensemble_lab.selection.forward_select",
            "selection",
            dict(
                member_probs=mprobs_,
                labels=labels_,
                metric=choice(("nll", "brier", "ece", "error")),
                steps=integer(3, minimum=1, maximum=10**7),
                init=integer(1, minimum=0, maximum=K),
                bags=integer(2, minimum=1, maximum=10**7),
                seed=seed(0),
                bag_fraction=real(0.7, lo=0.0, hi=1.0, lo_open=True),
                prune_to_best=flag(True),
            ),
            view=lambda r: (r.weights, r.score),
        ),
        R(
            "ensemble_lab.selection.top_k",
            "selection",
            dict(
                member_probs=mprobs_,
                labels=labels_,
                k=integer(2, minimum=1, maximum=K),
                metric=choice(("nll", "brier", "ece", "error")),
            ),
            view=lambda r: (r.weights, r.score),
        ),
        R(
            "ensemble_lab.selection.uniform",
            "selection",
            dict(member_probs=mprobs_, labels=_none_allowed(labels_), metric=choice(("nll", "brier", "ece", "error"))),
            view=lambda r: (r.weights,),
        ),
        # transferability: the target's classes are the labels seen (any integer >= 0 up to the shared ceiling)
        R(
            "ensemble_lab.selection.leep",
            "selection",
            dict(source_probs=probs_, target_labels=labels_arg(labels, 10**7)),
        ),
        R(
            "ensemble_lab.selection.e_leep",
            "selection",
            dict(source_probs_list=mprobs_, target_labels=labels_arg(labels, 10**7)),
        ),
        R(
            "ensemble_lab.selection.ms_leep",
            "selection",
            dict(source_probs_list=mprobs_, target_labels=labels_arg(labels, 10**7)),
        ),
        R(
            "ensemble_lab.selection.select_team",
            "selection",
            dict(
                objective=other(
                    "objective",
                    lambda: _team_sum,
                    [
                        bad("None", None),
                        bad("str 'abc'", "abc"),
                        bad("scores with a NaN", [0.1, _NAN, 0.5, 0.7]),
                        bad("3 scores for a pool of 4", [0.1, 0.2, 0.3]),
                        bad_f("returns NaN", lambda: _team_nan),
                        bad_f("returns 'x'", lambda: _team_str),
                        valid("4 scores", [0.1, 0.9, 0.5, 0.7]),
                        valid("numpy scores of any sign", np.array([-0.1, 0.9, -0.5, 0.7])),
                    ],
                ),
                pool_size=integer(4, minimum=1),
                k=integer(2, minimum=1, maximum=4),
            ),
            view=lambda r: r.scores,
        ),
        R(
            "ensemble_lab.selection.osborn_pool",
            "selection",
            dict(
                features_source=_features_arg(_osb_source_features, rows=_NS),
                features_target=_features_arg(
                    _osb_target_features, rows=N, extra=[bad_f("entry one row short", lambda: _osb_short(N - 1))]
                ),
                source_probs_list=probs_arg(
                    member_probs,
                    extra=[
                        valid_f("list of (N, Z) tensors", lambda: list(member_probs())),
                        valid_f("list with different Z per model", _osb_mixed_z),
                        bad_f("list with a second entry one row short", lambda: _osb_probs_short()),
                        bad_f("2 models for 3 feature sets", lambda: member_probs()[:2]),
                    ],
                ),
                target_labels=labels_arg(labels, 10**7),
                source_labels=_source_labels_arg(),
                members=index_list(K, extra=[valid("None (all)", None)]),
            ),
            view=_osb_pool_view,
            sane=_osb_pool_sane,
        ),
        R(
            "ensemble_lab.selection.OsbornPool.terms",
            "selection",
            dict(
                team=index_list(
                    3,
                    [0, 2],
                    skip=("[3] (out of range)",),
                    extra=[
                        bad("[4] (out of range)", [4]),
                        bad("[3] (terms not computed: members=)", [3]),
                        valid("one model [1]", [1]),
                    ],
                ),
                weights=weights_arg(
                    3,
                    (1.0, 1.0, 1.0),
                    zeros_ok=True,
                    extra=[valid("all zeros", [0.0, 0.0, 0.0]), valid("no cohesion (1, 1, 0)", (1.0, 1.0, 0.0))],
                ),
            ),
            owner=_osb_pool,
            sane=_osb_terms_sane,
        ),
        R(
            "ensemble_lab.selection.SelectionResult.prefix",
            "selection",
            dict(
                steps=integer(2, minimum=1, maximum=_PREFIX_STEPS),
                member_probs=probs_arg(
                    member_probs, extra=[bad_f("K - 1 models", lambda: member_probs()[:-1])], skip=()
                ),
                labels=labels_,
                held_out=_held_out_arg(),
                validate=flag(True),
            ),
            owner=_long_selection,
            view=lambda r: (r.weights, r.score, r.held_out_score),
            sane=_prefix_sane,
        ),
        # --------------------------------------------------------------------------- decompositions
        R(
            "ensemble_lab.decompositions.brier_decomposition",
            "decompositions",
            dict(member_probs=mprobs_, labels=labels_, weights=weights_k),
            sane=_exact_decomposition,
        ),
        R(
            "ensemble_lab.decompositions.nll_decomposition",
            "decompositions",
            dict(
                member_probs=mprobs_,
                labels=labels_,
                weights=weights_k,
                combiner=choice(("arithmetic", "geometric")),
            ),
            sane=_exact_decomposition,
        ),
        # ---- forecast world and forecasters
        R(
            "ensemble_lab.forecast.dynamics.integrate",
            "forecast",
            dict(
                x0=tensor(
                    "states",
                    _fw_state,
                    extra=[bad_f("3 variables (J < 4)", lambda: _fw_state()[..., :3])],
                    skip=("one dim fewer", "extra leading dim"),  # any leading axes are cases and members
                ),
                n_steps=integer(3, minimum=0, maximum=10**7),
                dt=real(0.05, lo=0.0, hi=0.5, lo_open=True),
                forcing=real(8.0, lo=-1e3, hi=1e3, skip=("list [0.5]", "array of 2", "tensor of 2")),
                every=integer(1, minimum=1, maximum=10**7),
            ),
        ),
        R(
            "ensemble_lab.forecast.lorenz96",
            "forecast",
            dict(
                n_variables=integer(8, minimum=4, maximum=10_000),
                forcing=real(8.0, lo=-100.0, hi=100.0),
                model_error=real(-0.5, lo=-20.0, hi=20.0),
                n_cases=integer(3, minimum=1, maximum=1_000_000),
                n_leads=integer(2, minimum=0, maximum=10_000),
                obs_noise=real(0.5, lo=0.0, hi=100.0),
                seed=seed(0),
            ),
            view=lambda w: (w.truth, w.observations),
            work=("ensemble_lab.forecast.world._spun_up",),
        ),
        R(
            "ensemble_lab.forecast.climate_run",
            "forecast",
            dict(
                n_samples=integer(8, minimum=1, maximum=10_000_000),
                n_variables=integer(8, minimum=4, maximum=10_000),
                n_chains=integer(2, minimum=1, maximum=100_000),
                seed=seed(0),
            ),
            work=("ensemble_lab.forecast.world._spun_up",),
        ),
        R(
            "ensemble_lab.forecast.random_perturbations",
            "forecast",
            dict(
                world=_fw_world_arg(),
                n_members=integer(3, minimum=1, maximum=10_000),
                amplitude=real(0.5, lo=0.0, hi=100.0),
                seed=seed(0),
            ),
        ),
        R(
            "ensemble_lab.forecast.bred_vectors",
            "forecast",
            dict(
                world=_fw_world_arg(),
                n_members=integer(3, minimum=1, maximum=10_000),
                amplitude=real(0.5, lo=0.0, hi=100.0),
                cycles=integer(2, minimum=1, maximum=4, optional=True, extra=[bad("3 (does not divide 4 steps)", 3)]),
                model_error=real(-0.5, lo=-20.0, hi=20.0, optional=True),
                seed=seed(0),
            ),
        ),
        R(
            "ensemble_lab.forecast.physics_ensemble",
            "forecast",
            dict(
                world=_fw_world_arg(),
                n_members=integer(3, minimum=1, maximum=10_000),
                amplitude=real(0.5, lo=0.0, hi=100.0),
                kind=choice(("random", "bred")),
                model_error=real(-0.5, lo=-20.0, hi=20.0, optional=True),
                n_leads=integer(2, minimum=0, maximum=10**7, optional=True),
                seed=seed(0),
            ),
        ),
        R(
            "ensemble_lab.forecast.Lorenz96World.forecast",
            "forecast",
            dict(
                initial=tensor(
                    "states",
                    lambda: _fw_world().analysis[None].clone(),
                    extra=[bad_f("wrong number of cases", lambda: _fw_world().analysis[None, :1])],
                    skip=("one dim fewer", "extra leading dim"),  # (N, J) and (A, B, N, J) are valid
                ),
                model_error=real(-0.5, lo=-20.0, hi=20.0, optional=True),
                n_leads=integer(2, minimum=0, maximum=10**7, optional=True),
            ),
            owner=_fw_world,
        ),
        R(
            "ensemble_lab.forecast.ensemble_forecast",
            "forecast",
            dict(
                forecaster=choice(
                    ("physics", "emulator", "crps-generator", "seeds", "seeds-post-processed", "gaussian-members"),
                    "emulator",
                ),
                world=_fw_world_arg(extra=[bad_f("a world of 8 variables", lambda: _fw_world(n_variables=8))]),
                n_members=integer(3, minimum=1, maximum=10_000),
                amplitude=real(0.5, lo=0.0, hi=100.0, optional=True),
                kind=choice(("random", "bred")),
                sampling_steps=integer(2, minimum=1, maximum=1000),
                seed=seed(0),
            ),
        ),
        R(
            "ensemble_lab.forecast.forecast_cost",
            "forecast",
            dict(
                forecaster=choice(
                    ("physics", "emulator", "crps-generator", "seeds", "seeds-post-processed", "gaussian-members"),
                    "seeds",
                ),
                n_variables=integer(40, minimum=4, maximum=10_000),
                sampling_steps=integer(8, minimum=1, maximum=1000),
            ),
        ),
        # ---- forecast scores
        R(
            "ensemble_lab.forecast.scores.crps_ensemble",
            "forecast",
            dict(
                members=_f_members_arg(extra=[valid_f("one member (standard CRPS)", lambda: _f_members()[:1])]),
                observations=_f_obs_arg(),
                fair=flag(False),
                validate=flag(True),
            ),
            sane=_f_nonneg,
        ),
        R(
            "ensemble_lab.forecast.scores.crps_gaussian",
            "forecast",
            dict(
                mean=_f_broadcast_arg(_f_obs),
                std=_f_broadcast_arg(
                    _f_std,
                    secondary=True,
                    extra=[
                        bad_f("a zero entry", lambda: _set(_f_std(), 0.0)),
                        bad_f("a negative entry", lambda: _set(_f_std(), -0.5)),
                        extreme_f("std of 1e-320", lambda: torch.full((_FN,), 1e-320, dtype=torch.float64)),
                        extreme_f("std of 1e308", lambda: torch.full((_FN,), 1e308, dtype=torch.float64)),
                    ],
                ),
                observations=_f_broadcast_arg(lambda: _f_obs() + 0.3, secondary=True),
            ),
            sane=_f_nonneg,
        ),
        R(
            "ensemble_lab.forecast.scores.crps_gaussian_mixture",
            "forecast",
            dict(
                means=_f_members_arg(skip=("integer members",)),
                stds=tensor(
                    "scores",
                    _f_stds,
                    secondary=True,
                    extra=[
                        bad_f("a zero entry", lambda: _inject(_f_stds(), 0.0)),
                        bad_f("a negative entry", lambda: _inject(_f_stds(), -0.5)),
                        bad_f("one member short", lambda: _f_stds()[:-1]),
                        extreme_f("stds of 1e-320", lambda: torch.full((_FM, _FN), 1e-320, dtype=torch.float64)),
                    ],
                ),
                observations=_f_obs_arg(),
                weights=weights_arg(_FM),
            ),
            sane=_f_nonneg,
        ),
        R(
            "ensemble_lab.forecast.scores.energy_score",
            "forecast",
            dict(
                members=_f_members_arg(_f_state_members),
                observations=_f_obs_arg(_f_state_obs),
                fair=flag(True),
                validate=flag(True),
            ),
            sane=_f_nonneg,
        ),
        *(
            R(
                f"ensemble_lab.forecast.scores.{name}",
                "forecast",
                dict(
                    members=_f_members_arg(_f_lead_members, extra=[bad_f("one member", lambda: _f_lead_members()[:1])]),
                    observations=_f_obs_arg(_f_lead_obs),
                    dim=_f_dim_arg(),
                ),
                view=(lambda r: (r.spread, r.skill, r.ratio)) if name == "spread_skill" else _identity,
            )
            for name in ("spread_skill", "spread_skill_ratio")
        ),
        R(
            "ensemble_lab.forecast.scores.rank_histogram",
            "forecast",
            dict(members=_f_members_arg(), observations=_f_obs_arg(), seed=seed(0)),
            sane=lambda c: None if int(c.sum()) == _FN else f"counts sum to {int(c.sum())}, not {_FN}",
        ),
        R(
            "ensemble_lab.forecast.scores.rank_histogram_flatness",
            "forecast",
            dict(counts=_f_counts_arg()),
            sane=lambda r: None if 0 <= r.p_value <= 1 and r.delta >= 0 else f"p {r.p_value!r}, delta {r.delta!r}",
        ),
        R(
            "ensemble_lab.forecast.scores.exceedance_probability",
            "forecast",
            dict(
                members=_f_members_arg(
                    skip=("one dim fewer", "extra leading dim"),
                    extra=[
                        valid_f("(N,): N members of one point", lambda: _f_members()[0]),
                        valid_f("(1, M, N): one member", lambda: _f_members().unsqueeze(0)),
                    ],
                ),
                threshold=_f_threshold_arg(),
            ),
            sane=_f_unit,
        ),
        R(
            "ensemble_lab.forecast.scores.brier_threshold",
            "forecast",
            dict(
                members=_f_members_arg(),
                observations=_f_obs_arg(),
                threshold=_f_threshold_arg(),
                fair=flag(True),
            ),
            sane=_f_unit,
        ),
        R(
            "ensemble_lab.forecast.scores.threshold_reliability",
            "forecast",
            dict(members=_f_members_arg(), observations=_f_obs_arg(), threshold=_f_threshold_arg()),
            view=lambda r: (r.probability, r.observed_frequency, r.base_rate),
            sane=lambda r: None if int(r.count.sum()) == _FN else f"counts sum to {int(r.count.sum())}, not {_FN}",
        ),
        # ---- forests: smoother weights, effective parameters, the three mechanisms, the toy worlds
        *(
            R(
                f"ensemble_lab.forests.{name}",
                "forests",
                dict(
                    forest=_fo_forest_arg(),
                    x_train=_fo_x_train_arg(),
                    x_query=_fo_x_query_arg(optional=name != "forest_leaves" and name != "smoother_weights"),
                    n_trees=_optional(integer(3, minimum=1, maximum=_FO_T)),
                    **({"sparse": flag(False)} if name == "smoother_weights" else {}),
                    **({"per_tree": flag(False)} if name == "pointwise_parameters" else {}),
                ),
                view=_fo_view,
                sane=_fo_sane,
            )
            for name in (
                "smoother_weights",
                "forest_leaves",
                "effective_parameters",
                "tree_effective_parameters",
                "pointwise_parameters",
            )
        ),
        R(
            "ensemble_lab.forests.effective_parameters_of",
            "forests",
            dict(
                weights=tensor(
                    "scores",
                    _fo_weights,
                    extra=[
                        valid_f("negative weights (a boosting smoother)", lambda: _fo_weights() - 0.1),
                        valid_f("one query row", lambda: _fo_weights()[:1]),
                        extreme_f("weights of 1e200", lambda: _fo_weights() * 1e200),
                        extreme_f("weights of 3e38 (float32)", lambda: (_fo_weights() * 3e38).float()),
                    ],
                )
            ),
            sane=lambda p: None if p >= 0 else f"negative p {p!r}",
        ),
        R(
            "ensemble_lab.forests.forest_mechanisms",
            "forests",
            dict(
                world=_fo_world_arg(),
                forest=_fo_recipe_arg(),
                tree=_fo_recipe_arg(optional=True),
                noise=_optional(nonneg(0.5)),
                n_train=integer(40, minimum=2, maximum=100_000),
                n_test=integer(50, minimum=1, maximum=10**7),
                distance=_optional(nonneg(0.1)),
                n_inputs=integer(2, minimum=2, maximum=100_000),
                n_noise=integer(2, minimum=1, maximum=100_000),
                n_seeds=integer(3, minimum=1, maximum=100_000),
                seed=seed(0),
            ),
            work=("ensemble_lab.forests.mechanisms._simulate",),
        ),
        R("ensemble_lab.forests.ToyWorld", "forests", dict(name=choice(("sine", "diagonal")), noise=nonneg(0.5))),
        R("ensemble_lab.forests.toy_world", "forests", dict(name=choice(("sine", "diagonal")), noise=nonneg(0.5))),
        R("ensemble_lab.forests.toy_1d", "forests", dict(noise=nonneg(0.5))),
        R("ensemble_lab.forests.toy_2d", "forests", dict(noise=nonneg(0.5))),
        R("ensemble_lab.forests.ToyWorld.truth", "forests", dict(x=_fo_toy_x_arg()), owner=_fo_toy),
        R(
            "ensemble_lab.forests.ToyWorld.inputs",
            "forests",
            dict(n=integer(5, minimum=1, maximum=10**7), seed=seed(0)),
            owner=_fo_toy,
        ),
        R(
            "ensemble_lab.forests.ToyWorld.outcomes",
            "forests",
            dict(x=_fo_toy_x_arg(), noise=_optional(nonneg(0.5)), seed=seed(0)),
            owner=_fo_toy,
        ),
        R(
            "ensemble_lab.forests.ToyWorld.sample",
            "forests",
            dict(n=integer(5, minimum=1, maximum=10**7), noise=_optional(nonneg(0.5)), seed=seed(0)),
            owner=_fo_toy,
        ),
        R(
            "ensemble_lab.forests.ToyWorld.near",
            "forests",
            dict(x=_fo_toy_x_arg(), distance=nonneg(0.1), seed=seed(0)),
            owner=_fo_toy,
        ),
    ]
    return tuple(out)


# OSBORN's pool: 3 source models with 6 source images each (3 features), the N target images -----------------

_NS, _OSB_D = 6, 3


def _osb_source_features() -> list[torch.Tensor]:
    g = _g(21)
    return [torch.randn(_NS, _OSB_D, generator=g) for _ in range(K)]


def _osb_target_features() -> list[torch.Tensor]:
    g = _g(22)
    return [torch.randn(N, _OSB_D, generator=g) + 0.5 for _ in range(K)]


def _osb_short(rows: int) -> list[torch.Tensor]:
    f = _osb_target_features()
    f[1] = f[1][:rows]
    return f


def _osb_source_labels() -> list[torch.Tensor]:
    return [torch.arange(_NS) % C for _ in range(K)]


def _osb_mixed_z() -> list[torch.Tensor]:
    p = list(member_probs())
    p[1] = torch.softmax(torch.randn(N, C + 2, generator=_g(23)), dim=-1)  # the source labels stay in [0, Z)
    return p


def _osb_probs_short() -> list[torch.Tensor]:
    p = list(member_probs())
    p[1] = p[1][:-1]
    return p


def _features_arg(base, *, rows: int, extra=()) -> Arg:
    """One ``(rows, D)`` feature tensor per source model, as a list (or a ``(M, rows, D)`` tensor)."""

    def entry(fn):
        def make():
            f = base()
            f[1] = fn(f[1])
            return f

        return make

    values = [
        bad("None", None),
        bad("str 'abc'", "abc"),
        bad("empty list", []),
        bad_f("generator", lambda: (f for f in base())),
        bad_f("a bare (N, D) tensor", lambda: base()[0]),
        bad_f("2 entries for 3 models", lambda: base()[:2]),
        bad_f("entry with a NaN", entry(lambda t: _inject(t, _NAN))),
        bad_f("entry with an inf", entry(lambda t: _inject(t, _INF))),
        bad_f("entry 1-D", entry(lambda t: t[0])),
        bad_f("entry with 0 rows", entry(lambda t: t[:0])),
        bad_f("entry with 0 features", entry(lambda t: t[:, :0])),
        bad_f("entry with another feature dimension", entry(lambda t: torch.cat([t, t], 1))),
        bad_f("entry complex", entry(lambda t: t.to(torch.complex64))),
        bad_f("entry a str", entry(lambda t: "x")),
        bad_f("entry on the meta device", entry(lambda t: t.to("meta"))),
        extreme_f("features of 1e308", lambda: [t / t.abs().max() * 1e308 for t in base()]),
        extreme_f("features of 3e38 (float32)", lambda: [(t / t.abs().max() * 3e38).float() for t in base()]),
        valid_f("tuple", lambda: tuple(base())),
        valid_f("(M, N, D) tensor", lambda: torch.stack(base())),
        valid_f("numpy arrays", lambda: [t.numpy() for t in base()]),
        valid_f("float64", lambda: [t.double() for t in base()]),
        valid_f("strided views", lambda: [_strided(t) for t in base()]),
        valid_f("requires_grad", lambda: [t.requires_grad_(True) for t in base()]),
        *extra,
    ]
    return _arg("features", base, values, meta=dict(rows=rows))


def _source_labels_arg() -> Arg:
    def entry(fn):
        def make():
            y = _osb_source_labels()
            y[1] = fn(y[1])
            return y

        return make

    values = [
        valid("None (LEEP's joint)", None),
        bad("str 'abc'", "abc"),
        bad("empty list", []),
        bad_f("generator", lambda: (y for y in _osb_source_labels())),
        bad_f("2 entries for 3 models", lambda: _osb_source_labels()[:2]),
        bad_f(f"entry with label {C} (= Z)", entry(lambda y: _set(y, C))),
        bad_f("entry with label -1", entry(lambda y: _set(y, -1))),
        bad_f("entry one label short", entry(lambda y: y[:-1])),
        bad_f("entry non-integer floats", entry(lambda y: y.double() + 0.5)),
        bad_f("entry with a NaN", entry(lambda y: _inject(y, _NAN))),
        bad_f("entry bool", entry(lambda y: y > 0)),
        bad_f("entry complex", entry(lambda y: y.to(torch.complex64))),
        bad_f("entry on the meta device", entry(lambda y: y.to("meta"))),
        valid_f("int32 entries", lambda: [y.to(torch.int32) for y in _osb_source_labels()]),
        valid_f("numpy entries", lambda: [y.numpy() for y in _osb_source_labels()]),
        valid_f("tuple", lambda: tuple(_osb_source_labels())),
    ]
    return _arg("source_labels", _osb_source_labels, values)


def _osb_pool():
    """A pool of 4 models whose terms are computed for the first 3 only (``members=``)."""
    fs = _osb_source_features()
    ft = _osb_target_features()
    p = list(member_probs())
    fs.append(fs[0] + 1)
    ft.append(ft[0] - 1)
    p.append(p[0].flip(-1))
    return resolve("ensemble_lab.selection.osborn_pool")(
        fs, ft, p, labels(), source_labels=[*_osb_source_labels(), torch.arange(_NS) % C], members=(0, 1, 2)
    )


def _osb_pool_view(pool):
    """The computed entries (models left out by ``members=`` are NaN by design)."""
    dom, task, dis = pool.member_domain, pool.member_task, pool.disagreement
    return (dom[~dom.isnan()], task[~task.isnan()], dis[~dis.isnan()])


def _osb_pool_sane(pool) -> str | None:
    dom, task, dis = _osb_pool_view(pool)
    if bool((dom < 0).any()):
        return f"negative domain difference {float(dom.min())!r}"
    if bool((task < -1e-12).any()):
        return f"negative task difference (a conditional entropy) {float(task.min())!r}"
    if bool((dis < 0).any()) or bool((dis > 1 + 1e-12).any()):
        return f"disagreement outside [0, 1]: [{float(dis.min())!r}, {float(dis.max())!r}]"
    full = pool.disagreement
    if not torch.equal(full.isnan(), full.isnan().T) or not bool((full.nan_to_num() == full.nan_to_num().T).all()):
        return "disagreement not symmetric"
    return None


def _osb_terms_sane(t) -> str | None:
    w = t.weights
    want = -(w[0] * t.domain + w[1] * t.task + w[2] * t.cohesion)
    if abs(t.score - want) > 1e-12 * (1 + abs(want)):
        return f"score {t.score!r} != -(w . terms) = {want!r}"
    if t.cohesion < 0 or (len(t.team) == 1 and t.cohesion != 0):
        return f"cohesion {t.cohesion!r} of a team of {len(t.team)}"
    return None


_PREFIX_STEPS = 4  # additions after the initialisation in the long selection that prefix slides along


def _long_selection():
    p = member_probs()
    return resolve("ensemble_lab.selection.forward_select")(
        p, labels(), metric="brier", steps=_PREFIX_STEPS, init=1, bags=2, bag_fraction=0.7, held_out=(p, labels())
    )


def _held_out_arg() -> Arg:
    values = [
        valid("None", None),
        bad("str 'abc'", "abc"),
        bad_f("member_probs alone", member_probs),
        bad_f("triple", lambda: (member_probs(), labels(), labels())),
        bad_f("pair with labels one short", lambda: (member_probs(), labels()[:-1])),
        bad_f("pair with K - 1 models", lambda: (member_probs()[:-1], labels())),
        bad_f(
            "pair with C + 1 classes", lambda: (torch.softmax(torch.randn(K, N, C + 1, generator=_g(24)), -1), labels())
        ),
        bad_f("pair with a NaN", lambda: (_inject(member_probs(), _NAN), labels())),
        bad_f("pair with rows summing to 2", lambda: (member_probs() * 2, labels())),
        bad_f("pair with label C", lambda: (member_probs(), _set(labels(), C))),
        bad_f("pair on the meta device", lambda: (member_probs().to("meta"), labels().to("meta"))),
        valid_f("list pair", lambda: [member_probs(), labels()]),
        valid_f("numpy pair", lambda: (member_probs().numpy(), labels().numpy())),
    ]
    return _arg("held_out", lambda: (member_probs(), labels()), values)


def _prefix_sane(r) -> str | None:
    """The prefix's counts are those of forward selection run with that many steps (the docstring's promise)."""
    steps = len(r.path) // len(r.bags) - 1  # init = 1
    want = resolve("ensemble_lab.selection.forward_select")(
        member_probs(), labels(), metric="brier", steps=steps, init=1, bags=2, bag_fraction=0.7
    )
    if not torch.equal(r.counts.cpu(), want.counts.cpu()):
        return f"counts {r.counts.tolist()} != forward_select(steps={steps})'s {want.counts.tolist()}"
    return None


def _team_sum(team) -> float:
    return float(sum(team)) - 0.1 * len(team)


def _team_nan(team) -> float:
    return math.nan


def _team_str(team) -> str:
    return "x"


def _exact_decomposition(d) -> str | None:
    """ensemble loss = mean member loss - diversity, to float rounding, and a diversity that is not negative."""
    scale = 1 + abs(d.mean_member_loss)
    if abs(d.ensemble_loss - (d.mean_member_loss - d.diversity)) > 1e-9 * scale:
        return f"ensemble {d.ensemble_loss!r} != mean member {d.mean_member_loss!r} - diversity {d.diversity!r}"
    if d.diversity < -1e-9 * scale:
        return f"negative diversity {d.diversity!r}"
    return None


# ---- forecast scores: M = 5 members of N = 12 points (the state: 6 points x 3 variables; leads: 3 x 4) ---------

_FM, _FN = 5, 12


def _f_members() -> torch.Tensor:
    return torch.randn(_FM, _FN, generator=_g(31))


def _f_obs() -> torch.Tensor:
    return torch.randn(_FN, generator=_g(32))


def _f_std() -> torch.Tensor:
    return torch.rand(_FN, generator=_g(33)) + 0.2


def _f_stds() -> torch.Tensor:
    return torch.rand(_FM, _FN, generator=_g(34)) + 0.2


def _f_state_members() -> torch.Tensor:
    return torch.randn(_FM, 6, 3, generator=_g(35))


def _f_state_obs() -> torch.Tensor:
    return torch.randn(6, 3, generator=_g(36))


def _f_lead_members() -> torch.Tensor:
    return torch.randn(_FM, 3, 4, generator=_g(37))


def _f_lead_obs() -> torch.Tensor:
    return torch.randn(3, 4, generator=_g(38))


def _f_big(make, value: float, dtype: torch.dtype):
    def big():
        t = make().to(dtype)
        return t / t.abs().max() * value

    return big


def _f_members_arg(base=_f_members, *, extra=(), skip=()) -> Arg:
    """Members ``(M, ...)``, members first: bool refused, integers read as numbers."""
    own = [
        bad_f("bool members", lambda: base() > 0),
        valid_f("integer members", lambda: (base() * 4).round().to(torch.int64)),
        valid_f("float16", lambda: base().half()),
        extreme_f("members of 1e308 (float64)", _f_big(base, 1e308, torch.float64)),
        extreme_f("members of 3e38 (float32)", _f_big(base, 3e38, torch.float32)),
        *extra,
    ]
    return tensor("scores", base, extra=own, skip=skip)


def _f_obs_arg(base=_f_obs) -> Arg:
    """Observations shaped like one member, on the members' device."""
    own = [
        bad_f("bool observations", lambda: base() > 0),
        valid_f("integer observations", lambda: base().round().to(torch.int32)),
        extreme_f("observations of 1e308 (float64)", _f_big(base, 1e308, torch.float64)),
    ]
    return tensor("scores", base, secondary=True, extra=own)


def _f_broadcast_arg(base, *, secondary=False, extra=()) -> Arg:
    """A tensor that broadcasts against the other arguments: a number, a 0-d or a (1, N) tensor are valid."""
    own = [
        valid("python float 0.5 (broadcasts)", 0.5),
        valid_f("0-d tensor (broadcasts)", lambda: base()[0].clone()),
        valid_f("(1, N) (broadcasts)", lambda: base().unsqueeze(0)),
        bad_f("(N - 1,) (does not broadcast)", lambda: base()[:-1]),
        *extra,
    ]
    return tensor(
        "scores",
        base,
        secondary=secondary,
        extra=own,
        skip=("python float 0.5", "one dim fewer", "extra leading dim"),
    )


def _f_dim_arg() -> Arg:
    """Dimensions of the ``(3, 4)`` observations to average over (None: all)."""
    values = [
        valid("None (all)", None),
        valid("int 1", 1),
        valid("int -1", -1),
        valid("tuple (0, 1)", (0, 1)),
        valid("list [0]", [0]),
        valid("numpy int64 1", np.int64(1)),
        bad("2 (out of range)", 2),
        bad("-3 (out of range)", -3),
        bad("2**70", 2**70),
        bad("True", True),
        bad("float 1.0", 1.0),
        bad("str '1'", "1"),
        bad("repeat (1, 1)", (1, 1)),
        bad("repeat (1, -1)", (1, -1)),
        bad("empty tuple", ()),
        bad("(0, True)", (0, True)),
        bad("dict", {0: 1}),
    ]
    return _arg("dim", None, values)


def _f_threshold_arg() -> Arg:
    """A number, or a tensor that broadcasts to the points' shape (per-point thresholds)."""
    return real(
        0.3,
        skip=("list [0.5]",),
        extra=[
            valid("list [0.5] (broadcasts)", [0.5]),
            valid_f("per-point tensor", lambda: torch.linspace(-1, 1, _FN)),
            valid_f("per-point numpy", lambda: np.linspace(-1, 1, _FN)),
            bad_f("per-point tensor with a NaN", lambda: _inject(torch.linspace(-1, 1, _FN), _NAN)),
            bad_f("(N - 1,) tensor", lambda: torch.zeros(_FN - 1)),
            bad_f("complex tensor", lambda: torch.zeros(_FN, dtype=torch.complex64)),
            bad_f("bool tensor", lambda: torch.zeros(_FN, dtype=torch.bool)),
            bad_f("meta-device tensor", lambda: torch.zeros(_FN, device="meta")),
        ],
    )


def _f_counts() -> torch.Tensor:
    return torch.tensor([3, 1, 2, 0, 4, 2])


def _f_counts_arg() -> Arg:
    own = [
        bad_f("a negative count", lambda: _set(_f_counts(), -1)),
        bad_f("fractional counts", lambda: _f_counts().double() + 0.5),
        bad_f("NaN count", lambda: _inject(_f_counts().double(), _NAN)),
        bad_f("inf count", lambda: _inject(_f_counts().double(), _INF)),
        bad("all zeros", [0] * 6),
        bad("one bin", [5]),
        bad_f("bool counts", lambda: _f_counts() > 0),
        valid("list", [3, 1, 2, 0, 4, 2]),
        valid_f("float counts", lambda: _f_counts().double()),
        valid_f("int32", lambda: _f_counts().to(torch.int32)),
        extreme("counts of 2**62", [2**62] * 6),
    ]
    return tensor("counts", _f_counts, floating=False, extra=own)


def _f_nonneg(result) -> str | None:
    """A score that cannot be negative (CRPS, energy): >= 0 to rounding."""
    t = result.detach().double()
    floor = -1e-9 * (1 + float(t.abs().max())) if t.numel() else 0.0
    return f"negative score {float(t.min())!r}" if t.numel() and float(t.min()) < floor else None


def _f_unit(result) -> str | None:
    """Probabilities and Brier scores of a binary event: in [0, 1]."""
    t = result.detach().double()
    if t.numel() and (float(t.min()) < 0 or float(t.max()) > 1):
        return f"outside [0, 1]: [{float(t.min())!r}, {float(t.max())!r}]"
    return None


def _optional(arg: Arg) -> Arg:
    """``arg`` with None as its base value (the default), None no longer a bad value."""
    values = tuple(v for v in arg.values if v.desc != "None")
    return replace(arg, base=_const(None), values=values, meta={**arg.meta, "optional": True})


def _none_allowed(arg: Arg) -> Arg:
    """``arg`` keeping its base value, with None no longer a bad value (an optional argument whose base is drawn
    from; ``_optional`` makes None the base)."""
    return replace(arg, values=tuple(v for v in arg.values if v.desc != "None"), meta={**arg.meta, "optional": True})


def _alias(arg: Arg, *names: str) -> Arg:
    """``arg`` whose message may also call it ``names`` (``spec`` for ``spec_or_name``)."""
    return replace(arg, aliases=names)


def _widths(base, *, as_list: bool = False) -> Arg:
    """Layer widths: a tuple (or, for MiniCLIP, a sequence) of positive ints."""
    seq = list if as_list else tuple
    values = [
        bad("None", None),
        bad("(0,)", seq([0])),
        bad("(-1,)", seq([-1])),
        bad("(1.5,)", seq([1.5])),
        bad("(True,)", seq([True])),
        bad("str '16'", "16"),
        bad("bare int 16", 16),
        extreme("(2**70,)", seq([2**70])),
    ]
    if base:
        values.append(valid("numpy ints", seq([np.int64(v) for v in base])))
    return _arg("widths", seq(base), values)


def _no_values(result):
    """Nothing to check for finiteness (the result holds uninitialised memory by design)."""
    return ()


def _without_inf(result):
    """``result`` with +-inf replaced by 0 (NaN kept): for results where infinities are documented."""
    return [torch.where(torch.isinf(t), 0.0, t) for t in result]


def _zero_row(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1, t.shape[-1])[0] = 0
    return t


def _hist():
    return resolve("ensemble_lab.calibration.fit_histogram_binning")(probs(), labels(), n_bins=5)


def _pooled_calibrator():
    cls = resolve("ensemble_lab.calibration.PooledCalibrator")
    return cls(rule="prob", temperature=1.5, member_temperatures=torch.full((K,), 1.2))


def _head_terms() -> torch.Tensor:
    return torch.randn(3, 2, N, C, generator=_g(14))


def _small_dataset():
    return resolve("ensemble_lab.data.ImageDataset")(images(8, 6), labels()[:6], CLASSES, "small")


def _members(spec: str = "mlp-xs"):
    build = resolve("ensemble_lab.models.family.build_model")
    return [build(spec, (1, 8, 8), C, seed=s) for s in (0, 1)]


# ----------------------------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One call: ``routine`` with ``arg`` set to ``value`` (``arg == ""``: the valid call itself)."""

    routine: Routine
    arg: str
    value: str
    expect: str
    make: Callable[[], Any] | None

    @property
    def id(self) -> str:
        return f"{self.routine.id}[{self.arg}={self.value}]" if self.arg else f"{self.routine.id}[valid call]"

    @property
    def family(self) -> str:
        return self.routine.family

    @property
    def names(self) -> tuple[str, ...]:
        """How a message may name the argument: as the caller wrote it, or a documented alias."""
        return (self.arg, *self.routine.args[self.arg].aliases) if self.arg else ()

    def call(self) -> Any:
        return self.routine.call({self.arg: self.make} if self.arg else {})


def make_case(routine: Routine, arg: str, value: Value) -> Case:
    return Case(routine, arg, value.desc, value.expect, value.make)


def cases(selected=None) -> list[Case]:
    """The valid call and every value of every argument of each routine (available on this tree)."""
    out = []
    for r in selected if selected is not None else routines():
        if not r.available():
            continue
        out.append(Case(r, "", "", "valid", None))
        for name in r.present():
            out += [make_case(r, name, v) for v in r.args[name].values]
    return out


def missing_routines() -> list[str]:
    return [r.target for r in routines() if not r.available()]


# ----------------------------------------------------------------------------------------------------------
# running and classifying one call
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    category: str
    what: str


class _Timeout(BaseException):
    pass


@contextlib.contextmanager
def _time_guard(seconds: float):
    """Raise :class:`_Timeout` in the call after ``seconds``, and again every 50 ms: an alarm that lands in a
    finaliser (``__del__``, a weakref callback) is swallowed there, the next one is not."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    active = [True]

    def on_alarm(signum, frame):
        if active[0]:
            raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield
    finally:
        active[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _quiet():
    sink = io.StringIO()
    with (
        contextlib.redirect_stdout(sink),
        contextlib.redirect_stderr(sink),
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
    ):
        warnings.simplefilter("ignore")
        yield


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_NUMBER_TAIL = re.compile(r"(\d\.\d{4})\d+")


def _clean(exc: BaseException, limit: int = 150) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    msg = _ADDRESS.sub("", msg)
    msg = _NUMBER_TAIL.sub(r"\1", msg)
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


@functools.cache
def _name_pattern(name: str) -> re.Pattern:
    e = re.escape(name)
    if len(name) <= 2:  # a, b, k, x, w: a word of its own that reads as a name, not an article
        return re.compile(rf"(?<![\w.]){e}(?=\[|=|:|'|`|\)|,| must| has| is| needs| and| or| should| \()|'{e}'|`{e}`")
    return re.compile(rf"(?<![\w]){e}(?![\w])")


def names_argument(message: str, name: str) -> bool:
    """Whether ``message`` names the argument ``name`` as a word of its own (``member_logits`` is not ``logits``)."""
    return bool(_name_pattern(name).search(message))


def _describe(result) -> str:
    if isinstance(result, torch.Tensor):
        return f"tensor {tuple(result.shape)} {str(result.dtype).removeprefix('torch.')}"
    if isinstance(result, float):
        return f"{result!r}"
    if isinstance(result, (int, str, bool)) or result is None:
        return repr(result)[:40]
    if isinstance(result, (list, tuple)):
        return f"{type(result).__name__} of {len(result)}"
    return type(result).__name__


def _nonfinite(obj, depth: int = 0) -> int:
    """Number of NaN/inf values in ``obj`` (tensors, numbers, containers, dataclasses, modules, package objects)."""
    if depth > 5:
        return 0
    if isinstance(obj, torch.Tensor):
        if obj.device.type == "meta" or not (torch.is_floating_point(obj) or torch.is_complex(obj)):
            return 0
        return int((~torch.isfinite(obj.detach())).sum())
    if isinstance(obj, nn.Module):
        return sum(_nonfinite(t, depth + 1) for t in (*obj.parameters(), *obj.buffers()))
    if isinstance(obj, bool):
        return 0
    if isinstance(obj, (float, complex, np.floating, np.complexfloating)):
        return 0 if np.isfinite(obj) else 1
    if isinstance(obj, np.ndarray):
        return int((~np.isfinite(obj)).sum()) if obj.dtype.kind in "fc" else 0
    if isinstance(obj, Mapping):
        return sum(_nonfinite(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_nonfinite(v, depth + 1) for v in obj[:1000])
    if is_dataclass(obj) and not isinstance(obj, type):
        return sum(_nonfinite(getattr(obj, f.name), depth + 1) for f in fields(obj))
    if type(obj).__module__.startswith("ensemble_lab") and hasattr(obj, "__dict__"):
        return sum(_nonfinite(v, depth + 1) for v in vars(obj).values())
    return 0


_ACCEPTED = object()  # the result of a call whose work was stubbed out: the arguments were accepted


def _problem(case: Case, result) -> str | None:
    if result is _ACCEPTED:
        return None
    try:
        bad_count = _nonfinite(case.routine.view(result))
    except Exception as exc:  # the result is not what the routine documents
        return f"returned {_describe(result)} (unexpected: {type(exc).__name__})"
    if bad_count:
        return f"returned {_describe(result)} with {bad_count} NaN/inf value(s)"
    if case.routine.sane is not None:
        try:
            why = case.routine.sane(result)
        except Exception as exc:
            why = f"unexpected result ({type(exc).__name__}: {_clean(exc, 60)})"
        if why:
            return f"returned {_describe(result)}: {why}"
    return None


TIMEOUT = 1.0  # seconds per call; a valid call takes milliseconds (after warm_up)


def warm_up(selected=None) -> None:
    """Make every routine's valid call once, untimed: first calls pay for lazy imports (torch.optim: ~2 s)."""
    for r in selected if selected is not None else routines():
        if r.available():
            run(Case(r, "", "", "valid", None), timeout=60.0)


def run(case: Case, timeout: float = TIMEOUT) -> Outcome:
    """Make the call of ``case`` (under a ``timeout`` guard, output and warnings silenced) and classify it."""
    try:
        return _run(case, timeout)
    except _Timeout:  # the alarm fired while the guard was being lifted
        return _timed_out(case, timeout)


def _timed_out(case: Case, timeout: float) -> Outcome:
    if case.expect == "valid":
        return Outcome("refused-valid", f"still running after {timeout:g} s")
    return Outcome("silent", f"accepted: still running after {timeout:g} s")


def _run(case: Case, timeout: float) -> Outcome:
    try:
        with _quiet(), _time_guard(timeout):
            try:
                result = case.call()
            except _ReachedWork:
                result = _ACCEPTED
    except _Timeout:
        return _timed_out(case, timeout)
    except (ValueError, TypeError) as exc:
        what = f"{type(exc).__name__}: {_clean(exc)}"
        if case.expect == "valid":
            return Outcome("refused-valid", what)
        named = any(names_argument(str(exc), n) for n in case.names)
        return Outcome("refused" if named else "vague", what)
    except Exception as exc:
        what = f"{type(exc).__name__}: {_clean(exc)}"
        return Outcome("refused-valid" if case.expect == "valid" else "crash", what)
    problem = _problem(case, result)
    if case.expect == "bad":
        return Outcome("silent", problem or f"returned {_describe(result)}")
    if problem:
        return Outcome("silent", problem)
    return Outcome("ok", "accepted" if result is _ACCEPTED else f"returned {_describe(result)}")


# ---- forecast world and forecasters: a world of 3 cases, 2 leads ------------------------------------------


def _fw_state() -> torch.Tensor:
    return 8.0 + torch.randn(2, 8, generator=_g(41), dtype=torch.float64)


@functools.cache
def _fw_world_cached(n_variables: int):
    from ensemble_lab.forecast import lorenz96

    return lorenz96(n_variables=n_variables, n_cases=3, n_leads=2, breeding_window=0.8, seed=0)


def _fw_world(n_variables: int = 40):
    return _fw_world_cached(n_variables)


def _fw_world_arg(extra=()) -> Arg:
    return other(
        "world",
        _fw_world,
        [
            bad("None", None),
            bad("str 'lorenz96'", "lorenz96"),
            bad("dict", {}),
            bad_f("a tensor of states", _fw_state),
            *extra,
        ],
    )


# ---- forests: forests of T = 5 trees fit on N = 24 inputs with d = 3 features; 6 queries --------------------------

_FO_N, _FO_D, _FO_Q, _FO_T = 24, 3, 6, 5


def _fo_x() -> torch.Tensor:
    return torch.rand(_FO_N, _FO_D, generator=_g(51), dtype=torch.float64)


def _fo_y() -> np.ndarray:
    x = _fo_x().numpy()
    return np.sin(4 * x[:, 0]) + x[:, 1]


def _fo_q() -> torch.Tensor:
    return torch.rand(_FO_Q, _FO_D, generator=_g(52), dtype=torch.float64) * 1.2 - 0.1


@functools.cache
def _fo_fitted(kind: str = "rf"):
    from sklearn import ensemble, linear_model, pipeline, preprocessing

    x, y = _fo_x().numpy(), _fo_y()
    labels = (y > np.median(y)).astype(int)
    models = {
        "rf": lambda: ensemble.RandomForestRegressor(n_estimators=_FO_T, random_state=0),
        "rf no bootstrap": lambda: ensemble.RandomForestRegressor(n_estimators=_FO_T, bootstrap=False, random_state=0),
        "extra trees": lambda: ensemble.ExtraTreesRegressor(n_estimators=_FO_T, random_state=0),
        "bagging": lambda: ensemble.BaggingRegressor(n_estimators=_FO_T, max_features=2, random_state=0),
        "classifier": lambda: ensemble.RandomForestClassifier(n_estimators=_FO_T, random_state=0),
        "class_weight": lambda: ensemble.RandomForestClassifier(_FO_T, class_weight="balanced", random_state=0),
        "gb": lambda: ensemble.GradientBoostingRegressor(n_estimators=3, random_state=0),
        "linear": linear_model.LinearRegression,
        "pipeline": lambda: pipeline.make_pipeline(
            preprocessing.StandardScaler(), ensemble.RandomForestRegressor(n_estimators=_FO_T, random_state=0)
        ),
        "absolute_error": lambda: ensemble.RandomForestRegressor(3, criterion="absolute_error", random_state=0),
        "sample_weight": lambda: ensemble.RandomForestRegressor(3, bootstrap=False, random_state=0),
    }
    model = models[kind]()
    target = labels if kind in ("classifier", "class_weight") else y
    weights = {"sample_weight": np.arange(1.0, _FO_N + 1)} if kind == "sample_weight" else {}
    return model.fit(x, target, **weights)


def _fo_unfitted():
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=_FO_T)


def _fo_forest_arg() -> Arg:
    return other(
        "forest",
        _fo_fitted,
        [
            bad("None", None),
            bad("str 'forest'", "forest"),
            bad("dict", {}),
            bad_f("an unfitted RandomForestRegressor", _fo_unfitted),
            bad_f("a fitted GradientBoostingRegressor", lambda: _fo_fitted("gb")),
            bad_f("a fitted LinearRegression", lambda: _fo_fitted("linear")),
            bad_f("a fitted pipeline", lambda: _fo_fitted("pipeline")),
            bad_f("a classifier with class_weight", lambda: _fo_fitted("class_weight")),
            bad_f("criterion='absolute_error'", lambda: _fo_fitted("absolute_error")),
            bad_f("fit with sample_weight, no bootstrap", lambda: _fo_fitted("sample_weight")),
            bad_f("a tree out of a bootstrapped forest", lambda: _fo_fitted("rf").estimators_[0]),
            valid_f("a random forest classifier", lambda: _fo_fitted("classifier")),
            valid_f("no bootstrap", lambda: _fo_fitted("rf no bootstrap")),
            valid_f("extra trees", lambda: _fo_fitted("extra trees")),
            valid_f("bagging, 2 of 3 features", lambda: _fo_fitted("bagging")),
        ],
    )


def _fo_x_train_arg() -> Arg:
    def row_swapped():
        x = _fo_x().clone()
        x[0] = x[1]
        return x

    own = [
        bad_f("rows reversed", lambda: _fo_x().flip(0)),
        bad_f("a row replaced by another", row_swapped),
        bad_f("4 rows fewer", lambda: _fo_x()[:-4]),
        bad_f("2 columns", lambda: _fo_x()[:, :2]),
        bad_f("a value of 1e39 (beyond float32)", lambda: _inject(_fo_x(), 1e39)),
        bad_f("bool tensor", lambda: _fo_x() > 0.5),
        valid_f("float32", lambda: _fo_x().float()),
        valid_f("list of rows", lambda: _fo_x().tolist()),
    ]
    return tensor("inputs", _fo_x, extra=own)


def _fo_x_query_arg(*, optional: bool = False) -> Arg:
    own = [
        bad_f("2 columns", lambda: _fo_q()[:, :2]),
        bad_f("a value of 1e39 (beyond float32)", lambda: _inject(_fo_q(), 1e39)),
        valid_f("one row", lambda: _fo_q()[:1]),
        valid_f("far from the data", lambda: _fo_q() * 100),
        valid_f("the training inputs", _fo_x),
        valid_f("float32", lambda: _fo_q().float()),
    ]
    arg = tensor("inputs", _fo_q, extra=own)
    return _none_allowed(arg) if optional else arg


def _fo_view(result):
    if hasattr(result, "toarray"):
        return torch.from_numpy(result.toarray())
    if hasattr(result, "counts"):
        return (result.counts, result.weight)
    return result


def _fo_sane(result) -> str | None:
    if hasattr(result, "toarray"):
        result = torch.from_numpy(result.toarray())
    if isinstance(result, float):
        return None if 1 - 1e-9 <= result <= _FO_N + 1e-9 else f"p = {result!r} outside [1, {_FO_N}]"
    if isinstance(result, torch.Tensor) and result.ndim == 1:  # per tree
        ok = bool(((result >= 1 - 1e-9) & (result <= _FO_N + 1e-9)).all())
        return None if ok else f"per-tree p outside [1, {_FO_N}]: {result.tolist()}"
    if isinstance(result, torch.Tensor):
        sums = result.sum(1)
        if float(result.min()) < 0 or float((sums - 1).abs().max()) > 1e-12:
            return f"rows not on the simplex (sums in [{float(sums.min())!r}, {float(sums.max())!r}])"
        return None
    if hasattr(result, "counts"):
        return None if result.counts.shape[1] == _FO_N else f"counts of shape {result.counts.shape}"
    return f"unexpected {type(result).__name__}"


def _fo_weights() -> torch.Tensor:
    w = torch.rand(_FO_Q, _FO_N, generator=_g(53), dtype=torch.float64)
    return w / w.sum(1, keepdim=True)


def _fo_recipe(kind: str = "rf"):
    from sklearn import ensemble, tree

    return {
        "rf": lambda: ensemble.RandomForestRegressor(n_estimators=_FO_T),
        "tree": lambda: tree.DecisionTreeRegressor(),
        "extra trees": lambda: ensemble.ExtraTreesRegressor(n_estimators=_FO_T),
        "bagging": lambda: ensemble.BaggingRegressor(n_estimators=_FO_T),
        "classifier": lambda: ensemble.RandomForestClassifier(n_estimators=_FO_T),
        "gb": lambda: ensemble.GradientBoostingRegressor(n_estimators=3),
        "absolute_error": lambda: ensemble.RandomForestRegressor(criterion="absolute_error"),
    }[kind]()


def _fo_recipe_arg(*, optional: bool = False) -> Arg:
    from sklearn.linear_model import LinearRegression

    values = [
        bad("str 'rf'", "rf"),
        bad("dict", {}),
        bad_f("a classifier", lambda: _fo_recipe("classifier")),
        bad_f("a GradientBoostingRegressor", lambda: _fo_recipe("gb")),
        bad_f("a LinearRegression", LinearRegression),
        bad_f("criterion='absolute_error'", lambda: _fo_recipe("absolute_error")),
        valid_f("a fitted forest (cloned)", lambda: _fo_fitted("rf")),
        valid_f("extra trees", lambda: _fo_recipe("extra trees")),
        valid_f("bagging", lambda: _fo_recipe("bagging")),
        valid_f("a decision tree", lambda: _fo_recipe("tree")),
    ]
    if optional:
        return other("recipe", None, [*values, valid_f("a decision tree recipe", lambda: _fo_recipe("tree"))])
    return other("recipe", _fo_recipe, [bad("None", None), *values])


def _fo_world_arg() -> Arg:
    from ensemble_lab.forests import toy_1d, toy_2d

    return other(
        "world",
        lambda: toy_1d(0.5),
        [
            bad("None", None),
            bad("str 'sine'", "sine"),
            bad("dict", {}),
            bad_f("a tensor", lambda: torch.zeros(3)),
            valid_f("the 2-D world", lambda: toy_2d(0.3)),
        ],
    )


def _fo_toy():
    from ensemble_lab.forests import toy_1d

    return toy_1d(0.5)


def _fo_toy_x_arg() -> Arg:
    base = lambda: torch.rand(5, 1, generator=_g(54), dtype=torch.float64)  # noqa: E731
    own = [
        bad_f("2 columns (the 1-D world has 1)", lambda: torch.rand(5, 2, generator=_g(55), dtype=torch.float64)),
        valid_f("outside [0, 1]", lambda: base() * 10 - 5),
    ]
    return tensor("inputs", base, extra=own)
