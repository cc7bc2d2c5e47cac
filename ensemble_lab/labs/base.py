"""What every Lab shares: a State, a compute step over cached pieces, and changes that are all-or-nothing.

A Lab is headless first.  ``lab.state.x = v`` or ``lab.set(x=v)`` changes a setting and recomputes
``lab.result``; when the new setting is invalid (the State's table or the computation refuses it), the State is
rolled back to what it was, ``lab.result`` is left untouched and ``lab.status`` holds the message.  Each accepted
change bumps ``lab.revision``, which is what a View listens to.

Work runs under one lock shared by every Lab, with one torch thread: JupyterLab 4 may run a control's handler on
a second thread (a kernel subshell) while a cell drives the same Lab, and a Lab's many small tensor operations
are fastest (and steadiest under load) on one thread.

The View is joined to its Lab in one place: a View class names its Lab (``class DemoView(LabView, lab=DemoLab)``),
which sets ``DemoLab.View``; the Lab never imports its View.

>>> from ensemble_lab.labs.state import Setting
>>> class DemoState(LabState):
...     SETTINGS = {"scale": Setting(float, 1.0, "a factor", low=0, open_low=True)}
>>> class DemoLab(Lab):
...     State = DemoState
...     def compute(self, state):
...         return {"value": 2 * state.scale}
>>> lab = DemoLab()
>>> lab.set(scale=3);  lab.result
True
{'value': 6.0}
>>> lab.set(scale=-1);  lab.status, lab.state.scale
False
('scale must be > 0, got -1.0', 3.0)
"""

from __future__ import annotations

import functools
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import traitlets

from .state import FIT_SPLIT, LabState

__all__ = [
    "Lab",
    "PredictionsLab",
    "LabState",
    "cached",
    "lab_work",
    "SplitPredictions",
    "split_predictions",
    "FIT_SPLIT",
]

_WORK = threading.RLock()


@contextmanager
def lab_work():
    """Run a Lab's work: one at a time across threads, with one torch thread (restored afterwards)."""
    with _WORK:
        threads = torch.get_num_threads()
        if threads != 1:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if threads != 1:
                torch.set_num_threads(threads)


class cached:  # noqa: N801 - used as a decorator, like functools.cached_property
    """A method whose results are kept per Lab instance, by argument (``functools.lru_cache`` per instance).

    ``@cached(maxsize=32)`` above ``def _piece(self, split, temperature)``: the arguments must be hashable (pass
    tuples, not lists).  The cache lives as long as the Lab.
    """

    def __init__(self, maxsize: int = 32):
        self.maxsize = maxsize
        self.fn = None
        self.name = None

    def __call__(self, fn):
        self.fn = fn
        functools.update_wrapper(self, fn)
        return self

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        bound = functools.lru_cache(maxsize=self.maxsize)(self.fn.__get__(obj, owner))
        obj.__dict__[self.name] = bound  # found before this (non-data) descriptor from now on
        return bound


class Lab(traitlets.HasTraits):
    """Base class.  A subclass names its ``State`` class and defines ``compute(state) -> result``; it may
    narrow settings to its data (``limits()``), give instance defaults (``defaults()``) and buttons
    (``BUTTONS`` and ``_press_<name>`` methods)."""

    State: ClassVar[type[LabState]] = LabState
    View: ClassVar[type | None] = None  # set by the View class (see LabView)
    BUTTONS: ClassVar[tuple[str, ...]] = ()

    status = traitlets.Unicode("", help="the last message for the learner; empty when all is well")
    result = traitlets.Any(None, help="what compute() returned for the current state")
    revision = traitlets.Int(0, help="bumped after every accepted change (what a View redraws on)")
    busy = traitlets.Unicode("", help="what the Lab is computing now, for a busy line; empty when idle")

    def __init__(self, state: LabState | None = None):
        super().__init__()
        with lab_work():
            if state is None:
                state = self.State(**self.defaults())
                state.limit(**self.limits())
            else:
                if not isinstance(state, self.State):
                    raise TypeError(f"state must be a {self.State.__name__}, got {type(state).__name__}")
                try:
                    state.limit(**self.limits())
                except ValueError as exc:
                    raise ValueError(f"state: {exc}") from None
            self.state = state
            self._quiet = False
            self._view = None
            self.result = self.compute(state)
        state.observe(self._on_state_change, names=state.settings())

    # -- to be provided by subclasses -------------------------------------------------------------------
    def compute(self, state: LabState):  # pragma: no cover - abstract
        raise NotImplementedError

    def limits(self) -> dict[str, tuple]:
        """Per-instance choices of settings (e.g. the splits this Lab's predictions hold)."""
        return {}

    def defaults(self) -> dict[str, Any]:
        """Settings of a new State that depend on the Lab's data (e.g. one weight per member)."""
        return {}

    # -- changing settings ------------------------------------------------------------------------------
    def set(self, **changes) -> bool:
        """Apply ``changes`` atomically.  Returns True if they were applied; else the State is unchanged,
        ``status`` says why, and False is returned."""
        with lab_work():
            unknown = sorted(set(changes) - set(self.state.settings()))
            if unknown:
                self.status = f"unknown setting(s) {unknown}; known: {self.state.settings()}"
                return False
            before = {name: getattr(self.state, name) for name in changes}
            self._quiet = True
            try:
                self.state.set_settings(**changes)
                result = self.compute(self.state)
            except (traitlets.TraitError, ValueError, TypeError) as exc:
                self._restore(before)
                self.status = _message(exc)
                return False
            finally:
                self._quiet = False
            self._accept(result)
            return True

    def press(self, button: str) -> bool:
        """Press one of ``BUTTONS``; returns whether it changed the State (else ``status`` says why)."""
        if button not in self.BUTTONS:
            self.status = f"unknown button {button!r}; use {', '.join(map(repr, self.BUTTONS))}"
            return False
        with lab_work():
            return bool(getattr(self, f"_press_{button.replace(' ', '_')}")())

    def _accept(self, result) -> None:
        self.result = result
        self.status = ""
        self.revision += 1

    def _on_state_change(self, change) -> None:
        """A setting was assigned directly (``lab.state.x = v``): recompute, or roll it back."""
        if self._quiet:
            return
        with lab_work():
            try:
                result = self.compute(self.state)
            except (ValueError, TypeError) as exc:
                self._restore({change.name: change.old})
                self.status = _message(exc)
                return
            self._accept(result)

    def _restore(self, values: dict[str, Any]) -> None:
        quiet, self._quiet = self._quiet, True
        try:
            with self.state.hold_trait_notifications():
                for name, value in values.items():
                    self.state.set_trait(name, value)
        finally:
            self._quiet = quiet

    # -- display ----------------------------------------------------------------------------------------
    @property
    def view(self):
        """The widget tree (built on first use, from ``type(self).View``)."""
        if self._view is None:
            if self.View is None:
                raise TypeError(
                    f"{type(self).__name__} has no View: import its package "
                    f"({type(self).__module__.rsplit('.', 1)[0]}) to join them"
                )
            with lab_work():
                self._view = self.View(self)
        return self._view

    @property
    def widget(self):
        return self.view.widget

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


