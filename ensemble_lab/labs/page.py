"""What the browser page can do for a Lab, through public front-end APIs: tell the kernel its URL's query string,
and copy a text to the clipboard.

Both are tiny invisible `anywidget <https://anywidget.dev>`_ widgets (an ES module run by the page): the kernel
side of Jupyter cannot see the page's URL nor its clipboard, but a widget's front end can read
``window.location.search`` and call ``navigator.clipboard.writeText``.  Without anywidget, or without a front end
(a script, a test, nbconvert), they do nothing: :func:`read_page_query` returns False and :func:`clipboard` None.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["read_page_query", "clipboard", "has_front_end"]

_QUERY_ESM = """
function render({ model, el }) {
  el.style.display = "none";
  model.set("query", window.location.search || "?");
  model.save_changes();
}
export default { render };
"""

_CLIPBOARD_ESM = """
function render({ model, el }) {
  el.style.display = "none";
  model.on("msg:custom", (msg) => {
    if (!msg || typeof msg.copy !== "string") return;
    const done = (ok) => model.send({ copied: ok });
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(msg.copy).then(() => done(true), () => done(false));
    } else {
      done(false);
    }
  });
}
export default { render };
"""


def has_front_end() -> bool:
    """Whether this code runs in a kernel that displays widgets (an IPython kernel, not a plain script)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _anywidget():
    try:
        import anywidget
    except ImportError:
        return None
    return anywidget


def read_page_query(callback: Callable[[str], object]) -> bool:
    """Display an invisible widget that sends the page's ``window.location.search`` to the kernel, where
    ``callback(query)`` gets it (once, when the front end has rendered it: after the current cell).  Returns
    whether a widget was displayed (False without a front end or without anywidget)."""
    anywidget = _anywidget()
    if anywidget is None or not has_front_end():
        return False
    import traitlets
    from IPython.display import display

    class PageQuery(anywidget.AnyWidget):
        _esm = _QUERY_ESM
        query = traitlets.Unicode("").tag(sync=True)

    reader = PageQuery()
    done = []

    def on_query(change):
        if change.new and not done:
            done.append(True)
            callback(change.new)

    reader.observe(on_query, names="query")
    display(reader)
    return True


def clipboard():
    """A hidden widget with ``copy(text)``: the page copies ``text`` to the clipboard (where the browser allows
    it: a secure context, soon after a click); ``copied`` becomes True or False when it answers.  None without
    anywidget."""
    anywidget = _anywidget()
    if anywidget is None:
        return None
    import traitlets

    class Clipboard(anywidget.AnyWidget):
        _esm = _CLIPBOARD_ESM
        copied = traitlets.Bool(None, allow_none=True)

        def copy(self, text: str) -> None:
            self.copied = None
            self.send({"copy": text})

        def _on_reply(self, _widget, content, _buffers):
            if isinstance(content, dict) and "copied" in content:
                self.copied = bool(content["copied"])

    widget = Clipboard()
    widget.on_msg(widget._on_reply)
    widget.layout.display = "none"
    return widget
