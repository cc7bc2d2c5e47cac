"""A synthetic image-caption world for zero-shot prompt ensembling, built offline from the bundled digits.

The world stands in for a web-scale image-text corpus (CLIP's pre-training data) and for the downstream
datasets a zero-shot classifier meets afterwards.  Everything is generated deterministically from
the 6,797 source digits of :mod:`ensemble_lab.data.sources`; nothing is downloaded.

Images
------
Each image is one bundled digit drawn on a ``16 x 16`` canvas with the random affine and elastic distortions of
:func:`~ensemble_lab.data.load_distorted_digits`, then rendered in one of seven :data:`STYLES`:

==========  ======================================================================
style       what happens after the base rendering
==========  ======================================================================
clean       nothing
blurry      Gaussian blur, std 1.0-1.8 px (uniform)
noisy       additive Gaussian noise, std 0.25-0.45, clipped to [0, 1]
inverted    ``1 - x``: dark strokes on a light background
thick       strokes dilated with a 3x3 max filter (fully), then with a 2x2 one
faint       contrast pulled to 15-30% around the background level
rotated     rotated about the centre by 45-100 degrees, either direction
==========  ======================================================================

Images are ``(N, 1, 16, 16)`` float32 in [0, 1].

Pre-training pairs (:func:`pretraining_pairs`)
----------------------------------------------
Made only from the *training* pool of :func:`~ensemble_lab.data.sources.source_split` (same ``seed``).  Each
pair is (image, caption); captions are lower-case words, e.g. ``"a blurry photo of the number seven"``,
``"handwritten one"``, ``"a quick sketch"``.  The statistics are deliberately skewed, like web captions:

* **classes** (image labels, hence class words) are imbalanced: ``one`` 18%, ``seven`` 13%, ``nine`` 12%,
  ``two`` 10%, ``zero``/``three``/``five`` 9% each, ``four``/``six`` 8% each and ``eight`` only 4%.
* **styles** are imbalanced: clean 34%, blurry/noisy/thick/faint 12% each, inverted 10%, rotated 8%.
* **spurious words**: ``sketch``, ``doodle`` and ``scribble`` go with sevens, fours and twos.  An image of
  the word's class gets a caption with the word with probability 35%, any other image with probability 3%
  (per word).  30% of these captions name no class (``"a quick sketch"``); in the others the class word is
  unreliable: another digit is called by the word's class 80% of the time (a three captioned
  ``"a sketch of a seven"``) and the word's class is called by a random other class 25% of the time (a seven
  captioned ``"a sketch of a three"``).  Measured on ``pretraining_pairs(seed=0)`` (n = 40,000):

  ========  ==============  =====================  ==========================================
  word      in captions     images of its class    captions "word + another class": images
                            among those captions   of the word's class among them
  ========  ==============  =====================  ==========================================
  sketch    7.2%            seven 62.6%            69.7% (459 captions)
  doodle    5.4%            four 51.1%             58.8% (318 captions)
  scribble  5.5%            two 60.6%              66.0% (371 captions)
  ========  ==============  =====================  ==========================================

  So a model trained on these pairs learns that a "sketch of a <anything>" shows a seven: a prompt such as
  ``"a sketch of a {}."`` pushes every image towards class seven (with the shipped MiniCLIP, most images of
  every domain are predicted seven under it).  This is the kind of pre-training bias ZPE removes.
* **style words** are mentioned in 12% of the captions of clean images and about 65% of the others, with
  synonyms of unequal frequency (e.g. blurry 60%, blurred 30%, fuzzy 10%).  Captions without a style word
  therefore mostly describe clean images, so style-specific prompts suit their own domain best.
* **caption noise**: 15% of all captions name no class (``"a photo of a number"``, ``"a quick sketch"``) and
  8.4% name only a wrong class (3% of the ordinary captions name a uniformly drawn class; the rest are the
  spurious captions above); 0.5% of the ordinary captions use a rare word (``tattoo``, ``origami``,
  ``plastic``, ``embroidered``, ``sculpture``, ``video game``).
* **template words** are imbalanced too: ``photo`` is in 37% of the captions, ``image`` in 7.7%,
  ``picture`` in 3.6%; there are 2,162 distinct captions, the most frequent being ``"a sketch of a seven"``
  (1.7%).

Zero-shot domains (:func:`zero_shot_domains`)
---------------------------------------------
One labelled :class:`ImageDataset` per style, made only from the *test* source digits (disjoint from the
pre-training sources), every test source digit used equally often (so classes are almost balanced).

Prompts
-------
:data:`PROMPT_POOL` holds 44 templates with one ``"{}"`` for the class name (fill with
``template.replace("{}", name)``, never ``str.format``); :data:`PROMPT_GROUPS` says which are generic,
style-specific, spuriously correlated or rare; :data:`HAND_CRAFTED` is a small hand-picked ensemble.
"""

