"""The zoo: trained ensembles and their predictions, built once (with a progress bar) and then read from the cache.

This is what the Labs consume: :func:`ensemble_predictions` gives member logits ``(K, N, C)`` on the
validation split, the test split and every shifted copy of the test split, so a widget change only
re-combines cached tensors.

Both artefacts go through :func:`ensemble_lab.cache.load_or_build`, keyed by the full config (dataset, data
seed, architecture, K and the training :class:`~ensemble_lab.recipe.Recipe`, seed included) *and* the source code
of the modules that produce them (model family, stacking, recipe, training, data generation, this module), so
editing any of them retrains instead of serving stale results.  Training happens on ``device`` (default: cuda,
then mps, then cpu); the cache key does not include the device, and tensors always come back on the cpu.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from types import ModuleType

import torch

from .. import cache
from .._validation import check_choice, check_int
from ..cache import clear_cache
from ..device import resolve_device
from ..models import family as _family_module
from ..models import stacked as _stacked_module
from ..models.family import ModelSpec, get_spec
from ..models.stacked import StackedEnsemble
from ..recipe import Recipe

__all__ = [
    "EnsemblePredictions",
    "ensemble_predictions",
    "trained_ensemble",
    "default_epochs",
    "DATASETS",
    "DEFAULT_EPOCHS",
    "RECIPES",
    "clear_cache",
]

DATASETS = ("distorted", "digits")

# Epochs per (dataset, arch): members reasonably converged -- for the default ("distorted", "mlp-m") trained
# into the mildly overconfident regime where averaging K members visibly improves NLL and ECE -- while the
# cold build stays short on 2 cpu cores.  "distorted": 20k training images (79 steps per epoch at batch 256);
# "digits": ~1.1k (9 steps per epoch at batch 128).
DEFAULT_EPOCHS: dict[tuple[str, str], int] = {
    ("digits", "mlp-xs"): 60,
    ("digits", "mlp-s"): 40,
    ("digits", "mlp-m"): 30,
    ("digits", "cnn-s"): 30,
    ("digits", "mlp-l"): 30,
    ("digits", "cnn-m"): 25,
    ("digits", "cnn-l"): 20,
    ("distorted", "mlp-xs"): 20,
    ("distorted", "mlp-s"): 15,
    ("distorted", "mlp-m"): 15,
    ("distorted", "cnn-s"): 6,
    ("distorted", "mlp-l"): 10,
    ("distorted", "cnn-m"): 5,
    ("distorted", "cnn-l"): 4,
}
FALLBACK_EPOCHS = {"digits": 30, "distorted": 10}

#: the training recipe per dataset; its epochs come from :func:`default_epochs` and its seed from the call
RECIPES: dict[str, Recipe] = {
    "digits": Recipe(batch_size=128, lr=3e-3, weight_decay=1e-4, schedule="cosine"),
    "distorted": Recipe(batch_size=256, lr=6e-3, weight_decay=1e-4, schedule="cosine"),
}


def default_epochs(dataset: str, arch: ModelSpec | str) -> int:
    """The zoo's number of training epochs for ``arch`` on ``dataset``."""
    check_choice(dataset, "dataset", DATASETS)
    return DEFAULT_EPOCHS.get((dataset, get_spec(arch).name), FALLBACK_EPOCHS[dataset])


