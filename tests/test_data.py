"""Tests for ensemble_lab.data: containers, digits, distorted digits, shifts and the CIFAR-10 reader."""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab.data import (
    SEVERITIES,
    SHIFT_KINDS,
    ImageDataset,
    load_cifar10,
    load_digits,
    load_distorted_digits,
    shift,
    shifted_sets,
)
from ensemble_lab.data import cifar as cifar_mod
from ensemble_lab.data import digits as digits_mod

# ----------------------------------------------------------------------------------------------------------
# ImageDataset
# ----------------------------------------------------------------------------------------------------------


def _toy(n=12, c=1, h=8, w=8, n_classes=3, seed=0, name="toy") -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    return ImageDataset(
        torch.rand(n, c, h, w, generator=g),
        torch.arange(n) % n_classes,
        tuple(f"c{i}" for i in range(n_classes)),
        name,
    )


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
    _, labels = digits_mod.raw_digits()
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
    # sources come from load_digits' pools and carry their labels
    raw_images, raw_labels = digits_mod.raw_digits()
    pools = digits_mod.source_pools(0, raw_labels)
    for s in src:
        assert src[s] <= set(pools[s].tolist())
        assert torch.equal(raw_labels[t[f"{s}_source"]], t[f"{s}_labels"])
    # each training source digit is used (almost) equally often
    counts = torch.bincount(t["train_source"], minlength=1797)[pools["train"]]
    assert counts.max() - counts.min() <= 1


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


# ----------------------------------------------------------------------------------------------------------
# Shifts
# ----------------------------------------------------------------------------------------------------------


def _mean_distance(a: ImageDataset, b: ImageDataset) -> float:
    return float((a.images - b.images).abs().mean())


@pytest.fixture(scope="module")
def digits_test():
    return load_digits(0)["test"]


def test_shift_kinds_and_severities():
    assert len(SHIFT_KINDS) >= 4
    assert len(set(SHIFT_KINDS)) == len(SHIFT_KINDS)
    assert tuple(SEVERITIES) == (1, 2, 3)


@pytest.mark.parametrize("kind", SHIFT_KINDS)
def test_shift_monotone_and_well_formed(kind, digits_test):
    clean = digits_test
    distances = []
    for severity in SEVERITIES:
        s = shift(clean, kind, severity, seed=0)
        assert s.images.shape == clean.images.shape
        assert s.images.dtype == torch.float32
        assert s.images.min() >= 0
        assert s.images.max() <= 1
        assert torch.equal(s.labels, clean.labels)
        assert s.classes == clean.classes
        assert s.name == f"digits/test/{kind}-{severity}"
        distances.append(_mean_distance(s, clean))
    assert 0 < distances[0] < distances[1] < distances[2], distances
    # deterministic
    again = shift(clean, kind, 2, seed=0)
    assert torch.equal(again.images, shift(clean, kind, 2, seed=0).images)


@pytest.mark.parametrize("shape", [(6, 3, 32, 32), (5, 1, 16, 16), (4, 3, 8, 12)])
def test_shift_any_image_shape_monotone(shape):
    ds = _toy(*shape)
    before = ds.images.clone()
    for kind in SHIFT_KINDS:
        d = [_mean_distance(shift(ds, kind, s, seed=1), ds) for s in SEVERITIES]
        assert d[0] < d[1] < d[2], (kind, d)
    assert torch.equal(ds.images, before)


def test_shift_seed_matters_for_random_kinds(digits_test):
    for kind in ("noise", "salt_pepper", "occlusion"):
        assert not torch.equal(shift(digits_test, kind, 2, seed=0).images, shift(digits_test, kind, 2, seed=1).images)


@settings(max_examples=25, deadline=None)
@given(
    c=st.sampled_from([1, 3]),
    h=st.integers(4, 20),
    w=st.integers(4, 20),
    kind=st.sampled_from(SHIFT_KINDS),
    severity=st.sampled_from(SEVERITIES),
    seed=st.integers(0, 2**31),
    data_seed=st.integers(0, 1000),
)
def test_shift_properties(c, h, w, kind, severity, seed, data_seed):
    ds = _toy(3, c, h, w, seed=data_seed)
    s = shift(ds, kind, severity, seed=seed)
    assert s.images.shape == ds.images.shape
    assert torch.isfinite(s.images).all()
    assert s.images.min() >= 0
    assert s.images.max() <= 1
    assert torch.equal(s.labels, ds.labels)


def test_shift_bad_input(digits_test):
    with pytest.raises(ValueError, match="kind"):
        shift(digits_test, "fog", 1)
    for bad in (0, 4, 1.0, True):
        with pytest.raises(ValueError, match="severity"):
            shift(digits_test, "noise", bad)
    with pytest.raises(ValueError, match="seed"):
        shift(digits_test, "noise", 1, seed=-3)
    with pytest.raises(TypeError, match="dataset"):
        shift(digits_test.images, "noise", 1)


def test_shifted_sets(digits_test):
    sets = shifted_sets(digits_test, seed=0)
    assert list(sets) == [f"{k}-{s}" for k in SHIFT_KINDS for s in SEVERITIES]
    for key, ds in sets.items():
        kind, severity = key.rsplit("-", 1)
        assert torch.equal(ds.images, shift(digits_test, kind, int(severity), seed=0).images)
        assert torch.equal(ds.labels, digits_test.labels)
        assert ds.name == f"digits/test/{key}"
    cached = shifted_sets(digits_test, seed=0)
    assert all(torch.equal(cached[k].images, sets[k].images) for k in sets)
    other = shifted_sets(digits_test, seed=1)
    assert not torch.equal(other["noise-1"].images, sets["noise-1"].images)
    # a different dataset is a different cache entry
    val = load_digits(0)["val"]
    assert len(shifted_sets(val)["blur-1"]) == len(val)


