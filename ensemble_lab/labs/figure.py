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
        """Show the figure's current state (ipympl: already done by ``draw_idle``)."""
        if self.interactive:
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
