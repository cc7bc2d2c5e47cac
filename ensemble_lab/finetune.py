"""Fine-tuning a pre-trained classifier with one hyperparameter recipe (an *ingredient* of a model soup).

A :class:`~ensemble_lab.recipe.Recipe` holds what the model-soups paper varies between ingredients (Wortsman et al.,
ICML 2022): learning rate, weight decay, epochs, label smoothing, mixup and data augmentation, plus the seed of
the data order.  :func:`fine_tune` trains end to end from the given model's weights and returns the new state dict.

* Loss: cross-entropy with ``label_smoothing`` (the target puts ``1 - eps + eps/C`` on the true class and
  ``eps/C`` on each other one, as ``torch.nn.functional.cross_entropy`` does).
* Mixup (Zhang et al., ICLR 2018), when ``mixup > 0``: each batch is blended with a shuffled copy of itself,
  ``x = lam x + (1 - lam) x[perm]`` with one ``lam ~ Beta(mixup, mixup)`` per batch, and the loss is the same
  blend of the two labels' losses (:func:`mixup_batch`).
* Augmentation, when ``augment``: every image is shifted by a random whole number of pixels in ``[-1, 1]`` per
  axis (zero fill).
* Optimiser: :func:`ensemble_lab.recipe.optimizer` (AdamW, the recipe's schedule), as in :mod:`ensemble_lab.train`.

Label smoothing and mixup are the two ways BANG (Lin et al., ICLR 2024) uses to curb the fine-tuned model's
over-confidence before it is averaged with the zero-shot model.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import check_positive, check_training_set
from .device import make_generator
from .recipe import Recipe, optimizer

__all__ = ["FINE_TUNE", "fine_tune", "mixup_batch", "shift_augment"]


#: the fine-tuning recipe of the model-soups world's standard ingredient
FINE_TUNE = Recipe(lr=1e-3, weight_decay=0.1, epochs=5, batch_size=128)


def shift_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``(N, C, H, W)`` images each shifted by a random ``(dy, dx)`` in ``{-1, 0, 1}^2`` pixels, zero fill."""
    n, _, h, w = images.shape
    d = torch.randint(-1, 2, (n, 2), generator=generator)
    padded = F.pad(images, (1, 1, 1, 1))
    out = torch.empty_like(images)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            idx = torch.nonzero((d[:, 0] == dy) & (d[:, 1] == dx)).flatten()
            if idx.numel():
                out[idx] = padded[idx, :, 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]
    return out


def mixup_batch(images: torch.Tensor, labels: torch.Tensor, alpha: float, generator: torch.Generator):
    """Mixup: ``(lam * x + (1 - lam) * x[perm], labels, labels[perm], lam)`` with ``lam ~ Beta(alpha, alpha)``.

    The loss of a mixed batch is ``lam * loss(out, labels) + (1 - lam) * loss(out, labels[perm])``.
    """
    alpha = check_positive(alpha, "alpha")
    # Beta(a, a) from two Gammas, drawn with the cpu generator so the run is reproducible on any device
    g = torch._standard_gamma(torch.full((2,), float(alpha), dtype=torch.float64), generator=generator)
    lam = float(g[0] / g.sum())
    perm = torch.randperm(images.shape[0], generator=generator).to(images.device)
    return lam * images + (1.0 - lam) * images[perm], labels, labels[perm], lam


def fine_tune(model: nn.Module, train, recipe: Recipe = FINE_TUNE) -> dict[str, torch.Tensor]:
    """Fine-tune a copy of ``model`` on ``train`` with ``recipe``; returns the new state dict (``model`` is
    left unchanged).

    Args:
        model: the starting point (e.g. a zero-shot :class:`~ensemble_lab.models.clip_classifier.ClipClassifier`);
            trained on the device its weights are on.
        train: an :class:`~ensemble_lab.data.ImageDataset` or an ``(images (N, ...), labels (N,))`` pair.
        recipe: the hyperparameters.

    Returns:
        The fine-tuned ``state_dict`` (tensors on the model's device).  Deterministic for a given recipe,
        data and device: all random draws come from a cpu generator seeded with ``recipe.seed``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be an ensemble_lab.recipe.Recipe, got {type(recipe).__name__}")
    images, labels, _ = check_training_set(train)
    net = copy.deepcopy(model).train()
    device = next(net.parameters()).device
    images, labels = images.to(device), labels.to(device)
    gen = make_generator(recipe.seed)
    n, bs = images.shape[0], recipe.batch_size
    steps = recipe.epochs * ((n + bs - 1) // bs)
    opt, sched = optimizer(net.parameters(), recipe, steps)
    eps = recipe.label_smoothing
    for _ in range(recipe.epochs):
        order = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            x, y = images[idx], labels[idx]
            if recipe.augment:
                x = shift_augment(x.cpu(), gen).to(device)
            if recipe.mixup > 0:
                x, ya, yb, lam = mixup_batch(x, y, recipe.mixup, gen)
                out = net(x)
                loss = lam * F.cross_entropy(out, ya, label_smoothing=eps) + (1 - lam) * F.cross_entropy(
                    out, yb, label_smoothing=eps
                )
            else:
                loss = F.cross_entropy(net(x), y, label_smoothing=eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return {k: v.detach().clone() for k, v in net.eval().state_dict().items()}
