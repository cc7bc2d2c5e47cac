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
import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ._validation import (
    as_tensor,
    check_finite_parameters,
    check_finite_result,
    check_finite_tensor,
    check_positive,
    check_training_data,
    on_device_of,
)
from .device import make_generator
from .models.clip_classifier import ClipClassifier
from .recipe import Recipe, optimizer

__all__ = ["FINE_TUNE", "fine_tune", "mixup_batch", "shift_augment"]


#: the fine-tuning recipe of the model-soups world's standard ingredient
FINE_TUNE = Recipe(lr=1e-3, weight_decay=0.1, epochs=5, batch_size=128)


def _check_images(images) -> torch.Tensor:
    """A float tensor ``(N, C, H, W)`` (numpy converted), finite."""
    x = as_tensor(images, "images", floating=False)
    if not torch.is_floating_point(x):
        raise TypeError(f"images must be a float tensor (N, C, H, W), got dtype {x.dtype}")
    if x.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got shape {tuple(x.shape)}")
    check_finite_tensor(x, "images")
    return x


def _check_generator(generator) -> torch.Generator:
    """A cpu ``torch.Generator``; None is refused rather than falling back to the global RNG."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be a torch.Generator on the cpu (e.g. ensemble_lab.device.make_generator(seed)), "
            f"got {type(generator).__name__}"
        )
    if generator.device.type != "cpu":
        raise ValueError(
            f"generator must be a cpu torch.Generator (the draws are made on the cpu), got {generator.device}"
        )
    return generator


def shift_augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``(N, C, H, W)`` images each shifted by a random ``(dy, dx)`` in ``{-1, 0, 1}^2`` pixels, zero fill.

    ``images``: a finite float tensor (or numpy array); ``generator``: a cpu ``torch.Generator`` (the shifts
    are drawn from it; None is refused rather than silently using the global RNG).
    """
    return _shift(_check_images(images), _check_generator(generator))


def _shift(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
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
    ``images``: a finite float tensor ``(N, C, H, W)`` (or numpy array); ``labels``: ``(N,)`` integer class
    indices on the images' device (numpy placed there); ``alpha > 0``; ``generator``: a cpu ``torch.Generator``
    (None is refused rather than silently using the global RNG).
    """
    x = _check_images(images)
    y = as_tensor(on_device_of(labels, "labels", x, "images"), "labels", floating=False)
    if torch.is_floating_point(y) or y.dtype == torch.bool:
        raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
    if tuple(y.shape) != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), one per row of images, got shape {tuple(y.shape)}")
    alpha = check_positive(alpha, "alpha")
    out = _mixup(x, y, alpha, _check_generator(generator))
    if not math.isfinite(out[3]):  # a tiny alpha: both Gamma draws underflow to 0, and 0 / 0
        raise ValueError(f"alpha={alpha!r} gives a Beta(alpha, alpha) draw of {out[3]}: the arithmetic underflows")
    return out


def _mixup(images: torch.Tensor, labels: torch.Tensor, alpha: float, generator: torch.Generator):
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

    ``train``'s images must be finite (numpy pairs are accepted; the images are copied to the model's device and
    dtype); the model must give ``(N, C)`` logits with a column for every label.  A recipe whose step size
    (``recipe.lr``, ``recipe.weight_decay``) or ``recipe.mixup`` makes the weights non-finite is refused (checked
    after the first step and on the result).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be an ensemble_lab.recipe.Recipe, got {type(recipe).__name__}")
    images, labels, _ = check_training_data(train)
    first_param = next(model.parameters(), None)
    if first_param is None:
        raise ValueError(f"model must have parameters to fine-tune, got a {type(model).__name__} without any")
    n, bs = images.shape[0], recipe.batch_size
    steps = recipe.total_steps(n)  # == epochs * ceil(n / batch_size), refused above MAX_COUNT
    top = int(labels.max())
    net = copy.deepcopy(model).train()
    device = next(net.parameters()).device
    dtype = first_param.dtype if first_param.is_floating_point() else images.dtype
    cast = images.dtype != dtype
    images, labels = images.to(device=device, dtype=dtype), labels.to(device)
    if cast:  # float64 beyond float32's range would become inf
        check_finite_result(images, f"train.images in the model's dtype ({dtype})")
    # the package's classifier checks every input it is given; here the data was checked once, above
    forward = functools.partial(net, validate=False) if isinstance(net, ClipClassifier) else net
    blame = f"fine-tuning with recipe.lr={recipe.lr!r} and recipe.weight_decay={recipe.weight_decay!r}"
    gen = make_generator(recipe.seed)
    opt, sched = optimizer(net.parameters(), recipe, steps)
    eps = recipe.label_smoothing
    first = True
    for _ in range(recipe.epochs):
        order = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            x, y = images[idx], labels[idx]
            if recipe.augment:
                x = _shift(x.cpu(), gen).to(device)
            if recipe.mixup > 0:
                x, ya, yb, lam = _mixup(x, y, recipe.mixup, gen)
                if not math.isfinite(lam):
                    raise ValueError(f"recipe.mixup={recipe.mixup!r} gives a non-finite mixing weight {lam}")
            out = forward(x)
            if first and (out.ndim != 2 or out.shape[0] != x.shape[0] or out.shape[1] <= top):
                raise ValueError(
                    f"model must give (N, C) logits with C > {top} (train's labels go up to {top}), got shape "
                    f"{tuple(out.shape)} for images of shape {tuple(x.shape)}"
                )
            if recipe.mixup > 0:
                loss = lam * F.cross_entropy(out, ya, label_smoothing=eps) + (1 - lam) * F.cross_entropy(
                    out, yb, label_smoothing=eps
                )
            else:
                loss = F.cross_entropy(out, y, label_smoothing=eps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if first:  # once: an overflowing step size shows at once
                check_finite_parameters(net.parameters(), f"{blame} (the first step)")
                first = False
    state = {k: v.detach().clone() for k, v in net.eval().state_dict().items()}
    check_finite_parameters(state.values(), f"{blame} (after {recipe.epochs} epoch(s))")
    return state
