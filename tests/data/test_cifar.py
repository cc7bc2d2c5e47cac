"""The CIFAR-10 reader, on fabricated files only (nothing is downloaded)."""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import types

import numpy as np
import pytest
import torch

from ensemble_lab.data import cifar as cifar_mod
from ensemble_lab.data import (
    load_cifar10,
    shift,
)

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
