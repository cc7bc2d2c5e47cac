"""The pre-train -> fine-tune world of the soups notebook, built once (progress bar) and then read from the cache.

* **Pre-trained model**: the shipped MiniCLIP (:mod:`ensemble_lab.models.miniclip`), trained contrastively on
  40k captioned digits in seven styles: the "broad source task".
* **Zero-shot endpoint**: its image encoder with a head made from the text embeddings of the class prompts
  (:func:`~ensemble_lab.models.clip_classifier.zero_shot_classifier` with :data:`ZERO_SHOT_PROMPTS`); no
  target label is used.
* **Target task**: clean digits with a grey sticker over part of them (:data:`TARGET_STYLE` drawn, then
  :func:`~ensemble_lab.data.shift` with :data:`TARGET_CORRUPTION`: a mid-grey square a quarter of the image wide
  at a random place), something the pre-training corpus never showed.  Fine-tuning on
  ``styled_digits("train", "clean")``, held-out selection (greedy and learned soups) on the val sources,
  in-distribution test on the clean test domain, all with stickers; the other six styles of
  :func:`~ensemble_lab.data.zero_shot_domains`, with stickers too, are the shifted test sets: the same task
  drawn differently (the analogue of ImageNet -> ImageNet-Sketch, -R, ... in the papers).
* **Ingredients**: :data:`INGREDIENTS`, fine-tunes of the zero-shot model with varied learning rate, weight
  decay, epochs, label smoothing, mixup and augmentation (:mod:`ensemble_lab.finetune`).  Those named by
  :func:`endpoint_name` are the WiSE-FT endpoints: one standard and one BANG (label smoothing + mixup)
  fine-tune per learning rate of :data:`ENDPOINT_LRS`.
* **Cached predictions**: every model's logits on every split, and for every endpoint the WiSE-FT curve at
  :data:`ALPHAS` as the two head terms of :func:`~ensemble_lab.soups.interpolation_head_terms`.

* **Data seeds**: ``soup_world(seed=s)`` draws the target task from the pools of ``source_split(s)``.  MiniCLIP was
  pre-trained on the training pool of seed 0 only, so for ``s != 0`` about half of the val/test source digits
  (897 and 863 of 1,700 test images for seeds 1 and 2) are digits MiniCLIP saw in pre-training, under other
  distortions; the effect on zero-shot accuracy is not resolved (05_model_soups_wise_ft measures it).

Everything is keyed by the config and the source of the modules that produce it (:mod:`ensemble_lab.cache`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .. import cache
from .._validation import check_int
from ..device import resolve_device
from ..finetune import FINE_TUNE, fine_tune
from ..recipe import Recipe

__all__ = [
    "SoupWorld",
    "soup_world",
    "assemble_world",
    "CURVE_SPLITS",
    "INGREDIENTS",
    "ENDPOINT_LRS",
    "ALPHAS",
    "SPLITS",
    "SHIFTED",
    "TARGET_STYLE",
    "TARGET_CORRUPTION",
    "ZERO_SHOT",
    "endpoint_name",
    "ZERO_SHOT_PROMPTS",
]

TARGET_STYLE = "clean"
#: the corruption (kind, severity) of :func:`~ensemble_lab.data.shift` that makes the target task new
TARGET_CORRUPTION: tuple[str, int] = ("occlusion", 1)
ZERO_SHOT = "zero-shot"
#: CLIP-style prompt ensemble for the zero-shot head (style-neutral templates only)
ZERO_SHOT_PROMPTS: tuple[str, ...] = (
    "a photo of the number {}.",
    "the number {}.",
    "a picture of a {}.",
    "an image of the number {}.",
    "a handwritten {}.",
)
ENDPOINT_LRS: tuple[float, ...] = (3e-4, 1e-3, 3e-3, 1e-2)
#: interpolation coefficients of the cached WiSE-FT curves (0 = zero-shot, 1 = fine-tuned)
ALPHAS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
STANDARD = FINE_TUNE
BANG_CHANGES = dict(label_smoothing=0.1, mixup=0.4)
# val and test: about one image per source of their 1,699 / 1,700-source pools (ensemble_lab.data.sources)
N_TRAIN, N_VAL, N_TEST, N_SHIFTED = 3000, 1700, 1700, 500


def endpoint_name(lr: float, bang: bool = False) -> str:
    """Name of the WiSE-FT endpoint fine-tuned at ``lr`` (standard, or BANG: label smoothing + mixup)."""
    return f"{'BANG ' if bang else ''}lr {lr:g}"


_rep = dataclasses.replace
#: name -> recipe of every fine-tune (the soup ingredients), in checklist order
INGREDIENTS: dict[str, Recipe] = {
    **{endpoint_name(lr): _rep(STANDARD, lr=lr) for lr in ENDPOINT_LRS},
    **{endpoint_name(lr, True): _rep(STANDARD, lr=lr, **BANG_CHANGES) for lr in ENDPOINT_LRS},
    "LS 0.1": _rep(STANDARD, label_smoothing=0.1, seed=1),
    "mixup 0.4": _rep(STANDARD, mixup=0.4, seed=2),
    "shift aug": _rep(STANDARD, augment=True, seed=3),
    "wd 0, 8 ep": _rep(STANDARD, weight_decay=0.0, epochs=8, seed=4),
    "aug + LS, 3 ep": _rep(STANDARD, augment=True, label_smoothing=0.1, epochs=3, seed=5),
    "lr 2e-3, seed 6": _rep(STANDARD, lr=2e-3, seed=6),
}


def _shifted_styles() -> tuple[str, ...]:
    from ..data.captions import STYLES

    return tuple(s for s in STYLES if s != TARGET_STYLE)


SHIFTED: tuple[str, ...] = _shifted_styles()
#: evaluation splits: held-out val (clean), in-distribution test (clean), then the shifted styles
SPLITS: tuple[str, ...] = ("val", "test", *SHIFTED)
#: the splits the WiSE-FT curves are cached on (the held-out val split is only used to pick and fit soups)
CURVE_SPLITS: tuple[str, ...] = ("test", *SHIFTED)


@dataclass
class SoupWorld:
    """Everything the soups Lab needs, on the cpu.

    model: the zero-shot :class:`~ensemble_lab.models.clip_classifier.ClipClassifier` (eval mode): the
        architecture every state dict below loads into.
    states: name -> state dict, :data:`ZERO_SHOT` first, then :data:`INGREDIENTS` in order.
    recipes: name -> :class:`~ensemble_lab.recipe.Recipe` of each ingredient.
    images, labels: split -> ``(N_s, 1, 16, 16)`` images and ``(N_s,)`` labels, splits :data:`SPLITS`.
    logits: name -> split -> ``(N_s, C)`` logits of that model.
    curve_terms: endpoint name -> split -> ``(A, 2, N_s, C)`` WiSE-FT head terms at :data:`ALPHAS` between the
        zero-shot model and that endpoint, for the test splits (:data:`CURVE_SPLITS`: all but val).
    seconds: how long the build took (0 when loaded from the cache).
    sources: split -> ``(N_s,)`` int64 source digit of each image (``clusters=`` of
        :func:`~ensemble_lab.stats.paired_bootstrap`); empty when unknown (tiny test worlds).
    """

    model: torch.nn.Module
    states: dict[str, dict[str, torch.Tensor]]
    recipes: dict[str, Recipe]
    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    logits: dict[str, dict[str, torch.Tensor]]
    curve_terms: dict[str, dict[str, torch.Tensor]]
    seconds: float = 0.0
    sources: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    @property
    def ingredients(self) -> tuple[str, ...]:
        return tuple(self.recipes)

    @property
    def alphas(self) -> torch.Tensor:
        return torch.tensor(ALPHAS, dtype=torch.float64)

    def all_images(self, splits=SPLITS) -> torch.Tensor:
        return torch.cat([self.images[s] for s in splits])


def _modules():
    from .. import finetune, recipe, soups
    from ..data import captions, digits, shifts, sources
    from ..models import clip_classifier, miniclip
    from . import soup_world as this

    return (this, finetune, recipe, soups, captions, digits, shifts, sources, clip_classifier, miniclip)


def _data(seed: int):
    from ..data import shift, styled_digits, zero_shot_domains

    kind, severity = TARGET_CORRUPTION
    domains = zero_shot_domains(seed, N_TEST)
    sets = {
        "train": styled_digits("train", TARGET_STYLE, N_TRAIN, seed),
        "val": styled_digits("val", TARGET_STYLE, N_VAL, seed),
        "test": domains[TARGET_STYLE],
    }
    sets.update({s: domains[s].subset(torch.arange(N_SHIFTED)) for s in SHIFTED})
    # each split its own sticker positions (shift's draws depend on its seed and the kind only)
    sets = {name: shift(d, kind, severity, seed=seed * 100 + i + 1) for i, (name, d) in enumerate(sets.items())}
    train = sets.pop("train")
    images = {s: d.images for s, d in sets.items()}
    return train, images, {s: d.labels for s, d in sets.items()}, {s: d.sources for s, d in sets.items()}


def _zero_shot_model(device):
    from ..data.captions import CLASS_NAMES
    from ..models.clip_classifier import zero_shot_classifier
    from ..models.miniclip import load_miniclip

    return zero_shot_classifier(load_miniclip(device), CLASS_NAMES, ZERO_SHOT_PROMPTS).eval()


def _split(t: torch.Tensor, sizes: Mapping[str, int], dim: int) -> dict[str, torch.Tensor]:
    return dict(zip(sizes, torch.split(t, list(sizes.values()), dim=dim), strict=False))


def _split_curve(terms: torch.Tensor, sizes: Mapping[str, int]) -> dict[str, torch.Tensor]:
    """WiSE-FT head terms ``(A, 2, N', C)`` over the concatenated :data:`CURVE_SPLITS` -> split -> terms."""
    return _split(terms, {s: sizes[s] for s in CURVE_SPLITS}, 2)


def _evaluate(
    model,
    states: Mapping[str, Mapping[str, torch.Tensor]],
    images: Mapping[str, torch.Tensor],
    endpoints,
    device=None,
    bar=None,
):
    """Logits ``(N, C)`` of every state on the images of :data:`SPLITS`, concatenated, and WiSE-FT head terms
    ``(A, 2, N', C)`` from :data:`ZERO_SHOT` to every endpoint on those of :data:`CURVE_SPLITS`."""
    x = torch.cat([images[s] for s in SPLITS]).to(device)
    curve_x = torch.cat([images[s] for s in CURVE_SPLITS]).to(device)
    from ..soups import interpolation_head_terms

    logits, curves = {}, {}
    for name, sd in states.items():
        model.load_state_dict(sd)
        with torch.no_grad():
            logits[name] = model(x)
    model.load_state_dict(states[ZERO_SHOT])
    if bar is not None:
        bar.update()
        bar.set_description("WiSE-FT curves")
    for name in endpoints:
        curves[name] = interpolation_head_terms(model, states[ZERO_SHOT], states[name], ALPHAS, curve_x)
        if bar is not None:
            bar.update()
    return logits, curves


def assemble_world(model, states, recipes, images, labels) -> SoupWorld:
    """A :class:`SoupWorld` from given fine-tuned states (no training, no cache): evaluates every state on
    every split and computes the WiSE-FT curve terms to every endpoint of :func:`endpoint_name` present in
    ``states``.  :func:`soup_world` builds the real one; tests use this for tiny worlds.

    Args:
        model: the zero-shot classifier (its architecture is used; its weights end as ``states[ZERO_SHOT]``).
        states: name -> state dict, with :data:`ZERO_SHOT` among them.
        recipes: ingredient name -> :class:`~ensemble_lab.recipe.Recipe` (every state but zero-shot).
        images, labels: split -> ``(N_s, ...)`` images and ``(N_s,)`` labels, for every split of :data:`SPLITS`.
    """
    if ZERO_SHOT not in states or set(states) != {ZERO_SHOT, *recipes}:
        raise ValueError(f"states must hold {ZERO_SHOT!r} and one state per recipe; got {sorted(states)}")
    missing = [s for s in SPLITS if s not in images or s not in labels]
    if missing:
        raise ValueError(f"images and labels must hold every split of {SPLITS}; missing {missing}")
    sizes = {s: images[s].shape[0] for s in SPLITS}
    endpoints = [endpoint_name(lr, b) for lr in ENDPOINT_LRS for b in (False, True) if endpoint_name(lr, b) in states]
    logits, curves = _evaluate(model.eval(), states, images, endpoints, device=next(model.parameters()).device)
    return SoupWorld(
        model,
        {n: dict(states[n]) for n in (ZERO_SHOT, *recipes)},
        dict(recipes),
        {s: images[s] for s in SPLITS},
        {s: labels[s] for s in SPLITS},
        {n: _split(t, sizes, 0) for n, t in logits.items()},
        {n: _split_curve(t, sizes) for n, t in curves.items()},
    )


def soup_world(seed: int = 0, device: str | torch.device | None = None, progress: bool = True) -> SoupWorld:
    """Build (about 40 s on 2 cpu cores, with a progress bar) or load the world; see the module docstring.

    ``device`` is where fine-tuning and evaluation run (default: cuda, then mps, then cpu); everything comes
    back on the cpu.  ``seed`` is the data seed of the digits.
    """
    import time

    seed = check_int(seed, "seed", minimum=0)
    dev = resolve_device(device)
    config = {
        "seed": seed,
        "recipes": {k: r.to_dict() for k, r in INGREDIENTS.items()},
        "alphas": ALPHAS,
        "prompts": ZERO_SHOT_PROMPTS,
        "sizes": [N_TRAIN, N_VAL, N_TEST, N_SHIFTED],
        "target": TARGET_STYLE,
        "corruption": TARGET_CORRUPTION,
    }
    train, images, labels, sources = _data(seed)
    sizes = {s: images[s].shape[0] for s in SPLITS}
    model = _zero_shot_model(dev)
    names = (ZERO_SHOT, *INGREDIENTS)
    endpoints = [endpoint_name(lr, b) for lr in ENDPOINT_LRS for b in (False, True)]
    built = {"seconds": 0.0}

    def build() -> dict[str, torch.Tensor]:
        start = time.perf_counter()
        states = {ZERO_SHOT: {k: v.detach().clone() for k, v in model.state_dict().items()}}
        bar = tqdm(total=len(INGREDIENTS) + 1 + len(endpoints), desc="fine-tuning ingredients", disable=not progress)
        for name, recipe in INGREDIENTS.items():
            states[name] = fine_tune(model, train.to(dev), recipe)
            bar.update()
        bar.set_description("evaluating")
        logits, curves = _evaluate(model, states, images, endpoints, dev, bar)
        bar.close()
        out = {f"state.{i}.{k}": v for i, n in enumerate(names) for k, v in states[n].items()}
        out.update({f"logits.{i}": logits[n] for i, n in enumerate(names)})
        out.update({f"curve.{n}": t for n, t in curves.items()})
        built["seconds"] = time.perf_counter() - start
        return out

    tensors = cache.load_or_build("soup_world", config, build, modules=_modules())
    states, logits = {}, {}
    for i, name in enumerate(names):
        prefix = f"state.{i}."
        states[name] = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        logits[name] = _split(tensors[f"logits.{i}"], sizes, 0)
    curves = {n: _split_curve(tensors[f"curve.{n}"], sizes) for n in endpoints}
    model = model.to("cpu")
    model.load_state_dict(states[ZERO_SHOT])
    return SoupWorld(model, states, dict(INGREDIENTS), images, labels, logits, curves, built["seconds"], sources)