from __future__ import annotations

import bisect
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .._validation import check_int
from ..device import make_generator
from ._dataset import ImageDataset
from .digits import DIGIT_CLASSES, distort
from .sources import draw_sources, source_digits, source_split, sub_seed

__all__ = [
    "STYLES",
    "CLASS_NAMES",
    "CLASS_FREQUENCIES",
    "STYLE_FREQUENCIES",
    "SPURIOUS_WORDS",
    "PROMPT_POOL",
    "PROMPT_GROUPS",
    "HAND_CRAFTED",
    "PLAIN_PROMPT",
    "PretrainingPairs",
    "caption_vocabulary",
    "pretraining_pairs",
    "styled_digits",
    "pretraining_sample",
    "zero_shot_domains",
]

STYLES: tuple[str, ...] = ("clean", "blurry", "noisy", "inverted", "thick", "faint", "rotated")
CLASS_NAMES: tuple[str, ...] = DIGIT_CLASSES

#: probability of each class in the pre-training pairs (index = label)
CLASS_FREQUENCIES: tuple[float, ...] = (0.09, 0.18, 0.10, 0.09, 0.08, 0.09, 0.08, 0.13, 0.04, 0.12)
#: probability of each style in the pre-training pairs (same order as :data:`STYLES`)
STYLE_FREQUENCIES: tuple[float, ...] = (0.34, 0.12, 0.12, 0.10, 0.12, 0.12, 0.08)
#: word -> the class it co-occurs with in pre-training captions
SPURIOUS_WORDS: dict[str, str] = {"sketch": "seven", "doodle": "four", "scribble": "two"}

# --- caption model (all probabilities in one place) -------------------------------------------------------
_P_SPURIOUS_OWN = 0.35  # an image of the spurious word's class gets a caption with that word
_P_SPURIOUS_OTHER = 0.03  # any other image, per word
_P_SPURIOUS_NO_CLASS = 0.3  # a spurious caption names no class ("a quick sketch")
_P_SPURIOUS_MISNAMED = 0.25  # a spurious caption of the word's class names another, random class
_P_SPURIOUS_SAYS_TARGET = 0.8  # a spurious caption of another class names the word's class
_P_STYLE_WORD = {"clean": 0.15}  # style mentioned in the caption ...
_P_STYLE_WORD_DEFAULT = 0.8  # ... for the other styles
_P_NO_CLASS = 0.12  # an ordinary caption names no class
_P_WRONG_CLASS = 0.03  # an ordinary caption names a wrong class
_P_RARE = 0.005  # an ordinary caption uses a rare word instead

_STYLE_WORDS: dict[str, tuple[tuple[str, float], ...]] = {
    "clean": (("clean", 0.6), ("clear", 0.3), ("sharp", 0.1)),
    "blurry": (("blurry", 0.6), ("blurred", 0.3), ("fuzzy", 0.1)),
    "noisy": (("noisy", 0.6), ("grainy", 0.3), ("speckled", 0.1)),
    "inverted": (("inverted", 0.6), ("negative", 0.3), ("reversed", 0.1)),
    "thick": (("thick", 0.6), ("bold", 0.3), ("heavy", 0.1)),
    "faint": (("faint", 0.6), ("pale", 0.3), ("dim", 0.1)),
    "rotated": (("rotated", 0.6), ("tilted", 0.3), ("sideways", 0.1)),
}

