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


# -- accessibility: a colour-blind-safe palette, series told apart by more than colour, text descriptions --------
# Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of color vision deficiency":
# deuteranopia at severity 1.0, applied to linear RGB.
_DEUTERANOPIA = (
    (0.367322, 0.860646, -0.227968),
    (0.280085, 0.672501, 0.047413),
    (-0.011820, 0.042940, 0.968881),
)


def _lab_under_deuteranopia(hex_colour: str):
    """CIELAB (D65) of ``hex_colour`` as a deuteranope sees it (the Machado matrix in linear RGB)."""
    import numpy as np

    srgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    lin = np.clip(np.array(_DEUTERANOPIA) @ lin, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _min_distance(colours) -> float:
    import itertools

    import numpy as np

    labs = [_lab_under_deuteranopia(c) for c in colours]
    return min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(labs, 2))


def test_the_deuteranopia_check_tells_tab10_from_okabe_ito():
    """The oracle itself: tab10's green, red and brown merge under deuteranopia (the issue's finding), Okabe-Ito's
    colours do not."""
    tab10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
    assert _min_distance(tab10) < 10
    from ensemble_lab.plots import PALETTE

    assert _min_distance([v for k, v in PALETTE.items() if k != "grey"]) > 15  # the eight Okabe-Ito colours


def test_the_cascades_curves_stay_apart_under_deuteranopia():
    """The risk-coverage curves of the cascades Lab (cascade, full ensemble, up to five single models): pairwise
    distinct colours under deuteranopia, and each its own (line style, marker) pair as well."""
    from matplotlib.figure import Figure

    from ensemble_lab.plots import RiskCoveragePlot

    names = ["cascade", "full ensemble", "first member alone", "one mlp-l", "one mlp-s", "big", "small"]
    plot = RiskCoveragePlot(Figure().subplots(), names)
    lines = [plot.lines[n] for n in names]
    assert _min_distance([line.get_color() for line in lines]) > 15
    styles = [(line.get_linestyle(), line.get_marker()) for line in lines]
    assert len(set(styles)) == len(lines), styles


def test_series_style_pairs_colour_with_line_style_and_marker():
    from ensemble_lab.plots import PALETTE, SERIES_COLORS, series_style

    assert set(SERIES_COLORS) <= set(PALETTE.values())
    pairs = {(series_style(j)["ls"], series_style(j)["marker"]) for j in range(len(SERIES_COLORS))}
    assert len(pairs) == len(SERIES_COLORS)
    with pytest.raises(ValueError, match="j must be"):
        series_style(-1)


def test_lab_drawings_use_only_the_palette():
    """Every coloured artist of the Lab drawings takes its colour from plots.PALETTE."""
    import matplotlib.colors as mcolors
    from matplotlib.figure import Figure

    from ensemble_lab import plots

    allowed = {mcolors.to_hex(c) for c in plots.PALETTE.values()} | {"#ffffff"}
    fig = Figure()
    axes = fig.subplots(2, 4).flat
    drawings = [
        plots.ReliabilityPlot(next(axes), next(axes)),
        plots.WeightBars(next(axes), 3),
        plots.RiskCoveragePlot(next(axes), ["cascade", "full ensemble", "a", "b"]),
        plots.CostFrontierPlot(next(axes)),
        plots.WiseCurvePlot(next(axes)),
        plots.LossLinePlot(next(axes)),
    ]
    r = reliability(torch.tensor([[0.7, 0.3], [0.2, 0.8]]), torch.tensor([0, 0]), n_bins=2)
    drawings[0].update(r)
    colours = set()
    for d in drawings:
        for a in d.artists:
            for getter in ("get_color", "get_facecolor", "get_edgecolor"):
                if hasattr(a, getter):
                    value = getattr(a, getter)()
                    values = [value] if isinstance(value, str) or len(getattr(value, "shape", ())) < 2 else value
                    for v in values:
                        if mcolors.to_rgba(v)[3] > 0:
                            colours.add(mcolors.to_hex(v))
    assert colours, "no coloured artist found"
    assert colours <= allowed, colours - allowed


def test_static_figure_shows_its_description_beside_the_png():
    import base64
    from html.parser import HTMLParser

    from matplotlib.figure import Figure

    from ensemble_lab.plots import StaticFigure

    fig = Figure(figsize=(1, 1))
    picture = StaticFigure(fig, description='  NLL falls as "members" are added.\n')
    assert picture.description == 'NLL falls as "members" are added.'
    data, metadata = picture._repr_mimebundle_()
    assert base64.b64decode(data["image/png"]) == picture.png  # the PNG, readable without a kernel or HTML
    assert picture.png[:4] == b"\x89PNG"
    assert metadata == {"image/png": {"alt": 'NLL falls as "members" are added.'}}
    assert data["text/plain"] == 'Figure: NLL falls as "members" are added.'

    class Parse(HTMLParser):
        img, caption, in_caption = None, "", False

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.img = dict(attrs)
            self.in_caption |= tag == "figcaption"

        def handle_endtag(self, tag):
            self.in_caption &= tag != "figcaption"

        def handle_data(self, text):
            if self.in_caption:
                self.caption += text

    parsed = Parse()
    parsed.feed(data["text/html"])
    assert parsed.img["alt"] == 'NLL falls as "members" are added.'
    assert base64.b64decode(parsed.img["src"].removeprefix("data:image/png;base64,")) == picture.png
    assert parsed.caption == 'Figure: NLL falls as "members" are added.'
    # HTML in a description is shown as text
    assert "&lt;b&gt;" in StaticFigure(fig, description="<b>x</b>")._repr_mimebundle_()[0]["text/html"]


def test_static_figure_takes_the_figure_default_description_and_checks_it():
    from matplotlib.figure import Figure

    from ensemble_lab.plots import StaticFigure

    fig = Figure(figsize=(1, 1))
    assert StaticFigure(fig).description is None
    assert sorted(StaticFigure(fig)._repr_mimebundle_()[0]) == ["image/png", "text/plain"]  # the picture only
    fig.el_description = "A default description."
    assert StaticFigure(fig).description == "A default description."
    assert StaticFigure(fig, description="Given.").description == "Given."
    with pytest.raises(TypeError, match="description must be a str"):
        StaticFigure(fig, description=3)
    with pytest.raises(ValueError, match="description must say"):
        StaticFigure(fig, description="   ")


def test_lab_figure_caption_follows_describe():
    from ensemble_lab.labs.figure import LabFigure

    figure = LabFigure([["a"]], figsize=(2, 2), description="first")
    assert figure.caption in figure.widget.children
    assert "el-figure-description" in figure.caption._dom_classes
    assert figure.widget.children.index(figure.caption) == 1  # under the canvas
    figure.describe("a <b>bold</b>\nclaim")
    assert figure.description == "a <b>bold</b> claim"
    assert figure.caption.value == "a &lt;b&gt;bold&lt;/b&gt; claim"
    with pytest.raises(TypeError, match="text must be a str"):
        figure.describe(None)