# ----------------------------------------------------------------------------------------------------------
# CIFAR-10 (fabricated files only; nothing is downloaded)
# ----------------------------------------------------------------------------------------------------------

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _Py2Pickler(pickle._Pickler):
    """Writes str and bytes as python-2 ``str`` opcodes, as cPickle did when the real CIFAR files were made."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        b = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(b) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(b)]) + b)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(b)) + b)
        self.memoize(obj)

    dispatch[str] = _save_py2_str
    dispatch[bytes] = _save_py2_str


def _dump(obj, path, style):
    if style == "py2":  # byte-for-byte the layout of the real files (numpy.core global, py2 strings)
        buf = io.BytesIO()
        _Py2Pickler(buf, protocol=2).dump(obj)
        raw = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    else:  # written by a python 3 user with today's numpy
        raw = pickle.dumps(obj, protocol=4)
    path.write_bytes(raw)


def _fabricate_cifar(root, style="py2", per_batch=3):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([f"data_batch_{j}" for j in range(1, 6)] + ["test_batch"]):
        n = per_batch + (i == 5)
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        batches[name] = (data, labels)
        _dump({b"batch_label": f"batch {i}".encode(), b"labels": labels, b"data": data,
               b"filenames": [f"img{k}.png".encode() for k in range(n)]}, folder / name, style)  # fmt: skip
    _dump({b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": per_batch, b"num_vis": 3072},
          folder / "batches.meta", style)  # fmt: skip
    return batches


@pytest.mark.parametrize("style", ["py2", "py3"])
def test_load_cifar10_fabricated(tmp_path, style):
    batches = _fabricate_cifar(tmp_path, style)
    train = load_cifar10(tmp_path, split="train")
    test = load_cifar10(tmp_path / "cifar-10-batches-py", split="test")  # the folder itself works too
    assert train.images.shape == (15, 3, 32, 32)
    assert test.images.shape == (4, 3, 32, 32)
    assert train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64
    assert train.classes == tuple(CLASSES)
    assert train.name == "cifar10/train"
    assert test.name == "cifar10/test"
    data, labels = batches["test_batch"]
    assert test.labels.tolist() == labels
    # row layout: 1024 red, then 1024 green, then 1024 blue values, row-major 32 x 32
    expected = torch.from_numpy(data.reshape(-1, 3, 32, 32).astype(np.float32) / 255)
    assert torch.allclose(test.images, expected)
    assert float(test.images[1, 1, 0, 5]) == pytest.approx(data[1, 1024 + 5] / 255)
    assert torch.equal(train.labels[:3], torch.tensor(batches["data_batch_1"][1]))
    # works with the shifts too
    assert shift(test, "blur", 3).image_shape == (3, 32, 32)


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.path}",))


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "pwned.txt"
    payload = pickle.dumps({b"data": _Evil(marker), b"labels": [0]}, protocol=4)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        cifar_mod.RestrictedUnpickler(io.BytesIO(payload), encoding="bytes").load()
    for name in ("builtins.eval", "builtins.getattr", "subprocess.Popen"):
        module, attr = name.rsplit(".", 1)
        raw = b"\x80\x02c" + module.encode() + b"\n" + attr.encode() + b"\n."
        with pytest.raises(cifar_mod.UnsafePickleError, match=name):
            cifar_mod.RestrictedUnpickler(io.BytesIO(raw)).load()
    # a poisoned batch inside an otherwise normal folder
    _fabricate_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(payload)
    with pytest.raises(pickle.UnpicklingError, match="os|posix|nt"):
        load_cifar10(tmp_path, split="test")
    assert not marker.exists()


def test_load_cifar10_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(tmp_path / "nowhere", split="test")
    message = str(info.value)
    assert "nowhere" in message
    assert "download=True" in message


def test_load_cifar10_bad_args(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_cifar10(tmp_path, split="validation")
    with pytest.raises(TypeError, match="download"):
        load_cifar10(tmp_path, download="yes")


def test_load_cifar10_download_needs_torchvision(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` raise ImportError
    with pytest.raises(ImportError, match="pip install torchvision"):
        load_cifar10(tmp_path, split="test", download=True)


def test_load_cifar10_download_path_with_fake_torchvision(tmp_path, monkeypatch):
    """download=True calls torchvision's downloader, then reads the extracted files (no network here)."""
    calls = []

    def fake_download(url, root, filename=None, md5=None):
        calls.append((url, filename, md5))
        from pathlib import Path

        _fabricate_cifar(Path(root))

    tv = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    utils = types.ModuleType("torchvision.datasets.utils")
    attrs = {"url": "https://example.invalid/c.tgz", "filename": "c.tgz", "tgz_md5": "0"}
    datasets.CIFAR10 = type("CIFAR10", (), attrs)
    utils.download_and_extract_archive = fake_download
    tv.datasets, datasets.utils = datasets, utils
    for name, mod in [("torchvision", tv), ("torchvision.datasets", datasets), ("torchvision.datasets.utils", utils)]:
        monkeypatch.setitem(sys.modules, name, mod)
    ds = load_cifar10(tmp_path / "fresh", split="test", download=True)
    assert len(ds) == 4
    assert len(calls) == 1
    load_cifar10(tmp_path / "fresh", split="train", download=True)  # already there: no second download
    assert len(calls) == 1
