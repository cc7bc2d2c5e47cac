"""Helpers shared by the data tests."""

import torch

from ensemble_lab.data import ImageDataset


def toy_dataset(n=12, c=1, h=8, w=8, n_classes=3, seed=0, name="toy") -> ImageDataset:
    """A small random ImageDataset: ``n`` images ``(c, h, w)`` in [0, 1), labels cycling through the classes."""
    g = torch.Generator().manual_seed(seed)
    return ImageDataset(
        torch.rand(n, c, h, w, generator=g),
        torch.arange(n) % n_classes,
        tuple(f"c{i}" for i in range(n_classes)),
        name,
    )
