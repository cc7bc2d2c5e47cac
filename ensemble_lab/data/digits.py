"""Embedded digit datasets: scikit-learn's bundled 8x8 digits, and distorted digits drawn from a larger pool.

* :func:`load_digits`: the 1797 original images, ``(N, 1, 8, 8)``, split 60/20/20, stratified and seeded.
* :func:`load_distorted_digits`: a larger, harder benchmark (default 20k/5k/5k images of ``16 x 16``) made by
  random affine and elastic distortions, stroke-thickness changes, contrast changes and noise of the 6,797
  source digits of :mod:`ensemble_lab.data.sources` (scikit-learn's 1,797 and 5,000 MNIST digits in the same
  8 x 8 style).  The sources are split 50/25/25 into disjoint train / val / test pools (3,398 / 1,699 / 1,700
  sources, stratified by origin and class), and each pool is distorted on its own: a model cannot score by
  recognising a training digit under a new distortion, and validation and test are exchangeable."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .._validation import check_int
from ..device import make_generator
from ._dataset import ImageDataset
from .sources import draw_sources, sklearn_digits, source_digits, source_split, stratified_pools, sub_seed

__all__ = ["DIGIT_CLASSES", "load_digits", "load_distorted_digits"]

DIGIT_CLASSES: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_SPLITS = ("train", "val", "test")
_FRACTIONS = (0.6, 0.2, 0.2)


def _check_seed(seed) -> int:
    return check_int(seed, "seed", minimum=0, maximum=2**32 - 1)


def source_pools(seed: int, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """The 60/20/20 pools of :func:`load_digits`: disjoint index pools ``{"train", "val", "test"}`` into the 1797
    scikit-learn digits, stratified by label, sorted int64 indices."""
    return stratified_pools(seed, labels, _FRACTIONS)


def load_digits(seed: int = 0) -> dict[str, ImageDataset]:
    """scikit-learn's bundled 8x8 digits (1797 images, 10 classes), split into train/val/test.

    Returns ``{"train", "val", "test"}`` -> :class:`ImageDataset` with images ``(N, 1, 8, 8)`` float32 in
    [0, 1] (raw grey levels 0..16 divided by 16) and labels ``(N,)`` int64.  The split is 60/20/20
    (1078/359/360 images), stratified by class and fixed by ``seed``.  Nothing is downloaded.
    """
    seed = _check_seed(seed)
    images, labels = sklearn_digits()
    pools = source_pools(seed, labels)
    return {
        s: ImageDataset(images[pools[s]], labels[pools[s]], DIGIT_CLASSES, f"digits/{s}", sources=pools[s])
        for s in _SPLITS
    }


# ----------------------------------------------------------------------------------------------------------
# Distorted digits
# ----------------------------------------------------------------------------------------------------------

# All distortion strengths in one place.  Lengths are in normalised image units ([-1, 1] spans the canvas),
# so the benchmark looks the same at every ``size``.
_DISTORT = dict(
    scale=(0.7, 0.95),  # width of the 8x8 frame / canvas width
    aspect=0.15,  # log-uniform +-15% stretch of x against y
    rotation_deg=20.0,  # uniform in [-20, 20] degrees
    shear=0.2,  # uniform in [-0.2, 0.2]
    translate=0.6,  # per axis, uniform in +-60% of the room between the ink and the canvas edge
    elastic_alpha=0.03,  # rms of the smooth displacement field (normalised units: 0.24 px at 16 x 16)
    elastic_sigma=0.3,  # smoothing length of the displacement field (normalised units)
    thickness=0.5,  # stroke change: blend towards a 3x3 dilation (>0) or erosion (<0) by up to this much
    ink=(0.7, 1.0),  # grey level of the strokes
    background=(0.0, 0.15),  # grey level of the background
    noise=(0.0, 0.05),  # std of additive Gaussian pixel noise
)


def _gaussian_kernel1d(sigma_px: float, device=None) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma_px)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    return k / k.sum()


def _smooth(field: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with zero padding (one grouped conv per axis)."""
    c = field.shape[1]
    k = _gaussian_kernel1d(sigma_px, field.device)
    r = (k.numel() - 1) // 2
    out = F.conv2d(field, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, r), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(r, 0), groups=c)


