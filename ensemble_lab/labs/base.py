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

import contextvars
import functools
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import traitlets

from . import links
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
_LABS: dict[str, type] = {}  # KEY -> Lab class, for links (filled as Lab modules are imported)
_OPENING: contextvars.ContextVar = contextvars.ContextVar("opening_link", default=None)  # see Lab.from_link


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
    (``BUTTONS`` and ``_press_<name>`` methods).  A concrete Lab names its ``KEY`` (what its links call it,
    :mod:`ensemble_lab.labs.links`) and its ``CHALLENGES`` (:mod:`ensemble_lab.labs.challenges`)."""

    State: ClassVar[type[LabState]] = LabState
    View: ClassVar[type | None] = None  # set by the View class (see LabView)
    BUTTONS: ClassVar[tuple[str, ...]] = ()
    KEY: ClassVar[str] = ""  # the Lab's name in its links ("" for a base class: it has none)
    CHALLENGES: ClassVar[tuple] = ()  # goals shown in the Lab (Challenge objects)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        key = vars(cls).get("KEY", "")
        if key:
            known = _LABS.get(key)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"KEY {key!r} of {cls.__name__} is already the key of {known.__name__}")
            _LABS[key] = cls

    status = traitlets.Unicode("", help="the last message for the learner; empty when all is well")
    result = traitlets.Any(None, help="what compute() returned for the current state")
    revision = traitlets.Int(0, help="bumped after every accepted change (what a View redraws on)")
    busy = traitlets.Unicode("", help="what the Lab is computing now, for a busy line; empty when idle")

    def __init__(self, state: LabState | None = None):
        super().__init__()
        opening, token = _OPENING.get(), None
        if opening is not None:
            token = _OPENING.set(None)  # consumed: a Lab built inside this one opens no link
        try:
            self._setup(state, opening)
        finally:
            if token is not None:
                _OPENING.reset(token)
        self.state.observe(self._on_state_change, names=self.state.settings())

    def _setup(self, state: LabState | None, opening: dict | None) -> None:
        with lab_work():
            if opening is not None:
                if state is not None:
                    raise ValueError("state: give a link or a state, not both")
                state = self._state_from_link(opening)
                self.state = state
                self._quiet = False
                self._view = None
                try:
                    self.result = self.compute(state)
                except (ValueError, TypeError) as exc:
                    raise ValueError(f"link: its settings do not fit this Lab's data: {_message(exc)}") from None
                return
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

    # -- to be provided by subclasses -------------------------------------------------------------------
    def compute(self, state: LabState):  # pragma: no cover - abstract
        raise NotImplementedError

    def limits(self) -> dict[str, tuple]:
        """Per-instance choices of settings (e.g. the splits this Lab's predictions hold)."""
        return {}

    def defaults(self) -> dict[str, Any]:
        """Settings of a new State that depend on the Lab's data (e.g. one weight per member)."""
        return {}

    # -- links ------------------------------------------------------------------------------------------
    def _default_settings(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(every setting of a new State on this data, the data-dependent defaults as the State holds them)``."""
        data_defaults = self.defaults()
        fresh = self.State(**data_defaults)
        return fresh.to_dict(), {name: getattr(fresh, name) for name in sorted(data_defaults)}

    def link(self) -> str:
        """The current State as a short URL-safe string (:mod:`~ensemble_lab.labs.links`): reopen it with
        ``type(lab).from_link(text, <the same data>)``, or ``Lab.from_link(text, <the same data>)``."""
        if not self.KEY:
            raise TypeError(f"{type(self).__name__} has no KEY, so it cannot make links")
        defaults, data_defaults = self._default_settings()
        return links.encode_link(self.KEY, self.state.to_dict(), defaults, data_defaults)

    @classmethod
    def from_link(cls, text: str, *data, **data_kwargs) -> Lab:
        """The Lab named in link ``text``, built on ``data`` (the constructor's arguments, e.g. the same
        predictions) and set to the link's State.

        ``Lab.from_link`` opens any Lab's link; ``SomeLab.from_link`` refuses a link of another Lab.  A link holds
        settings, not data (see :mod:`~ensemble_lab.labs.links` for why): give the data the Lab was built on.  A
        garbled link, an unknown version, a link made on data with other defaults, or settings this data cannot
        take: a ValueError naming ``link`` that says which.
        """
        decoded = links.decode_link(text)
        klass = _LABS.get(decoded["key"])
        if klass is None:
            raise ValueError(f"link names an unknown Lab {decoded['key']!r}; known: {', '.join(sorted(_LABS))}")
        if not issubclass(klass, cls):
            raise ValueError(f"link is a link of {klass.__name__}, not of {cls.__name__}")
        if "state" in data_kwargs:
            raise ValueError("state: give a link or a state, not both")
        token = _OPENING.set(decoded)
        try:
            return klass(*data, **data_kwargs)
        finally:
            _OPENING.reset(token)

    def _state_from_link(self, decoded: dict) -> LabState:
        """A new State: this data's defaults with the link's settings (refused with a ValueError naming ``link``)."""
        defaults, data_defaults = self._default_settings()
        if decoded["digest"] != links.defaults_digest(data_defaults):
            raise ValueError(
                "link was made on other data (its Lab's defaults, e.g. the number of members, differ from this "
                "data's): open it on the data it was made on"
            )
        settings = decoded["settings"]
        unknown = sorted(set(settings) - set(defaults))
        if unknown:
            raise ValueError(f"link has unknown setting(s) {unknown} for {type(self).__name__}")
        try:
            state = self.State(**{**defaults, **settings})
            state.limit(**self.limits())
        except (traitlets.TraitError, ValueError, TypeError) as exc:
            raise ValueError(f"link: its settings do not fit this Lab's data: {_message(exc)}") from None
        return state

    def apply_link(self, text: str) -> bool:
        """Set this Lab to the State of link ``text`` (a link of this Lab, made on the same data).  A bad link: a
        ValueError naming ``link``; settings the Lab refuses: False, with ``status`` saying why."""
        decoded = links.decode_link(text)
        if decoded["key"] != self.KEY:
            klass = _LABS.get(decoded["key"])
            named = klass.__name__ if klass else f"an unknown Lab {decoded['key']!r}"
            raise ValueError(f"link is a link of {named}, not of {type(self).__name__}")
        state = self._state_from_link(decoded)
        return self.set(**state.to_dict())

    def open_link_from_url(self) -> bool | None:
        """Apply ``?lab=<link>`` from the page's URL, where the front end tells it; a no-op elsewhere.

        - Voila: the kernel's environment holds the page request's query string (``QUERY_STRING``, Voila's
          documented request info), so the link is applied at once: True if one was applied, False if there was
          none or it was refused (``status`` says why).
        - JupyterLab / Notebook 7 (and Voila too): the kernel cannot see the page's URL; when ``anywidget`` is
          installed, a tiny invisible widget is displayed whose front end reads ``window.location.search`` and
          sends it back; the link is applied when that message arrives (after the cell has run).  Returns None.
        - No front end (a script, a test, nbconvert): nothing happens; returns False.
        """
        query = _voila_query()
        if query is not None:
            return self._open_query(query)
        from . import page

        return None if page.read_page_query(self._open_query) else False

    def _open_query(self, query: str) -> bool:
        text = links.link_from_query(query)
        if not text:
            return False
        try:
            return self.apply_link(text)
        except (TypeError, ValueError) as exc:
            self.status = f"the page's link was not opened: {_message(exc)}"
            return False

    @contextmanager
    def working(self, what: str, *, progress: bool = False):
        """Show ``what`` in the busy line while the block runs (and, with ``progress``, as a one-step progress bar
        that completes when the block does); the busy line is cleared however the block ends."""
        self.busy = what
        bar = None
        try:
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=1, desc=what.rstrip("…"), leave=False)
            yield
            if bar is not None:
                bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            self.busy = ""

    def challenge_status(self) -> list[tuple[Any, bool, str]]:
        """``[(challenge, solved, progress text), ...]`` for the current result and State, one per challenge."""
        return [c.status(self.result, self.state) for c in self.CHALLENGES]

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


def _voila_query() -> str | None:
    """The page request's query string when this kernel serves a Voila page (Voila puts the request in the
    kernel's environment: ``SERVER_SOFTWARE`` is ``voila/<version>``), else None."""
    if not os.environ.get("SERVER_SOFTWARE", "").startswith("voila"):
        return None
    return os.environ.get("QUERY_STRING", "")
