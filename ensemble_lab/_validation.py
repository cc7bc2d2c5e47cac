"""Input checks shared by every routine.

Each check converts (numpy arrays and lists become tensors, on the device they already live on) and raises
``ValueError``/``TypeError`` naming the argument, what was expected and what came.  Nothing is clipped or
repaired silently.
"""

from __future__ import annotations

import inspect
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
    "check_same_device",
    "on_device_of",
    "check_vector",
    "check_confidence_correct",
    "check_in_range",
    "check_positive",
    "check_finite",
    "check_finite_tensor",
    "check_int",
    "check_choice",
    "check_seed",
    "check_bool",
    "check_sequence",
    "check_strings",
    "check_finite_result",
    "check_module",
    "divide_by_temperature",
    "MAX_SEED",
    "MAX_COUNT",
    "check_training_data",
    "check_finite_parameters",
    "check_model_input",
    "accepts_keyword",
]


def _describe(x) -> str:
    """A short description of ``x`` for a message (its type, and its value when that is short)."""
    text = repr(x)
    return text if len(text) <= 60 else f"a {type(x).__name__}"


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
        except (TypeError, ValueError, OverflowError, RuntimeError) as exc:
            raise TypeError(f"{name} must be a tensor or array of numbers, got {type(x).__name__}") from exc
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if torch.is_complex(t):
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if floating and not torch.is_floating_point(t):
        t = t.to(torch.float32)
    return t


def check_finite_tensor(t: torch.Tensor, name: str) -> None:
    """Refuse NaN and inf entries of ``t``, counting them."""
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
    check_finite_tensor(t, name)
    return t


def check_logits(x, name: str = "logits") -> torch.Tensor:
    """Logits shaped ``(N, C)``, finite, C >= 2."""
    t = as_tensor(x, name)
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, C) with N >= 1 and C >= 2, got shape {tuple(t.shape)}")
    check_finite_tensor(t, name)
    return t


def _check_simplex(t: torch.Tensor, name: str, atol: float) -> None:
    check_finite_tensor(t, name)
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


def check_member_probs(x, name: str = "member_probs", atol: float = 1e-4, validate: bool = True) -> torch.Tensor:
    """Member probabilities shaped ``(K, N, C)``, rows on the simplex (the values are not checked when
    ``validate`` is False: a caller that checked the same tensor once; the shape always is)."""
    t = as_tensor(x, name)
    if t.ndim != 3 or min(t.shape) < 1 or t.shape[2] < 2:
        raise ValueError(f"{name} must have shape (K, N, C) with C >= 2, got shape {tuple(t.shape)}")
    if check_bool(validate, "validate"):
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
    x = on_device_of(x, name, like, "the predictions")
    return check_labels(x, n, c, name)


