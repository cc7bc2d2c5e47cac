"""Scikit-learn digits with fixed splits, and the distorted digits made from them."""

from __future__ import annotations

import pytest
import torch

from ensemble_lab.data import (
    ImageDataset,
    load_digits,
    load_distorted_digits,
)
from ensemble_lab.data import digits as digits_mod
from ensemble_lab.data.sources import sklearn_digits, source_digits, source_split

# ----------------------------------------------------------------------------------------------------------
# Digits
# ----------------------------------------------------------------------------------------------------------


def test_load_digits_split():
    d = load_digits(seed=0)
    assert set(d) == {"train", "val", "test"}
    sizes = {k: len(v) for k, v in d.items()}
    assert sum(sizes.values()) == 1797
    assert abs(sizes["train"] - 0.6 * 1797) < 15
    assert abs(sizes["test"] - 0.2 * 1797) < 15
    for split, ds in d.items():
        assert ds.image_shape == (1, 8, 8)
        assert ds.name == f"digits/{split}"
        assert ds.images.min() >= 0
        assert ds.images.max() <= 1
        assert torch.equal(ds.images * 16, (ds.images * 16).round())  # raw grey levels 0..16 / 16
        counts = torch.bincount(ds.labels, minlength=10).float()
        assert (counts / counts.sum() - 0.1).abs().max() < 0.02  # stratified
        assert ds.classes[0] == "zero"
        assert ds.n_classes == 10
    # same images as scikit-learn, each exactly once
    from sklearn.datasets import load_digits as sk_load

    raw = torch.as_tensor(sk_load().images, dtype=torch.float32).reshape(-1, 64) / 16
    allimg = torch.cat([d[s].images.reshape(-1, 64) for s in ("train", "val", "test")])
    assert torch.equal(torch.sort(allimg, dim=0).values, torch.sort(raw, dim=0).values)


def test_load_digits_seeded():
    a, b, c = load_digits(0), load_digits(0), load_digits(1)
    assert torch.equal(a["test"].images, b["test"].images)
    assert torch.equal(a["test"].labels, b["test"].labels)
    assert not torch.equal(a["test"].labels, c["test"].labels)
    with pytest.raises(ValueError, match="seed"):
        load_digits(seed=-1)


def test_source_pools_disjoint_and_cover():
    _, labels = sklearn_digits()
    for seed in (0, 7):
        pools = digits_mod.source_pools(seed, labels)
        sets = {k: set(v.tolist()) for k, v in pools.items()}
        assert not sets["train"] & sets["test"]
        assert not sets["train"] & sets["val"]
        assert not sets["val"] & sets["test"]
        assert set().union(*sets.values()) == set(range(1797))


# ----------------------------------------------------------------------------------------------------------
# Distorted digits
# ----------------------------------------------------------------------------------------------------------

SMALL = dict(n_train=600, n_val=150, n_test=200)


def test_distorted_digits_shapes_and_range():
    d = load_distorted_digits(seed=0, **SMALL)
    for split, n in zip(("train", "val", "test"), (600, 150, 200), strict=False):
        ds = d[split]
        assert ds.images.shape == (n, 1, 16, 16)
        assert ds.labels.shape == (n,)
        assert ds.images.dtype == torch.float32
        assert ds.labels.dtype == torch.int64
        assert ds.images.min() >= 0
        assert ds.images.max() <= 1
        assert set(ds.labels.tolist()) == set(range(10))
        assert ds.name == f"distorted_digits/{split}"
    for size in (8, 24):
        tiny = load_distorted_digits(seed=0, n_train=5, n_val=5, n_test=5, size=size)
        assert tiny["val"].image_shape == (1, size, size)


def test_distorted_digits_default_size():
    d = load_distorted_digits()
    assert len(d["train"]) >= 20_000
    assert len(d["test"]) >= 5_000
    assert len(d["val"]) >= 5_000
    assert d["test"].image_shape == (1, 16, 16)


def test_distorted_digits_bit_for_bit_deterministic():
    a = digits_mod._build_distorted(3, 300, 50, 50, 16)
    b = digits_mod._build_distorted(3, 300, 50, 50, 16)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    c = digits_mod._build_distorted(4, 300, 50, 50, 16)
    assert not torch.equal(a["train_images"], c["train_images"])
    # the cached copy is the same as a fresh build
    cached = load_distorted_digits(seed=3, n_train=300, n_val=50, n_test=50)
    again = load_distorted_digits(seed=3, n_train=300, n_val=50, n_test=50)
    assert torch.equal(cached["train"].images, a["train_images"])
    assert torch.equal(again["test"].images, a["test_images"])


def test_distorted_digits_splits_independent_of_other_sizes():
    a = digits_mod._build_distorted(0, 100, 40, 40, 16)
    b = digits_mod._build_distorted(0, 300, 40, 40, 16)
    assert torch.equal(a["test_images"], b["test_images"])
    assert torch.equal(a["val_images"], b["val_images"])


def test_distorted_digits_sources_disjoint():
    t = digits_mod._load_distorted_tensors(0, 2000, 500, 500, 16)
    src = {s: set(t[f"{s}_source"].tolist()) for s in ("train", "val", "test")}
    assert not src["train"] & src["test"]
    assert not src["train"] & src["val"]
    assert not src["val"] & src["test"]
    # sources come from source_split's pools and carry their labels
    _, raw_labels, _ = source_digits()
    pools = source_split(0)
    for s in src:
        assert src[s] <= set(pools[s].tolist())
        assert torch.equal(raw_labels[t[f"{s}_source"]], t[f"{s}_labels"])
    # each training source digit is used (almost) equally often
    counts = torch.bincount(t["train_source"], minlength=len(raw_labels))[pools["train"]]
    assert counts.max() - counts.min() <= 1
    # the datasets carry the same sources
    d = load_distorted_digits(0, 2000, 500, 500)
    assert torch.equal(d["val"].sources, t["val_source"])
    assert torch.equal(d["test"].subset(slice(3, 9)).sources, t["test_source"][3:9])


def test_distorted_digits_harder_than_clean_but_learnable():
    """A linear model does far worse on distorted digits than on the clean ones, yet well above chance."""
    from sklearn.linear_model import RidgeClassifier

    def linear_accuracy(train: ImageDataset, test: ImageDataset) -> float:
        clf = RidgeClassifier(alpha=1.0).fit(train.images.flatten(1).numpy(), train.labels.numpy())
        return clf.score(test.images.flatten(1).numpy(), test.labels.numpy())

    d = load_distorted_digits(seed=0, n_train=3000, n_val=10, n_test=1000)
    clean = load_digits(0)
    distorted_acc = linear_accuracy(d["train"], d["test"])
    clean_acc = linear_accuracy(clean["train"], clean["test"])
    assert 0.35 < distorted_acc < 0.8
    assert clean_acc - distorted_acc > 0.2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(n_train=0), "n_train"),
        (dict(n_val=0), "n_val"),
        (dict(n_test=-5), "n_test"),
        (dict(size=7), "size"),
        (dict(seed=-1), "seed"),
    ],
)
def test_distorted_digits_bad_args(kwargs, name):
    with pytest.raises(ValueError, match=name):
        load_distorted_digits(**kwargs)


def test_distorted_digits_type_errors():
    with pytest.raises(TypeError, match="n_train"):
        load_distorted_digits(n_train=10.5)
