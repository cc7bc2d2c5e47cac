"""The winning-team world of the ensemble-selection notebook: a pool of pre-trained SOURCE models, a few TARGET
tasks with few labels, every candidate team's real transfer result, and what each transferability estimator
predicted for it.

* **Source models** (:data:`SOURCE_TASKS`, 12): one ``mlp-m`` of the model family per source task, trained on
  3,000 images of the training source digits (:func:`~ensemble_lab.data.styled_digits`): the ten digits in each
  of the seven drawing styles, and five tasks with other label sets (digits 0-4 only, 5-9 only, even/odd,
  the digit mod 3, small/large).  Source tasks differ in image domain (the style) and in task (the labels).
* **Target tasks** (:data:`TARGET_TASKS`, 3): new domains (a style plus a corruption of
  :func:`~ensemble_lab.data.shift` none of the sources saw) and, for one, a new label set; each with
  :data:`N_PER_CLASS` labelled images per class drawn from the val sources (a different draw for each of the
  :data:`LABEL_SEEDS`) and :data:`N_TEST` test images from the test sources.
* **Ground truth**: every source model linearly probed on each target's few labels (a logistic regression on its
  standardised penultimate features, scikit-learn's ``LogisticRegression``, L2, C = 0.1); a TEAM's result is the
  test accuracy of the average of its members' probe probabilities.  This is what Agostinelli et al. (CVPR 2022)
  and Vimal K B et al. (ICCV 2023) measure with full fine-tuning (each member fine-tuned, then ensembled); a
  linear probe is the cheap, deterministic version of it and is stated as such.  Every team of 1 to 3 of the 12
  models (298 teams) is scored on every target and label seed.
* **Estimators**, computed from the source models' outputs on the target's few labelled images only: LEEP
  (one model), MS-LEEP and E-LEEP (teams), OSBORN (:func:`~ensemble_lab.selection.osborn_pool`, source labels
  given, features L2-normalised) and OSBORN without its cohesion term.

Everything is cached (:mod:`ensemble_lab.cache`, keyed by the configuration and the source of the modules that
make it); the build takes about 25 s on 2 cpu cores.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .. import cache
from ..recipe import Recipe

__all__ = [
    "SOURCE_TASKS",
    "TARGET_TASKS",
    "ESTIMATORS",
    "LABEL_SEEDS",
    "TEAM_SIZES",
    "N_PER_CLASS",
    "N_TEST",
    "TransferWorld",
    "transfer_world",
    "teams",
]

#: name -> (style, label set): ``"digits"`` (0-9), ``"0-4"`` / ``"5-9"`` (only those digits, relabelled 0-4),
#: ``"parity"`` (even 0 / odd 1), ``"mod3"`` (digit mod 3), ``"small/large"`` (< 5: 0, >= 5: 1)
SOURCE_TASKS: dict[str, tuple[str, str]] = {
    "clean digits": ("clean", "digits"),
    "blurry digits": ("blurry", "digits"),
    "noisy digits": ("noisy", "digits"),
    "inverted digits": ("inverted", "digits"),
    "thick digits": ("thick", "digits"),
    "faint digits": ("faint", "digits"),
    "rotated digits": ("rotated", "digits"),
    "clean 0-4": ("clean", "0-4"),
    "clean 5-9": ("clean", "5-9"),
    "clean parity": ("clean", "parity"),
    "noisy mod 3": ("noisy", "mod3"),
    "inverted small/large": ("inverted", "small/large"),
}
#: name -> (style, corruption (kind, severity) of :func:`~ensemble_lab.data.shift`, label set: ``"digits"`` or
#: ``"pairs"``, the digit // 2: {0, 1} -> 0, {2, 3} -> 1, ...)
TARGET_TASKS: dict[str, tuple[str, tuple[str, int], str]] = {
    "rotated + sticker": ("rotated", ("occlusion", 1), "digits"),
    "faint + noise": ("faint", ("noise", 2), "digits"),
    "thick + blur, pairs": ("thick", ("blur", 2), "pairs"),
}
#: estimator name -> what it is (the Lab's menu)
ESTIMATORS: dict[str, str] = {
    "MS-LEEP": "LEEP of the team as one source whose label is the tuple of its members' labels",
    "E-LEEP": "mean log of the members' averaged expected empirical predictions",
    "OSBORN": "minus (domain difference + task difference + lack of cohesion)",
    "OSBORN w/o cohesion": "minus (domain difference + task difference): OSBORN without its cohesion term",
}
LABEL_SEEDS: tuple[int, ...] = (0, 1, 2)
TEAM_SIZES: tuple[int, ...] = (1, 2, 3)
N_SOURCE_TRAIN = 3000
N_SOURCE_SAMPLE = 200  # source images per model for OSBORN's transport (= the target's labelled images)
N_PER_CLASS = 20  # labelled target images per class (200 for ten classes)
N_TEST = 1000
SOURCE_ARCH = "mlp-m"
#: L2 strength of the linear probes (scikit-learn's C, inverse): strong, for 100-200 labels and 128 features
PROBE_C = 0.1
SOURCE_RECIPE = Recipe(epochs=20, batch_size=128, lr=3e-3, weight_decay=1e-4, schedule="cosine", seed=0)


def teams(pool: int, size: int) -> list[tuple[int, ...]]:
    """Every team of ``size`` distinct models of a pool of ``pool``, in lexicographic order."""
    return list(itertools.combinations(range(pool), size))


@dataclass(frozen=True)
class TransferWorld:
    """Every team's truth and every estimator's score, on the cpu.

    Attributes:
        sources: the source task names (:data:`SOURCE_TASKS` order); a team is a tuple of indices into them.
        targets: the target task names (:data:`TARGET_TASKS` order).
        teams: team size -> the teams of that size (:func:`teams`), in a fixed order.
        accuracy: ``(target, seed)`` -> team size -> ``(T,)`` float64 test accuracy of each team's averaged probes.
        scores: ``(target, seed)`` -> estimator -> team size -> ``(T,)`` float64 estimator scores (higher is
            better; LEEP for every estimator at size 1, except the OSBORN ones).
        osborn_terms: ``(target, seed)`` -> ``(M, 3)`` float64: each source model's domain difference, task
            difference and, per model, its mean disagreement with the other models (the Lab's bars).
        source_accuracy: ``(M,)`` each source model's accuracy on its own source task (held-out images).
        n_labelled, n_test: target -> labelled and test images per target.
        seconds: how long the build took (0 when loaded from the cache).
    """

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    teams: dict[int, list[tuple[int, ...]]]
    accuracy: dict[tuple[str, int], dict[int, torch.Tensor]]
    scores: dict[tuple[str, int], dict[str, dict[int, torch.Tensor]]]
    osborn_terms: dict[tuple[str, int], torch.Tensor]
    source_accuracy: torch.Tensor
    n_labelled: dict[str, int]
    n_test: dict[str, int]
    seconds: float = 0.0


def _relabel(labels: torch.Tensor, label_set: str) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(keep mask, new labels of the kept images, class names) for a label set of :data:`SOURCE_TASKS` or
    :data:`TARGET_TASKS`."""
    keep = torch.ones_like(labels, dtype=torch.bool)
    if label_set == "digits":
        return keep, labels, tuple(str(d) for d in range(10))
    if label_set == "0-4":
        keep = labels < 5
        return keep, labels[keep], tuple(str(d) for d in range(5))
    if label_set == "5-9":
        keep = labels >= 5
        return keep, labels[keep] - 5, tuple(str(d) for d in range(5, 10))
    if label_set == "parity":
        return keep, labels % 2, ("even", "odd")
    if label_set == "mod3":
        return keep, labels % 3, ("0 mod 3", "1 mod 3", "2 mod 3")
    if label_set == "small/large":
        return keep, (labels >= 5).long(), ("small", "large")
    if label_set == "pairs":
        return keep, labels // 2, ("0-1", "2-3", "4-5", "6-7", "8-9")
    raise ValueError(f"unknown label set {label_set!r}")


def _source_data(name: str, seed: int):
    """(train images, labels, held-out images, labels, n classes) of one source task."""
    from ..data import styled_digits

    style, label_set = SOURCE_TASKS[name]
    out = []
    for split, n in (("train", N_SOURCE_TRAIN), ("val", 500)):
        d = styled_digits(split, style, n, seed)
        keep, y, classes = _relabel(d.labels, label_set)
        out += [d.images[keep], y]
    return (*out, len(classes))


def _target_data(name: str, seed: int):
    """(labelled images per label seed, their labels, test images, test labels) of one target task."""
    from ..data import shift, styled_digits

    style, (kind, severity), label_set = TARGET_TASKS[name]
    pool = shift(styled_digits("val", style, 1500, seed), kind, severity, seed=seed * 10 + 1)
    test = shift(styled_digits("test", style, N_TEST, seed), kind, severity, seed=seed * 10 + 2)
    _, y_pool, classes = _relabel(pool.labels, label_set)
    _, y_test, _ = _relabel(test.labels, label_set)
    labelled = {}
    for s in LABEL_SEEDS:
        g = torch.Generator().manual_seed(1000 * seed + 17 * s + list(TARGET_TASKS).index(name))
        idx = torch.cat(
            [
                (y_pool == c).nonzero().squeeze(1)[torch.randperm(int((y_pool == c).sum()), generator=g)[:N_PER_CLASS]]
                for c in range(len(classes))
            ]
        )
        labelled[s] = (pool.images[idx], y_pool[idx])
    return labelled, test.images, y_test


@torch.no_grad()
def _features_and_logits(member: torch.nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features ``(N, D)`` (L2-normalised rows) and logits ``(N, Z)`` of a family model."""
    h = member[:-1](images)
    return torch.nn.functional.normalize(h, dim=1), member[-1](h)


def _probe(train_x, train_y, test_x, n_classes) -> torch.Tensor:
    """Test probabilities ``(N_test, C)`` of a logistic regression on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x.numpy())
    clf = LogisticRegression(C=PROBE_C, max_iter=2000).fit(scaler.transform(train_x.numpy()), train_y.numpy())
    probs = torch.zeros(test_x.shape[0], n_classes, dtype=torch.float64)
    proba = clf.predict_proba(scaler.transform(test_x.numpy()))
    probs[:, torch.as_tensor(clf.classes_)] = torch.as_tensor(proba, dtype=torch.float64)
    return probs


def _modules():
    from .. import train
    from ..data import captions, shifts, sources
    from ..models import family, stacked
    from ..selection import transferability
    from . import transfer_world as this

    return (this, train, captions, shifts, sources, family, stacked, transferability)


def _build(seed: int, progress: bool) -> dict[str, torch.Tensor]:
    from ..selection import e_leep, leep, ms_leep, osborn_pool
    from ..train import train_ensemble

    names = tuple(SOURCE_TASKS)
    bar = tqdm(total=len(names) + len(TARGET_TASKS), desc="training source models", disable=not progress)
    members, src_feats, src_labels, src_acc = [], [], [], []
    for i, name in enumerate(names):
        x, y, xv, yv, z = _source_data(name, seed)
        recipe = SOURCE_RECIPE.replace(seed=seed * 100 + i)
        member = train_ensemble(SOURCE_ARCH, (x, y), k=1, recipe=recipe, device="cpu", progress=False).members()[0]
        members.append(member.eval())
        f, _ = _features_and_logits(member, x[:N_SOURCE_SAMPLE])
        src_feats.append(f)
        src_labels.append(y[:N_SOURCE_SAMPLE])
        _, logits_v = _features_and_logits(member, xv)
        src_acc.append(float((logits_v.argmax(1) == yv).double().mean()))
        bar.update()
    out = {"source_accuracy": torch.tensor(src_acc, dtype=torch.float64)}
    bar.set_description("probing targets")
    all_teams = {k: teams(len(names), k) for k in TEAM_SIZES}
    for t, target in enumerate(TARGET_TASKS):
        labelled, x_test, y_test = _target_data(target, seed)
        n_classes = int(y_test.max()) + 1
        test_feats = [_features_and_logits(m, x_test)[0] for m in members]
        for s, (x_lab, y_lab) in labelled.items():
            outs = [_features_and_logits(m, x_lab) for m in members]
            feats = [f for f, _ in outs]
            probs = [lg.double().softmax(1) for _, lg in outs]
            probes = torch.stack([_probe(feats[m], y_lab, test_feats[m], n_classes) for m in range(len(names))])
            n_lab = y_lab.shape[0]  # as many source images as labelled target images: the transport is an assignment
            pool = osborn_pool(
                [f[:n_lab] for f in src_feats], feats, probs, y_lab, source_labels=[z[:n_lab] for z in src_labels]
            )
            key = f"{t}.{s}"
            dis = pool.disagreement
            out[f"osborn_terms.{key}"] = torch.stack(
                [pool.member_domain, pool.member_task, dis.sum(1) / (len(names) - 1)], 1
            )
            for k, team_list in all_teams.items():
                avg = torch.stack([probes[list(team)].mean(0) for team in team_list])  # (T, N, C)
                out[f"accuracy.{key}.{k}"] = (avg.argmax(2) == y_test).double().mean(1)
                lp = [[probs[m] for m in team] for team in team_list]
                if k == 1:
                    single = torch.tensor([leep(p[0], y_lab) for p in lp], dtype=torch.float64)
                    out[f"score.{key}.MS-LEEP.{k}"] = single
                    out[f"score.{key}.E-LEEP.{k}"] = single.clone()
                else:
                    out[f"score.{key}.MS-LEEP.{k}"] = torch.tensor([ms_leep(p, y_lab) for p in lp], dtype=torch.float64)
                    out[f"score.{key}.E-LEEP.{k}"] = torch.tensor([e_leep(p, y_lab) for p in lp], dtype=torch.float64)
                out[f"score.{key}.OSBORN.{k}"] = torch.tensor(
                    [pool.terms(team).score for team in team_list], dtype=torch.float64
                )
                out[f"score.{key}.OSBORN w/o cohesion.{k}"] = torch.tensor(
                    [pool.terms(team, weights=(1.0, 1.0, 0.0)).score for team in team_list], dtype=torch.float64
                )
        out[f"n_labelled.{t}"] = torch.tensor(N_PER_CLASS * n_classes)
        out[f"n_test.{t}"] = torch.tensor(x_test.shape[0])
        bar.update()
    bar.close()
    return out


def transfer_world(seed: int = 0, progress: bool = True) -> TransferWorld:
    """Build (about 25 s on 2 cpu cores, with a progress bar) or load the world of the module docstring.

    ``seed`` is the data seed (source digits, styles, corruptions) and the source models' training seed; the
    label seeds (:data:`LABEL_SEEDS`) draw the targets' few labelled images.  Training runs on the cpu (the models
    are tiny), so the cached world is the same on every machine type up to float rounding.
    """
    from .._validation import check_int

    seed = check_int(seed, "seed", minimum=0)
    config = {
        "seed": seed,
        "sources": SOURCE_TASKS,
        "targets": {k: list(v) for k, v in TARGET_TASKS.items()},
        "sizes": [N_SOURCE_TRAIN, N_SOURCE_SAMPLE, N_PER_CLASS, N_TEST],
        "arch": SOURCE_ARCH,
        "recipe": SOURCE_RECIPE.to_dict(),
        "probe_c": PROBE_C,
        "label_seeds": LABEL_SEEDS,
        "team_sizes": TEAM_SIZES,
    }
    built = {"seconds": 0.0}

    def build():
        start = time.perf_counter()
        out = _build(seed, progress)
        built["seconds"] = time.perf_counter() - start
        return out

    tensors = cache.load_or_build("transfer_world", config, build, modules=_modules())
    names, targets = tuple(SOURCE_TASKS), tuple(TARGET_TASKS)
    accuracy, scores, terms = {}, {}, {}
    for t, target in enumerate(targets):
        for s in LABEL_SEEDS:
            key = f"{t}.{s}"
            accuracy[(target, s)] = {k: tensors[f"accuracy.{key}.{k}"] for k in TEAM_SIZES}
            scores[(target, s)] = {e: {k: tensors[f"score.{key}.{e}.{k}"] for k in TEAM_SIZES} for e in ESTIMATORS}
            terms[(target, s)] = tensors[f"osborn_terms.{key}"]
    return TransferWorld(
        sources=names,
        targets=targets,
        teams={k: teams(len(names), k) for k in TEAM_SIZES},
        accuracy=accuracy,
        scores=scores,
        osborn_terms=terms,
        source_accuracy=tensors["source_accuracy"],
        n_labelled={t: int(tensors[f"n_labelled.{i}"]) for i, t in enumerate(targets)},
        n_test={t: int(tensors[f"n_test.{i}"]) for i, t in enumerate(targets)},
        seconds=built["seconds"],
    )