class PredictionsLab(Lab):
    """A Lab over member predictions by split: fitted on ``val``, evaluated on any split the predictions hold
    (``split`` is limited to them and starts on ``test``).  A subclass calls :meth:`_use_predictions` in its
    ``__init__`` before ``super().__init__(state)``."""

    fit_split = FIT_SPLIT

    def _use_predictions(self, predictions) -> SplitPredictions:
        """Check ``predictions`` (see :func:`split_predictions`) and keep them: ``predictions``, ``k``,
        ``n_classes``, ``eval_splits``."""
        self.predictions = predictions
        self._data = split_predictions(predictions, FIT_SPLIT)
        self.k, self.n_classes = self._data.k, self._data.n_classes
        self.eval_splits = self._data.eval_splits
        return self._data

    def limits(self) -> dict[str, tuple]:
        return {"split": self._data.splits}

    def defaults(self) -> dict[str, Any]:
        return {"split": self._data.default_split}


def _message(exc: Exception) -> str:
    text = str(exc)
    return text if text else type(exc).__name__


@dataclass(frozen=True)
class SplitPredictions:
    """Member logits by split, checked: one split to fit on, the others to evaluate on.

    ``logits``: split -> ``(K, N_split, C)``; ``labels``: split -> ``(N_split,)``; ``eval_splits``: every split but
    ``fit_split``, in the predictions' order.
    """

    logits: dict
    labels: dict
    k: int
    n_classes: int
    fit_split: str
    eval_splits: tuple[str, ...]

    @property
    def default_split(self) -> str:
        """``"test"`` when there is one, else the first evaluation split."""
        return "test" if "test" in self.logits else self.eval_splits[0]

    @property
    def splits(self) -> tuple[str, ...]:
        """Every split a Lab may show: the evaluation splits, then the fit split (numbers there are in-sample)."""
        return (*self.eval_splits, self.fit_split)

    def split(self, name: str):
        """``(logits, labels)`` of split ``name``; a ValueError naming ``split`` if there is none."""
        if name not in self.logits:
            raise ValueError(f"split must be one of {', '.join(self.logits)}; got {name!r}")
        return self.logits[name], self.labels[name]


def split_predictions(predictions, fit_split: str = FIT_SPLIT) -> SplitPredictions:
    """Check ``predictions`` (``.logits``: split -> ``(K, N, C)``, ``.labels``: split -> ``(N,)``, e.g.
    ``zoo.ensemble_predictions(...)``) for a Lab: it must hold ``fit_split`` and at least one other split, all
    with the same K and C."""
    logits, labels = dict(predictions.logits), dict(predictions.labels)
    if fit_split not in logits:
        raise ValueError(f"predictions must contain a {fit_split!r} split to fit on; got splits {sorted(logits)}")
    shapes = {name: tuple(t.shape) for name, t in logits.items()}
    if any(len(s) != 3 for s in shapes.values()) or len({(s[0], s[2]) for s in shapes.values()}) != 1:
        raise ValueError(f"predictions.logits must be (K, N, C) tensors sharing K and C across splits, got {shapes}")
    bad = {
        name: tuple(labels[name].shape)
        for name in logits
        if tuple(labels.get(name, torch.empty(0)).shape) != (shapes[name][1],)
    }
    if bad:
        raise ValueError(
            f"predictions.labels must hold one (N,) label tensor per split, matching the logits; "
            f"got {bad} for logits {shapes}"
        )
    eval_splits = tuple(s for s in logits if s != fit_split)
    if not eval_splits:
        raise ValueError(f"predictions must contain a split to evaluate on besides {fit_split!r}")
    k, _, c = next(iter(shapes.values()))
    return SplitPredictions(logits, labels, k, c, fit_split, eval_splits)
