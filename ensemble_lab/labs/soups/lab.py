"""The soups Lab: mix fine-tuned weights and watch in-distribution and shifted accuracy and calibration respond.

Headless use::

    lab = SoupsLab(soup_world())
    lab.set(alpha=0.3, lr=1e-3, bang=True);  lab.result.point, lab.result.table["greedy soup"]

Everything comes from a :class:`~ensemble_lab.artefacts.soup_world.SoupWorld`: the zero-shot model, the fine-tuned
ingredients, their cached logits, and the cached WiSE-FT curves between the zero-shot model and each
endpoint (fine-tuned at one of :data:`~ensemble_lab.artefacts.soup_world.ENDPOINT_LRS`, standard or BANG).

* **WiSE-FT curve** (alpha, lr, bang, head scale, split): accuracy and ECE on the in-distribution test split
  and on the shifted split(s) at every cached alpha.  A move of any of these controls only recombines cached
  head terms (:func:`~ensemble_lab.soups.combine_head_terms`).
* **Soups** (the ingredient checklist): uniform, greedy (on val accuracy) and learned (coefficients per layer
  fitted on val) soups of the checked ingredients, and their output-space ensemble (mean of probabilities).
  A new checklist costs real forward passes (about 3 s on 2 quiet cpu cores, mostly the learned soup's fit
  and the greedy soup's held-out evaluations); each checklist is computed once and kept.
* **Loss along a line** (line_a, line_b): val loss and accuracy of the models on the straight line between
  two ingredients (or the zero-shot model).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ... import combine as combine_module
from ... import metrics, soups
from ...artefacts.soup_world import ALPHAS, ENDPOINT_LRS, SHIFTED, ZERO_SHOT, SoupWorld, endpoint_name
from ..base import FIT_SPLIT, Lab, cached
from ..challenges import Target, challenge
from ..state import N_BINS, LabState, Setting

__all__ = [
    "SoupsState",
    "SoupsResult",
    "SoupsLab",
    "SoupMix",
    "mix_soups",
    "forward_splits",
    "SOUPS",
    "SHIFT_CHOICES",
    "ALL_SHIFTED",
    "ID_SPLIT",
]

SOUPS = ("uniform", "greedy", "learned", "output ensemble")
ALL_SHIFTED = "all shifted"
SHIFT_CHOICES = (ALL_SHIFTED, *SHIFTED)
ID_SPLIT = "test"
LEARNED_STEPS, LEARNED_LR = 30, 0.1


class SoupsState(LabState):
    """Settings of the soups Lab."""

    SETTINGS = {
        "ingredients": Setting(list, (), "checked ingredients (names)", item=str),
        "soup": Setting(str, "greedy", "the highlighted soup", choices=SOUPS),
        "alpha": Setting(
            float, 0.5, "WiSE-FT mixing: 0 = zero-shot, 1 = fine-tuned (the cached 0.1 grid)", choices=ALPHAS
        ),
        "lr": Setting(float, 1e-3, "learning rate of the fine-tuned endpoint", choices=ENDPOINT_LRS),
        "bang": Setting(bool, False, "use the BANG fine-tune (label smoothing + mixup) as the endpoint"),
        "head_scale": Setting(
            float, 1.0, "scale of the fine-tuned head before averaging", low=0, high=2, open_low=True
        ),
        "split": Setting(str, ALL_SHIFTED, "the shifted split", choices=SHIFT_CHOICES),
        "line_a": Setting(str, endpoint_name(3e-4), "one end of the loss line"),
        "line_b": Setting(str, endpoint_name(1e-2), "the other end of the loss line"),
        "n_bins": N_BINS,
    }


@dataclass(frozen=True)
class SoupsResult:
    """What the Lab shows for one State.

    ``alphas`` ``(A,)`` and the current ``alpha``; ``curve``: ``"id_acc", "shift_acc", "id_ece", "shift_ece"`` ->
    ``(A,)`` tensors of the WiSE-FT curve between the zero-shot model and ``endpoint``; ``point``: the same four at
    the current alpha.
    ``table``: row -> ``{"acc_id", "acc_shift", "ece_id", "ece_shift", "nll_id", "nll_shift", "passes",
    "macs"}`` for zero-shot, the endpoint, WiSE-FT at alpha, the best checked ingredient (by val accuracy), the
    uniform, greedy and learned soups and the output ensemble; ``current``: the row of the chosen soup.
    ``greedy_kept``: the ingredients the greedy soup kept, in the order added; ``learned``: the learned soup's
    ``(n, G)`` coefficients and group names; ``line``: ``"loss", "acc"`` -> ``(A,)`` val loss (nats) and
    accuracy between ``line_a`` and ``line_b``; ``shift_name``: what "shifted" means here.
    """

    alphas: torch.Tensor
    alpha: float
    endpoint: str
    curve: dict[str, torch.Tensor]
    point: dict[str, float]
    table: dict[str, dict[str, float]]
    current: str
    greedy_kept: tuple[str, ...]
    learned: tuple[torch.Tensor, tuple[str, ...]]
    line: dict[str, torch.Tensor]
    shift_name: str


def _metrics_row(logits_id, y_id, logits_shift, y_shift, n_bins, passes, macs) -> dict[str, float]:
    p_id, p_sh = logits_id.double().softmax(-1), logits_shift.double().softmax(-1)
    return {
        "acc_id": metrics.accuracy(p_id, y_id, validate=False),
        "acc_shift": metrics.accuracy(p_sh, y_shift, validate=False),
        "ece_id": metrics.ece(p_id, y_id, n_bins=n_bins, validate=False),
        "ece_shift": metrics.ece(p_sh, y_shift, n_bins=n_bins, validate=False),
        "nll_id": metrics.nll(p_id, y_id, validate=False),
        "nll_shift": metrics.nll(p_sh, y_shift, validate=False),
        "passes": float(passes),
        "macs": float(passes * macs),
    }


@dataclass(frozen=True)
class SoupMix:
    """The soups of one checklist: ``logits``: row -> split -> ``(N_s, C)`` logits of the ``"uniform soup"``,
    ``"greedy soup"``, ``"learned soup"`` and ``"output ensemble"`` (the log of the mean of the ingredients'
    probabilities) on every split of the world; ``greedy_kept``: the ingredients the greedy soup kept, in the
    order added; ``learned``: the learned soup's ``(n, G)`` coefficients and group names."""

    logits: dict[str, dict[str, torch.Tensor]]
    greedy_kept: tuple[str, ...]
    learned: tuple[torch.Tensor, tuple[str, ...]]


