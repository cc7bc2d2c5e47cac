"""Widgets and plots of the soups Lab (no maths: everything shown comes from ``lab.result``).

The figure's axes are laid out once; a change of setting moves the lines (``set_data``) and redraws only them
over a cached background (:class:`~ensemble_lab.plots.BlitManager`), so moving the alpha slider costs a few
milliseconds.  A full draw happens only when an axis range has to change.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import ipywidgets as w

from ..plots import BlitManager, freeze_layout, mosaic_figure
from .figure import FigureBox
from .view import LabView, pct, table_html

if TYPE_CHECKING:  # the Lab imports this module when it is displayed, not the other way round
    from .soups import SoupsLab

_ID, _SHIFT, _MUTED, _LINE = "#1f77b4", "#ff7f0e", "#7f7f7f", "#6a3d9a"
_COLUMNS = ("acc ID", "acc shifted", "ECE ID", "ECE shifted", "NLL ID", "NLL shifted", "passes", "MMACs")
_RECIPE_LABELS = {"uniform": "uniform", "greedy": "greedy", "learned": "learned", "output ensemble": "ensemble"}


def lr_label(lr: float) -> str:
    """``3e-4 -> '3e-4'`` (a learning rate as people write it)."""
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def soups_table_html(result) -> str:
    """The table of every row of ``result.table``; the chosen recipe's row and the WiSE-FT row in bold."""
    rows = {name: (pct(m["acc_id"]), pct(m["acc_shift"]), pct(m["ece_id"]), pct(m["ece_shift"]),
                   f"{m['nll_id']:.3f}", f"{m['nll_shift']:.3f}", f"{m['passes']:.0f}×", f"{m['macs'] / 1e6:.2f}")
            for name, m in result.table.items()}
    bold = (result.current, *(name for name in rows if name.startswith("WiSE-FT")))
    kept = ", ".join(result.greedy_kept) or "–"
    return (f"<div style='font-size:90%'>ID: clean test digits with a sticker · shifted: {html.escape(result.shift_name)} · "
            "cost per image: forward passes and MACs"
            + table_html(_COLUMNS, rows, css_class="el-soups-table", bold=bold)
            + f"<div class='el-greedy-kept'>greedy soup kept: {html.escape(kept)} (in the order added)</div></div>")


def _floor(x: float, step: float) -> float:
    return round(math.floor(x / step) * step, 6)


def _ceil(x: float, step: float) -> float:
    return round(math.ceil(x / step) * step, 6)


