"""Widgets and plots of the soups Lab (no maths: everything shown comes from ``lab.result``).

The figure's axes are laid out once; a change of setting moves the lines and redraws only them over a cached
background, so moving the alpha slider costs a few milliseconds.  A full draw happens only when a title or an
axis range has to change.  A new ingredient checklist costs seconds (real forward passes), so ticks are
collected and sent together with "apply".
"""

from __future__ import annotations

import html

import ipywidgets as w

from ...artefacts.soup_world import ENDPOINT_LRS, ZERO_SHOT
from ...plots import LossLinePlot, WiseCurvePlot
from ..figure import LabFigure
from ..view import LabView, pct, table_html
from .lab import SHIFT_CHOICES, SOUPS, SoupsLab

_COLUMNS = ("acc ID", "acc shifted", "ECE ID", "ECE shifted", "NLL ID", "NLL shifted", "passes", "MMACs")
_SOUP_LABELS = {"uniform": "uniform", "greedy": "greedy", "learned": "learned", "output ensemble": "ensemble"}


def lr_label(lr: float) -> str:
    """``3e-4 -> '3e-4'`` (a learning rate as people write it)."""
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def soups_table_html(result) -> str:
    """The table of every row of ``result.table``; the chosen soup's row and the WiSE-FT row in bold."""
    rows = {
        name: (
            pct(m["acc_id"]),
            pct(m["acc_shift"]),
            pct(m["ece_id"]),
            pct(m["ece_shift"]),
            f"{m['nll_id']:.3f}",
            f"{m['nll_shift']:.3f}",
            f"{m['passes']:.0f}×",
            f"{m['macs'] / 1e6:.2f}",
        )
        for name, m in result.table.items()
    }
    bold = (result.current, *(name for name in rows if name.startswith("WiSE-FT")))
    kept = ", ".join(result.greedy_kept) or "–"
    return (
        "<div style='font-size:90%'>ID: clean test digits with a sticker · "
        f"shifted: {html.escape(result.shift_name)} · "
        "cost per image: forward passes and MACs"
        + table_html(_COLUMNS, rows, css_class="el-soups-table", bold=bold)
        + f"<div class='el-greedy-kept'>greedy soup kept: {html.escape(kept)} (in the order added)</div></div>"
    )


