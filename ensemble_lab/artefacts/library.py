"""The model library of the ensemble-selection notebook: 32 trained members of the model family on the distorted
digits, with their probabilities on the validation split (the hill-climbing set) and on the test split (held out).

Caruana et al. ("Ensemble Selection from Libraries of Models", ICML 2004) select from a library of models that
differ in architecture and training: here 7 groups of the family (:data:`LIBRARY_GROUPS`), different widths,
depths and training lengths, several member seeds each.  Four of the groups are the ensembles notebooks 01, 02
and 04 already train (so on Binder, and after those notebooks, the library costs nothing); three small groups are
added, about 12 s on 2 cpu cores on a cold cache.  Everything comes from :func:`~ensemble_lab.artefacts.zoo.
ensemble_predictions`, so it is cached under the zoo's keys.

Validation and test are exchangeable: both are drawn the same way from disjoint pools of source digits (about
1,700 independent sources each); ``sources`` says which image came from which, for clustered intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["LIBRARY_GROUPS", "ModelLibrary", "model_library"]

#: (short name, zoo configuration) of each group of library members, in library order
LIBRARY_GROUPS: tuple[tuple[str, dict], ...] = (
    ("mlp-m 15 ep", {"arch": "mlp-m", "k": 8}),  # 01_deep_ensembles' ensemble
    ("mlp-m 40 ep", {"arch": "mlp-m", "k": 8, "epochs": 40}),  # 02_calibration's over-confident one
    ("mlp-l 10 ep", {"arch": "mlp-l", "k": 2}),  # 04_early_exit_cascades' large model
    ("mlp-s 15 ep", {"arch": "mlp-s", "k": 2}),  # ... and its small one
    ("mlp-xs 20 ep", {"arch": "mlp-xs", "k": 4}),
    ("mlp-m 3 ep", {"arch": "mlp-m", "k": 4, "epochs": 3}),
    ("mlp-s 5 ep", {"arch": "mlp-s", "k": 4, "epochs": 5}),
)


@dataclass(frozen=True)
class ModelLibrary:
    """A library of ``K`` trained models and their predictions, on the cpu.

    Attributes:
        names: ``K`` model names, ``"mlp-m 15 ep #3"`` (group, then member index within the group).
        groups: ``K`` group names (:data:`LIBRARY_GROUPS`).
        probs: split -> ``(K, N, C)`` float32 probabilities (softmax of the members' logits), splits ``"val"``
            (the hill-climbing set) and ``"test"`` (held out).
        labels: split -> ``(N,)`` int64.
        sources: split -> ``(N,)`` int64 source digit of each image (``clusters=`` of the paired bootstrap).
        macs: ``(K,)`` multiply-accumulates per sample of each model.
    """

    names: tuple[str, ...]
    groups: tuple[str, ...]
    probs: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    sources: dict[str, torch.Tensor]
    macs: torch.Tensor

    @property
    def k(self) -> int:
        """Number of library models."""
        return len(self.names)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}: {p.shape[1]}" for s, p in self.probs.items())
        return f"ModelLibrary(k={self.k}, groups={len(set(self.groups))}, {sizes})"


def model_library(progress: bool = True, device: str | torch.device | None = None) -> ModelLibrary:
    """The library of :data:`LIBRARY_GROUPS` (trained once with a progress bar, then read from the cache)."""
    from .zoo import ensemble_predictions

    names, groups, macs = [], [], []
    logits: dict[str, list[torch.Tensor]] = {"val": [], "test": []}
    labels = sources = None
    for group, config in LIBRARY_GROUPS:
        pred = ensemble_predictions(dataset="distorted", progress=progress, device=device, **config)
        for i in range(pred.k):
            names.append(f"{group} #{i}")
            groups.append(group)
            macs.append(pred.member_macs)
        for split in logits:
            logits[split].append(pred.logits[split])
        labels = {s: pred.labels[s] for s in logits}
        sources = {s: pred.sources[s] for s in logits}
    probs = {s: torch.cat(parts).softmax(-1) for s, parts in logits.items()}
    return ModelLibrary(
        names=tuple(names),
        groups=tuple(groups),
        probs=probs,
        labels=labels,
        sources=sources,
        macs=torch.tensor(macs, dtype=torch.int64),
    )
