"""A Lab's figure: a matplotlib figure as a widget, laid out once, redrawn by blitting.

With the ipympl backend (``%matplotlib widget``) the figure's canvas *is* a widget: artists are updated in
place and only a new image is sent.  With any other backend (inline, Agg in tests) the figure is shown in an
``Output`` widget and re-displayed on ``refresh()`` when running inside IPython.

:class:`LabFigure` is what a View uses: it creates the figure (``plots.mosaic_figure``), draws nothing until
:meth:`LabFigure.freeze` has laid it out once (a draw before that can leave an ipympl figure blank in the
browser), and then shows each update by blitting the drawings' artists, or by one full draw when the artists
changed or a drawing asked for one (an axis range or a title moved).
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..plots import mosaic_figure

__all__ = ["LabFigure", "FigureBox", "BlitManager", "freeze_layout"]


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


def freeze_layout(fig) -> None:
    """Lay the figure out once (constrained layout) and keep those positions for every later draw.

    Constrained layout costs about half of a redraw; a Lab's plots keep their size, so once is enough.
    """
    fig.canvas.draw()
    fig.set_layout_engine("none")


class BlitManager:
    """Redraw only the artists that change, over a cached background (matplotlib's blitting pattern).

    The managed artists are marked animated, so a full draw leaves them out; after every full draw (first
    display, a resize, a browser refresh) the static background is captured and the artists are drawn on top.
    ``update()`` restores that background and draws just the artists: a few ms instead of re-rendering every
    tick label.  Works with any Agg-based canvas (ipympl, inline, Agg).
    """

    def __init__(self, canvas, artists=()):
        self.canvas = canvas
        self._background = None
        self._artists: list = []
        self.set_artists(artists)
        canvas.mpl_connect("draw_event", self._on_draw)

    def set_artists(self, artists) -> bool:
        """Manage ``artists``; returns True if they differ from before (a full draw is then needed)."""
        artists = list(artists)
        changed = len(artists) != len(self._artists) or any(
            a is not b for a, b in zip(artists, self._artists, strict=False)
        )
        for a in artists:
            a.set_animated(True)
        self._artists = artists
        return changed

    def _on_draw(self, event) -> None:
        self._background = self.canvas.copy_from_bbox(self.canvas.figure.bbox)
        self._draw_artists()

    def _draw_artists(self) -> None:
        """Draw the managed artists onto the canvas, leaving the figure as fresh (or as stale) as it was.

        Drawing some artists marks their parts stale (a legend re-positions its children as it draws), and the
        mark climbs to the axes and the figure.  A stale figure is redrawn in interactive mode: pyplot's stale
        callback asks for a draw, and IPython asks for one after every cell *and every widget message*
        (ipykernel runs the post-execute hooks around comm messages).  With ipympl that request goes to the
        browser, which answers with a full draw, whose draw event lands here again: a redraw loop that keeps the
        kernel busy for as long as the page is open.  So the stale callback is off while the artists are drawn,
        and the marks their drawing left are cleared; the artists are blitted, not part of the full draw.
        """
        figure = self.canvas.figure
        fresh = [a for a in (figure, *figure.axes) if not a.stale]
        callback, figure.stale_callback = figure.stale_callback, None
        try:
            for a in self._artists:
                figure.draw_artist(a)
        finally:
            figure.stale_callback = callback
            for a in fresh:
                a.stale = False  # (setting False calls no callback)

    def update(self) -> None:
        """Show the artists' current state."""
        if self._background is None:
            self.canvas.draw()  # the draw_event captures the background and draws the artists
            return
        self.canvas.restore_region(self._background)
        self._draw_artists()
        self.canvas.blit(self.canvas.figure.bbox)


class LabFigure:
    """The figure of a View: ``axes`` by mosaic label, ``widget`` to place, ``show(artists, full)`` to redraw.

    ``widget`` holds the canvas and, under it, the figure's one-line text description (``caption``, CSS class
    ``el-figure-description``), which the View sets with :meth:`describe` (it may change with the State).  The
    browser's accessibility helper names the figure after it (``role="img"``).

    Args:
        mosaic, figsize, **gridspec: as :func:`ensemble_lab.plots.mosaic_figure`.
        description: the first text description (a View usually sets it in ``draw``).
    """

    def __init__(self, mosaic, figsize=(7.6, 3.8), description: str = "", **gridspec):
        self.fig, self.axes = mosaic_figure(mosaic, figsize=figsize, **gridspec)
        self.box = FigureBox(self.fig)
        self.caption = widgets.HTML()
        self.caption.add_class("el-figure-description")
        self.describe(description)
        self.widget = widgets.VBox([self.box.widget, self.caption], layout=widgets.Layout(max_width="100%"))
        self.widget.add_class("el-figure-block")
        self.blit = BlitManager(self.fig.canvas)
        self.frozen = False
        self._owed = True  # a full render is owed (nothing rendered yet, or a full draw was asked for)
        if self.box.interactive:
            self._answer_draws_from_the_picture()

    @property
    def description(self) -> str:
        """The figure's one-line text description (plain text)."""
        return self._description

    def describe(self, text: str) -> None:
        """Set the one-line text description shown under the figure (plain text; HTML-escaped here)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        self._description = " ".join(text.split())
        self.caption.value = html.escape(self._description)

    def show(self, artists, full: bool = False) -> None:
        """Show the drawings: blit ``artists`` over the background, or a full draw if they are not the artists of
        the last call or ``full`` (nothing is drawn before :meth:`freeze`)."""
        changed = self.blit.set_artists(artists)
        if not self.frozen:
            return
        if changed or full:
            self._owed = True
            self.fig.canvas.draw_idle()  # its draw event blits the artists
        else:
            self.blit.update()
        self.box.refresh()

    def _answer_draws_from_the_picture(self) -> None:
        """ipympl renders the whole figure for every draw the page asks for, also when nothing changed: when
        JupyterLab shows the output again (a refresh), or answering a draw request already served.  Each costs
        a full render (0.1-0.3 s) that a control's message waits behind.  Render only when a full draw is owed,
        the figure is stale or its size changed; otherwise send the picture the canvas holds (blits included)."""
        canvas = self.fig.canvas
        render = canvas.handle_draw

        def handle_draw(event):
            picture = getattr(canvas, "renderer", None)  # what the last render drew into (blits included)
            size = canvas.get_width_height(physical=True)
            if self._owed or self.fig.stale or picture is None or (picture.width, picture.height) != size:
                self._owed = False
                render(event)
            else:
                canvas._png_is_old = True  # the picture as it is (a full frame after a refresh)
                canvas.manager.refresh_all()

        canvas.handle_draw = handle_draw

    def freeze(self) -> None:
        """Lay the figure out once and draw it (the first draw); every later :meth:`show` may draw."""
        freeze_layout(self.fig)
        self._owed = False
        self.frozen = True
        self.box.refresh()