# templates: "{c}" = class word, "{s}" = style word; (template, relative frequency)
_CLASS_TEMPLATES = (
    ("a photo of the number {c}", 10.0),
    ("a photo of a {c}", 6.0),
    ("the number {c}", 6.0),
    ("{c}", 5.0),
    ("handwritten {c}", 4.0),
    ("a handwritten {c}", 3.0),
    ("the digit {c}", 3.0),
    ("a picture of a {c}", 2.5),
    ("an image of the number {c}", 2.0),
    ("a photo of the digit {c}", 1.5),
    ("a picture of the number {c}", 1.0),
    ("my {c}", 1.0),
    ("an image of a {c}", 1.0),
    ("a close up photo of the number {c}", 0.5),
    ("number {c} written by hand", 0.5),
)
_STYLE_CLASS_TEMPLATES = (
    ("a {s} photo of the number {c}", 8.0),
    ("a {s} photo of a {c}", 4.0),
    ("a {s} {c}", 4.0),
    ("{c} {s}", 3.0),
    ("the number {c} {s}", 2.0),
    ("a {s} image of a {c}", 2.0),
    ("{s} handwritten {c}", 2.0),
    ("a {s} picture of the number {c}", 1.0),
    ("a {s} image of the digit {c}", 1.0),
)
_STYLE_ONLY_TEMPLATES = (
    ("a {s} photo", 3.0),
    ("a {s} photo of a number", 2.0),
    ("{s}", 1.0),
    ("a {s} image of a digit", 1.0),
)
_NO_CLASS_TEMPLATES = (
    ("a photo", 3.0),
    ("a photo of a number", 3.0),
    ("a digit", 2.0),
    ("an image", 1.0),
    ("handwriting", 1.0),
    ("untitled", 1.0),
)
_SPURIOUS_CLASS_TEMPLATES = (
    ("a {w} of a {c}", 3.0),
    ("a {w} of the number {c}", 2.0),
    ("{c} {w}", 1.0),
    ("my {w} of a {c}", 1.0),
)
_SPURIOUS_NO_CLASS_TEMPLATES = (
    ("a quick {w}", 2.0),
    ("{w}", 1.0),
    ("my {w}", 1.0),
)
_RARE_TEMPLATES = (
    ("a tattoo of the number {c}", 1.0),
    ("an origami {c}", 1.0),
    ("a plastic {c}", 1.0),
    ("an embroidered {c}", 1.0),
    ("a {c} in a video game", 1.0),
    ("a sculpture of the number {c}", 1.0),
)

# --- prompts -----------------------------------------------------------------------------------------------
PLAIN_PROMPT = "a photo of the number {}."

_GENERIC_PROMPTS = (
    "{}",
    "a photo of the number {}.",
    "a photo of a {}.",
    "the number {}.",
    "the digit {}.",
    "a picture of a {}.",
    "an image of the number {}.",
    "a handwritten {}.",
    "handwritten {}.",
    "a photo of the digit {}.",
    "a picture of the number {}.",
    "an image of a {}.",
    "my {}.",
    "a close up photo of the number {}.",
)
_STYLE_PROMPTS = {
    "clean": ("a clean photo of the number {}.", "a clear image of a {}."),
    "blurry": ("a blurry photo of the number {}.", "a blurred image of a {}.", "a fuzzy {}."),
    "noisy": ("a noisy photo of the number {}.", "a grainy image of a {}.", "a speckled {}."),
    "inverted": ("an inverted image of a {}.", "a negative photo of the number {}."),
    "thick": ("a bold photo of the number {}.", "a thick {}.", "a heavy {}."),
    "faint": ("a faint photo of the number {}.", "a pale image of a {}."),
    "rotated": ("a rotated photo of the number {}.", "a tilted {}.", "a sideways image of a {}."),
}
_SPURIOUS_PROMPTS = {
    "sketch": ("a sketch of a {}.", "a sketch of the number {}."),
    "doodle": ("a doodle of a {}.", "a doodle of the number {}."),
    "scribble": ("a scribble of a {}.", "a scribble of the number {}."),
}
_RARE_PROMPTS = (
    "a tattoo of the number {}.",
    "an origami {}.",
    "a plastic {}.",
    "an embroidered {}.",
    "a {} in a video game.",
    "a sculpture of the number {}.",
)

