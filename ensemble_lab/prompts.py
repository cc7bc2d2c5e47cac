"""Prompt ensembles for zero-shot text-image classifiers, weighted without labels (ZPE).

A CLIP-like model classifies an image by comparing its embedding with the embedding of a sentence per class,
built from a template such as ``"a photo of a {}."``.  With P templates (prompts) and C classes:

- per-prompt logits (:func:`prompt_logits`), image and text embeddings both L2-normalised along the last
  dim, ``s`` the model's logit scale (about 100 for CLIP)::

      l[n, p, c] = s * <image_n, text(template_p, class_c)>          shape (N, P, C)

- the standard prompt ensemble averages the normalised text embeddings of each class over the prompts and
  re-normalises (:func:`average_text_embeddings`, then :func:`zero_shot_logits`);
- ZPE, "A Simple Zero-shot Prompt Weighting Technique to Improve Prompt Ensembling in Text-Image Models"
  (Allingham et al., ICML 2023) instead scores every prompt on the *unlabeled* test images and weights the
  prompts' logits by the scores (:func:`zpe_scores`, :func:`zpe_weights` or :func:`zpe_select`, then
  :func:`ensemble_prompt_logits`).

The ZPE score of a prompt
-------------------------
With ``mu_pre[p, c]`` the mean of ``l[:, p, c]`` over a sample of M pre-training images (``pretrain_logits``,
shape ``(M, P, C)``) and ``mu_test[p, c]`` its mean over the N test images (``logits``, shape ``(N, P, C)``)::

      score_p = mean_n  max_c ( l[n, p, c] - bias[p, c] )            shape (P,), in logit units

      debias="both"      bias = (mu_pre + mu_test) / 2              (the paper's choice)
      debias="pretrain"  bias = mu_pre
      debias="test"      bias = mu_test
      debias="none"      bias = 0                                   (the naive max-logit score)

and the weights are ``softmax(score / temperature)`` (:func:`zpe_weights`), or uniform over the prompts whose
robust z-score passes a threshold (:func:`zpe_select`).  The ensemble is ``sum_p w_p l[:, p, :]``, shape
``(N, C)``.

Why debias?  A confident prompt (large max-logit) is usually a good prompt, but pre-training leaves
frequency biases: some words make the model lean towards one class on *every* image.  Such a prompt gives each
image a high logit for that class, so its naive max-logit score is high although it tells the classes apart
worse than an ordinary prompt.  Subtracting each (prompt, class) pair's average logit removes exactly this
image-independent part and leaves the part that varies with the image.

Templates are filled with an explicit ``str.replace`` of the single ``"{}"`` placeholder, never with
``str.format`` (:func:`check_template`, :func:`fill_template`, :func:`fill_templates`), so that a class name
or a template can contain any text without being interpreted.

All routines are pure torch and device-agnostic: they work on the device of their inputs (numpy arrays are
converted to CPU tensors) and never move a tensor; two tensor arguments on different devices are refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._numerics import acc_dtype
from ._validation import (
    as_tensor,
    check_bool,
    check_choice,
    check_finite,
    check_finite_result,
    check_finite_tensor,
    check_positive,
    check_weights,
    on_device_of,
)

__all__ = [
    "CLASS_NAME_ONLY",
    "DEBIAS_MODES",
    "prompt_logits",
    "zpe_scores",
    "zpe_weights",
    "zpe_select",
    "ensemble_prompt_logits",
    "average_text_embeddings",
    "equal_average_logits",
    "zero_shot_logits",
    "check_template",
    "fill_template",
    "fill_templates",
]

#: the bare class name as a template: the baseline every prompt is compared with
CLASS_NAME_ONLY = "{}"

DEBIAS_MODES = ("both", "pretrain", "test", "none")


# ----------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------


def _check_prompt_logits(x, name: str) -> torch.Tensor:
    """Per-prompt logits ``(N, P, C)``: finite, N >= 1, P >= 1, C >= 2."""
    t = as_tensor(x, name)
    if t.ndim != 3:
        raise ValueError(f"{name} must have shape (N, P, C) (images, prompts, classes), got shape {tuple(t.shape)}")
    n, p, c = t.shape
    if p == 0:
        raise ValueError(f"{name} has an empty prompt pool (P == 0), got shape {tuple(t.shape)}")
    if n < 1 or c < 2:
        raise ValueError(f"{name} needs N >= 1 images and C >= 2 classes, got shape {tuple(t.shape)}")
    check_finite_tensor(t, name)
    return t


def _check_scores(x, name: str = "scores") -> torch.Tensor:
    """Prompt scores ``(P,)``: finite, P >= 1."""
    t = as_tensor(x, name)
    if t.ndim != 1:
        raise ValueError(f"{name} must have shape (P,), one score per prompt, got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is an empty prompt pool (P == 0), got shape {tuple(t.shape)}")
    check_finite_tensor(t, name)
    return t


def _check_embeddings(x, name: str, shape: str, ndim: int) -> torch.Tensor:
    """Embeddings with ``ndim`` dims (last = D), non-empty, finite, no all-zero vector (it has no direction)."""
    t = as_tensor(x, name)
    if t.ndim != ndim or min(t.shape) < 1:
        raise ValueError(f"{name} must have shape {shape} with no empty axis, got shape {tuple(t.shape)}")
    check_finite_tensor(t, name)
    zero = t.norm(dim=-1) == 0
    if bool(zero.any()):
        raise ValueError(
            f"{name} must have no all-zero embedding (it cannot be L2-normalised), got {int(zero.sum())} zero vector(s)"
        )
    return t


def _prompt_weights(weights, t: torch.Tensor) -> torch.Tensor:
    """``(P,)`` prompt weights summing to one for text embeddings ``t`` ``(P, C, D)``; ``None`` means uniform."""
    p = t.shape[0]
    if weights is None:
        return torch.full((p,), 1.0 / p, dtype=t.dtype, device=t.device)
    return check_weights(weights, p, like=t, per="prompt")


def _normalise(t: torch.Tensor) -> torch.Tensor:
    """``t`` divided by its L2 norm along the last dim (callers have refused zero vectors)."""
    return t / t.norm(dim=-1, keepdim=True)


def _median(x: torch.Tensor) -> torch.Tensor:
    """Median of a 1-D tensor with numpy's convention: the mean of the two middle values for an even count.

    (``torch.median`` returns the LOWER of the two middle values instead.)
    """
    s = torch.sort(x).values
    k = s.shape[0]
    return (s[(k - 1) // 2] + s[k // 2]) / 2


# ----------------------------------------------------------------------------------------------------------
# logits
# ----------------------------------------------------------------------------------------------------------


def prompt_logits(image_embeddings, text_embeddings, logit_scale) -> torch.Tensor:
    """Per-prompt logits ``l[n, p, c] = s * <image_n, text_pc>`` of L2-normalised embeddings.

    Args:
        image_embeddings: ``(N, D)`` image embeddings (any norm; normalised here).
        text_embeddings: ``(P, C, D)`` text embeddings of template p filled with class c (normalised here).
        logit_scale: ``s``, a finite number > 0 (CLIP's ``logit_scale.exp()``, about 100; a 0-d tensor is read
            with ``float()``).

    Returns:
        ``(N, P, C)`` logits on the inputs' device, in their promoted floating dtype; one einsum.
    """
    x = _check_embeddings(image_embeddings, "image_embeddings", "(N, D)", 2)
    t = on_device_of(text_embeddings, "text_embeddings", x, "image_embeddings")  # before any scan of its values
    t = _check_embeddings(t, "text_embeddings", "(P, C, D)", 3)
    s = check_positive(logit_scale, "logit_scale")
    if x.shape[-1] != t.shape[-1]:
        raise ValueError(
            f"image_embeddings and text_embeddings must have the same embedding size D, got shapes "
            f"{tuple(x.shape)} and {tuple(t.shape)}"
        )
    if t.shape[1] < 2:
        raise ValueError(f"text_embeddings needs C >= 2 classes, got shape {tuple(t.shape)}")
    dtype = torch.promote_types(x.dtype, t.dtype)
    out = s * torch.einsum("nd,pcd->npc", _normalise(x.to(dtype)), _normalise(t.to(dtype)))
    return check_finite_result(out, f"logit_scale * <image, text> (logit_scale={logit_scale!r})")


def average_text_embeddings(text_embeddings, weights=None) -> torch.Tensor:
    """Class embeddings of the standard prompt ensemble: ``normalise(sum_p w_p normalise(text[p, c]))``.

    Note that this averages *embeddings*; it is not the same classifier as averaging the prompts' logits
    (:func:`ensemble_prompt_logits`): re-normalising divides class c's logits by its own norm
    ``|sum_p w_p normalise(text[p, c])|``, which differs between classes.

    Args:
        text_embeddings: ``(P, C, D)`` text embeddings (any norm; each ``(p, c)`` vector normalised here).
        weights: ``(P,)`` non-negative prompt weights with a positive sum (normalised here); ``None`` means
            uniform (the equal average of CLIP's prompt ensemble).

    Returns:
        ``(C, D)`` unit-norm class embeddings on the input's device and in its dtype.
    """
    t = _normalise(_check_embeddings(text_embeddings, "text_embeddings", "(P, C, D)", 3))
    w = _prompt_weights(weights, t)
    mean = torch.einsum("p,pcd->cd", w, t)
    norm = mean.norm(dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError(
            "text_embeddings: the weighted mean of the prompts' embeddings is the zero vector for "
            f"{int((norm == 0).sum())} class(es) (the prompts cancel out), it cannot be normalised"
        )
    return mean / norm


def zero_shot_logits(image_embeddings, class_embeddings, logit_scale) -> torch.Tensor:
    """Zero-shot logits ``s * <normalise(image_n), normalise(class_c)>``.

    Args:
        image_embeddings: ``(N, D)`` image embeddings (normalised here).
        class_embeddings: ``(C, D)`` one embedding per class, e.g. from :func:`average_text_embeddings`
            (normalised here too, whatever their norm).
        logit_scale: ``s``, a finite number > 0.

    Returns:
        ``(N, C)`` logits on the inputs' device, in their promoted floating dtype.
    """
    x = _check_embeddings(image_embeddings, "image_embeddings", "(N, D)", 2)
    e = on_device_of(class_embeddings, "class_embeddings", x, "image_embeddings")  # before any scan of its values
    e = _check_embeddings(e, "class_embeddings", "(C, D)", 2)
    s = check_positive(logit_scale, "logit_scale")
    if x.shape[1] != e.shape[1] or e.shape[0] < 2:
        raise ValueError(
            f"image_embeddings (N, D) and class_embeddings (C, D) must have the same D and C >= 2, "
            f"got shapes {tuple(x.shape)} and {tuple(e.shape)}"
        )
    dtype = torch.promote_types(x.dtype, e.dtype)
    out = s * _normalise(x.to(dtype)) @ _normalise(e.to(dtype)).T
    return check_finite_result(out, f"logit_scale * <image, class> (logit_scale={logit_scale!r})")


def equal_average_logits(logits, text_embeddings, weights=None, *, validate: bool = True) -> torch.Tensor:
    """The logits of :func:`average_text_embeddings`' classifier, computed from per-prompt logits.

    ``zero_shot_logits(x, average_text_embeddings(t, w), s)[n, c] == sum_p w_p l[n, p, c] / |m_c|`` with
    ``l = prompt_logits(x, t, s)`` and ``m_c = sum_p w_p normalise(t[p, c])``: the embedding average is the
    weighted logit ensemble with class c's logits divided by the norm of its mean embedding.  With cached
    per-prompt logits this costs one einsum and never touches the image embeddings again.

    Args:
        logits: ``(N, P, C)`` per-prompt logits, ``prompt_logits(x, text_embeddings, s)``.
        text_embeddings: ``(P, C, D)`` the embeddings those logits came from.
        weights: ``(P,)`` as in :func:`average_text_embeddings` (``None``: uniform); a zero weight drops a prompt.
        validate: ``False`` skips the finiteness scan of ``logits`` (see :func:`ensemble_prompt_logits`).

    Returns:
        ``(N, C)`` logits in the logits' dtype.
    """
    validate = check_bool(validate, "validate")
    z_in = as_tensor(logits, "logits")
    t = on_device_of(text_embeddings, "text_embeddings", z_in, "logits")  # before any scan of its values
    t = _normalise(_check_embeddings(t, "text_embeddings", "(P, C, D)", 3))
    w = _prompt_weights(weights, t)
    z = ensemble_prompt_logits(z_in, w, validate=validate)
    if z.shape[1] != t.shape[1]:
        raise ValueError(
            f"logits (N, P, C) and text_embeddings (P, C, D) must agree on P and C, got shapes "
            f"{tuple(z_in.shape)} and {tuple(t.shape)}"
        )
    norm = torch.einsum("p,pcd->cd", w, t).norm(dim=-1)
    if bool((norm == 0).any()):
        raise ValueError(
            "text_embeddings: the weighted mean of the prompts' embeddings is the zero vector for "
            f"{int((norm == 0).sum())} class(es), it cannot be normalised"
        )
    # |mean embedding| <= 1, so the division can overflow logits near the largest float
    return check_finite_result(z / norm.to(z.dtype), "logits / |weighted mean of text_embeddings|")


# ----------------------------------------------------------------------------------------------------------
# ZPE: scores, weights, ensemble
# ----------------------------------------------------------------------------------------------------------


def zpe_scores(logits, pretrain_logits=None, debias: str = "both") -> torch.Tensor:
    """ZPE prompt scores ``score_p = mean_n max_c (l[n, p, c] - bias[p, c])`` (see the module docstring).

    Args:
        logits: ``(N, P, C)`` per-prompt logits of the unlabeled test images (:func:`prompt_logits`).
        pretrain_logits: ``(M, P, C)`` per-prompt logits of a sample of pre-training images, same P and C
            (any M >= 1), on the same device.  Required for ``debias="both"`` and ``"pretrain"``; checked but
            unused for ``"test"`` and ``"none"``.
        debias: one of :data:`DEBIAS_MODES`: ``"both"`` subtracts ``(mu_pre + mu_test) / 2``, ``"pretrain"``
            ``mu_pre``, ``"test"`` ``mu_test``, ``"none"`` nothing (the naive max-logit score).

    Returns:
        ``(P,)`` scores in logit units, accumulated in float64 (float32 on MPS) and returned on the logits'
        device in the logits' dtype.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(50, 3, 4, generator=g)  # (N=50 images, P=3 prompts, C=4 classes)
        >>> zpe_scores(z, debias="test").shape
        torch.Size([3])
    """
    check_choice(debias, "debias", DEBIAS_MODES)
    z = _check_prompt_logits(logits, "logits")
    pre = None
    if pretrain_logits is not None:
        pre = on_device_of(pretrain_logits, "pretrain_logits", z, "logits")  # before any scan of its values
        pre = _check_prompt_logits(pre, "pretrain_logits")
        if pre.shape[1:] != z.shape[1:]:
            raise ValueError(
                f"logits (N, P, C) and pretrain_logits (M, P, C) must have the same P and C, got "
                f"shapes {tuple(z.shape)} and {tuple(pre.shape)}"
            )
    elif debias in ("both", "pretrain"):
        raise ValueError(
            f"debias={debias!r} needs pretrain_logits, shape (M, P, C): the logits of a sample of "
            "pre-training images; got None (use debias='test' or 'none' without them)"
        )

    acc = acc_dtype(z.device)
    za = z.to(acc)
    mu_test = za.mean(dim=0)  # (P, C)
    if debias == "both":
        bias = (pre.to(acc).mean(dim=0) + mu_test) / 2
    elif debias == "pretrain":
        bias = pre.to(acc).mean(dim=0)
    elif debias == "test":
        bias = mu_test
    else:
        bias = torch.zeros_like(mu_test)
    scores = (za - bias).amax(dim=2).mean(dim=0)
    check_finite_result(scores, f"the scores mean_n max_c (logits - bias) with debias={debias!r}")
    return check_finite_result(scores.to(z.dtype), f"the scores of logits (debias={debias!r}) in {z.dtype}")


def zpe_weights(scores, temperature: float = 1.0) -> torch.Tensor:
    """Prompt weights ``softmax(scores / temperature)``.

    Args:
        scores: ``(P,)`` prompt scores (:func:`zpe_scores`), in logit units.
        temperature: a finite number > 0, in the scores' logit units; small values approach picking the best
            prompt, large values the equal average.  With CLIP's ``s = 100`` scores differ by several units,
            so ``temperature = 1`` already gives sharp weights.

    Returns:
        ``(P,)`` non-negative weights summing to one, on the scores' device and in their dtype.

    Example:
        >>> [round(v, 4) for v in zpe_weights(torch.tensor([1.0, 0.0, 0.0]), temperature=0.5).tolist()]
        [0.787, 0.1065, 0.1065]
    """
    t = check_positive(temperature, "temperature")
    s = _check_scores(scores)
    x = s.to(acc_dtype(s.device))
    scaled = x / t
    if not bool(torch.isfinite(scaled).all()):
        # scores / temperature overflows (a tiny temperature): shift by the best score first, which leaves the
        # softmax unchanged and keeps every entry <= 0 (the best at exactly 0): the limit, the best prompt(s)
        scaled = (x - x.max()) / t
    return torch.softmax(scaled, dim=0).to(s.dtype)


def zpe_select(scores, tau: float) -> torch.Tensor:
    """Uniform weights over the prompts whose robust z-score exceeds ``tau``, zero elsewhere.

    ``z_p = (score_p - median) / MAD`` with ``MAD = median_p |score_p - median|``, the raw MAD (no 1.4826
    factor making it a consistent estimate of a normal standard deviation), medians with numpy's convention
    (the mean of the two middle values for an even P).  A prompt is kept when ``z_p > tau`` (strictly).

    Edge cases: when ``MAD == 0`` (at least half of the scores are equal), ``z_p`` is ``+inf`` above the
    median, ``0`` at it and ``-inf`` below it.  If no prompt passes, the single highest-scoring prompt is kept
    (the lowest index among ties), so the result is always a valid weighting.

    Args:
        scores: ``(P,)`` prompt scores (:func:`zpe_scores`).
        tau: threshold on the robust z-score, a finite number (may be negative).

    Returns:
        ``(P,)`` weights, ``1 / (number kept)`` on the kept prompts and 0 elsewhere, on the scores' device and
        in their dtype.

    Example:
        >>> zpe_select(torch.tensor([0.1, 0.5, 0.3, 0.45]), tau=0.8).tolist()
        [0.0, 1.0, 0.0, 0.0]
    """
    s = _check_scores(scores)
    threshold = check_finite(tau, "tau")
    x = s.to(acc_dtype(s.device))
    dev = x - _median(x)
    mad = _median(dev.abs())
    # dev / mad is the z-score; with mad == 0 the division gives +-inf off the median and 0/0 = nan on it
    z = torch.where(dev == 0, torch.zeros_like(dev), dev / mad)
    keep = z > threshold
    if not bool(keep.any()):
        keep = torch.zeros_like(keep)
        keep[torch.argmax(x)] = True  # argmax returns the first maximal index
    return (keep.to(x.dtype) / keep.sum()).to(s.dtype)


def ensemble_prompt_logits(logits, weights, *, validate: bool = True) -> torch.Tensor:
    """Weighted prompt ensemble ``sum_p w_p l[n, p, c]``.

    The weights are normalised to sum to one, and that is all: the authors' reference code divides the
    weighted sum by P once more, which scales the ensemble logits down by P and flattens the softmax
    probabilities (the argmax is unchanged).  Here the ensemble logits stay on the scale of one prompt's
    logits, so their calibration can be compared with a single prompt's.

    Args:
        logits: ``(N, P, C)`` per-prompt logits.
        weights: ``(P,)`` non-negative, finite, positive sum (e.g. :func:`zpe_weights`); numpy and lists are
            placed on the logits' device, a tensor on another device is refused.

        validate: ``False`` skips the finiteness scan of ``logits`` (for a caller, such as a Lab, that checked
            the same cached tensor once and re-weights it many times); shapes and weights are always checked.

    Returns:
        ``(N, C)`` ensemble logits on the logits' device and in their dtype.  Fastest (no copy, one GEMV) when
        ``logits`` is a prompt-major view, ``logits_pnc.transpose(0, 1)`` of a contiguous ``(P, N, C)``.
    """
    if check_bool(validate, "validate"):
        z = _check_prompt_logits(logits, "logits")
    else:
        z = as_tensor(logits, "logits")
        if z.ndim != 3 or z.shape[1] == 0:
            raise ValueError(f"logits must have shape (N, P, C) with P >= 1, got shape {tuple(z.shape)}")
    w = check_weights(weights, z.shape[1], like=z, per="prompt")
    n, p, c = z.shape
    # one matrix-vector product over the prompt axis; free of copies when z is stored prompt-major
    # (z.transpose(0, 1) contiguous), as a Lab that re-weights the same logits many times keeps it
    return (w @ z.transpose(0, 1).reshape(p, n * c)).view(n, c)


# ----------------------------------------------------------------------------------------------------------
# templates
# ----------------------------------------------------------------------------------------------------------


def check_template(template, name: str = "template") -> str:
    """``template`` if it is a str whose only braces are exactly one ``"{}"`` placeholder.

    ``"{0}"``, ``"{x}"`` and lone ``"{"``/``"}"`` are refused too: they look like ``str.format`` fields, but
    templates are filled with an explicit replace of ``"{}"`` (:func:`fill_template`), never formatted.

    Raises:
        TypeError: ``template`` is not a str.
        ValueError: it has other braces, or not exactly one ``"{}"`` (the message says how many).
    """
    if not isinstance(template, str):
        raise TypeError(f"{name} must be a str with one '{{}}' placeholder, got {type(template).__name__}")
    count = template.count("{}")
    if "{" in template.replace("{}", "") or "}" in template.replace("{}", ""):
        raise ValueError(
            f"{name} may contain braces only as one literal '{{}}' placeholder ('{{0}}' or '{{x}}' "
            f"fields are not placeholders: templates are filled by replacing '{{}}', never with "
            f"str.format), got {template!r}"
        )
    if count != 1:
        raise ValueError(
            f"{name} must contain exactly one '{{}}' placeholder for the class name, found {count} in {template!r}"
        )
    return template


def fill_template(template: str, class_name: str) -> str:
    """``template`` with its ``"{}"`` replaced by ``class_name``, literally (``str.replace``, never format).

    A class name containing braces (``"{}"``, ``"{0}"``) is inserted as it is.
    """
    check_template(template)
    if not isinstance(class_name, str):
        raise TypeError(f"class_name must be a str, got {type(class_name).__name__}")
    if not class_name:
        raise ValueError("class_name must be a non-empty str, got ''")
    return template.replace("{}", class_name)


def fill_templates(templates, class_names) -> list[list[str]]:
    """Every template filled with every class name: ``out[p][c] = fill_template(templates[p], class_names[c])``.

    Args:
        templates: P >= 1 templates (a sequence of str; a bare str is refused).
        class_names: C >= 1 class names (a sequence of str).

    Returns:
        P lists of C strings, in the order of the text embeddings ``(P, C, D)`` of :func:`prompt_logits`.
    """
    for arg, name in ((templates, "templates"), (class_names, "class_names")):
        if isinstance(arg, str) or not isinstance(arg, Sequence):
            raise TypeError(f"{name} must be a sequence (list or tuple) of str, got {type(arg).__name__}")
    if len(templates) == 0:
        raise ValueError("templates is an empty prompt pool (P == 0), got []")
    if len(class_names) == 0:
        raise ValueError("class_names must hold at least one class name, got []")
    checked = [check_template(t, f"templates[{i}]") for i, t in enumerate(templates)]
    for j, c in enumerate(class_names):
        if not isinstance(c, str):
            raise TypeError(f"class_names[{j}] must be a str, got {type(c).__name__}")
        if not c:
            raise ValueError(f"class_names[{j}] must be a non-empty str, got ''")
    return [[t.replace("{}", c) for c in class_names] for t in checked]