@dataclass(frozen=True)
class EnsemblePredictions:
    """Cached member logits of one trained ensemble on every evaluation split.

    logits: split name -> ``(K, N, C)`` float32 member logits, for ``"val"``, ``"test"`` and every shifted
        copy of the test set (``"noise-1"``, ...); cpu tensors.
    labels: split name -> ``(N,)`` int64.
    sources: split name -> ``(N,)`` int64 id of the independent source digit behind each image (shifted copies
        share the test split's), for ``clusters=`` of :func:`~ensemble_lab.stats.paired_bootstrap`.
    classes: class names.
    member_macs: multiply-accumulates per sample of one member (K members cost ``K * member_macs``).
    config: what was trained (dataset, data_seed, arch, k, seed, epochs, recipe).
    """

    logits: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    sources: dict[str, torch.Tensor]
    classes: tuple[str, ...]
    member_macs: int
    config: dict = field(default_factory=dict)

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names in order: ``"val"``, ``"test"``, then the shifted test sets."""
        return tuple(self.logits)

    @property
    def k(self) -> int:
        """Number of members."""
        return int(next(iter(self.logits.values())).shape[0])

    def __repr__(self) -> str:
        c = self.config
        return (
            f"EnsemblePredictions(dataset={c.get('dataset')!r}, arch={c.get('arch')!r}, k={self.k}, "
            f"splits={len(self.splits)}, member_macs={self.member_macs})"
        )


# ---------------------------------------------------------------------------- helpers
def _encode_strings(names) -> torch.Tensor:
    return torch.tensor(list("\n".join(names).encode("utf-8")), dtype=torch.uint8)


def _decode_strings(t: torch.Tensor) -> tuple[str, ...]:
    text = bytes(t.tolist()).decode("utf-8")
    return tuple(text.split("\n")) if text else ()


# data modules the zoo's datasets never touch (editing them must not retrain the zoo)
_UNRELATED_DATA_MODULES = {"cifar"}


def _data_modules() -> list[ModuleType]:
    """``ensemble_lab.data`` and its submodules that make the zoo's datasets (their source is in every cache key)."""
    package = importlib.import_module("ensemble_lab.data")
    mods = [package]
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name not in _UNRELATED_DATA_MODULES:
            mods.append(importlib.import_module(f"ensemble_lab.data.{info.name}"))
    return [m for m in mods if _has_source(m)]


def _has_source(module: ModuleType) -> bool:
    """False for an empty file (``inspect.getsource`` refuses those; there is nothing to fingerprint)."""
    try:
        inspect.getsource(module)
    except OSError:
        return False
    return True


def _modules() -> tuple[ModuleType, ...]:
    from .. import recipe as recipe_module
    from .. import train as train_module
    from . import zoo as zoo_module

    return (train_module, recipe_module, _family_module, _stacked_module, zoo_module, *_data_modules())


def _load_splits(dataset: str, data_seed: int):
    """(train, {"val", "test", shifted...} -> ImageDataset) for ``dataset``."""
    from .. import data

    sets = data.load_digits(seed=data_seed) if dataset == "digits" else data.load_distorted_digits(seed=data_seed)
    evaluation = {"val": sets["val"], "test": sets["test"]}
    for name, shifted in data.shifted_sets(sets["test"], seed=data_seed).items():
        if name in evaluation:
            raise ValueError(f"shifted_sets returned a split named {name!r}, which clashes with val/test")
        evaluation[name] = shifted
    return sets["train"], evaluation