def forward_splits(world: SoupWorld, state_dict) -> dict[str, torch.Tensor]:
    """split -> ``(N_s, C)`` logits of ``world.model`` with the weights ``state_dict`` on every split of the world
    (the model is given back its zero-shot weights afterwards)."""
    model = world.model
    model.load_state_dict(state_dict)
    with torch.no_grad():
        out = {s: model(x) for s, x in world.images.items()}
    model.load_state_dict(world.states[ZERO_SHOT])
    return out


def mix_soups(world: SoupWorld, names, *, val_accuracy=None, learned: bool = True) -> SoupMix:
    """The uniform, greedy and learned soups of the ingredients ``names`` and their output ensemble.

    The greedy soup sorts the ingredients by ``val_accuracy`` (name -> val accuracy; computed from the cached
    logits when None) and adds each only if the val accuracy of the soup *strictly* rises
    (:func:`~ensemble_lab.soups.greedy_soup`, the authors' code); the learned soup fits one set of coefficients
    per layer on the val split (``LEARNED_STEPS`` Adam steps at ``LEARNED_LR``); ``learned=False`` skips it (its
    row is then absent and ``SoupMix.learned`` is empty).  Costs real forward passes (seconds).
    """
    names = tuple(names)
    if not names:
        raise ValueError("names must hold at least one ingredient, got none")
    unknown = [n for n in names if n not in world.recipes]
    if unknown:
        raise ValueError(f"names must be ingredients of the world, got {unknown}")
    w = world
    states = [w.states[n] for n in names]
    xv, yv = w.images[FIT_SPLIT], w.labels[FIT_SPLIT]
    if val_accuracy is None:
        val_accuracy = {n: metrics.top1_accuracy(w.logits[n][FIT_SPLIT], yv) for n in names}

    def held_out_accuracy(sd) -> float:
        w.model.load_state_dict(sd)
        with torch.no_grad():
            acc = metrics.top1_accuracy(w.model(xv), yv)
        w.model.load_state_dict(w.states[ZERO_SHOT])
        return acc

    greedy = soups.greedy_soup(states, held_out_accuracy, scores=[val_accuracy[n] for n in names])
    member_logits = torch.stack([torch.cat([w.logits[n][s] for s in w.images]).double() for n in names])
    sizes = [w.images[s].shape[0] for s in w.images]
    ensemble = combine_module.combine(member_logits, rule="prob")  # (N, C) mean of probabilities
    logits = {
        "uniform soup": forward_splits(w, soups.uniform_soup(states)),
        "greedy soup": forward_splits(w, greedy),
    }
    mixing: tuple = (torch.empty(0), ())
    if learned:
        fit = soups.learned_soup(w.model, states, xv, yv, steps=LEARNED_STEPS, lr=LEARNED_LR)
        logits["learned soup"] = forward_splits(w, fit)
        mixing = (fit.coefficients, fit.groups)
    logits["output ensemble"] = dict(zip(w.images, torch.split(ensemble.clamp_min(1e-300).log(), sizes), strict=False))
    return SoupMix(logits, tuple(names[i] for i in greedy.kept), mixing)


