"""The source digits (scikit-learn's and MNIST's in one 8x8 style) and their split into exchangeable pools."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ensemble_lab.data import ImageDataset, shift
from ensemble_lab.data.sources import (
    FRACTIONS,
    ORIGINS,
    draw_sources,
    mnist_digits,
    optdigits_style,
    source_digits,
    source_split,
)


def test_source_digits_are_both_origins_with_balanced_mnist_classes():
    images, labels, origin = source_digits()
    assert images.shape == (6797, 1, 8, 8)
    assert images.dtype == torch.float32
    assert torch.equal(images * 16, (images * 16).round())
    assert images.min() >= 0
    assert images.max() <= 1
    assert torch.bincount(origin).tolist() == [1797, 5000]
    assert torch.bincount(labels[origin == ORIGINS.index("mnist")], minlength=10).tolist() == [500] * 10
    # the MNIST digits are converted to the optdigits look: about the same mean ink (0.305 vs 0.316)
    ink = [float(images[origin == o].mean()) for o in (0, 1)]
    assert abs(ink[0] - ink[1]) < 0.03, ink


def test_mnist_conversion_is_the_optdigits_rule_on_hand_made_digits():
    """A filled rectangle anywhere on the canvas becomes the same 8x8 digit: cropped, centred in a square and
    counted in 4x4 blocks of a 32x32 bitmap (a 20 x 10 bar -> full height, the middle half of the width)."""
    a = torch.zeros(2, 28, 28)
    a[0, 2:22, 3:13] = 1.0
    a[1, 6:26, 15:25] = 1.0
    out = optdigits_style(a)
    assert torch.equal(out[0], out[1])
    assert torch.equal(out[0, 0, :, 2:6], torch.ones(8, 4))
    assert out[0, 0, :, :2].sum() == 0
    assert out[0, 0, :, 6:].sum() == 0
    images, labels = mnist_digits()
    assert images.shape == (5000, 1, 8, 8)
    assert labels.shape == (5000,)


def test_pools_are_disjoint_cover_everything_and_have_the_same_mixture():
    _, labels, origin = source_digits()
    for seed in (0, 5):
        pools = source_split(seed)
        sets = {k: set(v.tolist()) for k, v in pools.items()}
        assert not (sets["train"] & sets["val"])
        assert not (sets["train"] & sets["test"])
        assert not (sets["val"] & sets["test"])
        assert set().union(*sets.values()) == set(range(6797))
        strata = origin * 10 + labels
        full = torch.bincount(strata, minlength=20).double()
        for name, frac in zip(("train", "val", "test"), FRACTIONS, strict=True):
            counts = torch.bincount(strata[pools[name]], minlength=20).double()
            assert (counts - frac * full).abs().max() <= 1, name  # stratified by origin and class
    # val and test: the same mixture up to one source per stratum, so they are exchangeable
    val, test = (torch.bincount((origin * 10 + labels)[source_split(0)[s]], minlength=20) for s in ("val", "test"))
    assert (val - test).abs().max() <= 1
    assert [len(source_split(0)[s]) for s in ("train", "val", "test")] == [3398, 1699, 1700]


def test_draw_sources_uses_every_source_equally_often():
    pool = torch.tensor([3, 8, 11, 40])
    drawn = draw_sources(pool, 10, torch.Generator().manual_seed(0))
    counts = np.bincount(drawn.numpy(), minlength=41)[pool.numpy()]
    assert counts.max() - counts.min() <= 1
    assert counts.sum() == 10


def test_datasets_carry_sources_through_subset_to_and_shift():
    ds = ImageDataset(torch.rand(6, 1, 8, 8), torch.arange(6) % 2, ("a", "b"), sources=[5, 5, 7, 7, 9, 9])
    assert ds.sources.dtype == torch.int64
    assert ds.subset([4, 0]).sources.tolist() == [9, 5]
    assert ds.to("cpu").sources.tolist() == [5, 5, 7, 7, 9, 9]
    assert shift(ds, "noise", 1).sources.tolist() == [5, 5, 7, 7, 9, 9]
    assert ImageDataset(torch.rand(2, 1, 8, 8), [0, 1], ("a", "b")).sources is None


@pytest.mark.parametrize("sources", [[1, 2], [0.5] * 3, [True, False, True], torch.zeros(3, 1, dtype=torch.long)])
def test_dataset_refuses_bad_sources(sources):
    with pytest.raises(ValueError, match=r"sources must be an integer tensor of shape \(3,\)"):
        ImageDataset(torch.rand(3, 1, 8, 8), [0, 1, 0], ("a", "b"), sources=sources)
