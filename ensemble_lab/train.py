"""Training K-member ensembles: all members at once (stacked), or one by one (the reference).

Both engines take a :class:`~ensemble_lab.recipe.Recipe` and follow it identically, so they give the same members
up to float round-off (``seed`` below is ``recipe.seed``):

* member ``i`` starts from ``build_model(spec, seed=member_seed(seed, i))`` -- its own initialisation;
* every epoch member ``i`` visits the training set in its own random order, drawn on the cpu from a generator
  seeded ``member_seed(seed, i, stream=1)`` (so the order does not depend on the device);
* loss: mean cross-entropy (with ``recipe.label_smoothing``) over the member's batch (the stacked engine sums
  these K means, which gives each member exactly its own gradient);
* optimizer: AdamW (Adam with *decoupled* weight decay, Loshchilov & Hutter 2019) -- its update is
  element-wise, so one AdamW over the stacked ``(K, ...)`` weights is K independent AdamWs, and the decay does
  not interact with Adam's per-weight scaling the way an L2 term in the loss does (the fused implementation
  where the device has one: measured ~20% faster per stacked step on 2 cpu cores than the default);
* learning rate: cosine decay from ``lr`` to 0 over all steps (``schedule="cosine"``), or constant
  (:func:`ensemble_lab.recipe.optimizer`).

The stacked engine runs one forward/backward/step for all K members per batch, so the per-step python and
kernel-launch overhead is paid once instead of K times; see ``benchmarks/bench_training.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ._validation import (
    MAX_COUNT,
    as_tensor,
    check_bool,
    check_finite_parameters,
    check_finite_result,
    check_finite_tensor,
    check_int,
    check_training_data,
)
from .device import fit_threads_to_cpus, make_generator, resolve_device
from .models.family import ModelSpec, build_model, get_spec, member_seed
from .models.stacked import StackedEnsemble
from .recipe import Recipe, optimizer

__all__ = ["train_ensemble", "train_members_one_by_one", "predict_logits", "DEFAULT_RECIPE"]

#: the recipe the zoo's members are trained with unless it says otherwise
DEFAULT_RECIPE = Recipe(epochs=10, batch_size=128, lr=3e-3, weight_decay=1e-4, schedule="cosine")


def _check(k, recipe, progress) -> int:
    k = check_int(k, "k", minimum=1, maximum=MAX_COUNT)
    check_bool(progress, "progress")
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be an ensemble_lab.recipe.Recipe, got {type(recipe).__name__}")
    if recipe.mixup > 0 or recipe.augment:
        raise ValueError(
            f"recipe: training ensembles from scratch supports label_smoothing but not mixup or augment (got "
            f"mixup={recipe.mixup!r}, augment={recipe.augment!r}); fine_tune supports all three"
        )
    return k


def _order_generators(seed: int, k: int) -> list[torch.Generator]:
    return [make_generator(member_seed(seed, i, stream=1)) for i in range(k)]


def _blame(recipe: Recipe, when: str) -> str:
    """What to name when training on finite, checked data gives non-finite weights: the step size and decay."""
    return f"training with recipe.lr={recipe.lr!r} and recipe.weight_decay={recipe.weight_decay!r} ({when})"


def train_ensemble(
    spec: ModelSpec | str,
    train,
    k: int = 8,
    recipe: Recipe = DEFAULT_RECIPE,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> StackedEnsemble:
    """Train K members of ``spec`` on ``train`` with ``recipe``, in one stacked model (see the module doc).

    ``train`` is an :class:`~ensemble_lab.data.ImageDataset` (or an ``(images, labels)`` pair of tensors or numpy
    arrays, images finite); it is copied to ``device`` (default: :func:`~ensemble_lab.device.resolve_device`) for
    training, as float32.  ``k`` is in ``[1, MAX_COUNT]``, and so is the number of steps
    (:meth:`~ensemble_lab.recipe.Recipe.total_steps`).  A ``recipe.lr`` or ``recipe.weight_decay`` so large that
    the weights or the loss stop being finite is refused (checked after the first step, at every epoch's end from
    the loss it already reports, and on the final weights).  Returns the trained :class:`StackedEnsemble` on
    ``device``, in eval mode.
    """
    spec = get_spec(spec)
    k = _check(k, recipe, progress)
    images, labels, n_classes = check_training_data(train)
    epochs, batch_size, seed, eps = recipe.epochs, recipe.batch_size, recipe.seed, recipe.label_smoothing
    device = resolve_device(device)
    fit_threads_to_cpus()  # oversubscribed threads made each step ~30x slower on a loaded 2-core machine
    n = images.shape[0]
    x_all, y_all = images.to(device=device, dtype=torch.float32), labels.to(device)
    steps = math.ceil(n / batch_size)
    total_steps = recipe.total_steps(n)  # == epochs * steps, refused above MAX_COUNT
    ens = StackedEnsemble(spec, k, tuple(images.shape[1:]), n_classes, seed=seed).to(device)
    opt, sched = optimizer(ens.parameters(), recipe, total_steps)
    gens = _order_generators(seed, k)
    ens.train()
    bar = tqdm(
        total=epochs * steps, desc=f"training {k} x {spec.name}", unit="step", disable=not progress, mininterval=1.0
    )
    first = True
    try:
        for epoch in range(epochs):
            perms = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)  # (K, N)
            total = torch.zeros((), device=device)
            for start in range(0, n, batch_size):
                idx = perms[:, start : start + batch_size]  # (K, B): member i's batch
                logits = ens(x_all[idx], validate=False)  # (K, B, C); the data was checked once above
                # mean over K*B, times K == sum over members of each member's mean loss
                loss = F.cross_entropy(logits.reshape(-1, n_classes), y_all[idx].reshape(-1), label_smoothing=eps) * k
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if first:  # once: an overflowing step size shows at once
                    check_finite_parameters(ens.parameters(), _blame(recipe, "the first step"))
                    first = False
                total += loss.detach()
                bar.update(1)
            mean_loss = float(total) / (steps * k)  # (the sync the progress bar already paid for)
            if not math.isfinite(mean_loss):
                raise ValueError(f"{_blame(recipe, f'epoch {epoch + 1}')} made the loss {mean_loss}: it diverges")
            bar.set_postfix(epoch=epoch + 1, loss=f"{mean_loss:.3f}")
    finally:
        bar.close()
    check_finite_parameters(ens.parameters(), _blame(recipe, f"after {epochs} epoch(s)"))
    return ens.eval()


def train_members_one_by_one(
    spec: ModelSpec | str,
    train,
    k: int = 8,
    recipe: Recipe = DEFAULT_RECIPE,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> list[nn.Module]:
    """The reference engine: the same recipe and seeds as :func:`train_ensemble`, one separate model at a time.

    Returns K ``nn.Sequential`` models on ``device`` in eval mode; ``StackedEnsemble.from_members`` stacks them.
    The arguments are checked as by :func:`train_ensemble` (each member's weights after its first step and at
    its end).
    """
    spec = get_spec(spec)
    k = _check(k, recipe, progress)
    images, labels, n_classes = check_training_data(train)
    epochs, batch_size, seed, eps = recipe.epochs, recipe.batch_size, recipe.seed, recipe.label_smoothing
    device = resolve_device(device)
    n = images.shape[0]
    x_all, y_all = images.to(device=device, dtype=torch.float32), labels.to(device)
    steps = math.ceil(n / batch_size)
    total_steps = recipe.total_steps(n)  # == epochs * steps, refused above MAX_COUNT
    gens = _order_generators(seed, k)
    members = []
    desc = f"training {k} x {spec.name} one by one"
    bar = tqdm(total=k * epochs * steps, desc=desc, unit="step", disable=not progress, mininterval=1.0)
    try:
        for i in range(k):
            model = build_model(spec, tuple(images.shape[1:]), n_classes, seed=member_seed(seed, i)).to(device)
            opt, sched = optimizer(model.parameters(), recipe, total_steps)
            model.train()
            first = True
            for _ in range(epochs):
                perm = torch.randperm(n, generator=gens[i]).to(device)
                for start in range(0, n, batch_size):
                    idx = perm[start : start + batch_size]
                    loss = F.cross_entropy(model(x_all[idx]), y_all[idx], label_smoothing=eps)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    if first:
                        check_finite_parameters(model.parameters(), _blame(recipe, f"member {i}'s first step"))
                        first = False
                    bar.update(1)
            check_finite_parameters(model.parameters(), _blame(recipe, f"member {i} after {epochs} epoch(s)"))
            members.append(model.eval())
    finally:
        bar.close()
    return members


@torch.no_grad()
def predict_logits(ensemble: StackedEnsemble, images, batch_size: int = 4096) -> torch.Tensor:
    """Member logits ``(K, N, n_classes)`` for ``images`` ``(N, C, H, W)`` (a finite real tensor, numpy array or
    an ImageDataset), without grad.

    Batches of ``images`` are copied to the ensemble's device and dtype; the result lives there (float32).
    """
    if not isinstance(ensemble, StackedEnsemble):
        raise TypeError(f"ensemble must be a StackedEnsemble, got {type(ensemble).__name__}")
    if hasattr(images, "images"):
        images = images.images
    images = as_tensor(images, "images")  # numpy converted, complex refused
    c, h, w = ensemble.input_shape
    if images.ndim != 4 or tuple(images.shape[1:]) != ensemble.input_shape:
        raise ValueError(f"images must be a tensor shaped (N, {c}, {h}, {w}), got {tuple(images.shape)}")
    check_finite_tensor(images, "images")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    was_training = ensemble.training
    ensemble.eval()
    device, dtype = ensemble.device, ensemble.dtype
    cast = f"images in the ensemble's dtype ({dtype})"
    try:
        chunks = []
        for s in range(0, images.shape[0], batch_size):
            x = images[s : s + batch_size].to(device=device, dtype=dtype)
            if images.dtype != dtype:  # float64 beyond float32's range would become inf
                check_finite_result(x, cast)
            chunks.append(ensemble(x, validate=False))  # checked above
    finally:
        ensemble.train(was_training)
    if not chunks:
        return torch.empty(ensemble.k, 0, ensemble.n_classes, device=device, dtype=dtype)
    return torch.cat(chunks, dim=1)
