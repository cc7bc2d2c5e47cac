"""A tiny model library and a tiny winning-team world for the selection Lab tests (each built in milliseconds).

Both are the package's own dataclasses (:class:`~ensemble_lab.artefacts.library.ModelLibrary`,
:class:`~ensemble_lab.artefacts.transfer_world.TransferWorld`) filled with synthetic numbers, so a Lab over them
computes a whole selection path in milliseconds:

* the library: ``k`` members of graded quality in three groups (``"g1 #0"``, ...), each with its own noise (so
  they make different mistakes and forward selection has something to combine), float32 probabilities on a
  ``val`` split (the hill-climbing set) and a ``test`` split (held out);
* the world: ``m`` source models, two targets, every team of 1-3 of them, accuracies on a grid of ``1 / n_test``
  (so several teams tie, as real test accuracies do) and every estimator's score a noisy function of the truth
  (one estimator on a coarse grid, so its scores tie too).
"""

import torch

from ensemble_lab.artefacts.library import ModelLibrary
from ensemble_lab.artefacts.transfer_world import ESTIMATORS, TEAM_SIZES, TransferWorld, teams

N_TEST_TARGET = 50  # test images of a tiny target: accuracies are multiples of 1/50, so teams tie
#: how far each estimator's scores stray from (a rescaled) truth: OSBORN close, MS-LEEP far
NOISE = {"MS-LEEP": 0.3, "E-LEEP": 0.1, "OSBORN": 0.03, "OSBORN w/o cohesion": 0.1}


def _groups(k: int) -> list[str]:
    """Three groups of about equal size, in library order (at least one member each for k >= 3)."""
    bounds = [round(k * j / 3) for j in range(4)]
    return [f"g{j + 1}" for j in range(3) for _ in range(bounds[j + 1] - bounds[j])]


def tiny_library(k: int = 6, n_val: int = 300, n_test: int = 300, c: int = 4, seed: int = 0) -> ModelLibrary:
    """``k`` members of graded quality (the last the strongest), in groups ``g1``, ``g2``, ``g3``."""
    g = torch.Generator().manual_seed(seed)
    groups = _groups(k)
    index: dict[str, int] = {}
    names = []
    for group in groups:
        names.append(f"{group} #{index.get(group, 0)}")
        index[group] = index.get(group, 0) + 1
    strength = torch.linspace(1.2, 2.4, k).view(k, 1, 1)
    sharpness = torch.linspace(1.5, 1.0, k).view(k, 1, 1)  # the weak members are also over-confident
    probs, labels, sources = {}, {}, {}
    for split, n in (("val", n_val), ("test", n_test)):
        y = torch.randint(0, c, (n,), generator=g)
        z = strength * torch.nn.functional.one_hot(y, c).float() + 1.5 * torch.randn(k, n, c, generator=g)
        probs[split] = (sharpness * z).softmax(-1)
        labels[split] = y
        sources[split] = torch.arange(n)
    return ModelLibrary(
        names=tuple(names),
        groups=tuple(groups),
        probs=probs,
        labels=labels,
        sources=sources,
        macs=torch.full((k,), 1000, dtype=torch.int64),
    )


def tiny_transfer_world(m: int = 5, seeds=(0, 1, 2), targets=("t-a", "t-b")) -> TransferWorld:
    """``m`` source models, ``targets``, label draws ``seeds``, every team of :data:`TEAM_SIZES` and every
    estimator of :data:`ESTIMATORS`."""
    all_teams = {k: teams(m, k) for k in TEAM_SIZES}
    accuracy, scores, terms = {}, {}, {}
    for t, target in enumerate(targets):
        for s in seeds:
            g = torch.Generator().manual_seed(1000 * t + s)
            quality = 0.5 + 0.4 * torch.rand(m, generator=g, dtype=torch.float64)
            accuracy[(target, s)], scores[(target, s)] = {}, {e: {} for e in ESTIMATORS}
            for k, team_list in all_teams.items():
                mean_q = torch.stack([quality[list(team)].mean() for team in team_list])
                raw = mean_q + 0.02 * (k - 1) + 0.03 * torch.randn(len(team_list), generator=g, dtype=torch.float64)
                truth = (raw.clamp(0, 1) * N_TEST_TARGET).round() / N_TEST_TARGET
                accuracy[(target, s)][k] = truth
                for e in ESTIMATORS:
                    noise = NOISE[e] * torch.randn(len(team_list), generator=g, dtype=torch.float64)
                    score = 3.0 * truth - 2.0 + noise
                    if e == "OSBORN w/o cohesion":
                        score = (score * 10).round() / 10  # a coarse grid: ties between teams
                    scores[(target, s)][e][k] = score
            terms[(target, s)] = torch.rand(m, 3, generator=g, dtype=torch.float64)
    return TransferWorld(
        sources=tuple(f"src {i}" for i in range(m)),
        targets=tuple(targets),
        teams=all_teams,
        accuracy=accuracy,
        scores=scores,
        osborn_terms=terms,
        source_accuracy=torch.linspace(0.8, 0.95, m, dtype=torch.float64),
        n_labelled={t: 40 for t in targets},
        n_test={t: N_TEST_TARGET for t in targets},
    )