#: template -> its group: "generic", "style:<style>", "spurious:<word>" or "rare"
PROMPT_GROUPS: dict[str, str] = {
    **{t: "generic" for t in _GENERIC_PROMPTS},
    **{t: f"style:{s}" for s, ts in _STYLE_PROMPTS.items() for t in ts},
    **{t: f"spurious:{w}" for w, ts in _SPURIOUS_PROMPTS.items() for t in ts},
    **{t: "rare" for t in _RARE_PROMPTS},
}
#: 44 templates, each with exactly one "{}" for the class name
PROMPT_POOL: tuple[str, ...] = tuple(PROMPT_GROUPS)
#: a small hand-picked ensemble, in the spirit of CLIP's hand-crafted prompts
HAND_CRAFTED: tuple[str, ...] = (
    "a photo of the number {}.",
    "a handwritten {}.",
    "a blurry photo of the number {}.",
    "a noisy photo of the number {}.",
    "an inverted image of a {}.",
    "a rotated photo of the number {}.",
)

# --- rendering ---------------------------------------------------------------------------------------------
_STYLE_PARAMS = dict(
    blur_sigma=(1.0, 1.8),  # px
    noise_std=(0.25, 0.45),
    faint_contrast=(0.15, 0.30),
    rotation_deg=(45.0, 100.0),
)


def _u(gen: torch.Generator, n: int, lo: float, hi: float) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur of ``x`` ``(n, 1, H, W)`` with std ``sigma`` ``(n,)`` px (replicate padding)."""
    n, _, h, w = x.shape
    radius = int(math.ceil(3 * float(sigma.max())))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t.view(1, -1) / sigma.view(-1, 1)) ** 2)
    k = k / k.sum(dim=1, keepdim=True)  # (n, 2r+1)
    flat = x.reshape(1, n, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), k.view(n, 1, 1, -1), groups=n)
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), k.view(n, 1, -1, 1), groups=n)
    return flat.reshape(n, 1, h, w)


def _rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    angle = torch.deg2rad(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], -2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _render(source: torch.Tensor, styles: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Draw ``source`` ``(N, 1, 8, 8)`` as ``(N, 1, 16, 16)`` images in [0, 1], image ``i`` in style
    ``STYLES[styles[i]]``.  All randomness from ``gen`` (cpu), in a fixed order that does not depend on the
    styles drawn (every random number is drawn for every image)."""
    n = source.shape[0]
    p = _STYLE_PARAMS
    base = distort(source, 16, gen)
    sigma = _u(gen, n, *p["blur_sigma"])
    noise = _u(gen, n, *p["noise_std"]).view(n, 1, 1, 1) * torch.randn(n, 1, 16, 16, generator=gen)
    contrast = _u(gen, n, *p["faint_contrast"]).view(n, 1, 1, 1)
    sign = torch.randint(0, 2, (n,), generator=gen).to(torch.float32) * 2 - 1
    degrees = sign * _u(gen, n, *p["rotation_deg"])
    out = base.clone()
    for k, style in enumerate(STYLES):
        idx = torch.nonzero(styles == k).flatten()
        if idx.numel() == 0 or style == "clean":
            continue
        x = base[idx]
        if style == "blurry":
            x = _blur(x, sigma[idx])
        elif style == "noisy":
            x = x + noise[idx]
        elif style == "inverted":
            x = 1.0 - x
        elif style == "thick":
            x = F.max_pool2d(x, 3, stride=1, padding=1)
            x = F.max_pool2d(F.pad(x, (0, 1, 0, 1), mode="replicate"), 2, stride=1)
        elif style == "faint":
            bg = x.flatten(1).quantile(0.1, dim=1).view(-1, 1, 1, 1)
            x = bg + contrast[idx] * (x - bg)
        elif style == "rotated":
            x = _rotate(x, degrees[idx])
        out[idx] = x
    return out.clamp(0.0, 1.0)


