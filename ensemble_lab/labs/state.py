"""A Lab's State: every setting declared once in a table, checked by one mechanism.

A State class lists its settings in ``SETTINGS``, a dict from name to :class:`Setting` (kind, default, allowed
values or range, help), as scikit-learn's ``_parameter_constraints`` does.  The class statement turns each entry
into a traitlet whose validation is :meth:`Setting.check`, so ``state.x = v`` and ``lab.set(x=v)`` are refused
with a message that names ``x``, says what is allowed and what came.  Settings several Labs share (the evaluation
split, the bins of ECE, a temperature, the seed) are declared here once and named in each table.

A Lab narrows some settings to what its data holds (the splits of its predictions, the domains of its images):
:meth:`LabState.limit` sets per-instance choices, checked by the same mechanism, so a value the Lab cannot show
never reaches the State (nor a widget).

>>> class Demo(LabState):
...     SETTINGS = {"rule": Setting(str, "prob", "how to pool", choices=("prob", "vote")),
...                 "temperature": TEMPERATURE}
>>> s = Demo()
>>> s.temperature = 2
>>> s.to_dict()
{'rule': 'prob', 'seed': 0, 'temperature': 2.0}
>>> s.rule = "mean"
Traceback (most recent call last):
...
traitlets.traitlets.TraitError: rule must be one of prob, vote; got 'mean'
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import traitlets

__all__ = ["Setting", "LabState", "SEED", "N_BINS", "STRATEGY", "TEMPERATURE", "SPLIT", "FIT_SPLIT"]

FIT_SPLIT = "val"  # the split every Lab fits on (weights, temperatures, thresholds); the others are for evaluation

_KINDS = (float, int, str, bool, list)


@dataclass(frozen=True)
class Setting:
    """One setting: its kind, default, help, and what is allowed.

    Args:
        kind: ``float``, ``int``, ``str``, ``bool`` or ``list`` (then ``item`` is the kind of its entries).
        default: the value a new State holds (a tuple for a list setting).
        help: one line for the learner (shown as the trait's help).
        choices: the allowed values (for a list: of its entries); floats match a choice within 1e-9 relative
            and become that choice, so ``alpha=0.30000000000000004`` is the cached ``0.3``.
        low, high: the allowed range (for a list: of its entries); ``open_low``/``open_high`` exclude the end.
        why: said after the range in the message (why the range is what it is).
    """

    kind: type
    default: Any
    help: str = ""
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    item: type | None = None
    why: str = ""

    def __post_init__(self):
        if self.kind not in _KINDS or (self.kind is list) != (self.item is not None):
            raise TypeError(f"kind must be one of float, int, str, bool, list (list with item=), got {self.kind}")

    def check(self, name: str, value, choices: Sequence | None = None):
        """``value`` as this setting stores it, or a ValueError/TypeError naming ``name``.

        ``choices`` (per instance, see :meth:`LabState.limit`) replaces the declared ones.
        """
        choices = self.choices if choices is None else tuple(choices)
        if self.kind is list:
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
                raise TypeError(f"{name} must be a list, got {type(value).__name__}")
            return [self._scalar(name, v, self.item, choices, entry=True) for v in value]
        return self._scalar(name, value, self.kind, choices)

    def _scalar(self, name, value, kind, choices, entry=False):
        what = f"every entry of {name}" if entry else name
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError(f"{what} must be True or False, got {value!r}")
        elif kind is str:
            if not isinstance(value, str):
                raise TypeError(f"{what} must be a string, got {type(value).__name__}")
        else:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
            if kind is int:
                if not isinstance(value, numbers.Integral):
                    raise TypeError(f"{what} must be a whole number, got {value!r}")
                value = int(value)
            else:
                value = float(value)
                if not math.isfinite(value):
                    raise ValueError(f"{what} must be a finite number, got {value!r}")
            self._in_range(what, value)
        if choices is not None:
            value = self._choose(what, value, choices)
        return value

    def _in_range(self, what, value) -> None:
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high else value <= self.high)
        if low_ok and high_ok:
            return
        if self.high is None:
            span = f"{'>' if self.open_low else '>='} {self.low:g}"
        elif self.low is None:
            span = f"{'<' if self.open_high else '<='} {self.high:g}"
        else:
            span = f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        why = f" ({self.why})" if self.why else ""
        raise ValueError(f"{what} must be {span}{why}, got {value!r}")

    @staticmethod
    def _choose(what, value, choices):
        if isinstance(value, float):
            for c in choices:
                if isinstance(c, numbers.Real) and abs(value - c) <= 1e-9 * max(1.0, abs(c)):
                    return type(value)(c)
        elif value in choices:
            return value
        shown = ", ".join(f"{c:g}" if isinstance(c, float) else str(c) for c in choices)
        raise ValueError(f"{what} must be one of {shown}; got {value!r}")

    def trait(self) -> traitlets.TraitType:
        return _SettingTrait(self).tag(setting=True)


class _SettingTrait(traitlets.TraitType):
    """A traitlet validated by its :class:`Setting` (and the State's per-instance choices)."""

    def __init__(self, spec: Setting):
        default = list(spec.default) if spec.kind is list else spec.default
        super().__init__(default_value=default, help=spec.help)
        self.spec = spec

    def make_dynamic_default(self):
        return list(self.spec.default) if self.spec.kind is list else self.spec.default

    def validate(self, obj, value):
        try:
            return self.spec.check(self.name, value, obj._limits.get(self.name))
        except (TypeError, ValueError) as exc:
            raise traitlets.TraitError(str(exc)) from None


class _StateMeta(traitlets.MetaHasTraits):
    """Turns a State class's ``SETTINGS`` table into traitlets before traitlets sets the class up."""

    def __new__(mcls, name, bases, classdict, **kwargs):
        for key, spec in classdict.get("SETTINGS", {}).items():
            if not isinstance(spec, Setting):
                raise TypeError(f"{name}.SETTINGS[{key!r}] must be a Setting, got {type(spec).__name__}")
            classdict[key] = spec.trait()
        return super().__new__(mcls, name, bases, classdict, **kwargs)


SEED = Setting(int, 0, "seed for anything random the Lab does (subsets, bootstrap)", low=0)
N_BINS = Setting(int, 15, "bins of ECE and the reliability diagram", low=1, high=1000)
STRATEGY = Setting(str, "uniform", "'uniform' or 'quantile' (equal-mass) bins", choices=("uniform", "quantile"))
TEMPERATURE = Setting(
    float,
    1.0,
    "divides the logits before the softmax",
    low=0.01,
    high=100,
    why="beyond it float32 logits overflow or every prediction is uniform",
)
SPLIT = Setting(str, "test", "the split numbers are computed on: 'test', a shifted test set, or val (in-sample)")


class LabState(traitlets.HasTraits, metaclass=_StateMeta):
    """All settings of one Lab (its ``SETTINGS`` table, plus the seed).  Shareable: ``to_dict()``/``to_json()``
    and back with ``from_dict``/``from_json``."""

    SETTINGS = {"seed": SEED}

    def __init__(self, **settings):
        self._limits: dict[str, tuple] = {}
        super().__init__()
        self.set_settings(**settings)

    @classmethod
    def table(cls) -> dict[str, Setting]:
        """Every setting of this State, by name (its own table over its bases')."""
        out = {}
        for klass in reversed(cls.__mro__):
            out.update(vars(klass).get("SETTINGS", {}))
        return dict(sorted(out.items()))

    def settings(self) -> list[str]:
        return sorted(self.trait_names(setting=True))

    def limit(self, **choices: Sequence) -> None:
        """Narrow settings to per-instance ``choices`` (e.g. ``split=("test", "noise-3", "val")``); the current
        values must be allowed (a ValueError naming the setting otherwise)."""
        for name, allowed in choices.items():
            if name not in self.settings():
                raise ValueError(f"limit: unknown setting {name!r}; known: {self.settings()}")
            allowed = tuple(allowed)
            type(self).table()[name].check(name, getattr(self, name), allowed)
            self._limits[name] = allowed

    def choices(self, name: str) -> tuple | None:
        """The values ``name`` may take here (per instance, else declared), or None for a range."""
        return self._limits.get(name, type(self).table()[name].choices)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.settings()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, settings: dict[str, Any], **kwargs) -> LabState:
        if not isinstance(settings, dict):
            raise TypeError(f"settings must be a dict, got {type(settings).__name__}")
        state = cls(**kwargs)
        unknown = sorted(set(settings) - set(state.settings()))
        if unknown:
            raise ValueError(f"settings has unknown key(s) {unknown}; known: {state.settings()}")
        state.set_settings(**settings)
        return state

    @classmethod
    def from_json(cls, text: str, **kwargs) -> LabState:
        return cls.from_dict(json.loads(text), **kwargs)

    def set_settings(self, **settings) -> None:
        """Set several settings at once (one notification per setting, after all are set); all or none."""
        unknown = sorted(set(settings) - set(self.settings()))
        if unknown:
            raise ValueError(f"unknown setting(s) {unknown}; known: {self.settings()}")
        with self.hold_trait_notifications():  # a refused value rolls every change back, unnotified
            for name, value in settings.items():
                setattr(self, name, value)
