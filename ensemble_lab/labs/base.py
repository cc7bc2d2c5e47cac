"""What every Lab shares: a State of settings, a compute step, and error handling that keeps both consistent.

A Lab is headless first.  ``lab.state.x = v`` or ``lab.set(x=v)`` changes a setting and recomputes
``lab.result``; when the new setting is invalid (the trait's own validation or the computation refuses it),
the State is rolled back to what it was, ``lab.result`` is left untouched and ``lab.status`` holds the
message.  Widgets (the View) are built only when the Lab is displayed, and talk to the Lab through ``set``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import torch
import traitlets

from ..device import fit_threads_to_cpus

__all__ = ["LabState", "BinnedState", "Lab", "SplitPredictions", "split_predictions", "one_of", "positive"]


class LabState(traitlets.HasTraits):
    """All settings of one Lab, as traitlets.  Shareable: ``to_dict()``/``to_json()`` and back."""

    seed = traitlets.Int(0, help="seed for anything random the Lab does").tag(setting=True)

    def settings(self) -> list[str]:
        return sorted(self.trait_names(setting=True))

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
        """Set several settings at once (one notification per setting, after all are set)."""
        with self.hold_trait_notifications():
            for name, value in settings.items():
                setattr(self, name, value)


class BinnedState(LabState):
    """A State with the bins of ECE and the reliability diagram."""

    n_bins = traitlets.Int(15, help="bins of ECE and the reliability diagram").tag(setting=True)

    @traitlets.validate("n_bins")
    def _valid_bins(self, proposal):
        if not 1 <= proposal.value <= 1000:
            raise traitlets.TraitError(f"n_bins must be in [1, 1000], got {proposal.value}")
        return proposal.value


def one_of(value, name: str, choices):
    """For a trait validator: ``value`` if it is one of ``choices``, else a TraitError naming ``name``."""
    if value not in choices:
        raise traitlets.TraitError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def positive(value, name: str):
    """For a trait validator: ``value`` if it is a finite number > 0, else a TraitError naming ``name``."""
    if not (value > 0 and math.isfinite(value)):
        raise traitlets.TraitError(f"{name} must be a finite number > 0, got {value!r}")
    return value


class Lab(traitlets.HasTraits):
    """Base class: subclasses define ``compute(state) -> result`` and ``_build_view()``."""

    status = traitlets.Unicode("", help="the last message for the learner; empty when all is well")
    result = traitlets.Any(None, help="what compute() returned for the current state")

    def __init__(self, state: LabState, **kwargs):
        super().__init__(**kwargs)
        fit_threads_to_cpus()  # a Lab's many small updates suffer most from oversubscribed threads
        self.state = state
        self._quiet = False
        self._view = None
        self.result = self.compute(state)
        state.observe(self._on_state_change, names=state.settings())

    # -- to be provided by subclasses -------------------------------------------------------------------
    def compute(self, state: LabState):  # pragma: no cover - abstract
        raise NotImplementedError

    def _build_view(self):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- changing settings ------------------------------------------------------------------------------
    def set(self, **changes) -> bool:
        """Apply ``changes`` atomically.  Returns True if they were applied; else the State is unchanged,
        ``status`` says why, and False is returned."""
        unknown = sorted(set(changes) - set(self.state.settings()))
        if unknown:
            self.status = f"unknown setting(s) {unknown}"
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
        self.result = result
        self.status = ""
        return True

    def _on_state_change(self, change) -> None:
        """A setting was assigned directly (``lab.state.x = v``): recompute, or roll it back."""
        if self._quiet:
            return
        try:
            result = self.compute(self.state)
        except (ValueError, TypeError) as exc:
            self._restore({change.name: change.old})
            self.status = _message(exc)
            return
        self.result = result
        self.status = ""

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
        """The widget tree (built on first use)."""
        if self._view is None:
            self._view = self._build_view()
        return self._view

    @property
    def widget(self):
        return self.view.widget

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _message(exc: Exception) -> str:
    text = str(exc)
    # traitlets prefixes messages with "The 'x' trait of a Foo instance ..."; keep our own wording.
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

    def split(self, name: str):
        """``(logits, labels)`` of split ``name``; a ValueError naming ``split`` if there is none."""
        if name not in self.logits:
            raise ValueError(f"split must be one of {', '.join(self.logits)}; got {name!r}")
        return self.logits[name], self.labels[name]


def split_predictions(predictions, fit_split: str = "val") -> SplitPredictions:
    """Check ``predictions`` (``.logits``: split -> ``(K, N, C)``, ``.labels``: split -> ``(N,)``, e.g.
    ``zoo.ensemble_predictions(...)``) for a Lab: it must hold ``fit_split`` and at least one other split, all
    with the same K and C."""
    logits, labels = dict(predictions.logits), dict(predictions.labels)
    if fit_split not in logits:
        raise ValueError(f"predictions must contain a {fit_split!r} split to fit on; got splits {sorted(logits)}")
    shapes = {name: tuple(t.shape) for name, t in logits.items()}
    if any(len(s) != 3 for s in shapes.values()) or len({(s[0], s[2]) for s in shapes.values()}) != 1:
        raise ValueError(f"predictions.logits must be (K, N, C) tensors sharing K and C across splits, got {shapes}")
    bad = {name: tuple(labels[name].shape) for name in logits if tuple(labels.get(name, torch.empty(0)).shape)
           != (shapes[name][1],)}
    if bad:
        raise ValueError(f"predictions.labels must hold one (N,) label tensor per split, matching the logits; "
                         f"got {bad} for logits {shapes}")
    eval_splits = tuple(s for s in logits if s != fit_split)
    if not eval_splits:
        raise ValueError(f"predictions must contain a split to evaluate on besides {fit_split!r}")
    k, _, c = next(iter(shapes.values()))
    return SplitPredictions(logits, labels, k, c, fit_split, eval_splits)
