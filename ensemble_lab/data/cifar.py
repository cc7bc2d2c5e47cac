"""CIFAR-10 from the standard ``cifar-10-batches-py`` folder, read without unrestricted unpickling.

The python version of CIFAR-10 is a set of pickles (``data_batch_1`` .. ``data_batch_5``, ``test_batch``,
``batches.meta``).  ``pickle.load`` on a file can run arbitrary code, so this module reads them with
:class:`RestrictedUnpickler`, which only builds the few numpy objects those files contain and refuses
anything else.  Downloading goes through torchvision (optional, needs a network); tests and notebooks never
download.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from .._validation import check_choice
from ._dataset import ImageDataset

__all__ = ["CIFAR10_CLASSES", "RestrictedUnpickler", "UnsafePickleError", "load_cifar10", "read_batch"]

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
_FOLDER = "cifar-10-batches-py"
_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_FILES = ("test_batch",)
_META_FILE = "batches.meta"


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global that :class:`RestrictedUnpickler` does not allow."""


def _allowed_globals() -> dict[tuple[str, str], object]:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that only reconstructs numpy arrays (and plain containers, numbers, strings, bytes).

    ``find_class`` resolves exactly ``numpy.core.multiarray._reconstruct`` (or its numpy 2 name
    ``numpy._core.multiarray._reconstruct``), ``numpy.ndarray`` and ``numpy.dtype``: what the CIFAR-10 python
    files need.  Any other global (``os.system``, ``builtins.eval``, ...) raises :class:`UnsafePickleError`
    before anything is called.
    """

    def find_class(self, module: str, name: str):
        allowed = _allowed_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise UnsafePickleError(
            f"refusing to unpickle global {module}.{name}: only numpy array reconstruction "
            f"({', '.join(f'{m}.{n}' for m, n in allowed)}) is allowed in CIFAR-10 files"
        )


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        obj = RestrictedUnpickler(f, encoding="bytes").load()
    if not isinstance(obj, dict):
        raise ValueError(f"{path} should hold a dict, got {type(obj).__name__}")
    # the original files were written by python 2: keys come back as bytes; accept str keys too
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def read_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file: ``(images, labels)`` as uint8 ``(n, 3, 32, 32)`` (RGB) and int64 ``(n,)``."""
    path = Path(path)
    d = _unpickle(path)
    if "data" not in d or "labels" not in d:
        raise ValueError(
            f"{path} is not a CIFAR-10 batch: expected keys 'data' and 'labels', got {sorted(map(str, d))}"
        )
    data = np.asarray(d["data"])
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{path}: expected data uint8 (n, 3072) and n labels, got data {data.dtype} {data.shape} "
            f"and {labels.shape[0]} labels"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _read_classes(folder: Path) -> tuple[str, ...]:
    meta_path = folder / _META_FILE
    if not meta_path.exists():
        return CIFAR10_CLASSES
    names = _unpickle(meta_path).get("label_names")
    if not names:
        return CIFAR10_CLASSES
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def _find_folder(root: Path) -> Path | None:
    for candidate in (root / _FOLDER, root):
        if (candidate / _TEST_FILES[0]).exists() or (candidate / _TRAIN_FILES[0]).exists():
            return candidate
    return None


def _download(root: Path) -> None:
    try:
        from torchvision.datasets import CIFAR10
        from torchvision.datasets.utils import download_and_extract_archive
    except Exception as exc:  # ImportError, or a torchvision build that fails against this torch
        raise ImportError(
            "load_cifar10(download=True) downloads through torchvision, which could not be imported: "
            "pip install torchvision (or unpack the 'cifar-10-batches-py' folder under root yourself)"
        ) from exc
    root.mkdir(parents=True, exist_ok=True)
    # torchvision fetches the archive, checks its md5 and extracts it; we read the files ourselves
    # (restricted) rather than through torchvision's unrestricted pickle.load
    download_and_extract_archive(CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5)


def load_cifar10(root: str | Path, split: str = "train", download: bool = False) -> ImageDataset:
    """CIFAR-10 ``split`` ("train": 50,000 images from data_batch_1..5; "test": 10,000 from test_batch).

    ``root`` is the folder that holds ``cifar-10-batches-py/`` (as for torchvision) or that folder itself.
    Returns an :class:`ImageDataset` with images ``(N, 3, 32, 32)`` float32 RGB in [0, 1] (bytes / 255) and
    labels ``(N,)`` int64, classes from ``batches.meta``.  The train split takes 600 MB as float32.

    The pickled files are read with :class:`RestrictedUnpickler` (numpy arrays only).  With ``download=True``
    a missing folder is fetched with torchvision (needs ``pip install torchvision`` and a network); without
    it a missing folder raises ``FileNotFoundError``.
    """
    split = check_choice(split, "split", ("train", "test"))
    if not isinstance(download, bool):
        raise TypeError(f"download must be a bool, got {type(download).__name__}")
    if not isinstance(root, (str, Path)):
        raise TypeError(f"root must be a path (str or pathlib.Path), got {type(root).__name__}")
    root = Path(root).expanduser()
    folder = _find_folder(root)
    if folder is None and download:
        _download(root)
        folder = _find_folder(root)
    if folder is None:
        raise FileNotFoundError(
            f"CIFAR-10 not found: looked for {root / _FOLDER} (and {root}) with files "
            f"{', '.join(_TRAIN_FILES + _TEST_FILES)}.  Download it with load_cifar10({str(root)!r}, "
            "download=True) (needs torchvision and a network), or unpack "
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz into that folder."
        )
    names = _TRAIN_FILES if split == "train" else _TEST_FILES
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10 folder {folder} lacks {', '.join(missing)} for split {split!r}")
    parts = [read_batch(folder / n) for n in names]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    classes = _read_classes(folder)
    images = torch.from_numpy(data).to(torch.float32).div_(255.0)
    return ImageDataset(images, torch.from_numpy(labels), classes, f"cifar10/{split}")
