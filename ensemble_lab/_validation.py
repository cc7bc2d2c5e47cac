"""Input checks shared by every routine.

Each check converts (numpy arrays and lists become tensors, on the device they already live on) and raises
``ValueError``/``TypeError`` naming the argument, what was expected and what came.  Nothing is clipped or
repaired silently.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "as_tensor",
    "check_member_logits",
    "check_logits",
    "check_probs",
    "check_member_probs",
    "check_labels",
    "check_labels_for",
    "check_weights",
    "check_positive",
    "check_finite",
    "check_int",
    "check_choice",
]


def _short(values, limit: int = 6) -> str:
    flat = [round(float(v), 4) for v in torch.as_tensor(values).detach().flatten()[:limit].cpu().tolist()]
    more = ", ..." if torch.as_tensor(values).numel() > limit else ""
    return "[" + ", ".join(str(v) for v in flat) + more + "]"


def as_tensor(x, name: str, *, floating: bool = True) -> torch.Tensor:
    """``x`` as a tensor (numpy and lists converted; tensors kept on their device).

    Floating input keeps its dtype (float32/float64); integer or bool input becomes float32 when
    ``floating`` is True.
    """
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, (np.ndarray, list, tuple, float, int)):
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a tensor or array of numbers, got {type(x).__name__}") from exc
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if floating and not torch.is_floating_point(t):
        t = t.to(torch.float32)
    return t


def _check_finite(t: torch.Tensor, name: str) -> None:
    if not torch.isfinite(t).all():
        bad = int((~torch.isfinite(t)).sum())
        raise ValueError(f"{name} must be finite, got {bad} NaN/inf value(s)")


def check_member_logits(x, name: str = "member_logits") -> torch.Tensor:
    """Member logits shaped ``(K, N, C)``, finite, K >= 1, N >= 1, C >= 2."""
    t = as_tensor(x, name)
    if t.ndim != 3:
        raise ValueError(f"{name} must have shape (K, N, C) (members, samples, classes), got shape {tuple(t.shape)}")
    k, n, c = t.shape
    if k < 1 or n < 1 or c < 2:
        raise ValueError(f"{name} needs K >= 1 members, N >= 1 samples and C >= 2 classes, got shape {tuple(t.shape)}")
    _check_finite(t, name)
    return t


def check_logits(x, name: str = "logits") -> torch.Tensor:
    """Logits shaped ``(N, C)``, finite, C >= 2."""
    t = as_tensor(x, name)
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, C) with N >= 1 and C >= 2, got shape {tuple(t.shape)}")
    _check_finite(t, name)
    return t


def _check_simplex(t: torch.Tensor, name: str, atol: float) -> None:
    _check_finite(t, name)
    if (t < -atol).any() or (t > 1 + atol).any():
        raise ValueError(f"{name} must lie in [0, 1], got values in [{float(t.min()):.4g}, {float(t.max()):.4g}]")
    sums = t.sum(dim=-1)
    worst = (sums - 1).abs().max()
    if worst > atol:
        raise ValueError(
            f"{name} rows must sum to 1 (probabilities on the simplex), got a row summing to "
            f"{float(sums.flatten()[(sums - 1).abs().flatten().argmax()]):.6g}"
        )


def check_probs(x, name: str = "probs", atol: float = 1e-4) -> torch.Tensor:
    """Probabilities shaped ``(N, C)``, rows on the simplex (within ``atol``)."""
    t = as_tensor(x, name)
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, C) with N >= 1 and C >= 2, got shape {tuple(t.shape)}")
    _check_simplex(t, name, atol)
    return t


def check_member_probs(x, name: str = "member_probs", atol: float = 1e-4) -> torch.Tensor:
    """Member probabilities shaped ``(K, N, C)``, rows on the simplex."""
    t = as_tensor(x, name)
    if t.ndim != 3 or min(t.shape) < 1 or t.shape[2] < 2:
        raise ValueError(f"{name} must have shape (K, N, C) with C >= 2, got shape {tuple(t.shape)}")
    _check_simplex(t, name, atol)
    return t


def check_labels(x, n: int, n_classes: int, name: str = "labels") -> torch.Tensor:
    """Integer labels shaped ``(n,)`` with values in ``[0, n_classes)``; returned as int64."""
    t = as_tensor(x, name, floating=False)
    if torch.is_floating_point(t) or t.dtype == torch.bool or torch.is_complex(t):
        if torch.is_floating_point(t) and t.numel() and torch.equal(t, t.round()):
            t = t.to(torch.int64)
        else:
            raise ValueError(f"{name} must be integer class indices, got dtype {t.dtype}")
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the predictions, got shape {tuple(t.shape)}")
    t = t.to(torch.int64)
    if n and (t.min() < 0 or t.max() >= n_classes):
        raise ValueError(
            f"{name} must lie in [0, {n_classes - 1}] for {n_classes} classes, "
            f"got values in [{int(t.min())}, {int(t.max())}]"
        )
    return t


def check_labels_for(x, like: torch.Tensor, name: str = "labels") -> torch.Tensor:
    """Labels for predictions ``like`` shaped ``(..., N, C)``, as :func:`check_labels`.

    numpy arrays and lists are placed on ``like``'s device; a tensor on another device is refused rather than
    moved (routines never move data behind the caller's back).
    """
    n, c = like.shape[-2], like.shape[-1]
    if isinstance(x, torch.Tensor):
        if x.device != like.device:
            raise ValueError(
                f"{name} must be on the same device as the predictions ({like.device}), got "
                f"{x.device}; move one of them explicitly"
            )
    elif isinstance(x, (np.ndarray, list, tuple)):
        try:
            x = torch.as_tensor(np.asarray(x), device=like.device)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a tensor or array of integers, got {type(x).__name__}") from exc
    return check_labels(x, n, c, name)


def check_weights(x, k: int, name: str = "weights", *, normalise: bool = True, like: torch.Tensor | None = None):
    """Member weights: ``k`` finite, non-negative numbers with a positive sum.

    Returned as a float tensor (on ``like``'s device and dtype if given), normalised to sum to one unless
    ``normalise`` is False.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, (Sequence, np.ndarray)):
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a sequence of numbers, got {x!r}") from exc
    else:
        raise TypeError(f"{name} must be a sequence or tensor of {k} numbers, got {type(x).__name__}")
    t = t.to(torch.float64)
    if t.ndim != 1 or t.shape[0] != k:
        raise ValueError(f"{name} must have one entry per member ({k}), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all() or (t < 0).any() or t.sum() <= 0:
        raise ValueError(f"{name} must be finite, non-negative and sum > 0, got {_short(t)}")
    if normalise:
        t = t / t.sum()
    if like is not None:
        t = t.to(device=like.device, dtype=like.dtype if torch.is_floating_point(like) else torch.float32)
    else:
        t = t.to(torch.float32)
    return t


def check_finite(x, name: str) -> float:
    """A finite real number as a python float (bools refused, like :func:`check_int`)."""
    if isinstance(x, bool):
        raise TypeError(f"{name} must be a number, got bool")
    try:
        v = float(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number, got {type(x).__name__}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return v


def check_positive(x, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    try:
        v = float(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a number, got {type(x).__name__}") from exc
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {x!r}")
    return v


def check_int(x, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (bools refused) within ``[minimum, maximum]``."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    v = int(x)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {v}")
    return v


def check_choice(x, name: str, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if x not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {x!r}")
    return x
