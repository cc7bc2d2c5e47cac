"""A CLIP-style classifier: an image encoder followed by a linear head on L2-normalised features.

This is the architecture WiSE-FT works with (Wortsman et al., CVPR 2022): the *zero-shot* classifier is the
pre-trained image encoder with a head made from text embeddings of the class prompts (no target labels used),
and fine-tuning updates the encoder and the head end to end from there.  Both endpoints therefore share one
architecture, so their weights can be interpolated key by key (:mod:`ensemble_lab.soups`).

``logits = head(normalize(visual(images)))``: images ``(N, 1, S, S)`` -> logits ``(N, C)``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import (
    MAX_COUNT,
    as_tensor,
    check_bool,
    check_finite_result,
    check_finite_tensor,
    check_int,
    check_model_input,
    check_module,
    check_positive,
    check_sequence,
)

__all__ = ["ClipClassifier", "zero_shot_classifier", "HEAD"]

#: the name of the head module, hence the prefix of its state-dict keys ("head.weight", "head.bias")
HEAD = "head"


def _feature_dim(visual: nn.Module) -> int | None:
    """The width ``D`` of ``visual``'s features where the module says it (an ``output_dim`` attribute, as
    MiniCLIP's and open_clip's image encoders have, or an ``nn.Sequential`` ending in an ``nn.Linear``); else None."""
    dim = getattr(visual, "output_dim", None)
    if isinstance(dim, int) and not isinstance(dim, bool):
        return dim
    if isinstance(visual, nn.Sequential) and len(visual):
        last = visual[-1]
        if isinstance(last, nn.Linear):
            return last.out_features
        if isinstance(last, nn.Sequential):
            return _feature_dim(last)
    return None


class ClipClassifier(nn.Module):
    """``visual`` (``(N, ...) -> (N, D)``) then a linear head ``(C, D)`` with bias on the unit-norm features.

    Args:
        visual: the image encoder (copied, so the classifier never shares weights with the model it came from).
        head_weight: ``(C, D)`` initial head weights (e.g. ``logit_scale *`` normalised class text embeddings), a
            finite real tensor or numpy array; ``D`` must match ``visual``'s features where the module says
            their width (see :func:`_feature_dim`).
        head_bias: ``(C,)`` initial bias (zeros if omitted), finite.

    The head lives on ``visual``'s device and dtype (the weights are copied into it).
    """

    def __init__(self, visual: nn.Module, head_weight: torch.Tensor, head_bias: torch.Tensor | None = None):
        super().__init__()
        check_module(visual, "visual")
        weight = as_tensor(head_weight, "head_weight")
        if weight.ndim != 2 or min(weight.shape) < 1:
            raise ValueError(f"head_weight must have shape (C, D) with C, D >= 1, got shape {tuple(weight.shape)}")
        check_finite_tensor(weight, "head_weight")
        c, d = weight.shape
        width = _feature_dim(visual)
        if width is not None and d != width:
            raise ValueError(f"head_weight must have D = {width} columns, the width of visual's features, got {d}")
        bias = None
        if head_bias is not None:
            bias = as_tensor(head_bias, "head_bias")
            if tuple(bias.shape) != (c,):
                raise ValueError(
                    f"head_bias must have shape ({c},), one entry per row of head_weight, got shape {tuple(bias.shape)}"
                )
            check_finite_tensor(bias, "head_bias")
        self.visual = copy.deepcopy(visual)
        self.head = nn.Linear(d, c)
        like = next(self.visual.parameters(), None)
        if like is not None and (like.device != self.head.weight.device or like.dtype != self.head.weight.dtype):
            self.head.to(device=like.device, dtype=like.dtype if like.is_floating_point() else None)
        with torch.no_grad():
            self.head.weight.copy_(weight)
            if bias is None:
                self.head.bias.zero_()
            else:
                self.head.bias.copy_(bias)
        check_finite_result(self.head.weight.detach(), f"head_weight in the head's dtype ({self.head.weight.dtype})")
        check_finite_result(self.head.bias.detach(), f"head_bias in the head's dtype ({self.head.bias.dtype})")

    @property
    def n_classes(self) -> int:
        return self.head.out_features

    def macs(self, image_shape=(1, 16, 16)) -> int:
        """Multiply-accumulates of one forward pass on one image of ``image_shape`` ``(C, H, W)`` (convolutions
        and linear layers; activations and the normalisation are not counted)."""
        items = check_sequence(image_shape, "image_shape", what="ints (C, H, W)")
        if len(items) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        image_shape = tuple(
            check_int(v, f"image_shape[{i}]", minimum=1, maximum=MAX_COUNT) for i, v in enumerate(items)
        )
        total = 0

        def count(module, inputs, output):
            nonlocal total
            if isinstance(module, nn.Conv2d):
                k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
                total += output[0].numel() * k
            elif isinstance(module, nn.Linear):
                total += output[0].numel() * module.in_features

        hooks = [m.register_forward_hook(count) for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        try:
            with torch.no_grad():
                p = next(self.parameters())
                self.head(self._features(torch.zeros(1, *image_shape, dtype=p.dtype, device=p.device), "image_shape"))
        finally:
            for h in hooks:
                h.remove()
        return int(total)

    def _features(self, x: torch.Tensor, name: str) -> torch.Tensor:
        """``normalize(visual(x))``, checked: a shape the encoder cannot take is reported naming ``name``."""
        try:
            z = self.visual(x)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as exc:  # a shape or dtype the encoder cannot take, reported from deep inside torch
            shape = tuple(x.shape[1:])
            raise ValueError(f"{name} of shape {shape} per image do not fit the image encoder: {exc}") from exc
        if z.ndim != 2 or z.shape != (x.shape[0], self.head.in_features):
            raise ValueError(
                f"{name} of shape {tuple(x.shape[1:])} per image give features of shape {tuple(z.shape)}, the head "
                f"takes ({x.shape[0]}, {self.head.in_features})"
            )
        return F.normalize(z, dim=-1)

    def _check_images(self, images) -> torch.Tensor:
        x = check_model_input(images, "images", next(self.parameters()), "the classifier's")
        if x.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got shape {tuple(x.shape)}")
        return x

    def features(self, images: torch.Tensor, validate: bool = True) -> torch.Tensor:
        """``(N, D)`` unit-norm image features (``images`` checked as in :meth:`forward`)."""
        if check_bool(validate, "validate"):
            return self._features(self._check_images(images), "images")
        return F.normalize(self.visual(images), dim=-1)

    def forward(self, images: torch.Tensor, validate: bool = True) -> torch.Tensor:
        """``(N, C)`` logits of ``images`` ``(N, C, H, W)``: a finite real tensor on the classifier's device or a
        numpy array (placed there), cast to the classifier's dtype; a shape the encoder cannot take is refused
        naming ``images``.  ``validate=False`` skips the checks (a training loop that checked its data once)."""
        if not check_bool(validate, "validate"):
            return self.head(self.features(images, validate=False))
        return self.head(self._features(self._check_images(images), "images"))


def zero_shot_classifier(
    clip, class_names: Sequence[str], templates: Sequence[str], scale: float | None = None
) -> ClipClassifier:
    """The zero-shot classifier of a CLIP-like model (MiniCLIP's interface: ``visual``, ``encode_text``,
    ``logit_scale``): head row ``c`` is ``scale *`` the normalised mean of the normalised embeddings of every
    template filled with class name ``c`` (CLIP's prompt ensembling); no target labels are used.

    Args:
        clip: the pre-trained model (left unchanged; its image encoder is copied).
        class_names: the ``C`` class names.
        templates: prompt templates with one ``{}`` each (filled with ``str.replace``, never ``format``).
        scale: the logit scale (default: ``clip.logit_scale``, the learned temperature).

    Returns:
        A :class:`ClipClassifier` in eval mode, on ``clip``'s device, whose logits equal ``clip``'s zero-shot
        logits for the same prompts.
    """
    from ..prompts import average_text_embeddings, fill_templates

    if not (isinstance(getattr(clip, "visual", None), nn.Module) and callable(getattr(clip, "encode_text", None))):
        raise TypeError(
            f"clip must be a CLIP-like model with an image encoder .visual, .encode_text and .logit_scale, "
            f"got {type(clip).__name__}"
        )
    texts = fill_templates(templates, class_names)  # checks both; (P lists of C strings)
    scale = clip.logit_scale if scale is None else check_positive(scale, "scale")
    with torch.no_grad():
        per_prompt = torch.stack([F.normalize(clip.encode_text(row), dim=-1) for row in texts])  # (P, C, D)
        weight = float(scale) * average_text_embeddings(per_prompt)
    check_finite_result(weight, f"scale * the class text embeddings (scale={scale!r})")
    return ClipClassifier(clip.visual, weight).eval()