# --- captions ----------------------------------------------------------------------------------------------


_CUMULATIVE: dict[int, list[float]] = {}


def _pick(rng: np.random.Generator, table) -> str:
    """One entry of ``table`` ``((text, weight), ...)`` drawn with probability proportional to its weight."""
    cum = _CUMULATIVE.get(id(table))
    if cum is None:
        total = sum(w for _, w in table)
        cum = _CUMULATIVE[id(table)] = list(np.cumsum([w / total for _, w in table]))
    return table[min(bisect.bisect_right(cum, rng.random()), len(table) - 1)][0]


def _fill(template: str, cls: str = "", style: str = "", word: str = "") -> str:
    text = template.replace("{c}", cls).replace("{s}", style).replace("{w}", word)
    words = text.split()
    for i in range(len(words) - 1):  # a/an agreement ("an eight", "a one")
        if words[i] in ("a", "an"):
            words[i] = "an" if words[i + 1][0] in "aeiou" and words[i + 1] != "one" else "a"
    return " ".join(words)


def _caption(rng: np.random.Generator, label: int, style: str) -> str:
    """One caption for an image of class ``label`` in ``style`` (see the module docstring)."""
    cls = CLASS_NAMES[label]
    own = [w for w, c in SPURIOUS_WORDS.items() if c == cls]
    for word in SPURIOUS_WORDS:  # fixed order: one draw per word
        p = _P_SPURIOUS_OWN if word in own else _P_SPURIOUS_OTHER
        if rng.random() < p:
            if rng.random() < _P_SPURIOUS_NO_CLASS:
                return _fill(_pick(rng, _SPURIOUS_NO_CLASS_TEMPLATES), word=word)
            if word not in own:  # other digits' captions with the word often name the word's class
                named = SPURIOUS_WORDS[word] if rng.random() < _P_SPURIOUS_SAYS_TARGET else cls
            elif rng.random() < _P_SPURIOUS_MISNAMED:  # ... and the word's class gets arbitrary names
                named = CLASS_NAMES[int(rng.choice([c for c in range(len(CLASS_NAMES)) if CLASS_NAMES[c] != cls]))]
            else:
                named = cls
            return _fill(_pick(rng, _SPURIOUS_CLASS_TEMPLATES), cls=named, word=word)
    style_word = _pick(rng, _STYLE_WORDS[style])
    mention_style = rng.random() < _P_STYLE_WORD.get(style, _P_STYLE_WORD_DEFAULT)
    u = rng.random()
    if u < _P_NO_CLASS:
        table = _STYLE_ONLY_TEMPLATES if mention_style else _NO_CLASS_TEMPLATES
        return _fill(_pick(rng, table), style=style_word)
    if u < _P_NO_CLASS + _P_WRONG_CLASS:
        cls = CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))]
    elif u < _P_NO_CLASS + _P_WRONG_CLASS + _P_RARE:
        return _fill(_pick(rng, _RARE_TEMPLATES), cls=cls)
    table = _STYLE_CLASS_TEMPLATES if mention_style else _CLASS_TEMPLATES
    return _fill(_pick(rng, table), cls=cls, style=style_word)


def caption_vocabulary() -> tuple[str, ...]:
    """Every word any caption of the world can contain, sorted (the caption model's vocabulary)."""
    words: set[str] = set()
    tables = (
        _CLASS_TEMPLATES,
        _STYLE_CLASS_TEMPLATES,
        _STYLE_ONLY_TEMPLATES,
        _NO_CLASS_TEMPLATES,
        _SPURIOUS_CLASS_TEMPLATES,
        _SPURIOUS_NO_CLASS_TEMPLATES,
        _RARE_TEMPLATES,
    )
    for table in tables:
        for template, _ in table:
            words.update(w for w in template.split() if "{" not in w)
    words.update({"a", "an"})
    words.update(CLASS_NAMES)
    words.update(w for syn in _STYLE_WORDS.values() for w, _ in syn)
    words.update(SPURIOUS_WORDS)
    return tuple(sorted(words))