def check_weights(
    x,
    k: int,
    name: str = "weights",
    *,
    normalise: bool = True,
    like: torch.Tensor | None = None,
    dtype: torch.dtype | None = None,
    need_positive_sum: bool = True,
    per: str = "member",
) -> torch.Tensor:
    """A vector of ``k`` finite, non-negative numbers (member weights, member costs, prompt weights).

    With ``need_positive_sum`` (weights) the sum must be positive and finite; ``normalise`` then divides by it
    (in float64).  numpy arrays and lists go to ``like``'s device; a tensor on another device than ``like`` is
    refused, never moved.  Returned in ``dtype`` (default: ``like``'s floating dtype, else float32).

    >>> check_weights([1, 3], 2).tolist()
    [0.25, 0.75]
    """
    if isinstance(x, torch.Tensor):
        if like is not None:
            check_same_device(x, name, like, "the predictions")
        if torch.is_complex(x):
            raise TypeError(f"{name} must be real numbers, got dtype {x.dtype}")
        t = x.detach()
    elif isinstance(x, (Sequence, np.ndarray)) and not isinstance(x, (str, bytes)):
        try:
            arr = np.asarray(x)
            if arr.dtype == bool or arr.dtype.kind not in "iuf":
                raise TypeError
            if not isinstance(x, np.ndarray) and any(isinstance(v, (bool, np.bool_)) for v in x):
                raise TypeError  # True is not a weight, even among numbers (numpy would read it as 1.0)
            t = torch.as_tensor(arr.astype(np.float64))
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"{name} must be a sequence of {k} real numbers, got {_describe(x)}") from exc
    else:
        raise TypeError(f"{name} must be a sequence or tensor of {k} numbers, got {type(x).__name__}")
    t = t.to(torch.float64)
    if t.ndim != 1 or t.shape[0] != k:
        raise ValueError(f"{name} must have shape ({k},), one entry per {per}, got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        bound = "non-negative and sum > 0" if need_positive_sum else "non-negative"
        raise ValueError(f"{name} must be finite, {bound}, got {_short(t)}")
    if need_positive_sum:
        total = t.sum()
        if not bool(total > 0):
            raise ValueError(f"{name} must be finite, non-negative and sum > 0, got {_short(t)}")
        if not bool(torch.isfinite(total)):
            raise ValueError(f"{name} must have a finite sum; the entries overflow when added, got {_short(t)}")
        if normalise:
            t = t / total
    if dtype is None:
        dtype = like.dtype if like is not None and torch.is_floating_point(like) else torch.float32
    t = t.to(device=like.device if like is not None else t.device, dtype=dtype)
    if normalise and need_positive_sum and not bool(torch.isfinite(t).all()):  # pragma: no cover - float64 -> dtype
        raise ValueError(f"{name} cannot be represented in {dtype}, got {_short(x)}")
    return t


def check_same_device(x: torch.Tensor, name: str, like: torch.Tensor, like_name: str) -> None:
    """Refuse a tensor ``x`` that is not on ``like``'s device (routines never move data)."""
    if isinstance(x, torch.Tensor) and x.device != like.device:
        raise ValueError(
            f"{name} must be on the same device as {like_name} ({like.device}), got {x.device}; "
            "move one of them explicitly"
        )


def on_device_of(x, name: str, like: torch.Tensor, like_name: str):
    """numpy/list input placed on ``like``'s device; a tensor on another device refused; anything else returned
    as it is (for the next check to refuse)."""
    if isinstance(x, torch.Tensor):
        check_same_device(x, name, like, like_name)
        return x
    if isinstance(x, (np.ndarray, list, tuple)):
        try:
            return torch.as_tensor(np.asarray(x), device=like.device)
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(f"{name} must be a tensor or array of numbers, got {_describe(x)}") from exc
    return x


def check_vector(x, name: str, *, like: torch.Tensor | None = None, like_name: str = "") -> torch.Tensor:
    """A finite real 1-D tensor ``(N,)`` with ``N >= 1`` (scores, confidences)."""
    if like is not None:
        x = on_device_of(x, name, like, like_name)
    t = as_tensor(x, name).detach()
    if t.ndim != 1 or t.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N,) with N >= 1, got shape {tuple(t.shape)}")
    check_finite_tensor(t, name)
    return t


