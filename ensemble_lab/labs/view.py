"""What every Lab's View shares: controls linked to settings, a status line, a layout that wraps, and redraws
that show the State and nothing else.

A View subclass names its Lab (``class DemoView(LabView, lab=DemoLab)``, which joins the pair) and fills three
hooks: :meth:`LabView.build` creates controls (with :meth:`bind`, :meth:`link`, :meth:`button`) and drawings,
:meth:`controls` and :meth:`outputs` list what goes in the two columns, and :meth:`draw` shows a result.  The
base owns the rest:

- **One way in.** A control sends its value through ``lab.set``; when the Lab refuses, the control is put back
  to the State's value and the message goes to the status line.
- **No echoes.** A value that the front end sends back only because it rounded what the View had sent (a
  slider's step, a log slider's exponent step, a readout's format, or float noise of its step arithmetic, such
  as 0.5000000000000004 for 0.5) is not a learner's change: it never reaches the State, and a late echo of an
  older value is overwritten by the State's current one.
- **One redraw per cell.** After each accepted change the View shows the State (every control) and redraws.  When
  a cell drives the Lab (``lab.set`` in a loop), that happens once, after the cell has run, instead of once per
  change; a control's own change redraws at once.
- **A busy line.** ``lab.busy`` (a long recompute) shows in the status line as progress, not as a warning.
"""

from __future__ import annotations

import contextlib
import html
import math
from collections import deque
from collections.abc import Callable, Sequence

import ipywidgets as w

from . import page
from .accessibility import AccessibilityHelper
from .base import lab_work
from .figure import LabFigure

__all__ = ["LabView", "table_html", "pct", "split_options", "control_rounding"]

CONTROLS_WIDTH = 340  # px: the controls column; the outputs column takes what is left, or wraps below


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal: ``0.1234 -> '12.3%'``.

    >>> pct(0.1234)
    '12.3%'
    """
    return f"{100 * x:.1f}%"


def split_options(eval_splits: Sequence[str], fit_split: str) -> list[tuple[str, str]]:
    """Dropdown options for the evaluation split: every evaluation split, then the split the Lab fits on,
    labelled as such (numbers on it are in-sample).

    >>> split_options(["test", "noise-3"], "val")
    [('test', 'test'), ('noise-3', 'noise-3'), ('val (fitted on it)', 'val')]
    """
    return [(s, s) for s in eval_splits] + [(f"{fit_split} (fitted on it)", fit_split)]


def table_html(
    header: Sequence[str], rows: dict[str, Sequence[str]], css_class: str = "el-table", bold: Sequence[str] = ()
) -> str:
    """A small HTML table: ``header`` names the columns after the row names; ``rows`` maps a row name to its
    (already formatted) cells.  Rows named in ``bold`` are bold (class ``el-bold``).  Everything is HTML-escaped."""
    cell = "padding:2px 8px"
    # the corner cell is a td: an empty th is a header without a name (axe: empty-table-header)
    head = f"<td style='{cell}'></td>" + "".join(f"<th style='{cell}'>{html.escape(h)}</th>" for h in header)
    body = []
    for name, cells in rows.items():
        mark = " class='el-bold' style='font-weight:bold'" if name in bold else ""
        body.append(
            f"<tr{mark}><td style='{cell}'>{html.escape(name)}</td>"
            + "".join(f"<td style='{cell};text-align:right'>{html.escape(c)}</td>" for c in cells)
            + "</tr>"
        )
    return (
        f"<div style='overflow-x:auto;max-width:100%'><table class='{css_class}'><tr>{head}</tr>"
        f"{''.join(body)}</table></div>"
    )


def control_rounding(control, value) -> list:
    """The values a front end may send back for ``value`` after rounding it to ``control``'s step or readout
    (empty when it shows ``value`` as it is).

    >>> control_rounding(w.FloatSlider(min=0, max=1, step=0.01, readout_format=".2f"), 0.123456)
    [0.12]
    >>> control_rounding(w.FloatSlider(min=0, max=1, step=0.01), 0.25)
    []
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return []
    out = []
    if isinstance(control, w.FloatLogSlider):
        if value > 0:
            step = control.step
            exponent = math.log(value, control.base)
            out.append(control.base ** (control.min + round((exponent - control.min) / step) * step))
    elif isinstance(control, (w.FloatSlider, w.IntSlider)) and control.step:
        lo, step = control.min, control.step
        out.append(min(control.max, max(lo, lo + round((value - lo) / step) * step)))
    fmt = getattr(control, "readout_format", None)
    if isinstance(control, (w.FloatSlider, w.FloatLogSlider)) and fmt:
        with contextlib.suppress(ValueError):
            out.append(float(format(value, fmt)))
    return [v for v in dict.fromkeys(out) if not _close(v, value)]


def _close(a, b) -> bool:
    return abs(a - b) <= 1e-7 * max(1.0, abs(a), abs(b))


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class _Link:
    """A control and the two directions: ``get(state)`` -> what it shows, ``put(value)`` -> the changes."""

    def __init__(self, control, get: Callable, put: Callable):
        self.control, self.get, self.put = control, get, put
        self.echoes: deque = deque(maxlen=8)  # roundings of recent pushes the front end may still send back
        self.pushed = None