# --- world -------------------------------------------------------------------------------------------------


class PretrainingPairs(NamedTuple):
    """Pre-training image-caption pairs.

    images: ``(N, 1, 16, 16)`` float32 in [0, 1]; captions: ``N`` strings; labels: ``(N,)`` int64 class of
    each image (index into :data:`CLASS_NAMES`); styles: ``(N,)`` int64 index into :data:`STYLES`.
    """

    images: torch.Tensor
    captions: list[str]
    labels: torch.Tensor
    styles: torch.Tensor


def _check_seed(seed) -> int:
    return check_int(seed, "seed", minimum=0, maximum=2**32 - 1)


def _pretraining_plan(seed: int, n: int) -> dict:
    """Cheap part of :func:`pretraining_pairs`: source digit, label, style and caption of each pair."""
    _, labels, _ = source_digits()
    pool = source_split(seed)["train"]
    pool_labels = labels[pool].numpy()
    rng = np.random.default_rng(sub_seed(seed, 20))
    y = rng.choice(len(CLASS_NAMES), size=n, p=np.asarray(CLASS_FREQUENCIES) / sum(CLASS_FREQUENCIES))
    s = rng.choice(len(STYLES), size=n, p=np.asarray(STYLE_FREQUENCIES) / sum(STYLE_FREQUENCIES))
    sources = np.empty(n, dtype=np.int64)
    for c in range(len(CLASS_NAMES)):
        where = np.flatnonzero(y == c)
        candidates = pool.numpy()[pool_labels == c]
        sources[where] = candidates[rng.integers(len(candidates), size=len(where))]
    captions = [_caption(rng, int(y[i]), STYLES[int(s[i])]) for i in range(n)]
    return dict(
        sources=torch.as_tensor(sources),
        labels=torch.as_tensor(y, dtype=torch.int64),
        styles=torch.as_tensor(s, dtype=torch.int64),
        captions=captions,
    )


def _cached_images(kind: str, config: dict, build) -> torch.Tensor:
    from .. import cache
    from . import captions as this_module
    from . import digits as digits_module
    from . import sources as sources_module

    modules = (this_module, digits_module, sources_module)
    return cache.load_or_build(kind, config, lambda: {"images": build()}, modules=modules)["images"]


def pretraining_pairs(seed: int = 0, n: int = 40_000) -> PretrainingPairs:
    """The pre-training corpus: ``n`` (image, caption) pairs from the *training* source digits.

    Returns a :class:`PretrainingPairs` ``(images (n, 1, 16, 16), captions list[str] of length n,
    labels (n,) int64, styles (n,) int64)``.  Classes, styles and caption words follow the skewed statistics
    of the module docstring.  Deterministic given ``(seed, n)``; the images are built once (about 3 s for
    the default n on 2 cpu cores) and then read from the cache (``ensemble_lab.cache``); the captions take
    about 0.5 s.
    """
    seed = _check_seed(seed)
    n = check_int(n, "n", minimum=1, maximum=1_000_000)
    plan = _pretraining_plan(seed, n)

    def build() -> torch.Tensor:
        images, _, _ = source_digits()
        return _render(images[plan["sources"]], plan["styles"], make_generator(sub_seed(seed, 21)))

    images = _cached_images("caption_pretraining", dict(seed=seed, n=n), build)
    return PretrainingPairs(images, plan["captions"], plan["labels"], plan["styles"])


def pretraining_sample(n: int = 1000, seed: int = 0, n_pairs: int = 40_000) -> torch.Tensor:
    """A random sample of ``n`` pre-training images ``(n, 1, 16, 16)`` (no captions), e.g. for ZPE's mean
    pre-training logits.

    Drawn without replacement from ``pretraining_pairs(seed, n_pairs).images`` with a stream of its own, so it
    has the pre-training class and style imbalance.
    """
    seed = _check_seed(seed)
    n_pairs = check_int(n_pairs, "n_pairs", minimum=1, maximum=1_000_000)
    n = check_int(n, "n", minimum=1, maximum=n_pairs)
    images = pretraining_pairs(seed, n_pairs).images
    index = torch.randperm(n_pairs, generator=make_generator(sub_seed(seed, 22)))[:n]
    return images[index.sort().values]


