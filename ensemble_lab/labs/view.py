"""What every Lab's View shares: controls bound to settings, a status line, and an HTML table helper.

A control bound with :meth:`LabView.bind` sends its new value through ``lab.set``; when the Lab refuses it, the
control is put back to the State's value (the message is in the status line).  When the State changes from
elsewhere (a button, code, a refused entry), :meth:`LabView.sync_controls` makes every control show it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets as w

__all__ = ["LabView", "table_html", "pct", "split_options"]


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal: ``0.1234 -> '12.3%'``."""
    return f"{100 * x:.1f}%"


def split_options(eval_splits: Sequence[str], fit_split: str) -> list[tuple[str, str]]:
    """Dropdown options for the evaluation split: every evaluation split, then the split the Lab fits on,
    labelled as such (numbers on it are in-sample)."""
    return [(s, s) for s in eval_splits] + [(f"{fit_split} (fitted on it)", fit_split)]


def table_html(header: Sequence[str], rows: dict[str, Sequence[str]], css_class: str = "el-table",
               bold: Sequence[str] = ()) -> str:
    """A small HTML table: ``header`` names the columns after the row names; ``rows`` maps a row name to its
    (already formatted) cells.  Row names in ``bold`` are bold.  Everything is HTML-escaped."""
    cell = "padding:2px 8px"
    head = "".join(f"<th style='{cell}'>{html.escape(h)}</th>" for h in ("", *header))
    body = []
    for name, cells in rows.items():
        style = "font-weight:bold" if name in bold else ""
        body.append(f"<tr style='{style}'><td style='{cell}'>{html.escape(name)}</td>"
                    + "".join(f"<td style='{cell};text-align:right'>{html.escape(c)}</td>" for c in cells)
                    + "</tr>")
    return f"<table class='{css_class}'><tr>{head}</tr>{''.join(body)}</table>"


class LabView:
    """Base of a Lab's View: ``self.lab``, ``self.status`` (an HTML line) and bound controls."""

    def __init__(self, lab):
        self.lab = lab
        self._syncing = False
        self._bound: dict[str, w.ValueWidget] = {}
        self.status = w.HTML()
        self.status.add_class("el-status")
        lab.observe(lambda change: self.show_status(change.new), names="status")
        lab.state.observe(self.sync_controls, names=lab.state.settings())

    def bind(self, name: str, control: w.ValueWidget) -> w.ValueWidget:
        """Link ``control`` to setting ``name`` (and give it the CSS class ``el-<name>``)."""
        control.add_class(f"el-{name.replace('_', '-')}")
        control.observe(lambda change: self.send(name, change.new), names="value")
        self._bound[name] = control
        return control

    def send(self, name: str, value) -> None:
        """A control changed: ask the Lab to apply it, and put the controls back if it refuses."""
        if self._syncing:
            return
        if not self.lab.set(**{name: value}):
            self.sync_controls()

    def sync_controls(self, change=None) -> None:
        """Make every bound control show the State (subclasses extend :meth:`_sync_extra`)."""
        self._syncing = True
        try:
            for name, control in self._bound.items():
                control.value = getattr(self.lab.state, name)
            self._sync_extra()
        finally:
            self._syncing = False

    def _sync_extra(self) -> None:
        """Controls that do not map one-to-one onto a setting."""

    def show_status(self, message: str) -> None:
        self.status.value = (f"<span style='color:#b00020'>⚠ {html.escape(message)}</span>" if message
                             else "<span style='color:#2e7d32'>ok</span>")