def _config(dataset, arch, k, seed, epochs, data_seed) -> tuple[dict, ModelSpec]:
    dataset = check_choice(dataset, "dataset", DATASETS)
    spec = get_spec(arch)
    k = check_int(k, "k", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    data_seed = check_int(data_seed, "data_seed", minimum=0)
    epochs = default_epochs(dataset, spec) if epochs is None else check_int(epochs, "epochs", minimum=1)
    recipe = RECIPES[dataset].replace(epochs=epochs, seed=seed)
    config = {
        "dataset": dataset,
        "data_seed": data_seed,
        "arch": spec.name,
        "spec": dataclasses.asdict(spec),
        "k": k,
        **recipe.to_dict(),
    }
    return config, spec


def _train(config: dict, spec: ModelSpec, device, progress: bool) -> StackedEnsemble:
    from ..train import train_ensemble

    train_set, _ = _load_splits(config["dataset"], config["data_seed"])
    fields = {f: config[f] for f in Recipe.__dataclass_fields__}
    return train_ensemble(spec, train_set, k=config["k"], recipe=Recipe(**fields), device=device, progress=progress)


def _weights(config: dict, spec: ModelSpec, device, progress: bool) -> dict[str, torch.Tensor]:
    def build():
        ens = _train(config, spec, device, progress)
        tensors = dict(ens.state_dict())
        tensors["__meta__.input_shape"] = torch.tensor(ens.input_shape, dtype=torch.int64)
        tensors["__meta__.n_classes"] = torch.tensor(ens.n_classes, dtype=torch.int64)
        return tensors

    return cache.load_or_build("zoo_weights", config, build, modules=_modules())


def _ensemble_from_weights(tensors: dict[str, torch.Tensor], spec: ModelSpec, k: int, device) -> StackedEnsemble:
    input_shape = tuple(int(v) for v in tensors["__meta__.input_shape"].tolist())
    n_classes = int(tensors["__meta__.n_classes"])
    ens = StackedEnsemble(spec, k, input_shape, n_classes)
    ens.load_state_dict({name: t for name, t in tensors.items() if not name.startswith("__meta__.")})
    return ens.to(resolve_device(device)).eval()


# ---------------------------------------------------------------------------- public API
def trained_ensemble(
    dataset: str = "distorted",
    arch: ModelSpec | str = "mlp-m",
    k: int = 8,
    seed: int = 0,
    epochs: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    data_seed: int = 0,
) -> StackedEnsemble:
    """K members of ``arch`` trained on ``dataset`` (``"distorted"`` or ``"digits"``), in eval mode on ``device``.

    Trained once (progress bar) and cached; later calls load the weights.  ``epochs=None`` uses
    :func:`default_epochs`.  ``data_seed`` picks the dataset's split/generation seed, ``seed`` the members'
    initialisations and data orders.
    """
    config, spec = _config(dataset, arch, k, seed, epochs, data_seed)
    tensors = _weights(config, spec, device, progress)
    return _ensemble_from_weights(tensors, spec, config["k"], device)


def ensemble_predictions(
    dataset: str = "distorted",
    arch: ModelSpec | str = "mlp-m",
    k: int = 8,
    seed: int = 0,
    epochs: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    data_seed: int = 0,
) -> EnsemblePredictions:
    """Member logits of :func:`trained_ensemble` on val, test and every shifted test set; cached.

    The first call generates the data, trains the members (progress bar) and predicts; later calls load the
    tensors from the cache.  Everything comes back on the cpu.
    """
    config, spec = _config(dataset, arch, k, seed, epochs, data_seed)

    def build():
        from ..train import predict_logits

        ens = _ensemble_from_weights(_weights(config, spec, device, progress), spec, config["k"], device)
        train_set, evaluation = _load_splits(config["dataset"], config["data_seed"])
        tensors = {
            "__meta__.splits": _encode_strings(evaluation),
            "__meta__.classes": _encode_strings(train_set.classes),
            "__meta__.member_macs": torch.tensor(ens.macs_per_member, dtype=torch.int64),
        }
        for name, split in evaluation.items():
            tensors[f"logits.{name}"] = predict_logits(ens, split.images).float()
            tensors[f"labels.{name}"] = split.labels.to(torch.int64).clone()  # shifted sets share labels
            tensors[f"sources.{name}"] = split.sources.clone()  # ... and sources
        return tensors

    tensors = cache.load_or_build("zoo_predictions", config, build, modules=_modules())
    splits = _decode_strings(tensors["__meta__.splits"])
    return EnsemblePredictions(
        logits={name: tensors[f"logits.{name}"] for name in splits},
        labels={name: tensors[f"labels.{name}"] for name in splits},
        sources={name: tensors[f"sources.{name}"] for name in splits},
        classes=_decode_strings(tensors["__meta__.classes"]),
        member_macs=int(tensors["__meta__.member_macs"]),
        config=dict(config),
    )
