"""Dataset shift: corrupted copies of any :class:`ImageDataset`, in the spirit of CIFAR-10-C / MNIST-C.

Each corruption ``kind`` has three severities.  The random draws of a kind (noise values, rotation directions,
patch positions, ...) depend only on ``seed`` and the kind, never on the severity, so a higher severity is the
same corruption made stronger and the pixel distance to the clean images grows with severity.  Strengths are
set relative to the image size, so they mean the same on 8x8 digits, 16x16 distorted digits and 32x32 CIFAR.

============  ==============================================================  ===================
kind          what happens                                                    severity 1 / 2 / 3
============  ==============================================================  ===================
noise         add Gaussian noise (std, in intensity units), clip to [0, 1]     0.08 / 0.16 / 0.30
blur          Gaussian blur, std in pixels per 16 pixels of width             0.6 / 1.0 / 1.5
contrast      pull every pixel towards the image mean, keeping this fraction  0.5 / 0.3 / 0.15
rotation      rotate about the centre (random direction per image), degrees   15 / 30 / 45
occlusion     a mid-grey (0.5) square patch, side as a fraction of the width  0.25 / 0.4 / 0.55
salt_pepper   this fraction of pixels set to 0 or 1                           0.03 / 0.08 / 0.16
============  ==============================================================  ===================

Labels are never changed and images stay in [0, 1].
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_choice, check_int
from ..device import make_generator
from ._dataset import ImageDataset

__all__ = ["SHIFT_KINDS", "SEVERITIES", "SHIFT_LEVELS", "shift", "shifted_sets"]

SHIFT_KINDS: tuple[str, ...] = ("noise", "blur", "contrast", "rotation", "occlusion", "salt_pepper")
SEVERITIES: tuple[int, ...] = (1, 2, 3)
SHIFT_LEVELS: dict[str, tuple[float, float, float]] = {
    "noise": (0.08, 0.16, 0.30),
    "blur": (0.6, 1.0, 1.5),
    "contrast": (0.5, 0.3, 0.15),
    "rotation": (15.0, 30.0, 45.0),
    "occlusion": (0.25, 0.40, 0.55),
    "salt_pepper": (0.03, 0.08, 0.16),
}


def _check_dataset(dataset) -> ImageDataset:
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"dataset must be an ImageDataset, got {type(dataset).__name__}")
    return dataset


def _check_severity(severity) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or int(severity) not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(map(str, SEVERITIES))}; got {severity!r}")
    return int(severity)


def _generator(seed: int, kind: str) -> torch.Generator:
    sub = np.random.SeedSequence([seed, 2, SHIFT_KINDS.index(kind)]).generate_state(1, dtype=np.uint64)[0] >> 1
    return make_generator(int(sub))


def _blur(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    n, c, h, w = x.shape
    radius = max(1, int(math.ceil(3 * sigma_px)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma_px) ** 2)
    k = k / k.sum()
    flat = x.reshape(n * c, 1, h, w)
    # replicate padding: no dark frame creeping in from the borders
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return flat.reshape(n, c, h, w)


def _apply(images: torch.Tensor, kind: str, level: float, gen: torch.Generator) -> torch.Tensor:
    """Corrupt ``images`` ``(N, C, H, W)`` in [0, 1]; random draws come from ``gen`` (cpu) in a fixed order."""
    n, c, h, w = images.shape
    dev = images.device
    if kind == "noise":
        z = torch.randn(images.shape, generator=gen).to(dev)
        return (images + level * z).clamp(0.0, 1.0)
    if kind == "blur":
        return _blur(images, level * w / 16.0).clamp(0.0, 1.0)
    if kind == "contrast":
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        return (mean + level * (images - mean)).clamp(0.0, 1.0)
    if kind == "rotation":
        sign = (torch.randint(0, 2, (n,), generator=gen) * 2 - 1).to(dev, images.dtype)
        angle = sign * math.radians(level)
        cos, sin = torch.cos(angle), torch.sin(angle)
        zero = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], -2)
        grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0.0, 1.0)
    if kind == "occlusion":
        centre = (0.25 + 0.5 * torch.rand(n, 2, generator=gen)).to(dev, images.dtype)  # (cy, cx) in units of size
        half = level / 2
        ys = (torch.arange(h, device=dev, dtype=images.dtype) + 0.5) / h
        xs = (torch.arange(w, device=dev, dtype=images.dtype) + 0.5) / w
        inside_y = (ys.view(1, h) - centre[:, :1]).abs() <= half  # (n, h)
        inside_x = (xs.view(1, w) - centre[:, 1:]).abs() <= half  # (n, w)
        mask = (inside_y.unsqueeze(2) & inside_x.unsqueeze(1)).unsqueeze(1)  # (n, 1, h, w)
        return torch.where(mask, torch.full_like(images, 0.5), images)
    if kind == "salt_pepper":
        u = torch.rand(n, 1, h, w, generator=gen).to(dev)
        salt = (torch.rand(n, 1, h, w, generator=gen) < 0.5).to(dev)
        hit = u < level
        value = salt.to(images.dtype).expand_as(images)
        return torch.where(hit, value, images)
    raise AssertionError(f"unhandled shift kind {kind!r}")  # unreachable: kinds are checked before


def shift(dataset: ImageDataset, kind: str, severity: int, seed: int = 0) -> ImageDataset:
    """A corrupted copy of ``dataset``: same labels and classes, images ``(N, C, H, W)`` still in [0, 1].

    ``kind`` is one of :data:`SHIFT_KINDS`, ``severity`` one of :data:`SEVERITIES` (strengths in
    :data:`SHIFT_LEVELS` and the module docstring).  Deterministic given ``seed``; computed on the device the
    dataset lives on (random draws are made on the cpu, so they are the same everywhere).  The result is named
    ``f"{dataset.name}/{kind}-{severity}"``, e.g. ``"digits/test/noise-2"``.
    """
    dataset = _check_dataset(dataset)
    kind = check_choice(kind, "kind", SHIFT_KINDS)
    severity = _check_severity(severity)
    seed = check_int(seed, "seed", minimum=0, maximum=2**32 - 1)
    level = SHIFT_LEVELS[kind][severity - 1]
    with torch.no_grad():
        images = _apply(dataset.images, kind, level, _generator(seed, kind))
    name = f"{dataset.name}/{kind}-{severity}"
    return ImageDataset(images, dataset.labels, dataset.classes, name, sources=dataset.sources)


def _content_hash(dataset: ImageDataset) -> str:
    h = hashlib.sha256()
    h.update(repr((tuple(dataset.images.shape), dataset.classes)).encode())
    h.update(dataset.images.detach().cpu().contiguous().numpy().tobytes())
    h.update(dataset.labels.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def shifted_sets(dataset: ImageDataset, seed: int = 0) -> dict[str, ImageDataset]:
    """Every corruption of ``dataset``: ``{f"{kind}-{severity}": ImageDataset}`` for all kinds x severities.

    Keys come kind by kind (``"noise-1", "noise-2", "noise-3", "blur-1", ...``).  Built on the cpu (so the
    cached result does not depend on the device that built it first), cached through ``ensemble_lab.cache``
    keyed by the dataset's content and ``seed``, and returned on the dataset's device.  Each set is equal to
    ``shift(dataset, kind, severity, seed)`` computed on the cpu.
    """
    from .. import cache
    from . import shifts as this_module

    dataset = _check_dataset(dataset)
    seed = check_int(seed, "seed", minimum=0, maximum=2**32 - 1)
    keys = [f"{k}-{s}" for k in SHIFT_KINDS for s in SEVERITIES]

    def build() -> dict[str, torch.Tensor]:
        cpu = dataset.to("cpu")
        return {f"{k}-{s}": shift(cpu, k, s, seed).images for k in SHIFT_KINDS for s in SEVERITIES}

    config = dict(content=_content_hash(dataset), seed=seed, kinds=list(SHIFT_KINDS), severities=list(SEVERITIES))
    tensors = cache.load_or_build("shifted_sets", config, build, modules=(this_module,))
    device = dataset.device
    return {
        key: ImageDataset(
            tensors[key].to(device), dataset.labels, dataset.classes, f"{dataset.name}/{key}", sources=dataset.sources
        )
        for key in keys
    }
