"""Real CLIP through open_clip, behind the same interface as the package's MiniCLIP.

For users with a network (``pip install "ensemble_lab[clip]"``)::

    model = OpenClipModel.create("ViT-B-32", pretrained="laion2b_s34b_b79k")   # downloads the weights once
    cifar = load_cifar10("~/data", split="test", download=True)
    image_emb = model.encode_image(cifar.images[:256])      # (N, 3, 32, 32) in [0, 1] -> (N, D)
    text_emb = model.encode_text(["a photo of a cat.", ...])  # (T, D)

The interface (what the prompts Lab uses): ``encode_image(images) -> (N, D)``, ``encode_text(texts) -> (T, D)``,
``logit_scale`` (float), ``embed_dim`` (int), ``unknown_words(text) -> list[str]``.  Images go in as float
tensors in [0, 1], ``(N, 3, H, W)`` (or ``(N, 1, H, W)``, repeated to 3 channels); they are resized to the
model's input size (bicubic, as CLIP's preprocessing, on the tensor: no PIL, no torchvision) and normalised
with CLIP's mean and std.  CLIP's byte-level BPE tokenizer has no unknown words, so ``unknown_words`` is
always empty.

open_clip is imported only when a model is created; tests use ``pretrained=None`` (random weights), so nothing
is downloaded.
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F

from .._validation import as_tensor

__all__ = ["OpenClipModel", "CLIP_MEAN", "CLIP_STD"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's preprocessing constants
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _open_clip():
    try:
        return importlib.import_module("open_clip")
    except ImportError as exc:  # also raised when open_clip's own torchvision import fails
        raise ImportError(
            "OpenClipModel needs open_clip (pip install 'ensemble_lab[clip]'), which needs a "
            f"torchvision that imports beside this torch; the import failed with: {exc}"
        ) from exc


class OpenClipModel:
    """An open_clip model and its tokenizer with MiniCLIP's interface (eval mode, no gradients).

    Args:
        model: an open_clip ``CLIP`` model (anything with ``encode_image``, ``encode_text`` and ``logit_scale``,
            the log of the scale, as a tensor).
        tokenizer: open_clip's tokenizer for that model (``texts -> (T, L)`` int tensor).
        image_size: the model's input side in pixels (224 for ViT-B-32).
        batch_size: images or texts encoded per forward pass.
    """

    def __init__(self, model, tokenizer, image_size: int = 224, batch_size: int = 256):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)

    @classmethod
    def create(
        cls, name: str = "ViT-B-32", pretrained: str | None = "laion2b_s34b_b79k", device=None, **kwargs
    ) -> OpenClipModel:
        """``open_clip.create_model_and_transforms(name, pretrained=pretrained)`` wrapped; ``pretrained=None``
        gives random weights and downloads nothing."""
        oc = _open_clip()
        model, _, _ = oc.create_model_and_transforms(name, pretrained=pretrained, device=device)
        size = getattr(getattr(model, "visual", None), "image_size", 224)
        size = size[0] if isinstance(size, (tuple, list)) else size
        return cls(model, oc.get_tokenizer(name), image_size=size, **kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp())

    @property
    def embed_dim(self) -> int:
        return int(self.encode_text(["a"]).shape[-1])

    def unknown_words(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return []

    def preprocess(self, images) -> torch.Tensor:
        """``(N, 1 or 3, H, W)`` floats in [0, 1] -> ``(N, 3, S, S)`` resized and normalised as CLIP expects."""
        x = as_tensor(images, "images")
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"images must have shape (N, 1 or 3, H, W), got shape {tuple(x.shape)}")
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise ValueError(f"images must lie in [0, 1], got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x.float(), size=(self.image_size, self.image_size), mode="bicubic", align_corners=False)
        mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
        return (x.clamp(0, 1) - mean) / std

    @torch.no_grad()
    def encode_image(self, images) -> torch.Tensor:
        """``(N, D)`` image embeddings (not normalised) of ``(N, 1 or 3, H, W)`` images in [0, 1]."""
        x = self.preprocess(images)
        out = [
            self.model.encode_image(x[i : i + self.batch_size].to(self.device))
            for i in range(0, x.shape[0], self.batch_size)
        ]
        return torch.cat(out).float()

    @torch.no_grad()
    def encode_text(self, texts) -> torch.Tensor:
        """``(T, D)`` text embeddings (not normalised) of a list of strings."""
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of str")
        if not texts:
            raise ValueError("texts must not be empty")
        out = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[i : i + self.batch_size]))
            out.append(self.model.encode_text(tokens.to(self.device)))
        return torch.cat(out).float()