class LabView:
    """Base of a Lab's View.  Subclasses: ``class DemoView(LabView, lab=DemoLab)`` and the hooks below."""

    CSS_NAME = "lab"  # the Lab's CSS class: el-<CSS_NAME>

    def __init_subclass__(cls, lab=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if lab is not None:
            lab.View = cls  # the one place a Lab and its View are joined

    def __init__(self, lab):
        self.lab = lab
        self._syncing = False
        self._driving = False
        self._pending = False
        self._links: list[_Link] = []
        self.status = w.HTML(layout=w.Layout(min_height="1.6em"))
        self.status.add_class("el-status")
        self.build()
        self.figures = [v for v in vars(self).values() if isinstance(v, LabFigure)]
        body = w.HBox(
            [
                w.VBox(
                    self.controls(),
                    layout=w.Layout(flex="0 0 auto", width=f"{CONTROLS_WIDTH}px", margin="0 16px 8px 0"),
                ),
                w.VBox(
                    self.outputs(), layout=w.Layout(flex="1 1 auto", min_width="0", max_width="100%", overflow="auto")
                ),
            ],
            layout=w.Layout(flex_flow="row wrap", align_items="flex-start", width="100%"),
        )
        # the accessibility helper: names the controls and figures in the browser (labs/accessibility.py)
        self.a11y = AccessibilityHelper(lab_name=f"{self.CSS_NAME.replace('-', ' ')} Lab")
        self._build_challenges_and_link()
        self.widget = w.VBox(
            [self.status, self.challenge_panel, body, self.link_row, self.a11y],
            layout=w.Layout(width="100%", max_width="100%"),
        )
        self.widget.add_class("el-lab")
        self.widget.add_class(f"el-{self.CSS_NAME}")
        self.refresh()
        for figure in self.figures:
            figure.freeze()
        lab.observe(self._on_revision, names="revision")
        lab.observe(lambda change: self.show_status(), names=["status", "busy"])

    # -- hooks for subclasses ---------------------------------------------------------------------------
    def build(self) -> None:
        """Create the controls, outputs and drawings (every :class:`LabFigure` attribute is laid out and drawn
        once the first result is shown)."""

    def controls(self) -> list:
        """The left column's widgets, top to bottom."""
        return []

    def outputs(self) -> list:
        """The right column's widgets (it wraps below the controls when the notebook is narrow)."""
        return []

    def draw(self, result) -> None:
        """Show ``result`` (tables and drawings; controls are synced by the base)."""

    # -- linking controls -------------------------------------------------------------------------------
    def bind(self, name: str, control: w.ValueWidget) -> w.ValueWidget:
        """Link ``control`` to setting ``name`` one-to-one (and give it the CSS class ``el-<name>``)."""
        return self.link(control, lambda s: getattr(s, name), lambda v: {name: v}, css=name)

    def link(self, control, get: Callable, put: Callable, css: str | None = None):
        """Link ``control``: it shows ``get(state)``; a learner's new value ``v`` sends ``lab.set(**put(v))``.
        ``put`` may raise ValueError (a message for the status line)."""
        if css:
            control.add_class(f"el-{css.replace('_', '-')}")
        link = _Link(control, get, put)
        self._links.append(link)
        control.observe(lambda change: self._from_control(link, change.new), names="value")
        self._push(link)
        return control

    def unlink(self, control) -> None:
        """Forget ``control`` (it no longer shows the State nor sends changes)."""
        self._links = [link for link in self._links if link.control is not control]
        control.unobserve_all("value")

    def html(self, css: str) -> w.HTML:
        """An HTML output with the CSS class ``el-<css>`` (for the browser tests)."""
        out = w.HTML()
        out.add_class(f"el-{css}")
        return out

    def button(
        self, key: str, label: str, tooltip: str = "", on_click: Callable | None = None, width: str = "105px"
    ) -> w.Button:
        """A button with the CSS class ``el-<key>``; by default it presses the Lab's button ``key``."""
        b = w.Button(description=label, tooltip=tooltip, layout=w.Layout(width=width))
        b.add_class(f"el-{key.replace(' ', '-')}")
        action = on_click or (lambda: self.lab.press(key))
        b.on_click(lambda _b: self.drive(action))
        return b

    # -- widgets -> lab ---------------------------------------------------------------------------------
    def drive(self, action: Callable):
        """Run ``action`` (which changes the Lab) as the learner's: the View redraws at once."""
        with lab_work():
            driving, self._driving = self._driving, True
            try:
                return action()
            finally:
                self._driving = driving

    def send(self, **changes) -> bool:
        """Ask the Lab to apply ``changes``; if it refuses, the controls show the State again."""
        ok = self.drive(lambda: self.lab.set(**changes))
        if not ok:
            self.sync_controls()
        return ok

    def _from_control(self, link: _Link, value) -> None:
        if self._syncing:
            return
        with lab_work():
            if _is_number(value) and _is_number(link.pushed) and _close(value, link.pushed):
                return  # the value sent, back with float noise (a front end's step arithmetic): no one moved it
            for echo in link.echoes:
                if _close(echo, value):
                    link.echoes.remove(echo)
                    if not any(_close(value, v) for v in (link.pushed, *control_rounding(link.control, link.pushed))):
                        self._push(link)  # a late echo of an older value: show the State's current one
                    return
            try:
                changes = link.put(value)
            except ValueError as exc:
                self.lab.status = str(exc)
                self.sync_controls()
                return
            self.send(**changes)

    # -- lab -> widgets ---------------------------------------------------------------------------------
    def _push(self, link: _Link) -> None:
        value = link.get(self.lab.state)
        before = link.control.value
        syncing, self._syncing = self._syncing, True
        try:
            link.control.value = value
        finally:
            self._syncing = syncing
        link.pushed = link.control.value  # after the widget's own coercion (a slider clips to its range)
        if link.pushed != before:  # only a value sent to the front end can come back rounded
            link.echoes.extend(control_rounding(link.control, link.pushed))

    def sync_controls(self) -> None:
        """Make every linked control show the State."""
        for link in self._links:
            self._push(link)

    def _on_revision(self, change) -> None:
        shell = _ipython_running()
        if self._driving or shell is None:
            self.refresh()
        elif not self._pending:  # a cell drives the Lab: redraw once, when the cell is done
            self._pending = True
            shell.events.register("post_execute", self._flush)

    def _flush(self) -> None:
        ip = _ipython_running()
        if ip is not None:
            ip.events.unregister("post_execute", self._flush)
        self._pending = False
        self.refresh()

    def refresh(self) -> None:
        """Show the State in every control, the result in every output, the challenges and the status."""
        with lab_work():
            self.sync_controls()
            self.draw(self.lab.result)
            self.show_challenges()
            if self.link_text:
                self.show_link()
            self.show_status()

    # -- challenges and the link row ----------------------------------------------------------------------
    def _build_challenges_and_link(self) -> None:
        """The challenge panel (under the status line; hidden when the Lab has none) and the "copy link" row."""
        self.challenge_panel = w.HTML(layout=w.Layout(display="" if self.lab.CHALLENGES else "none"))
        self.challenge_panel.add_class("el-challenges")
        self.link_text = ""
        self.link_button = w.Button(
            description="copy link",
            icon="link",
            tooltip="a link that reopens this Lab in its current state (Lab.from_link, or ?lab= on the page's URL)",
            layout=w.Layout(width="105px"),
        )
        self.link_button.add_class("el-copy-link")
        self.link_button.on_click(lambda _b: self.copy_link())
        self.link_field = w.HTML(layout=w.Layout(flex="1 1 auto", min_width="0"))
        self.link_field.add_class("el-link")
        self.clipboard = page.clipboard()  # None without anywidget: the field still shows the link to copy
        row = [self.link_button, self.link_field] + ([self.clipboard] if self.clipboard is not None else [])
        self.link_row = w.HBox(row, layout=w.Layout(width="100%", max_width="100%", align_items="center"))
        self.link_row.add_class("el-link-row")

    def show_challenges(self) -> None:
        """Each goal with its progress; a solved one is marked with ✓ and the word "solved" (not colour alone)."""
        items = []
        for challenge, solved, progress in self.lab.challenge_status():
            mark = "<b style='color:#1b5e20'>✓ solved</b>" if solved else "<span style='color:#424242'>○ open</span>"
            css = "el-challenge el-solved" if solved else "el-challenge el-open"
            items.append(
                f"<li class='{css}' data-key='{html.escape(challenge.key)}'"
                f" style='margin:2px 0'>{mark} <b>{html.escape(challenge.title)}</b>: {html.escape(challenge.goal)}"
                f"<br><small class='el-progress'>{html.escape(progress)}</small></li>"
            )
        self.challenge_panel.value = (
            "<div role='group' aria-label='challenges'><b>Challenges</b>"
            f"<ul style='margin:2px 0 6px 0;padding-left:1.2em;list-style:none'>{''.join(items)}</ul></div>"
            if items
            else ""
        )

    def show_link(self) -> None:
        """Fill the read-only link field with the current State's link."""
        self.link_text = self.lab.link()
        self.link_field.value = (
            "<input type='text' readonly aria-label=\"link to this Lab's state\" "
            f"style='width:100%;font-family:monospace;font-size:11px' value='{html.escape(self.link_text)}' "
            ">"
        )

    def copy_link(self) -> str:
        """Show the current link in the field and, where the page allows it, copy it to the clipboard."""
        self.show_link()
        if self.clipboard is not None:
            self.clipboard.copy(self.link_text)
        return self.link_text

    def show_status(self) -> None:
        """The status line: the Lab's message (a warning), what it is computing (progress), or ok."""
        message = self.lab.status
        if self.lab.busy:
            self.status.value = f"<span style='color:#1565c0'>⏳ {html.escape(self.lab.busy)}</span>"
        elif message:
            self.status.value = f"<span style='color:#b00020'>⚠ {html.escape(message)}</span>"
        else:
            self.status.value = "<span style='color:#2e7d32'>ok</span>"


def _ipython_running():
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return None
    return get_ipython()
