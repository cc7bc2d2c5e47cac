"""The one container every dataset in the package comes as: :class:`ImageDataset`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._validation import as_tensor, check_labels, check_strings

__all__ = ["ImageDataset"]


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled image set, held in memory as two tensors.

    Attributes
    ----------
    images:
        ``(N, C, H, W)`` float32, pixel intensities in ``[0, 1]`` (0 = black).  Numpy arrays and other float
        dtypes are converted to a float32 tensor; integer images (e.g. uint8 0..255) are refused rather than
        rescaled behind your back.
    labels:
        ``(N,)`` int64 class indices in ``[0, len(classes))``.
    classes:
        Class names, index ``i`` naming label ``i``, e.g. ``("zero", "one", ...)``.
    name:
        A short name used in plots and tables, e.g. ``"digits/test"`` or ``"digits/test/noise-2"``.
    sources:
        ``(N,)`` int64 id of the independent source behind each image (images drawn from one source digit share
        its id), or None when every image is its own source.  Pass it as ``clusters=`` to
        :func:`~ensemble_lab.stats.paired_bootstrap`.

    The dataclass is frozen; :meth:`subset` and :meth:`to` return new datasets (sharing storage where torch
    indexing allows).  Equality is identity: compare ``images``/``labels`` with ``torch.equal`` yourself.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str = "dataset"
    sources: torch.Tensor | None = None

    def __post_init__(self) -> None:
        images = as_tensor(self.images, "images", floating=False)
        if not torch.is_floating_point(images):
            raise TypeError(
                f"images must be floating point in [0, 1], got dtype {images.dtype} (divide uint8 images by 255 first)"
            )
        if images.dtype != torch.float32:
            images = images.to(torch.float32)
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got shape {tuple(images.shape)}")
        classes = tuple(check_strings(self.classes, "classes"))  # a list or tuple of non-empty names
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        if images.numel():
            lo, hi = float(images.min()), float(images.max())
            if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0.0 or hi > 1.0:
                raise ValueError(f"images must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
        label_shape = tuple(getattr(self.labels, "shape", ()))  # (lists are left to check_labels)
        if label_shape and label_shape[0] != images.shape[0]:
            raise ValueError(
                f"images and labels must hold one entry per sample, got {images.shape[0]} images (shape "
                f"{tuple(images.shape)}) and labels of shape {tuple(self.labels.shape)}"
            )
        labels = check_labels(self.labels, images.shape[0], len(classes), name="labels")
        if labels.device != images.device:
            raise ValueError(f"labels must be on the images' device ({images.device}), got {labels.device}")
        if self.sources is not None:
            sources = as_tensor(self.sources, "sources", floating=False)
            if sources.dtype.is_floating_point or sources.dtype == torch.bool or sources.shape != (images.shape[0],):
                raise ValueError(
                    f"sources must be an integer tensor of shape ({images.shape[0]},), one id per image, got dtype "
                    f"{sources.dtype}, shape {tuple(sources.shape)}"
                )
            object.__setattr__(self, "sources", sources.to(device=images.device, dtype=torch.int64))
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "classes", classes)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
            f"n_classes={self.n_classes}, device={self.device})"
        )

    @property
    def n_classes(self) -> int:
        """Number of classes, ``len(classes)``."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def device(self) -> torch.device:
        """Device the tensors live on."""
        return self.images.device

    def subset(self, index, name: str | None = None) -> ImageDataset:
        """The images selected by ``index`` (slice, int, list/array/tensor of ints, or boolean mask of length N).

        The name is kept unless ``name`` is given.  Integer indices lie in ``[-N, N)`` (negative ones count
        from the end, as in python).
        """
        n = len(self)
        if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
            if not -n <= int(index) < n:
                raise ValueError(f"index must be in [{-n}, {n - 1}] for a dataset of {n} images, got {int(index)}")
            index = [int(index)]
        if isinstance(index, torch.Tensor):
            index = index.to(self.images.device)
        elif isinstance(index, (list, tuple, np.ndarray)):
            try:
                index = torch.as_tensor(np.asarray(index), device=self.images.device)
            except (TypeError, ValueError, OverflowError, RuntimeError) as exc:
                what = repr(index) if len(repr(index)) <= 60 else f"a {type(index).__name__}"
                raise TypeError(f"index must be a sequence of ints (or bools) torch can hold, got {what}") from exc
        if isinstance(index, torch.Tensor):
            if index.dtype == torch.bool:
                if index.shape != (len(self),):
                    raise ValueError(
                        f"index as a boolean mask must have shape ({len(self)},), got {tuple(index.shape)}"
                    )
            elif torch.is_floating_point(index) or index.ndim != 1:
                raise ValueError(
                    f"index must be a 1-d integer or boolean index, got dtype {index.dtype}, shape {tuple(index.shape)}"
                )
            elif index.numel() and (index.min() < -n or index.max() >= n):
                raise ValueError(
                    f"index must hold indices in [{-n}, {n - 1}] for a dataset of {n} images, got values in "
                    f"[{int(index.min())}, {int(index.max())}]"
                )
        elif not isinstance(index, slice):
            raise TypeError(
                "index must be a slice, int, sequence/array/tensor of ints or a boolean mask, "
                f"got {type(index).__name__}"
            )
        sources = None if self.sources is None else self.sources[index]
        name = self.name if name is None else name
        return ImageDataset(self.images[index], self.labels[index], self.classes, name, sources=sources)

    def to(self, device: str | torch.device) -> ImageDataset:
        """The same dataset with both tensors on ``device`` (a name or torch.device that exists on this machine)."""
        from ..device import resolve_device

        if device is None:  # resolve_device(None) would pick a default: asking for a copy means naming where
            raise TypeError("device must be a device name such as 'cpu' or 'cuda:0', or a torch.device, got None")
        device = resolve_device(device)
        sources = None if self.sources is None else self.sources.to(device)
        return ImageDataset(self.images.to(device), self.labels.to(device), self.classes, self.name, sources=sources)
