"""A matplotlib figure as a widget.

With the ipympl backend (``%matplotlib widget``) the figure's canvas *is* a widget: artists are updated in
place and ``draw_idle`` sends only a new image.  With any other backend (inline, Agg in tests) the figure is
shown in an ``Output`` widget and re-displayed on ``refresh()`` when running inside IPython.
"""

from __future__ import annotations

import ipywidgets as widgets


class FigureBox:
    def __init__(self, fig):
        self.fig = fig
        canvas = fig.canvas
        self.interactive = isinstance(canvas, widgets.DOMWidget)
        if self.interactive:
            canvas.header_visible = False
            canvas.toolbar_visible = False
            canvas.resizable = False
            self.widget = canvas
        else:
            self.widget = widgets.Output()
        self.widget.add_class("el-figure")

    def refresh(self) -> None:
        """Show the figure's current state (ipympl: already drawn by ``draw_idle``; see below)."""
        if self.interactive:
            self._repair_snapshot()
            return
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython comes with ipywidgets
            return
        if get_ipython() is None:
            return
        from IPython.display import display

        with self.widget:
            self.widget.clear_output(wait=True)
            display(self.fig)

    def _repair_snapshot(self) -> None:
        """Work around an ipympl 0.10 bug for canvases drawn before their frontend is ready.

        Until the browser side says "initialized" (during Run All, or under nbconvert), ipympl stores each draw
        as the canvas's ``_data_url`` *without* the ``data:image/png;base64,`` prefix, and a canvas nested in a
        layout never sets its pixel ``_size``; the browser then fails with "drawImage ... 'broken' state" and
        shows nothing (matplotlib/ipympl#472).  Restore the prefix and the size.
        """
        canvas = self.widget
        url = getattr(canvas, "_data_url", None)
        if isinstance(url, str) and url and not url.startswith("data:"):
            canvas._data_url = "data:image/png;base64," + url
        if tuple(getattr(canvas, "_size", (1, 1))) == (0, 0):
            dpi = self.fig.get_dpi()
            canvas._size = (self.fig.get_figwidth() * dpi, self.fig.get_figheight() * dpi)