class SoupsView(LabView, lab=SoupsLab):
    """Ingredient checklist and settings on the left; the WiSE-FT curve, the loss line and the table on the right."""

    CSS_NAME = "soups"

    def build(self) -> None:
        lab = self.lab
        self.checks: list[w.Checkbox] = []
        for i, name in enumerate(lab.names):
            c = w.Checkbox(
                value=name in lab.state.ingredients,
                description=name,
                indent=False,
                layout=w.Layout(width="160px", height="24px"),
            )
            c.add_class(f"el-ingredient-{i}")
            c.observe(lambda _ch: self._show_pending(), names="value")
            self.checks.append(c)
        self.checklist = w.GridBox(
            self.checks, layout=w.Layout(grid_template_columns="repeat(2, 162px)", grid_gap="0px 4px")
        )
        self.checklist.add_class("el-ingredients")
        self.all_button = self.button("all", "check all", on_click=self._check_all, width="90px")
        self.apply_button = self.button(
            "apply", "apply", "make the soups of the checked ingredients (seconds)", on_click=self._apply, width="90px"
        )
        self.pending = self.html("pending")
        self._shown_ingredients = tuple(lab.state.ingredients)
        self.soup = self.bind(
            "soup",
            w.ToggleButtons(
                options=[(_SOUP_LABELS.get(r, r), r) for r in SOUPS],
                tooltips=[f"highlight the {r}" if r == "output ensemble" else f"highlight the {r} soup" for r in SOUPS],
                style={"button_width": "78px"},
            ),
        )
        self.alpha = self.bind(
            "alpha",
            w.FloatSlider(
                min=0.0, max=1.0, step=0.1, description="alpha", continuous_update=True, readout_format=".1f"
            ),
        )
        self.lr = self.bind(
            "lr", w.Dropdown(options=[(lr_label(lr), lr) for lr in ENDPOINT_LRS], description="endpoint lr")
        )
        self.bang = self.bind("bang", w.Checkbox(description="BANG endpoint (label smoothing + mixup)", indent=False))
        self.head_scale = self.bind(
            "head_scale",
            w.FloatSlider(
                min=0.25, max=2.0, step=0.05, description="head scale", continuous_update=False, readout_format=".2f"
            ),
        )
        self.split = self.bind("split", w.Dropdown(options=list(SHIFT_CHOICES), description="shifted"))
        ends = [ZERO_SHOT, *lab.names]
        self.line_a = self.bind("line_a", w.Dropdown(options=ends, description="from"))
        self.line_b = self.bind("line_b", w.Dropdown(options=ends, description="to"))
        self.table = self.html("metrics")
        self.figure = LabFigure([["wise", "line"]], figsize=(7.6, 3.6), width_ratios=[3, 2])
        self.wise_plot = WiseCurvePlot(self.figure.axes["wise"])
        self.line_plot = LossLinePlot(self.figure.axes["line"])

    def controls(self) -> list:
        return [
            w.HTML("<b>Ingredients</b> (the soups mix the checked fine-tunes)"),
            self.checklist,
            w.HBox([self.all_button, self.apply_button]),
            self.pending,
            w.HTML("<b>Soup</b> (marked in the plot, bold in the table)"),
            self.soup,
            w.HTML("<b>WiSE-FT</b>: zero-shot ↔ fine-tuned endpoint"),
            self.alpha,
            self.lr,
            self.bang,
            w.HTML("fine-tuned head scale (BANG balance)"),
            self.head_scale,
            w.HTML("<b>Evaluate</b>"),
            self.split,
            w.HTML("<b>Loss along a straight line</b> (val split)"),
            self.line_a,
            self.line_b,
        ]

    def outputs(self) -> list:
        return [self.figure.widget, self.table]

    # -- the checklist: ticks wait for "apply" ----------------------------------------------------------
    def _ticked(self) -> list[str]:
        return [name for name, c in zip(self.lab.names, self.checks, strict=False) if c.value]

    def _show_pending(self) -> None:
        ticked, now = self._ticked(), list(self.lab.state.ingredients)
        if set(ticked) == set(now):
            self.pending.value = ""
        else:
            self.pending.value = (
                f"<i>{len(ticked)} ticked, {len(now)} in the soups now: press <b>apply</b> to make the new soups</i>"
            )

    def _check_all(self) -> None:
        for c in self.checks:
            c.value = True

    def _apply(self) -> bool:
        ok = self.lab.set(ingredients=self._ticked())
        if not ok:  # refused: the checklist shows the State again
            self._sync_checklist(force=True)
        return ok

    def _sync_checklist(self, force: bool = False) -> None:
        """The checklist follows the State when the State's ingredients change (not on other moves, so that
        ticks waiting for "apply" stay), or when ``force``d."""
        now = tuple(self.lab.state.ingredients)
        if force or now != self._shown_ingredients:
            for name, c in zip(self.lab.names, self.checks, strict=False):
                c.value = name in now
            self._shown_ingredients = now
        self._show_pending()

    # -- lab -> widgets ---------------------------------------------------------------------------------
    def draw(self, result) -> None:
        s = self.lab.state
        self._sync_checklist()
        self.table.value = soups_table_html(result)
        head = "" if s.head_scale == 1 else f", head ×{s.head_scale:g}"
        row = result.table[result.current]
        full = self.wise_plot.update(
            result.alphas,
            result.curve,
            result.point,
            result.alpha,
            {"id": row["acc_id"], "shift": row["acc_shift"]},
            f"WiSE-FT: zero-shot → {result.endpoint}{head}\nshifted = {result.shift_name}",
            result.current,
        )
        full |= self.line_plot.update(
            result.alphas, result.line["loss"], result.line["acc"], f"val loss from {s.line_a}\nto {s.line_b}"
        )
        self.figure.show(self.wise_plot.artists + self.line_plot.artists, full=full)
        self.figure.describe(
            f"Left: accuracy (bold) and ECE (faint, right axis) against the WiSE-FT mixing weight alpha from "
            f"zero-shot to {result.endpoint}, in distribution (solid) and on {result.shift_name} (dashed), with "
            f"the {result.current} as dotted lines; alpha is {result.alpha:.2f}. Right: validation loss (solid) and "
            f"accuracy (dashed) along the straight line from {s.line_a} to {s.line_b}."
        )
