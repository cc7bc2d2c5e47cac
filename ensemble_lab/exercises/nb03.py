"""The exercises of notebook 03 (prompt ensembles): the ZPE score and the ZPE weights.  Expected answers come
from ``prompts.zpe_scores`` (``debias="both"``) and ``prompts.zpe_weights``."""

from __future__ import annotations

import torch

from .. import prompts
from .checking import compare_values
from .exercise import Case, Exercise, generator

__all__ = ["EXERCISES"]


def _compare(case: Case, got) -> str | None:
    return compare_values(case.expected, got, loose=case.loose)


# ----------------------------------------------------------------------------------------------------------
# 03.1 the ZPE score
# ----------------------------------------------------------------------------------------------------------


def my_zpe_scores(logits, pretrain_logits):
    bias = (pretrain_logits.mean(dim=0) + logits.mean(dim=0)) / 2  # (P, C): the two averages, averaged
    return (logits - bias).amax(dim=2).mean(dim=0)  # max over classes, mean over images -> (P,)


def _prompt_world(g: torch.Generator, n: int, m: int, p: int, c: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Test ``(N, P, C)`` and pre-training ``(M, P, C)`` logits sharing a per-(prompt, class) bias, the
    pre-training images shifted by a further class-dependent offset."""
    bias = torch.randn(p, c, generator=g, dtype=torch.float64) * 2
    quality = torch.rand(p, 1, generator=g, dtype=torch.float64) * 3 + 1
    signal = torch.randn(n, 1, c, generator=g, dtype=torch.float64)
    test = bias + quality * signal + torch.randn(n, p, c, generator=g, dtype=torch.float64)
    shift = torch.randn(1, c, generator=g, dtype=torch.float64) * 1.5
    pre = bias + shift + quality * torch.randn(m, 1, c, generator=g, dtype=torch.float64)
    pre = pre + torch.randn(m, p, c, generator=g, dtype=torch.float64)
    return test, pre


def _scores_expected(z: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    return prompts.zpe_scores(z, pre, debias="both")


def _scores_cases(seed: int) -> list[Case]:
    out = []
    for i, (n, m, p, c) in enumerate([(200, 150, 6, 5), (200, 80, 4, 10), (200, 300, 7, 3)]):
        z, pre = _prompt_world(generator("03.1", seed, i), n, m, p, c)
        out.append(Case(f"random input {i + 1} of 3", (z, pre), _scores_expected(z, pre)))
    g = generator("03.1", seed, 10)
    z, pre = _prompt_world(g, 100, 100, 5, 4)
    z[:, 2, 0] += 4.0  # prompt 2 leans towards class 0 on every image, test and pre-training alike
    pre[:, 2, 0] += 4.0
    out.append(Case("a prompt with a frequency bias (prompt 2 favours class 0)", (z, pre), _scores_expected(z, pre)))
    z, pre = _prompt_world(g, 150, 12, 5, 4)
    out.append(Case("few pre-training images (M = 12, N = 150)", (z, pre), _scores_expected(z, pre)))
    z, pre = _prompt_world(g, 1, 40, 3, 4)
    out.append(Case("one test image (N = 1)", (z, pre), _scores_expected(z, pre)))
    z32, pre32 = (t.float() for t in _prompt_world(g, 100, 60, 4, 5))
    out.append(Case("float32 logits", (z32, pre32), _scores_expected(z32.double(), pre32.double()), loose=True))
    return out


ZPE_SCORES = Exercise(
    id="03.1",
    title="The ZPE score",
    function="my_zpe_scores",
    params=("logits", "pretrain_logits"),
    task=(
        "Given the per-prompt logits of the unlabelled test images, logits, shape (N, P, C), and those of a "
        "sample of pre-training images, pretrain_logits, shape (M, P, C) (M may differ from N), return the ZPE "
        "score of every prompt, shape (P,): score_p = mean over images n of max over classes c of "
        "(logits[n, p, c] - bias[p, c]), with bias = (mu_pre + mu_test) / 2, where mu_pre and mu_test are the "
        "means of the logits over the pre-training and over the test images (each (P, C)).  The checker compares "
        "with ensemble_lab.prompts.zpe_scores(logits, pretrain_logits, debias='both')."
    ),
    hints=(
        "First the bias: for every (prompt, class) pair, its average logit over the test images and over the "
        "pre-training images, then the mean of those two averages (not the average over all N + M images "
        "together).",
        "Subtract the bias (shape (P, C)) from every image's logits (it broadcasts against (N, P, C)); then take "
        "the max over the CLASS axis (dim=2) and the mean over the IMAGE axis (dim=0).",
        "bias = (pretrain_logits.mean(0) + logits.mean(0)) / 2; return (logits - bias).amax(dim=2).mean(dim=0)",
    ),
    reference=my_zpe_scores,
    cases=_scores_cases,
    compare=_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 03.2 ZPE weights
# ----------------------------------------------------------------------------------------------------------


def my_zpe_weights(scores, temperature):
    return torch.softmax(scores / temperature, dim=0)  # torch.softmax subtracts the max: no overflow


def _weights_cases(seed: int) -> list[Case]:
    out = []
    for i, (p, t) in enumerate([(8, 1.0), (5, 0.5), (12, 2.0)]):
        g = generator("03.2", seed, i)
        s = 5 + 2 * torch.randn(p, generator=g, dtype=torch.float64)
        out.append(Case(f"random input {i + 1} of 3", (s, t), prompts.zpe_weights(s, t)))
    g = generator("03.2", seed, 10)
    s = 5 + 2 * torch.randn(6, generator=g, dtype=torch.float64)
    out.append(Case("a large temperature (T = 50)", (s, 50.0), prompts.zpe_weights(s, 50.0)))
    s = 30 + 5 * torch.randn(6, generator=g, dtype=torch.float64)
    out.append(Case("a small temperature (T = 0.02, scores near 30)", (s, 0.02), prompts.zpe_weights(s, 0.02)))
    s = torch.tensor([2.0, 3.5, 3.5, 1.0], dtype=torch.float64)
    out.append(Case("tied scores", (s, 1.0), prompts.zpe_weights(s, 1.0)))
    s = torch.tensor([-3.0, -1.0, -2.0, -0.5], dtype=torch.float64)
    out.append(Case("negative scores", (s, 0.7), prompts.zpe_weights(s, 0.7)))
    s = torch.tensor([4.2], dtype=torch.float64)
    out.append(Case("a single prompt (P = 1)", (s, 1.0), prompts.zpe_weights(s, 1.0)))
    return out


ZPE_WEIGHTS = Exercise(
    id="03.2",
    title="ZPE weights",
    function="my_zpe_weights",
    params=("scores", "temperature"),
    task=(
        "Given the prompts' scores, shape (P,), and a temperature > 0, return the prompts' weights, shape (P,): "
        "softmax(scores / temperature), non-negative and summing to one (a small temperature approaches picking "
        "the best prompt, a large one the equal average).  The checker compares with "
        "ensemble_lab.prompts.zpe_weights(scores, temperature)."
    ),
    hints=(
        "The weights are a softmax of the scores, after dividing them by the temperature.",
        "exp(scores / T) / sum(exp(scores / T)) overflows to inf / inf = nan when scores / T is large (above "
        "~709 in float64): subtract the largest score first, or use torch.softmax, which does.",
        "return torch.softmax(scores / temperature, dim=0)",
    ),
    reference=my_zpe_weights,
    cases=_weights_cases,
    compare=_compare,
)

EXERCISES = (ZPE_SCORES, ZPE_WEIGHTS)