class SoupsView(LabView):
    """Ingredient checklist and settings on the left; the WiSE-FT curve, the loss line and the table on the right."""

    def __init__(self, lab: SoupsLab):
        super().__init__(lab)
        s = lab.state
        self._lrs = tuple(lab.endpoint_lrs)
        # -- controls -----------------------------------------------------------------------------------
        self.checks: list[w.Checkbox] = []
        for i, name in enumerate(lab.names):
            c = w.Checkbox(value=name in s.ingredients, description=name, indent=False,
                           layout=w.Layout(width="170px", height="24px"))
            c.add_class(f"el-ingredient-{i}")
            c.observe(lambda _ch: self._on_check(), names="value")
            self.checks.append(c)
        self.checklist = w.GridBox(self.checks, layout=w.Layout(grid_template_columns="repeat(2, 172px)",
                                                                 grid_gap="0px 4px"))
        self.checklist.add_class("el-ingredients")
        self.all_button = w.Button(description="check all", layout=w.Layout(width="100px"))
        self.all_button.add_class("el-all")
        self.all_button.on_click(lambda _b: self._send_ingredients(list(self.lab.names)))
        self.recipe = self.bind("recipe", w.ToggleButtons(
            options=[(_RECIPE_LABELS.get(r, r), r) for r in lab.recipes], value=s.recipe,
            tooltips=[f"highlight the {r}" if r == "output ensemble" else f"highlight the {r} soup" for r in lab.recipes],
            style={"button_width": "84px"}))
        self.alpha = self.bind("alpha", w.FloatSlider(value=s.alpha, min=0.0, max=1.0, step=0.1, description="alpha",
                                                      continuous_update=True, readout_format=".1f"))
        self.lr = w.Dropdown(options=[(lr_label(lr), lr) for lr in self._lrs], value=self._lr_option(),
                             description="endpoint lr")
        self.lr.add_class("el-lr")
        self.lr.observe(lambda ch: self.send("lr", ch.new), names="value")
        self.bang = self.bind("bang", w.Checkbox(value=s.bang, description="BANG endpoint (label smoothing + mixup)",
                                                 indent=False))
        self.head_scale = self.bind("head_scale", w.FloatSlider(
            value=s.head_scale, min=0.25, max=2.0, step=0.05, description="head scale", continuous_update=False,
            readout_format=".2f"))
        self.split = self.bind("split", w.Dropdown(options=list(lab.shift_choices), value=s.split,
                                                   description="shifted"))
        ends = [lab.zero_shot, *lab.names]
        self.line_a = self.bind("line_a", w.Dropdown(options=ends, value=s.line_a, description="from"))
        self.line_b = self.bind("line_b", w.Dropdown(options=ends, value=s.line_b, description="to"))
        self.table = w.HTML()
        self.table.add_class("el-metrics")

        # -- the figure: WiSE-FT curve | loss along a line ----------------------------------------------
        self.fig, self.axes = mosaic_figure([["wise", "line"]], figsize=(8.6, 3.7), width_ratios=[3, 2])
        ax, lx = self.axes["wise"], self.axes["line"]
        ex, la = ax.twinx(), lx.twinx()
        self.ece_ax, self.line_acc_ax = ex, la
        ax.set_zorder(ex.get_zorder() + 1)  # accuracy lines and legend above the ECE lines
        ax.patch.set_visible(False)
        self.acc_lines, self.ece_lines, self.dots, self.ece_dots, self.soup_lines = {}, {}, {}, {}, {}
        for tag, color, ls, label in (("id", _ID, "-", "ID"), ("shift", _SHIFT, "--", "shifted")):
            (self.acc_lines[tag],) = ax.plot([], [], ls, color=color, lw=2, label=f"accuracy {label}")
            (self.ece_lines[tag],) = ex.plot([], [], ls, color=color, lw=1, alpha=0.45,
                                             label=f"ECE {label} (right axis)")
            (self.dots[tag],) = ax.plot([], [], "o", color=color, ms=6, zorder=4)
            (self.ece_dots[tag],) = ex.plot([], [], "o", color=color, ms=4, alpha=0.45)
            self.soup_lines[tag] = ax.axhline(0, color=color, ls=":", lw=1.5, label=f"soup {label}")
        self.alpha_line = ax.axvline(s.alpha, color=_MUTED, lw=1, zorder=1)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_xlabel("alpha (0 = zero-shot, 1 = fine-tuned)")
        ax.set_ylabel("accuracy")
        ex.set_ylabel("ECE", color=_MUTED)
        ex.tick_params(axis="y", colors=_MUTED)
        handles = [self.acc_lines["id"], self.acc_lines["shift"], self.soup_lines["id"], self.soup_lines["shift"],
                   self.ece_lines["id"], self.ece_lines["shift"]]
        self.legend = ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3,
                                fontsize="x-small", frameon=False)
        self._soup_texts = self.legend.get_texts()[2:4]
        ax.set_title(" \n ", fontsize="medium")
        (self.loss_line,) = lx.plot([], [], "-o", color=_LINE, lw=2, ms=3, label="val loss")
        (self.line_acc,) = la.plot([], [], "--", color=_MUTED, lw=1, label="val accuracy (right axis)")
        lx.set_xlim(-0.02, 1.02)
        lx.set_xticks([0, 0.5, 1.0])
        lx.set_xlabel("position on the line (0 = from, 1 = to)")
        lx.set_ylabel("val loss (nats)")
        la.set_ylabel("val accuracy", color=_MUTED)
        la.tick_params(axis="y", colors=_MUTED)
        self.line_legend = lx.legend(handles=[self.loss_line, self.line_acc], loc="upper center",
                                     bbox_to_anchor=(0.5, -0.2), ncol=1, fontsize="x-small", frameon=False)
        lx.set_title(" \n ", fontsize="medium")
        # lines and dots are redrawn over a cached background; texts (titles, legend, ticks) are part of that
        # background, and a change of them asks for a full draw
        self.blit = BlitManager(self.fig.canvas, [
            *self.ece_lines.values(), *self.ece_dots.values(), self.alpha_line, *self.soup_lines.values(),
            *self.acc_lines.values(), *self.dots.values(), self.line_acc, self.loss_line])
        self.figure = FigureBox(self.fig)

        # -- layout -------------------------------------------------------------------------------------
        controls = w.VBox([
            w.HTML("<b>Ingredients</b> (the soups mix the checked fine-tunes)"), self.checklist, self.all_button,
            w.HTML("<b>Recipe</b> (marked in the plot, bold in the table)"), self.recipe,
            w.HTML("<b>WiSE-FT</b>: zero-shot ↔ fine-tuned endpoint"), self.alpha, self.lr, self.bang,
            w.HTML("fine-tuned head scale (BANG balance)"), self.head_scale,
            w.HTML("<b>Evaluate</b>"), self.split,
            w.HTML("<b>Loss along a straight line</b> (val split)"), self.line_a, self.line_b,
        ], layout=w.Layout(min_width="360px", max_width="370px"))
        outputs = w.VBox([self.figure.widget, self.table])
        self.widget = w.VBox([w.HBox([controls, outputs]), self.status])
        self.widget.add_class("el-lab")
        self.widget.add_class("el-soups")

        self._static = None
        self._drawn = False  # no draw request before the first full draw (ipympl would send a second image)
        lab.observe(lambda change: self.redraw(change.new), names="result")
        self.redraw(lab.result)
        freeze_layout(self.fig)
        self._drawn = True
        self.figure.refresh()

    # -- widgets -> lab ---------------------------------------------------------------------------------
    def _on_check(self) -> None:
        if self._syncing:
            return
        self._send_ingredients([name for name, c in zip(self.lab.names, self.checks) if c.value])

    def _send_ingredients(self, names: list[str]) -> None:
        if names:  # an empty list is refused at once; no need to announce a computation
            self.show_status(f"computing soups for {len(names)} ingredient{'s' * (len(names) != 1)}…")
        self.send("ingredients", names)
        self.show_status(self.lab.status)  # also when the Lab's message is the same as before (no change event)

    def _lr_option(self) -> float:
        """The dropdown's option for the State's lr (the State accepts lr within rounding of an option)."""
        return min(self._lrs, key=lambda lr: abs(lr - self.lab.state.lr))

    def _sync_extra(self) -> None:
        chosen = set(self.lab.state.ingredients)
        for name, c in zip(self.lab.names, self.checks):
            c.value = name in chosen
        self.lr.value = self._lr_option()

    # -- lab -> widgets ---------------------------------------------------------------------------------
    def _wanted_limits(self, result) -> tuple:
        c = {k: v.tolist() for k, v in result.curve.items()}
        row = result.table[result.current]
        accs = [*c["id_acc"], *c["shift_acc"], row["acc_id"], row["acc_shift"]]
        acc = (max(0.0, _floor(min(accs) - 0.02, 0.05)), min(1.0, _ceil(max(accs) + 0.02, 0.05)))
        ece = (0.0, _ceil(max([*c["id_ece"], *c["shift_ece"]]) * 1.05 + 1e-9, 0.05))
        loss, line_acc = result.line["loss"].tolist(), result.line["acc"].tolist()
        top = max(loss) * 1.1
        step = 0.1 if top <= 2 else 0.5
        return (acc, ece, (0.0, _ceil(top + 1e-9, step)),
                (max(0.0, _floor(min(line_acc) - 0.02, 0.05)), min(1.0, _ceil(max(line_acc) + 0.02, 0.05))))

    def redraw(self, result) -> None:
        s = self.lab.state
        self.table.value = soups_table_html(result)
        alphas = result.alphas.numpy()
        ax, lx = self.axes["wise"], self.axes["line"]
        for tag in ("id", "shift"):
            self.acc_lines[tag].set_data(alphas, result.curve[f"{tag}_acc"].numpy())
            self.ece_lines[tag].set_data(alphas, result.curve[f"{tag}_ece"].numpy())
            self.dots[tag].set_data([s.alpha], [result.point[f"{tag}_acc"]])
            self.ece_dots[tag].set_data([s.alpha], [result.point[f"{tag}_ece"]])
            self.soup_lines[tag].set_ydata([result.table[result.current][f"acc_{tag}"]] * 2)
        self.alpha_line.set_xdata([s.alpha, s.alpha])
        self.loss_line.set_data(alphas, result.line["loss"].numpy())
        self.line_acc.set_data(alphas, result.line["acc"].numpy())
        head = "" if s.head_scale == 1 else f", head ×{s.head_scale:g}"
        texts = (f"WiSE-FT: zero-shot → {result.endpoint}{head}\nshifted = {result.shift_name}",
                 f"val loss from {s.line_a}\nto {s.line_b}", f"{result.current}, ID", f"{result.current}, shifted")
        limits = self._wanted_limits(result)
        if (texts, limits) != self._static:  # titles, legend or axis ranges change: a full draw
            ax.set_title(texts[0], fontsize="medium")
            lx.set_title(texts[1], fontsize="medium")
            for text, value in zip(self._soup_texts, texts[2:]):
                text.set_text(value)
            for axis, lim in zip((ax, self.ece_ax, lx, self.line_acc_ax), limits):
                axis.set_ylim(*lim)
            self._static = (texts, limits)
            if self._drawn:
                self.fig.canvas.draw_idle()  # the draw event then blits the lines
        elif self._drawn:
            self.blit.update()
        self.figure.refresh()
        self.show_status(self.lab.status)
