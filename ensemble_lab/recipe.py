"""A training recipe: the hyperparameters of one training run, as a frozen dataclass whose dict is part of the
cache key of what it trains.

One meaning everywhere: :func:`ensemble_lab.train.train_ensemble` trains deep-ensemble members from scratch with a
recipe, :func:`ensemble_lab.finetune.fine_tune` fine-tunes a pre-trained model with one (an ingredient of a model
soup), and the artefacts layer keys its cache by ``recipe.to_dict()``.

* Optimiser: AdamW with decoupled weight decay; the learning rate follows ``schedule`` over all steps
  (``"cosine"``: cosine decay from ``lr`` to 0; ``"constant"``).
* ``label_smoothing``: cross-entropy target ``1 - eps + eps/C`` on the true class and ``eps/C`` on each other one
  (as ``torch.nn.functional.cross_entropy`` does).
* ``mixup`` (Zhang et al., ICLR 2018): Beta parameter of mixup, 0 = off.  ``augment``: random +-1 pixel shifts.
  Both are fine-tuning options (:func:`~ensemble_lab.finetune.fine_tune`); ``train_ensemble`` refuses them.
* ``seed``: everything random in the run (for ``train_ensemble`` the members' initial weights and data orders,
  for ``fine_tune`` the data order, mixup draws and shifts).

>>> from ensemble_lab.recipe import Recipe
>>> r = Recipe(epochs=2, lr=1e-3)
>>> r.to_dict()["lr"], r.bang, Recipe(mixup=0.4).bang
(0.001, False, True)
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ._validation import MAX_COUNT, check_bool, check_choice, check_int, check_positive

__all__ = ["Recipe", "SCHEDULES", "optimizer"]

SCHEDULES = ("cosine", "constant")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training run's hyperparameters (checked on construction; see the module docstring).

    epochs: passes over the training set.  batch_size: images per step.  lr: peak learning rate.
    weight_decay: AdamW's decoupled decay.  schedule: ``"cosine"`` or ``"constant"``.
    label_smoothing: ``eps`` in [0, 1).  mixup: Beta parameter, 0 = off.  augment: +-1 pixel shifts.
    seed: everything random in the run.

    numpy scalars (``np.int64(5)``, ``np.float64(1e-3)``, ``np.bool_(True)``, ``np.str_``) are accepted and
    stored as the python values they hold, so that :meth:`to_dict` is the same cache key either way.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    mixup: float = 0.0
    augment: bool = False
    seed: int = 0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.generic):
                object.__setattr__(self, f.name, value.item())
        check_int(self.epochs, "epochs", minimum=1)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_positive(self.lr, "lr")
        check_positive(self.weight_decay, "weight_decay", allow_zero=True)
        check_choice(self.schedule, "schedule", SCHEDULES)
        eps = check_positive(self.label_smoothing, "label_smoothing", allow_zero=True)
        if eps >= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        check_positive(self.mixup, "mixup", allow_zero=True)
        check_bool(self.augment, "augment")
        check_int(self.seed, "seed", minimum=0, maximum=2**63 - 1)

    def to_dict(self) -> dict:
        """The fields as a plain dict (part of a cache key)."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> Recipe:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    def total_steps(self, n: int) -> int:
        """Optimiser steps of a run over ``n`` samples: ``epochs * ceil(n / batch_size)``, at most ``MAX_COUNT``
        (more would run for days; a huge ``epochs`` would hang).

        >>> Recipe(epochs=2, batch_size=128).total_steps(300)
        6
        """
        n = check_int(n, "n", minimum=1)
        steps = self.epochs * ((n + self.batch_size - 1) // self.batch_size)
        if steps > MAX_COUNT:
            raise ValueError(
                f"recipe.epochs={self.epochs} with recipe.batch_size={self.batch_size} on {n} samples makes {steps} "
                f"optimiser steps, more than {MAX_COUNT}"
            )
        return steps

    @property
    def bang(self) -> bool:
        """True when the recipe curbs over-confidence the way BANG does (label smoothing or mixup)."""
        return self.label_smoothing > 0 or self.mixup > 0


def optimizer(params, recipe: Recipe, total_steps: int):
    """AdamW over ``params`` with ``recipe``'s learning rate, weight decay and schedule over ``total_steps``.

    Returns ``(optimizer, scheduler)``; call ``scheduler.step()`` after every ``optimizer.step()``.
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    total_steps = check_int(total_steps, "total_steps", minimum=1)
    params = list(params)
    try:  # one fused kernel per parameter (cpu: torch >= 2.4; cuda; recent mps): fewest launches per step
        opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):
        opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
        )
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    return opt, sched