class SoupsLab(Lab):
    """Interactive model soups and WiSE-FT over a :class:`~ensemble_lab.artefacts.soup_world.SoupWorld`.

    Args:
        world: the cached world (``soup_world()``).
        state: initial settings (default: every ingredient checked).
    """

    State = SoupsState
    KEY = "soups"
    CHALLENGES = (
        challenge(
            "robust-and-accurate",
            "Robust and accurate",
            "find an alpha whose WiSE-FT beats zero-shot on the shifted styles and matches the fine-tune on test",
            Target(
                "shifted accuracy",
                lambda r, s: r.point["shift_acc"],
                ">",
                lambda r, s: float(r.curve["shift_acc"][0]),
                bound_label="zero-shot",
            ),
            Target(
                "test accuracy",
                lambda r, s: r.point["id_acc"],
                ">=",
                lambda r, s: float(r.curve["id_acc"][-1]),
                bound_label="fine-tuned",
            ),
        ),
    )

    def __init__(self, world: SoupWorld, state: SoupsState | None = None):
        if not isinstance(world, SoupWorld):
            raise TypeError(
                f"world must be a SoupWorld (from ensemble_lab.artefacts.soup_world), got {type(world).__name__}"
            )
        self.world = world
        self.names = world.ingredients
        self.macs = world.model.macs(tuple(world.images[ID_SPLIT].shape[1:]))
        self._val_acc = {
            n: metrics.top1_accuracy(world.logits[n][FIT_SPLIT], world.labels[FIT_SPLIT])
            for n in (ZERO_SHOT, *self.names)
        }
        super().__init__(state)

    def limits(self):
        ends = (ZERO_SHOT, *self.names)
        return {"ingredients": tuple(self.names), "line_a": ends, "line_b": ends}

    def defaults(self):
        return {"ingredients": list(self.names)}

    # -- pieces -----------------------------------------------------------------------------------------
    def _shift_splits(self, split: str) -> tuple[str, ...]:
        return SHIFTED if split == ALL_SHIFTED else (split,)

    def _labels(self, splits) -> torch.Tensor:
        return torch.cat([self.world.labels[s] for s in splits])

    def _logits(self, per_split: dict, splits) -> torch.Tensor:
        return torch.cat([per_split[s] for s in splits], dim=-2)

    @cached(maxsize=128)
    def _curve(self, endpoint: str, head_scale: float, split: str, n_bins: int) -> dict[str, torch.Tensor]:
        terms = self.world.curve_terms[endpoint]
        out = {}
        for tag, splits in (("id", (ID_SPLIT,)), ("shift", self._shift_splits(split))):
            logits = soups.combine_head_terms(self._logits(terms, splits), ALPHAS, head_scale).double()  # (A, N, C)
            y = self._labels(splits)
            probs = logits.softmax(-1)
            out[f"{tag}_acc"] = metrics.top1_accuracy(logits, y)
            out[f"{tag}_ece"] = torch.tensor([metrics.ece(p, y, n_bins=n_bins, validate=False) for p in probs])
            out[f"{tag}_logits"] = logits
        return out

    def _checked(self, state) -> tuple[str, ...]:
        """The checked ingredients in checklist order, without repeats (the State allows only their names)."""
        if not state.ingredients:
            raise ValueError("ingredients must hold at least one ingredient: check one to make a soup")
        return tuple(n for n in self.names if n in state.ingredients)  # checklist order, no repeats

    @cached(maxsize=32)
    def _soups(self, checked: tuple[str, ...]) -> SoupMix:
        """Per checklist, once: the soups' logits on every split, the greedy order and the learned weights."""
        self.busy = f"computing soups for {len(checked)} ingredient{'s' * (len(checked) != 1)} (a few seconds)…"
        try:
            return mix_soups(self.world, checked, val_accuracy={n: self._val_acc[n] for n in checked})
        finally:
            self.busy = ""

    def soup_mix(self, names) -> SoupMix:
        """The soups of the ingredients ``names`` (any order; checklist order is used), computed once per
        checklist and shared with the table (:func:`mix_soups`)."""
        unknown = [n for n in names if n not in self.names]
        if unknown or not names:
            raise ValueError(f"names must be a non-empty list of the Lab's ingredients, got {list(names)}")
        return self._soups(tuple(n for n in self.names if n in names))

    @cached(maxsize=64)
    def _rows(self, checked, endpoint, split, n_bins):
        """Table rows that do not depend on alpha or the head scale."""
        w = self.world
        shift = self._shift_splits(split)
        y_id, y_sh = w.labels[ID_SPLIT], self._labels(shift)
        soup_logits = self._soups(checked).logits
        best = max(checked, key=lambda n: self._val_acc[n])
        sources = {
            "zero-shot": (w.logits[ZERO_SHOT], 1),
            f"fine-tuned ({endpoint})": (w.logits[endpoint], 1),
            f"best ingredient ({best})": (w.logits[best], 1),
            **{name: (lg, len(checked) if name == "output ensemble" else 1) for name, lg in soup_logits.items()},
        }
        return {
            name: _metrics_row(lg[ID_SPLIT], y_id, self._logits(lg, shift), y_sh, n_bins, passes, self.macs)
            for name, (lg, passes) in sources.items()
        }

    @cached(maxsize=32)
    def _line(self, a: str, b: str) -> dict[str, torch.Tensor]:
        w = self.world
        logits = soups.interpolation_logits(w.model, w.states[a], w.states[b], ALPHAS, w.images[FIT_SPLIT]).double()
        y = w.labels[FIT_SPLIT]
        loss = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), y.expand(logits.shape[0], -1), reduction="none"
        ).mean(-1)
        return {"loss": loss, "acc": (logits.argmax(-1) == y).double().mean(-1)}

    # -- the computation -------------------------------------------------------------------------------
    def compute(self, state: SoupsState) -> SoupsResult:
        checked = self._checked(state)
        if state.line_a == state.line_b:
            raise ValueError(f"line_a and line_b must differ (both are {state.line_a!r})")
        endpoint = endpoint_name(state.lr, state.bang)
        curve = self._curve(endpoint, float(state.head_scale), state.split, state.n_bins)
        i = min(range(len(ALPHAS)), key=lambda j: abs(ALPHAS[j] - state.alpha))
        shift = self._shift_splits(state.split)
        rows = dict(self._rows(checked, endpoint, state.split, state.n_bins))
        wise = _metrics_row(
            curve["id_logits"][i],
            self.world.labels[ID_SPLIT],
            curve["shift_logits"][i],
            self._labels(shift),
            state.n_bins,
            1,
            self.macs,
        )
        table = {}
        for name, row in rows.items():
            table[name] = row
            if name.startswith("fine-tuned"):
                table[f"WiSE-FT (alpha {ALPHAS[i]:g})"] = wise
        mix = self._soups(checked)
        current = "output ensemble" if state.soup == "output ensemble" else f"{state.soup} soup"
        return SoupsResult(
            alphas=torch.tensor(ALPHAS, dtype=torch.float64),
            alpha=ALPHAS[i],
            endpoint=endpoint,
            curve={k: v for k, v in curve.items() if not k.endswith("_logits")},
            point={k: float(v[i]) for k, v in curve.items() if not k.endswith("_logits")},
            table=table,
            current=current,
            greedy_kept=mix.greedy_kept,
            learned=mix.learned,
            line=self._line(state.line_a, state.line_b),
            shift_name="all shifted styles" if state.split == ALL_SHIFTED else state.split,
        )