def _uniform(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def distort(source: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Distort ``source`` ``(N, 1, 8, 8)`` in [0, 1] into ``(N, 1, size, size)`` in [0, 1].

    Vectorised: one ``affine_grid`` + elastic displacement + ``grid_sample`` for the geometry, max-pool for the
    stroke thickness, then contrast and noise.  All randomness comes from ``gen`` (cpu), in a fixed order.
    """
    n = source.shape[0]
    p = _DISTORT
    # --- geometry: output coords -> source coords (theta is the inverse of the forward digit placement)
    scale = _uniform(gen, n, *p["scale"])
    log_aspect = _uniform(gen, n, -p["aspect"], p["aspect"])
    sx, sy = scale * torch.exp(log_aspect), scale * torch.exp(-log_aspect)
    angle = torch.deg2rad(_uniform(gen, n, -p["rotation_deg"], p["rotation_deg"]))
    shear = _uniform(gen, n, -p["shear"], p["shear"])
    # shift the digit by up to ``translate`` of the room left between its ink (~80% of the 8x8 frame) and the
    # canvas edge, so that strokes are rarely cut off
    room = (1.0 - 0.8 * scale).clamp_min(0.0).view(n, 1)
    shift = _uniform(gen, 2 * n, -p["translate"], p["translate"]).view(n, 2) * room
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (n, 2, 2)
    shr = torch.zeros(n, 2, 2)
    shr[:, 0, 0] = 1
    shr[:, 1, 1] = 1
    shr[:, 0, 1] = shear
    scl = torch.diag_embed(torch.stack([sx, sy], -1))
    forward = rot @ shr @ scl  # source -> output, linear part
    inverse = torch.linalg.inv(forward)
    theta = torch.cat([inverse, -(inverse @ shift.unsqueeze(-1))], dim=-1)  # (n, 2, 3)
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)  # (n, size, size, 2)
    # --- elastic: a smooth random displacement field, added in source coordinates
    sigma_px = p["elastic_sigma"] * size / 2
    field = torch.randn(n, 2, size, size, generator=gen)
    field = _smooth(field, sigma_px)
    field = field / field.flatten(1).std(dim=1).clamp_min(1e-6).view(n, 1, 1, 1)
    grid = grid + p["elastic_alpha"] * field.permute(0, 2, 3, 1) / scale.view(n, 1, 1, 1)
    out = F.grid_sample(source, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # --- stroke thickness: blend towards a 3x3 dilation or erosion
    t = _uniform(gen, n, -p["thickness"], p["thickness"]).view(n, 1, 1, 1)
    dil = F.max_pool2d(out, 3, stride=1, padding=1)
    ero = -F.max_pool2d(-out, 3, stride=1, padding=1)
    out = torch.where(t > 0, out + t * (dil - out), out + (-t) * (ero - out))
    # --- contrast, background and noise
    ink = _uniform(gen, n, *p["ink"]).view(n, 1, 1, 1)
    bg = _uniform(gen, n, *p["background"]).view(n, 1, 1, 1)
    noise_std = _uniform(gen, n, *p["noise"]).view(n, 1, 1, 1)
    out = bg + (ink - bg) * out
    out = out + noise_std * torch.randn(out.shape, generator=gen)
    return out.clamp(0.0, 1.0)


def _build_distorted(seed: int, n_train: int, n_val: int, n_test: int, size: int) -> dict[str, torch.Tensor]:
    """The raw tensors behind :func:`load_distorted_digits`, including ``<split>_source``: the id (index into
    :func:`~ensemble_lab.data.sources.source_digits`) of the source digit of each image."""
    images, labels, _ = source_digits()
    pools = source_split(seed)
    out: dict[str, torch.Tensor] = {}
    for k, (split, n) in enumerate(zip(_SPLITS, (n_train, n_val, n_test), strict=True)):
        gen = make_generator(sub_seed(seed, 1, k))
        order = draw_sources(pools[split], n, gen)
        out[f"{split}_images"] = distort(images[order], size, gen)
        out[f"{split}_labels"] = labels[order]
        out[f"{split}_source"] = order
    return out


def _load_distorted_tensors(seed: int, n_train: int, n_val: int, n_test: int, size: int) -> dict[str, torch.Tensor]:
    from .. import cache
    from . import digits as this_module
    from . import sources as sources_module

    config = dict(seed=seed, n_train=n_train, n_val=n_val, n_test=n_test, size=size)
    return cache.load_or_build(
        "distorted_digits",
        config,
        lambda: _build_distorted(seed, n_train, n_val, n_test, size),
        modules=(this_module, sources_module),
    )


def load_distorted_digits(
    seed: int = 0, n_train: int = 20_000, n_val: int = 5_000, n_test: int = 5_000, size: int = 16
) -> dict[str, ImageDataset]:
    """A harder digits benchmark, generated offline and deterministically from the bundled 8x8 digits.

    Each image is one of the 6,797 source digits of :func:`~ensemble_lab.data.sources.source_digits` drawn on a
    ``size x size`` canvas (``size`` in 8..64, default 16) with a random affine map (digit frame 0.7-0.95 of the
    canvas width, +-15% aspect, rotation +-20 degrees, shear +-0.2, shift up to 60% of the room to the canvas
    edge), a smooth elastic displacement, thinner or thicker strokes, random ink (0.7-1) and background (0-0.15)
    grey levels and Gaussian pixel noise (std up to 0.05), clipped to [0, 1].  Training images come only from
    the training pool of :func:`~ensemble_lab.data.sources.source_split` (same ``seed``), validation and test
    images only from its val and test pools, every source of a pool used equally often (up to one): with the
    defaults each val or test source is drawn about 3 times, so a split of 5,000 images has about 1,700 independent
    sources (its ``sources`` attribute says which image came from which).  Each split has its own random
    stream: changing ``n_train`` leaves val and test unchanged.

    Rough difficulty (defaults, seed 0): logistic regression ~62% test accuracy, a 1-hidden-layer MLP with 32
    units ~74%, a small 2-conv CNN ~92-96%.

    Returns ``{"train", "val", "test"}`` -> :class:`ImageDataset` with images ``(n, 1, size, size)``
    float32 in [0, 1] and labels ``(n,)`` int64.  Bit-for-bit identical for equal arguments on a given
    machine; built once (about 3 s on 2 cpu cores for the defaults) and then read from the cache
    (``ensemble_lab.cache``, ~0.05 s).
    """
    seed = _check_seed(seed)
    n_train = check_int(n_train, "n_train", minimum=1)
    n_val = check_int(n_val, "n_val", minimum=1)
    n_test = check_int(n_test, "n_test", minimum=1)
    size = check_int(size, "size", minimum=8, maximum=64)
    t = _load_distorted_tensors(seed, n_train, n_val, n_test, size)
    return {
        s: ImageDataset(
            t[f"{s}_images"], t[f"{s}_labels"], DIGIT_CLASSES, f"distorted_digits/{s}", sources=t[f"{s}_source"]
        )
        for s in _SPLITS
    }
