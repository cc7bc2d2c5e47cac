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

from .._validation import check_positive

__all__ = ["ClipClassifier", "zero_shot_classifier", "HEAD"]

#: the name of the head module, hence the prefix of its state-dict keys ("head.weight", "head.bias")
HEAD = "head"


class ClipClassifier(nn.Module):
    """``visual`` (``(N, ...) -> (N, D)``) then a linear head ``(C, D)`` with bias on the unit-norm features.

    Args:
        visual: the image encoder (copied, so the classifier never shares weights with the model it came from).
        head_weight: ``(C, D)`` initial head weights (e.g. ``logit_scale *`` normalised class text embeddings).
        head_bias: ``(C,)`` initial bias (zeros if omitted).
    """

    def __init__(self, visual: nn.Module, head_weight: torch.Tensor, head_bias: torch.Tensor | None = None):
        super().__init__()
        if not isinstance(visual, nn.Module):
            raise TypeError(f"visual must be an nn.Module, got {type(visual).__name__}")
        if not isinstance(head_weight, torch.Tensor) or head_weight.ndim != 2:
            raise ValueError(f"head_weight must be a (C, D) tensor, got {getattr(head_weight, 'shape', head_weight)}")
        c, d = head_weight.shape
        self.visual = copy.deepcopy(visual)
        self.head = nn.Linear(d, c)
        with torch.no_grad():
            self.head.weight.copy_(head_weight)
            if head_bias is None:
                self.head.bias.zero_()
            else:
                if head_bias.shape != (c,):
                    raise ValueError(f"head_bias must have shape ({c},), got {tuple(head_bias.shape)}")
                self.head.bias.copy_(head_bias)

    @property
    def n_classes(self) -> int:
        return self.head.out_features

    def macs(self, image_shape=(1, 16, 16)) -> int:
        """Multiply-accumulates of one forward pass on one image of ``image_shape`` (convolutions and linear
        layers; activations and the normalisation are not counted)."""
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
                self(torch.zeros(1, *image_shape, dtype=p.dtype, device=p.device))
        finally:
            for h in hooks:
                h.remove()
        return int(total)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` unit-norm image features."""
        return F.normalize(self.visual(images), dim=-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C)`` logits."""
        return self.head(self.features(images))


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

    texts = fill_templates(templates, class_names)  # checks both; (P lists of C strings)
    scale = clip.logit_scale if scale is None else check_positive(scale, "scale")
    with torch.no_grad():
        per_prompt = torch.stack([F.normalize(clip.encode_text(row), dim=-1) for row in texts])  # (P, C, D)
        weight = float(scale) * average_text_embeddings(per_prompt)
    return ClipClassifier(clip.visual, weight).eval()