def check_confidence_correct(confidence, correct, *, validate: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``confidence`` ``(N,)`` finite scores and ``correct`` ``(N,)`` bool (or 0/1) on the same device."""
    conf = as_tensor(confidence, "confidence").detach()
    if conf.ndim != 1 or conf.shape[0] < 1:
        raise ValueError(f"confidence must have shape (N,) with N >= 1, got shape {tuple(conf.shape)}")
    if validate:
        check_finite_tensor(conf, "confidence")
    ok = as_tensor(on_device_of(correct, "correct", conf, "confidence"), "correct", floating=False)
    if ok.ndim != 1 or ok.shape[0] != conf.shape[0]:
        raise ValueError(f"correct must have shape ({conf.shape[0]},) to match confidence, got shape {tuple(ok.shape)}")
    if ok.dtype != torch.bool:
        if torch.is_complex(ok):
            raise ValueError(f"correct must be boolean or 0/1, got dtype {ok.dtype}")
        if validate and not bool(((ok == 0) | (ok == 1)).all()):
            raise ValueError(f"correct must be boolean or 0/1, got values {_short(torch.unique(ok))}")
        ok = ok != 0
    return conf, ok


def check_in_range(x, name: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite real number in ``[lo, hi]`` (ends open as asked), as a python float."""
    v = check_finite(x, name)
    if v > hi or v < lo or (lo_open and v == lo) or (hi_open and v == hi):
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise ValueError(f"{name} must be in {left}{lo:g}, {hi:g}{right}, got {x!r}")
    return v


def _real(x, name: str) -> float:
    """``x`` as a python float when it is a real number (int, float, numpy scalar, a one-element real tensor or
    array); bools, strings, complex numbers and everything else are refused."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number, got bool")
    if isinstance(x, (torch.Tensor, np.ndarray)):
        if x.ndim != 0 or x.dtype in (torch.bool, np.bool_) or torch.is_tensor(x) and torch.is_complex(x):
            raise TypeError(f"{name} must be a real number, got a {type(x).__name__} of shape {tuple(x.shape)}")
        if isinstance(x, np.ndarray) and x.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real number, got an array of dtype {x.dtype}")
        x = x.item()
    if not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}")
    try:
        return float(x)
    except OverflowError as exc:
        raise ValueError(f"{name} must be a finite number, got an integer too large for a float") from exc


def check_finite(x, name: str) -> float:
    """A finite real number as a python float (bools, strings and complex numbers refused, like :func:`check_int`).

    >>> check_finite(2, "threshold")
    2.0
    """
    v = _real(x, name)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return v


def check_positive(x, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with ``allow_zero``)."""
    v = _real(x, name)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
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


#: the largest seed torch accepts (``torch.Generator.manual_seed`` takes a signed 64-bit integer)
MAX_SEED = 2**63 - 1
#: a ceiling for counts that size an allocation (bins, grid cells, resamples, steps): far above any sensible
#: value, low enough that the allocation fails with our message instead of deep inside torch
MAX_COUNT = 10**7


def check_seed(x, name: str = "seed") -> int:
    """A seed: an int in ``[0, 2**63 - 1]`` (bools refused).

    >>> check_seed(3)
    3
    """
    return check_int(x, name, minimum=0, maximum=MAX_SEED)


def check_bool(x, name: str) -> bool:
    """A flag: ``True`` or ``False`` (numpy bools too); ``"no"``, ``0``, ``None`` and the like are refused.

    >>> check_bool(False, "validate")
    False
    """
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    raise TypeError(f"{name} must be True or False, got {_describe(x)}")


def check_sequence(x, name: str, *, what: str = "items", allow_empty: bool = False) -> list:
    """A list or tuple (or 1-D numpy array) as a list; a bare string, a dict, a set or a generator is refused
    (a generator would be used up by the first pass over it).

    >>> check_sequence((1, 2), "order")
    [1, 2]
    """
    if isinstance(x, np.ndarray) and x.ndim == 1:
        x = x.tolist()
    if not isinstance(x, (list, tuple)):
        raise TypeError(f"{name} must be a list or tuple of {what}, got {type(x).__name__}")
    if not x and not allow_empty:
        raise ValueError(f"{name} must hold at least one of its {what}, got an empty {type(x).__name__}")
    return list(x)


def check_strings(x, name: str, *, allow_empty: bool = False) -> list[str]:
    """A list or tuple of non-empty strings; a bare string is refused (it is not a list of its letters).

    >>> check_strings(["zero", "one"], "class_names")
    ['zero', 'one']
    """
    if isinstance(x, str):
        raise TypeError(f"{name} must be a list of strings, got the single string {x!r}; wrap it in a list")
    items = check_sequence(x, name, what="strings", allow_empty=allow_empty)
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise TypeError(f"{name}[{i}] must be a non-empty string, got {_describe(item)}")
    return items


def check_finite_result(t: torch.Tensor, what: str) -> torch.Tensor:
    """Refuse a non-finite RESULT of arithmetic on checked, finite arguments (an overflow or a 0/0), naming
    what overflowed: ``what`` reads like ``"logits / temperature (temperature=1e-320)"``."""
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{what} is not finite in float{torch.finfo(t.dtype).bits}: the arithmetic overflows")
    return t


def divide_by_temperature(z: torch.Tensor, t: float, name: str, temperature) -> torch.Tensor:
    """``z / t`` for finite ``z`` and a checked ``t > 0``, refusing a quotient that overflows (only ``t < 1`` can),
    naming ``name`` and the temperature as the caller gave it."""
    out = z / t
    if t < 1:
        check_finite_result(out, f"{name} / temperature (temperature={temperature!r})")
    return out


def check_module(x, name: str):
    """A ``torch.nn.Module``."""
    if not isinstance(x, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {_describe(x)}")
    return x


def check_choice(x, name: str, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    if not isinstance(x, str) or x not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {_describe(x)}")
    return x


def check_training_data(train, name: str = "train") -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(images, labels as int64, n_classes)`` of a training set: an ImageDataset-like object (``images``,
    ``labels``, optionally ``n_classes``) or an ``(images, labels)`` pair.

    Images are a finite float tensor ``(N, C, H, W)`` with N >= 1; labels ``(N,)`` integer class indices in
    ``[0, n_classes)``.  A pair may hold numpy arrays (images converted where they are, labels placed on the
    images' device; a labels tensor on another device is refused), and its ``n_classes`` is
    ``max(labels) + 1`` (at least 2, at most ``MAX_COUNT``).

    >>> images, labels, c = check_training_data((np.zeros((2, 1, 2, 2), np.float32), np.array([0, 1])))
    >>> tuple(images.shape), labels.tolist(), c
    ((2, 1, 2, 2), [0, 1], 2)
    """
    pair = isinstance(train, (tuple, list)) and len(train) == 2 and not hasattr(train, "images")
    if pair:
        images, labels = train
        n_classes = None
        if isinstance(images, (np.ndarray, torch.Tensor)):
            images = as_tensor(images, f"{name}.images", floating=False)  # numpy converted, complex refused
            labels = on_device_of(labels, f"{name}.labels", images, f"{name}.images")
            if isinstance(labels, torch.Tensor):
                labels = as_tensor(labels, f"{name}.labels", floating=False)
    elif hasattr(train, "images") and hasattr(train, "labels"):
        images, labels = train.images, train.labels
        n_classes = getattr(train, "n_classes", None)
    else:
        raise TypeError(f"{name} must be an ImageDataset (or an (images, labels) pair), got {type(train).__name__}")
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not torch.is_floating_point(images):
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ValueError(f"{name}.images must be a float tensor shaped (N, C, H, W), got {shape}")
    n = images.shape[0]
    if not isinstance(labels, torch.Tensor) or labels.shape != (n,):
        shape = tuple(labels.shape) if hasattr(labels, "shape") else type(labels).__name__
        raise ValueError(f"{name}.labels must be a tensor shaped ({n},), got {shape}")
    if n < 1:
        raise ValueError(f"{name} must hold at least one image, got 0")
    if pair:  # the classes are the labels seen: check them before max(labels) + 1 is taken as the class count
        integer = not (torch.is_floating_point(labels) or labels.dtype == torch.bool)
        if integer and int(labels.min()) < 0:
            raise ValueError(f"{name}.labels must be class indices >= 0, got {int(labels.min())}")
        labels = check_labels(labels, n, MAX_COUNT, name=f"{name}.labels")
        n_classes = max(int(labels.max()) + 1, 2)
    else:
        n_classes = max(int(labels.max()) + 1, 2) if n_classes is None else int(n_classes)
        labels = check_labels(labels, n, n_classes, name=f"{name}.labels")
    check_finite_tensor(images, f"{name}.images")
    return images, labels, n_classes


def check_model_input(x, name: str, weight: torch.Tensor, owner: str) -> torch.Tensor:
    """Input to a model whose weights are like ``weight``: a tensor on their device (numpy placed there, a tensor
    on another device refused), real and finite, cast to their dtype (a value beyond that dtype's range refused).
    ``owner`` names the model in messages, e.g. ``"the ensemble's"``."""
    t = as_tensor(on_device_of(x, name, weight, f"{owner} weights"), name)
    check_finite_tensor(t, name)
    if t.dtype != weight.dtype:
        t = check_finite_result(t.to(weight.dtype), f"{name} in {owner} dtype ({weight.dtype})")
    return t


def check_finite_parameters(tensors, what: str) -> None:
    """Refuse NaN/inf among ``tensors`` (a model's parameters after a training step, a state dict's values),
    naming what made them: ``what`` reads like ``"recipe.lr=1e+308 (the first step)"`` and should name the
    argument to blame.  One reduction per floating tensor; integer tensors are skipped."""
    floating = [t.detach() for t in tensors if isinstance(t, torch.Tensor) and torch.is_floating_point(t)]
    if not all(bool(torch.isfinite(t).all()) for t in floating):
        bad = sum(int((~torch.isfinite(t)).sum()) for t in floating)
        raise ValueError(f"{what} made {bad} weight(s) NaN/inf: the arithmetic overflows")


def accepts_keyword(fn, keyword: str) -> bool:
    """True when the callable ``fn`` takes ``keyword`` as a keyword argument (e.g. a metric's ``validate=``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    p = params.get(keyword)
    return p is not None and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
