"""ImageDataset, the container every split comes in."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ensemble_lab.data import (
    ImageDataset,
)

# ----------------------------------------------------------------------------------------------------------
# ImageDataset
# ----------------------------------------------------------------------------------------------------------
from .conftest import toy_dataset as _toy


def test_image_dataset_basics():
    ds = _toy()
    assert len(ds) == 12
    assert ds.n_classes == 3
    assert ds.image_shape == (1, 8, 8)
    assert ds.images.dtype == torch.float32
    assert ds.labels.dtype == torch.int64
    assert "toy" in repr(ds)
    assert "n=12" in repr(ds)
    sub = ds.subset(torch.tensor([0, 2, 4]))
    assert len(sub) == 3
    assert torch.equal(sub.images, ds.images[[0, 2, 4]])
    assert sub.name == "toy"
    assert len(ds.subset(slice(0, 5))) == 5
    assert len(ds.subset(ds.labels == 1)) == 4
    assert len(ds.subset(3)) == 1
    assert len(ds.subset(np.array([1, 2]), name="x")) == 2
    moved = ds.to("cpu")
    assert torch.equal(moved.images, ds.images)
    assert moved.classes == ds.classes
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.images = None  # frozen


def test_image_dataset_converts_numpy_and_lists():
    ds = ImageDataset(np.zeros((2, 1, 4, 4)), [0, 1], ["a", "b"], "np")
    assert ds.images.dtype == torch.float32
    assert ds.labels.dtype == torch.int64
    assert ds.classes == ("a", "b")


@pytest.mark.parametrize(
    ("images", "labels", "classes", "match"),
    [
        (torch.zeros(2, 8, 8), torch.zeros(2, dtype=torch.long), ("a",), "images"),
        (torch.full((2, 1, 4, 4), 1.5), torch.zeros(2, dtype=torch.long), ("a",), "images"),
        (torch.full((2, 1, 4, 4), -0.1), torch.zeros(2, dtype=torch.long), ("a",), "images"),
        (torch.zeros(2, 1, 4, 4), torch.zeros(3, dtype=torch.long), ("a",), "labels"),
        (torch.zeros(2, 1, 4, 4), torch.tensor([0, 2]), ("a", "b"), "labels"),
        (torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), (), "classes"),
    ],
)
def test_image_dataset_rejects_bad_input(images, labels, classes, match):
    with pytest.raises(ValueError, match=match):
        ImageDataset(images, labels, classes, "bad")


def test_image_dataset_refuses_integer_images():
    with pytest.raises(TypeError, match="images"):
        ImageDataset(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), ("a",), "x")


def test_subset_rejects_bad_mask():
    with pytest.raises(ValueError, match="index"):
        _toy().subset(torch.ones(3, dtype=torch.bool))


# bad-input regressions ------------------------------------------------------------------------------------
def test_subset_refuses_out_of_range_indices_by_name():
    ds = _toy()
    for bad in (12, -13, [0, 99], 2**70, [2**70]):
        with pytest.raises((ValueError, TypeError), match="index"):
            ds.subset(bad)
    assert len(ds.subset(-1)) == 1  # python-style negative indices still work
    assert torch.equal(ds.subset(np.int64(3)).images, ds.images[3:4])


def test_to_checks_the_device_and_refuses_none():
    ds = _toy()
    assert ds.to("cpu").device == torch.device("cpu")
    for bad in ("foo", "cuda:7", None, 1.5):
        with pytest.raises((ValueError, TypeError), match="device"):
            ds.to(bad)


def test_classes_must_be_a_sequence_of_names_and_rows_must_match():
    x, y = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
    for bad in (None, {"a": 0, "b": 1}, "ab"):
        with pytest.raises(TypeError, match="classes"):
            ImageDataset(x, y, bad, "x")
    with pytest.raises(ValueError, match="images and labels"):
        ImageDataset(x[:0], y, ("a", "b"), "x")
