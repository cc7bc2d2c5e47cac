"""The plotting helpers that the Labs share: blitting must leave the figure fresh.

With ipympl (``%matplotlib widget``) a stale figure is redrawn after every cell and every widget message
(ipykernel runs IPython's post-execute hooks around comm messages, and pyplot's hook redraws stale figures): the
kernel asks the browser for a draw, the browser answers with a full draw, and the full draw blits the managed
artists again.  If drawing those artists left the figure stale, page and kernel exchanged draws for as long as
the page was open (the browser tests found this loop).  Here the same chain runs headless.
"""

import json

import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib._pylab_helpers import Gcf

from ensemble_lab.labs.figure import BlitManager
from ensemble_lab.metrics import reliability
from ensemble_lab.plots import ReliabilityPlot, mosaic_figure


@pytest.fixture
def interactive():
    """pyplot's interactive mode (as in a notebook), switched off afterwards."""
    was = plt.isinteractive()
    plt.ion()
    yield
    plt.close("all")
    if not was:
        plt.ioff()


def _count_draw_requests(fig) -> list:
    requests = []
    fig.canvas.draw_idle = lambda *a, **k: requests.append("draw_idle")
    return requests


def _reliability_figure():
    """The Labs' reliability diagram (bars, legend, ECE label) with its artists under a BlitManager, and a second
    Reliability to update it with."""
    fig, axes = mosaic_figure([["rel"], ["hist"]])
    plot = ReliabilityPlot(axes["rel"], axes["hist"])
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(2 * torch.randn(500, 4, generator=g), dim=1)
    labels = torch.randint(0, 4, (500,), generator=g)
    plot.update(reliability(probs, labels, n_bins=10))
    blit = BlitManager(fig.canvas, plot.artists)
    return fig, plot, blit, reliability(probs.roll(1, dims=1), labels, n_bins=10)


def test_a_blitted_update_asks_for_no_full_draw(interactive):
    """The legend re-positions its children as it is blitted: that must not leave the figure stale."""
    fig, plot, blit, other = _reliability_figure()
    fig.canvas.draw()
    requests = _count_draw_requests(fig)
    plot.update(other)
    blit.update()
    assert requests == [], "a blitted update asked for a full draw"
    assert not fig.stale, "a blitted update left the figure stale"


def test_a_figure_stale_before_blitting_stays_stale(interactive):
    """Only the marks that blitting left are cleared: a pending change of a static artist still counts."""
    fig, _, blit, _ = _reliability_figure()
    _count_draw_requests(fig)
    fig.canvas.draw()
    fig.axes[0].set_title("a new title")
    blit.update()
    assert fig.stale, "blitting hid a pending change of a static artist"


@pytest.fixture
def ipympl_backend(interactive):
    """pyplot on ipympl's backend (as after ``%matplotlib widget``), switched back afterwards."""
    pytest.importorskip("ipympl", reason="ipympl (the lab extra) is not installed")
    previous = plt.get_backend()
    plt.switch_backend("module://ipympl.backend_nbagg")
    yield
    plt.close("all")
    plt.switch_backend(previous)


def test_under_ipympl_the_kernel_stops_asking_for_draws(ipympl_backend):
    """The browser's side of ipympl's protocol, emulated: it asks for a draw, gets an image; IPython's
    post-execute hook (``Gcf.draw_all``, run after each widget message) then finds nothing stale to redraw, and
    an update sends one new image and no draw request."""
    fig, plot, blit, other = _reliability_figure()
    sent = []
    fig.canvas.send = lambda content, buffers=None: sent.append(json.loads(content["data"])["type"])
    fig.canvas._handle_message(fig.canvas, {"type": "initialized"}, [])
    fig.canvas._handle_message(fig.canvas, {"type": "draw"}, [])  # the browser asks for the first picture
    assert sent[-1] == "binary"
    sent.clear()
    Gcf.draw_all()  # what IPython runs after the widget message
    assert sent == [], f"after its draw the kernel sent {sent}: the browser would answer with another full draw"
    plot.update(other)
    blit.update()
    Gcf.draw_all()
    assert sent == ["binary"], f"an update sent {sent}: a draw request makes the browser redraw in full"


def test_a_lab_figure_answers_a_draw_request_from_its_picture_when_nothing_changed(ipympl_backend, monkeypatch):
    """What JupyterLab asks after Run All (a refresh of each shown canvas, a draw request already served) costs
    no render; a full draw the Lab asked for, a stale figure or a new size still renders."""
    from matplotlib.figure import Figure

    from ensemble_lab.labs.figure import LabFigure

    renders = []
    original = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: (renders.append(1), original(self, renderer)))
    figure = LabFigure([["rel"], ["hist"]], figsize=(4, 3))
    plot = ReliabilityPlot(figure.axes["rel"], figure.axes["hist"])
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(2 * torch.randn(300, 4, generator=g), dim=1)
    labels = torch.randint(0, 4, (300,), generator=g)
    plot.update(reliability(probs, labels, n_bins=10))
    figure.show(plot.artists)
    canvas = figure.fig.canvas
    sent = []
    canvas.send = lambda content, buffers=None: sent.append(json.loads(content["data"])["type"])
    canvas._handle_message(canvas, {"type": "initialized"}, [])
    figure.freeze()
    assert len(renders) == 1
    for request in ({"type": "draw"}, {"type": "refresh"}, {"type": "draw"}):
        sent.clear()
        canvas._handle_message(canvas, request, [])
        assert len(renders) == 1, f"{request} rendered the figure again"
    assert "binary" in sent  # the page got the picture
    plot.update(reliability(probs.roll(1, dims=1), labels, n_bins=10))
    figure.show(plot.artists)  # blitted: no render
    assert len(renders) == 1
    figure.show(plot.artists, full=True)  # a full draw asked for: the next request renders
    canvas._handle_message(canvas, {"type": "draw"}, [])
    assert len(renders) == 2
    figure.axes["rel"].set_title("new")  # stale: renders
    canvas._handle_message(canvas, {"type": "draw"}, [])
    assert len(renders) == 3
