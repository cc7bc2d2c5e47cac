"""Accessible names, keyboard access and a visible focus ring for a Lab, in the browser.

ipywidgets 8 ties a Dropdown's or a Text's description to its input (``<label for=...>``), but not a slider's:
its handle (noUiSlider, ``role="slider"``) has no accessible name, its readout (an editable ``div``) neither, and
a log slider's handle announces the exponent (``aria-valuenow="0"`` for a temperature of 1.00).  An ipympl canvas
takes focus (``tabindex="0"``) and swallows every key (Tab, Shift+Tab, Escape included): a keyboard user who
lands on it is stuck.  Neither library offers an option for this (ipympl's ``capture_scroll`` concerns the
wheel only; ``header_visible``/``toolbar_visible`` are already off in :class:`~.figure.FigureBox`).

:class:`AccessibilityHelper` is a tiny anywidget, placed in every Lab's widget tree by
:class:`~ensemble_lab.labs.view.LabView`.  Its front end finds its Lab (the closest ``.el-lab``) and, whenever
the Lab's DOM changes (a ``MutationObserver``):

- names every slider handle and readout after the slider's description (``aria-labelledby`` the visible
  label, which gets an id) and sets the handle's ``aria-valuetext`` to what the readout shows (``"1.00"``, not
  the exponent);
- names toggle-button groups (``role="group"``) and a figure (``role="img"``, named by its one-line
  description, the ``.el-figure-description`` next to it); takes the figure's canvas out of the Tab order
  (``tabindex="-1"``) and lets Tab, Shift+Tab and Escape leave it when a click gave it focus;
- makes the Lab a landmark named after it (``role="region"``, e.g. "deep ensembles Lab");
- gives every focusable element a visible focus ring (3 px, high contrast, in ``CSS``), and underlines the
  links of the page's Markdown (JupyterLab tells them apart by colour alone: axe's "link-in-text-block").

Headless (tests, nbconvert) the helper is an ordinary widget with no view: nothing runs.

>>> AccessibilityHelper().layout.height
'0px'
"""

from __future__ import annotations

import traitlets

try:
    import anywidget

    _Base = anywidget.AnyWidget
except ImportError:  # pragma: no cover - anywidget is a dependency; without it the Labs work, unnamed
    import ipywidgets

    _Base = ipywidgets.Box

__all__ = ["AccessibilityHelper", "CSS", "ESM", "FOCUS_COLOR"]

FOCUS_COLOR = "#0b57d0"  # 7:1 against white; the ring adds a white halo so it shows on dark bars too

CSS = f"""
.el-lab :focus-visible,
.el-lab .noUi-handle:focus,
.el-lab .widget-readout:focus {{
  outline: 3px solid {FOCUS_COLOR} !important;
  outline-offset: 2px !important;
  box-shadow: 0 0 0 5px #ffffff !important;
}}
/* links in the notebook's text: told apart by more than colour (JupyterLab styles them by colour alone) */
.jp-RenderedHTMLCommon a:not(.jp-InternalAnchorLink) {{
  text-decoration: underline;
}}
.el-figure-description {{
  font-size: 0.9em;
  color: #333333;
  margin: 2px 0 8px 0;
}}
.el-lab .el-a11y {{
  width: 0; height: 0; margin: 0; padding: 0; overflow: hidden;
}}
"""

ESM = r"""
let counter = 0;
const uid = (prefix) => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
const text = (el) => (el ? el.textContent.replace(/\s+/g, ' ').trim() : '');
const set = (el, name, value) => {
  if (value === null || value === undefined || value === '') return;
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
};

function labelId(label) {
  if (!label || !text(label)) return null;
  if (!label.id) label.id = uid('el-label');
  return label.id;
}

function labelSliders(root) {
  for (const box of root.querySelectorAll('.widget-slider')) {
    const label = box.querySelector(':scope > .widget-label');
    const id = labelId(label);
    const name = text(label);
    const readout = box.querySelector(':scope > .widget-readout');
    for (const handle of box.querySelectorAll('.noUi-handle')) {
      if (id) set(handle, 'aria-labelledby', id);
      else set(handle, 'aria-label', 'slider');
      const shown = readout ? text(readout) : '';
      if (shown) set(handle, 'aria-valuetext', shown);
    }
    if (readout) {
      set(readout, 'role', 'textbox');
      set(readout, 'aria-label', name ? `${name} value` : 'value');
    }
  }
}

function labelGroups(root) {
  for (const box of root.querySelectorAll('.widget-toggle-buttons')) {
    const group = box.querySelector(':scope > div');
    const id = labelId(box.querySelector(':scope > .widget-label'));
    if (group && id) {
      set(group, 'role', 'group');
      set(group, 'aria-labelledby', id);
    }
  }
}

function describedBy(canvasDiv) {
  let node = canvasDiv;
  while (node && node !== document.body) {
    const caption = node.parentElement && node.parentElement.querySelector(':scope > .el-figure-description');
    if (caption) return caption;
    node = node.parentElement;
  }
  return null;
}

function releaseFigures(root) {
  for (const div of root.querySelectorAll('.jupyter-matplotlib-canvas-div')) {
    set(div, 'tabindex', '-1');
    set(div, 'role', 'img');
    const caption = describedBy(div);
    set(div, 'aria-label', caption ? text(caption) || 'figure' : 'figure');
    if (!div.dataset.elKeys) {
      div.dataset.elKeys = '1';
      // capture phase on the canvas's parent: runs before ipympl's listener, which swallows every key
      div.parentElement.addEventListener('keydown', (event) => {
        if (event.target !== div) return;
        if (event.key === 'Tab') event.stopPropagation();  // the browser moves focus on
        if (event.key === 'Escape') { event.stopPropagation(); div.blur(); }
      }, true);
    }
  }
}

function fix(root, name) {
  set(root, 'role', 'region');  // a landmark, named after the Lab
  set(root, 'aria-label', name || 'Lab');
  labelSliders(root);
  labelGroups(root);
  releaseFigures(root);
}

function render({ model, el }) {
  el.classList.add('el-a11y');
  el.setAttribute('aria-hidden', 'true');
  let observer = null, timer = null, frame = 0;
  const start = () => {
    const root = el.closest('.el-lab');
    if (!root) {
      if (frame++ < 600) timer = setTimeout(start, 50);  // not attached yet: try for 30 s
      return;
    }
    let queued = false;
    const run = () => { queued = false; fix(root, model.get('lab_name')); };
    run();
    observer = new MutationObserver(() => {
      if (!queued) { queued = true; requestAnimationFrame(run); }
    });
    observer.observe(root, {
      subtree: true, childList: true, characterData: true,
      attributes: true, attributeFilter: ['aria-valuenow', 'class', 'tabindex'],
    });
  };
  start();
  return () => { if (observer) observer.disconnect(); if (timer) clearTimeout(timer); };
}

export default { render };
"""


class AccessibilityHelper(_Base):
    """An invisible widget whose front end makes its Lab's controls and figures accessible (see the module)."""

    _esm = ESM
    _css = CSS
    lab_name = traitlets.Unicode("", help="the Lab's name, for its landmark (e.g. 'deep ensembles Lab')").tag(sync=True)

    def __init__(self, **kwargs):
        kwargs.setdefault("layout", {"height": "0px", "width": "0px", "margin": "0px", "overflow": "hidden"})
        super().__init__(**kwargs)
