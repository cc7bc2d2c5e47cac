"""Draw the course map of notebooks/00_start_here.ipynb: the nine notebooks, what each is about, and which one
builds on which.  Writes docs/course_map.png next to this file (the notebook embeds that PNG as an attachment).

Run: ``.venv/bin/python docs/course_map.py``.  Colours are the Okabe-Ito palette (colour-blind safe); the boxes
also differ by their border style, and every arrow is labelled by what it carries, so no meaning rests on colour.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402
from PIL import Image  # noqa: E402

OUT = Path(__file__).with_name("course_map.png")

# (key, x, y, title, subtitle, colour, border style); Okabe-Ito colours
BOXES = [
    ("00", 0.09, 0.50, "00 · Start here", "the map, setup,\nglossary", "#E69F00", "dotted"),
    ("01", 0.33, 0.50, "01 · Deep ensembles", "average members;\nNLL, Brier, ECE", "#56B4E9", "solid"),
    ("02", 0.60, 0.80, "02 · Calibration", "ECE's biases;\ntemperature scaling", "#009E73", "solid"),
    ("04", 0.60, 0.20, "04 · Cascades", "early exit; risk,\ncoverage, MACs", "#D55E00", "dashed"),
    ("03", 0.855, 0.80, "03 · Prompt ensembles", "zero-shot; weight\nprompts without labels", "#CC79A7", "dashdot"),
    ("05", 0.855, 0.20, "05 · Soups, WiSE-FT", "average weights,\nnot outputs", "#0072B2", "dashed"),
    # 06: black (Okabe-Ito) with a dash-dot-dot border, the one style no other box uses
    (
        "06",
        1.11,
        0.20,
        "06 · Selection",
        "choosing the team;\ndiversity, transfer",
        "#000000",
        (0, (6, 2, 1, 2, 1, 2)),
    ),
    # 07: the eight Okabe-Ito colours are used up (yellow is too faint for a border), so 07 shares 02's bluish
    # green and is told apart by its long-dash border, which no other box uses
    ("07", 1.11, 0.80, "07 · Forecasting", "score an ensemble\nforecast; learned members", "#009E73", (0, (8, 3))),
    # 08: shares 04's vermillion, told apart by its dotted-dash border (1 on, 1 off, 4 on), which no other box uses
    ("08", 1.365, 0.80, "08 · Forests", "trees as smoothers;\nwhy averaging helps", "#D55E00", (0, (4, 1, 1, 1))),
]
# (from, to, label, where the label sits: "above", "left" or "right" of the arrow's middle)
ARROWS = [
    ("00", "01", "start", "above"),
    ("01", "02", "the pooled ensemble", "left"),
    ("01", "04", "01's trained members", "left"),
    ("02", "03", "then", "above"),
    ("03", "05", "its zero-shot model", "left"),
    ("05", "06", "then", "above"),
    ("06", "07", "then", "left"),
    ("07", "08", "then", "above"),
]
W, H = 0.175, 0.26


def draw(path: Path = OUT) -> Path:
    fig = plt.figure(figsize=(13.45, 3.6), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-0.01, 1.48)
    ax.set_ylim(0.0, 1.0)
    ax.axis("off")
    centres = {}
    for key, x, y, title, subtitle, colour, style in BOXES:
        centres[key] = (x, y)
        box = FancyBboxPatch(
            (x - W / 2, y - H / 2),
            W,
            H,
            boxstyle="round,pad=0.008,rounding_size=0.02",
            facecolor=colour + "33",
            edgecolor=colour,
            linewidth=2.0,
            linestyle=style,
        )
        ax.add_patch(box)
        ax.text(x, y + 0.06, title, ha="center", va="center", fontsize=9.0, fontweight="bold", color="#111111")
        ax.text(x, y - 0.04, subtitle, ha="center", va="center", fontsize=8.0, color="#222222", linespacing=1.2)
    for a, b, label, where in ARROWS:
        (xa, ya), (xb, yb) = centres[a], centres[b]
        if ya == yb:  # side by side
            start, end = (xa + W / 2, ya), (xb - W / 2, yb)
        elif xa == xb:  # one above the other, the arrow going down or up
            sign = 1 if yb > ya else -1
            start, end = (xa, ya + sign * H / 2), (xb, yb - sign * H / 2)
        else:  # diagonal: leave from the right edge, arrive at the left edge
            start, end = (xa + W / 2, ya + (0.06 if yb > ya else -0.06)), (xb - W / 2, yb)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, linewidth=1.4, color="#333333"))
        mx, my = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        dx, ha = {"above": (0.0, "center"), "left": (-0.015, "right"), "right": (0.015, "left")}[where]
        dy = 0.03 if where == "above" else 0.0
        ax.text(
            mx + dx,
            my + dy,
            label,
            ha=ha,
            va="bottom" if dy else "center",
            fontsize=7.5,
            color="#333333",
            style="italic",
        )
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=100)
    plt.close(fig)
    # a palette of 128 colours keeps the text's anti-aliasing and makes the file a third of the size (the notebook
    # embeds it; the tests keep it under 80 KB)
    Image.open(buffer).convert("RGB").quantize(colors=128, dither=Image.Dither.NONE).save(path, optimize=True)
    return path


if __name__ == "__main__":
    out = draw()
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")
