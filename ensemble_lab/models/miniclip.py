"""MiniCLIP: a small CLIP-like text-image model trained on the synthetic caption world, shipped with the package.

:class:`MiniCLIP` has an image encoder (a small CNN on ``(N, 1, 16, 16)`` images) and a text encoder (word
embeddings + a 2-layer pre-norm transformer, mean-pooled over the words), both projecting to a shared
``embed_dim``-dimensional space, trained with CLIP's symmetric contrastive loss and a learnable temperature on
the pre-training pairs of :mod:`ensemble_lab.data.captions` (see :mod:`ensemble_lab.models.miniclip_train`,
which reproduces the shipped weights).

Zero-shot classification as in CLIP: fill each prompt template with each class name, embed, normalise, and
score an image by ``logit_scale * cos(image, text)`` (:mod:`ensemble_lab.prompts` and
:class:`ensemble_lab.artefacts.zeroshot.ZeroShotData` do this for any model with MiniCLIP's interface: ``encode_image``,
``encode_text``, ``unknown_words``, ``logit_scale``, ``embed_dim``).

Words the tokenizer has never seen are skipped when encoding but reported by :meth:`MiniCLIP.unknown_words`;
a text made only of unknown words is refused.  Weights are read from safetensors (no pickle); the
vocabulary, the architecture and the recorded zero-shot accuracies live in a JSON file next to them.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import MAX_COUNT, as_tensor, check_int, check_sequence, check_strings

__all__ = ["WordTokenizer", "MiniCLIP", "load_miniclip", "miniclip_paths", "WEIGHTS_DIR"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
_WORD = re.compile(r"[a-z0-9]+")
#: the most transformer blocks a MiniCLIP may have: each is a module built in a python loop, so a huge count
#: would hang the constructor instead of failing
MAX_TEXT_LAYERS = 1000


def _check_texts(texts, name: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, got a single str {texts!r} (wrap it in a list)")
    if not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError(f"{name} must hold at least one text, got an empty list")
    return list(texts)


class WordTokenizer:
    """Word-level tokenizer with a fixed vocabulary.

    A text is lower-cased and split into runs of letters and digits (punctuation and spaces separate words
    and are dropped): ``"A photo of the number 7."`` -> ``["a", "photo", "of", "the", "number", "7"]``.
    Id 0 is padding; the words of ``vocab`` get ids ``1..len(vocab)`` in the order given.
    """

    def __init__(self, vocab: Sequence[str]):
        vocab = check_strings(vocab, "vocab")  # a list or tuple (or 1-d array) of non-empty words
        bad = [w for w in vocab if _WORD.fullmatch(w) is None]
        if bad:
            raise ValueError(f"vocab must hold lower-case words of letters and digits only, got {bad[:5]!r}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("vocab must not repeat a word")
        if not vocab:
            raise ValueError("vocab must hold at least one word, got an empty sequence")
        self._vocab = tuple(vocab)
        self._ids = {w: i + 1 for i, w in enumerate(vocab)}

    @property
    def vocab(self) -> tuple[str, ...]:
        """The words, in id order (id ``i + 1`` for ``vocab[i]``)."""
        return self._vocab

    def __len__(self) -> int:
        """Number of ids, padding included (``len(vocab) + 1``)."""
        return len(self._vocab) + 1

    @staticmethod
    def words(text: str) -> list[str]:
        """The words of ``text``: lower-cased runs of letters and digits."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return _WORD.findall(text.lower())

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` that are not in the vocabulary, in order of appearance (repeats kept)."""
        return [w for w in self.words(text) if w not in self._ids]

    def encode(self, texts: Sequence[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``(T, max_len)`` int64 (0 = padding) and mask ``(T, max_len)`` bool (True = a word).

        Unknown words are skipped (ask :meth:`unknown_words` which); a text with no known word, or with more
        than ``max_len`` known words, raises ``ValueError`` naming it.  ``max_len`` is in ``[1, MAX_COUNT]``.
        """
        texts = _check_texts(texts)
        max_len = check_int(max_len, "max_len", minimum=1, maximum=MAX_COUNT)
        ids = torch.zeros(len(texts), max_len, dtype=torch.int64)
        for i, text in enumerate(texts):
            known = [self._ids[w] for w in self.words(text) if w in self._ids]
            if not known:
                unknown = self.unknown_words(text)
                why = f"its words {unknown!r} are all unknown" if unknown else "it has no words"
                raise ValueError(f"texts[{i}] = {text!r} cannot be encoded: {why}")
            if len(known) > max_len:
                raise ValueError(f"texts[{i}] = {text!r} has {len(known)} known words, more than max_len = {max_len}")
            ids[i, : len(known)] = torch.as_tensor(known)
        return ids, ids != 0


class _ImageEncoder(nn.Module):
    """``(N, 1, S, S)`` -> ``(N, D)``: a small CNN of strided convolutions (no pooling layers, which are slow on
    the cpu for tiny maps): conv5x5/2 -> ReLU, then [conv3x3/2 -> ReLU] per further width, then a 2-layer MLP."""

    def __init__(self, widths: Sequence[int], hidden: int, embed_dim: int, image_size: int):
        super().__init__()
        self.output_dim = embed_dim  # the width of the features (ClipClassifier checks its head against it)
        layers: list[nn.Module] = []
        c, s = 1, image_size
        for i, w in enumerate(widths):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c, w, k, stride=2, padding=k // 2), nn.ReLU()]
            c, s = w, (s + 1) // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c * s * s, hidden), nn.ReLU(), nn.Linear(hidden, embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _Block(nn.Module):
    """Pre-norm transformer block with masked multi-head self-attention (plain ops, no fused fast paths)."""

    def __init__(self, width: int, heads: int, mlp: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp), nn.GELU(), nn.Linear(mlp, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t, length, d = x.shape
        h = self.heads
        q, k, v = self.qkv(self.ln1(x)).view(t, length, 3, h, d // h).permute(2, 0, 3, 1, 4)  # each (T, h, L, d/h)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(d // h)
        att = att.masked_fill(~mask.view(t, 1, 1, length), float("-inf")).softmax(dim=-1)
        x = x + self.out((att @ v).transpose(1, 2).reshape(t, length, d))
        return x + self.mlp(self.ln2(x))


class _TextEncoder(nn.Module):
    """ids ``(T, L)``, mask ``(T, L)`` -> ``(T, D)``: embeddings + positions, blocks, LayerNorm, masked mean,
    linear projection."""

    def __init__(self, n_tokens: int, context_length: int, width: int, layers: int, heads: int, embed_dim: int):
        super().__init__()
        self.token = nn.Embedding(n_tokens, width)
        self.position = nn.Parameter(torch.zeros(context_length, width))
        nn.init.normal_(self.token.weight, std=0.02)
        nn.init.normal_(self.position, std=0.01)
        self.blocks = nn.ModuleList(_Block(width, heads, 2 * width) for _ in range(layers))
        self.ln = nn.LayerNorm(width)
        self.proj = nn.Linear(width, embed_dim, bias=False)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.token(ids) + self.position[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        x = self.ln(x)
        m = mask.unsqueeze(-1).to(x.dtype)
        return self.proj((x * m).sum(dim=1) / m.sum(dim=1))


class MiniCLIP(nn.Module):
    """A small CLIP: image and text encoders into a shared space, with a learnable temperature.

    Parameters
    ----------
    vocab: the tokenizer's words (see :class:`WordTokenizer`).
    embed_dim: dimension ``D`` of the shared space.
    context_length: most words per text.
    image_widths, image_hidden: conv channels per stage and the MLP head's hidden size of the image encoder.
    text_width, text_layers, text_heads: size of the text transformer.
    image_size: side of the square, single-channel input images.

    Sizes are ints (numpy ints too) in ``[1, MAX_COUNT]`` (``image_size`` at least ``2 ** len(image_widths)``,
    ``text_layers`` in ``[0, MAX_TEXT_LAYERS]``); ``image_widths`` is a list or tuple of them.

    Use :func:`load_miniclip` for the shipped, trained model.  ``logit_scale`` is ``exp`` of the learned
    ``log_scale`` parameter, clamped at 100 as in CLIP.
    """

    def __init__(
        self,
        vocab: Sequence[str],
        embed_dim: int = 64,
        context_length: int = 12,
        image_widths: Sequence[int] = (32, 64),
        image_hidden: int = 128,
        text_width: int = 64,
        text_layers: int = 2,
        text_heads: int = 4,
        image_size: int = 16,
    ):
        super().__init__()
        self.tokenizer = WordTokenizer(vocab)
        widths = check_sequence(image_widths, "image_widths", what="conv widths (ints)", allow_empty=True)
        self.config = dict(
            embed_dim=check_int(embed_dim, "embed_dim", minimum=1, maximum=MAX_COUNT),
            context_length=check_int(context_length, "context_length", minimum=1, maximum=MAX_COUNT),
            image_widths=[
                check_int(w, f"image_widths[{i}]", minimum=1, maximum=MAX_COUNT) for i, w in enumerate(widths)
            ],
            image_hidden=check_int(image_hidden, "image_hidden", minimum=1, maximum=MAX_COUNT),
            text_width=check_int(text_width, "text_width", minimum=1, maximum=MAX_COUNT),
            text_layers=check_int(text_layers, "text_layers", minimum=0, maximum=MAX_TEXT_LAYERS),
            text_heads=check_int(text_heads, "text_heads", minimum=1, maximum=MAX_COUNT),
            image_size=check_int(image_size, "image_size", minimum=2 ** len(widths), maximum=MAX_COUNT),
        )
        c = self.config
        if c["text_width"] % c["text_heads"]:
            raise ValueError(f"text_width must be divisible by text_heads ({text_heads}), got {text_width}")
        self.visual = _ImageEncoder(c["image_widths"], c["image_hidden"], c["embed_dim"], c["image_size"])
        self.text = _TextEncoder(
            len(self.tokenizer), c["context_length"], c["text_width"], c["text_layers"], c["text_heads"], c["embed_dim"]
        )
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    @property
    def embed_dim(self) -> int:
        """Dimension ``D`` of the shared embedding space."""
        return int(self.config["embed_dim"])

    @property
    def context_length(self) -> int:
        """Most (known) words per text."""
        return int(self.config["context_length"])

    @property
    def logit_scale(self) -> float:
        """``exp(log_scale)`` clamped at 100: multiply cosine similarities by it to get logits."""
        return float(self.log_scale.detach().exp().clamp(max=100.0))

    def scale(self) -> torch.Tensor:
        """:attr:`logit_scale` as a differentiable 0-d tensor (for training)."""
        return self.log_scale.exp().clamp(max=100.0)

    @property
    def device(self) -> torch.device:
        return self.log_scale.device

    def unknown_words(self, text: str) -> list[str]:
        """Words of ``text`` the model has never seen (they would be skipped by :meth:`encode_text`)."""
        return self.tokenizer.unknown_words(text)

    def encode_image(self, images, batch_size: int = 4096) -> torch.Tensor:
        """Image embeddings ``(N, D)`` (not normalised) of ``images`` ``(N, 1, S, S)`` floats in [0, 1]
        (``S = image_size``, 16), a tensor or numpy array.

        As for a real CLIP's preprocessing, the images are moved to the model's device (``batch_size`` at a
        time) and the embeddings come back there.
        """
        s = self.config["image_size"]
        x = as_tensor(images, "images", floating=False)
        if not torch.is_floating_point(x):
            raise TypeError(f"images must be floating point in [0, 1], got dtype {x.dtype}")
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, s, s):
            raise ValueError(f"images must have shape (N, 1, {s}, {s}), got shape {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError(f"images must hold at least one image, got shape {tuple(x.shape)}")
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0.0 or hi > 1.0:
            raise ValueError(f"images must lie in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        dtype = self.log_scale.dtype
        out = [self.visual(x[i : i + batch_size].to(self.device, dtype)) for i in range(0, x.shape[0], batch_size)]
        return out[0] if len(out) == 1 else torch.cat(out)

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Text embeddings ``(T, D)`` (not normalised) of ``texts`` (a list of ``T`` strings), on the model's
        device.  Unknown words are skipped (see :meth:`unknown_words`); a text of unknown words only, or with
        more than ``context_length`` known words, raises ``ValueError``."""
        ids, mask = self.tokenizer.encode(texts, self.context_length)
        return self.text(ids.to(self.device), mask.to(self.device))

    def forward(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Logits ``(N, T)``: ``logit_scale * cos(image_i, text_j)``."""
        img = F.normalize(self.encode_image(images), dim=-1)
        txt = F.normalize(self.encode_text(texts), dim=-1)
        return self.scale() * img @ txt.T


def miniclip_paths(weights_dir: str | Path | None = None) -> tuple[Path, Path]:
    """``(weights .safetensors, metadata .json)`` paths in ``weights_dir`` (a str or os.PathLike; default: the
    shipped ones)."""
    if weights_dir is not None and not isinstance(weights_dir, (str, os.PathLike)):
        raise TypeError(f"weights_dir must be a folder path (a str or a pathlib.Path), got {weights_dir!r}")
    if weights_dir == "":
        raise ValueError("weights_dir must be a folder path, got an empty str")
    root = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
    return root / "miniclip.safetensors", root / "miniclip.json"


def load_miniclip(device: str | torch.device | None = None, weights_dir: str | Path | None = None) -> MiniCLIP:
    """The trained MiniCLIP shipped with the package, in eval mode, on ``device`` (default: see
    :func:`ensemble_lab.device.resolve_device`).

    Weights are read with ``safetensors`` (never unpickled); the vocabulary and architecture come from
    ``miniclip.json`` next to them, which also records how the weights were trained and their zero-shot
    accuracies (``model.metadata``).  ``weights_dir`` loads another copy (e.g. a re-trained one).
    """
    from safetensors.torch import load_file

    from ..device import resolve_device

    device = resolve_device(device)  # before reading anything: 'cuda:7' fails here, by name
    weights, meta_path = miniclip_paths(weights_dir)
    if not weights.exists() or not meta_path.exists():
        raise FileNotFoundError(f"MiniCLIP weights not found: expected {weights} and {meta_path}")
    meta = json.loads(meta_path.read_text())
    model = MiniCLIP(meta["vocab"], **meta["config"])
    model.load_state_dict(load_file(str(weights)), strict=True)
    model.metadata = meta
    return model.eval().to(device)