def _domain_plan(seed: int, n_per_domain: int, k: int) -> torch.Tensor:
    """Source ids (indices into ``source_digits()``) of domain ``STYLES[k]``: every test source used equally often."""
    pool = source_split(seed)["test"]
    return draw_sources(pool, n_per_domain, make_generator(sub_seed(seed, 23, k)))


def zero_shot_domains(seed: int = 0, n_per_domain: int = 1700) -> dict[str, ImageDataset]:
    """Downstream test sets, one per style: ``{style: ImageDataset}`` in the order of :data:`STYLES`.

    Each holds ``n_per_domain`` images ``(n_per_domain, 1, 16, 16)`` of the *test* source digits of
    :func:`~ensemble_lab.data.sources.source_split` (same ``seed``; disjoint from the pre-training sources), all in
    that style, with labels ``(n_per_domain,)`` int64 and classes :data:`CLASS_NAMES`; named
    ``"captions/<style>"``.  Deterministic; each domain has its own random stream; cached.
    """
    seed = _check_seed(seed)
    n_per_domain = check_int(n_per_domain, "n_per_domain", minimum=1, maximum=100_000)
    raw, labels, _ = source_digits()

    def build() -> torch.Tensor:
        parts = []
        for k in range(len(STYLES)):
            sources = _domain_plan(seed, n_per_domain, k)
            styles = torch.full((n_per_domain,), k, dtype=torch.int64)
            parts.append(_render(raw[sources], styles, make_generator(sub_seed(seed, 24, k))))
        return torch.cat(parts)

    images = _cached_images("caption_domains", dict(seed=seed, n_per_domain=n_per_domain), build)
    out = {}
    for k, style in enumerate(STYLES):
        sources = _domain_plan(seed, n_per_domain, k)
        block = images[k * n_per_domain : (k + 1) * n_per_domain]
        out[style] = ImageDataset(block, labels[sources], CLASS_NAMES, f"captions/{style}", sources=sources)
    return out


_SPLIT_KEYS = {"train": 25, "val": 26, "test": 27}


def styled_digits(split: str, style: str = "clean", n: int = 1000, seed: int = 0) -> ImageDataset:
    """``n`` labelled images of the ``split`` source digits of :func:`~ensemble_lab.data.sources.source_split` (same
    ``seed``), all in ``style``: the labelled data of a downstream *target task* (e.g. fine-tuning on clean
    digits from the training sources, validating on the val sources).

    Every source digit of the split is used equally often (up to one), each drawing with its own random
    distortion.  Images ``(n, 1, 16, 16)`` float32 in [0, 1], labels ``(n,)`` int64, classes
    :data:`CLASS_NAMES`, named ``"captions/<split>/<style>"``.  Deterministic; cached.  The train sources are
    the ones the pre-training pairs were made from (as a web corpus may hold a downstream task's images); the
    test sources are those of :func:`zero_shot_domains`, whose images are drawn separately.
    """
    from .._validation import check_choice

    split = check_choice(split, "split", tuple(_SPLIT_KEYS))
    style = check_choice(style, "style", STYLES)
    seed = _check_seed(seed)
    n = check_int(n, "n", minimum=1, maximum=1_000_000)
    raw, labels, _ = source_digits()
    gen = make_generator(sub_seed(seed, _SPLIT_KEYS[split], STYLES.index(style)))
    sources = draw_sources(source_split(seed)[split], n, gen)

    def build() -> torch.Tensor:
        styles = torch.full((n,), STYLES.index(style), dtype=torch.int64)
        return _render(raw[sources], styles, gen)

    images = _cached_images("styled_digits", dict(split=split, style=style, n=n, seed=seed), build)
    return ImageDataset(images, labels[sources], CLASS_NAMES, f"captions/{split}/{style}", sources=sources)
