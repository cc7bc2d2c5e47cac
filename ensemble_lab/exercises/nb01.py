"""The exercises of notebook 01 (deep ensembles): the weighted probability average, its NLL, the mutual
information per image and geometric pooling.  Expected answers come from ``combine.combine``, ``metrics.nll``
and ``metrics.mutual_information``."""

from __future__ import annotations

import torch

from .. import combine, metrics
from .checking import compare_scalar, compare_values
from .exercise import Case, Exercise, generator

__all__ = ["EXERCISES"]


def _member_probs(g: torch.Generator, k: int, n: int, c: int, dtype=torch.float64, scale: float = 2.0):
    return torch.softmax(torch.randn(k, n, c, generator=g, dtype=torch.float64) * scale, dim=-1).to(dtype)


def _array_compare(case: Case, got) -> str | None:
    return compare_values(case.expected, got, loose=case.loose)


def _scalar_compare(case: Case, got) -> str | None:
    return compare_scalar(case.expected, got, loose=case.loose)


# ----------------------------------------------------------------------------------------------------------
# 01.1 the weighted probability average
# ----------------------------------------------------------------------------------------------------------


def my_weighted_average(member_probs, weights):
    w = weights / weights.sum()  # raw weights -> summing to one
    return (w[:, None, None] * member_probs).sum(dim=0)  # (K, N, C) -> (N, C)


def _average_expected(mp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    # the package combines LOGITS; softmax(log p) = p, so log-probabilities are valid member logits
    return combine.combine(torch.log(mp), w, rule="prob")


def _average_cases(seed: int) -> list[Case]:
    out = []
    shapes = [(3, 200, 4), (5, 200, 3), (4, 200, 6)]
    for i, (k, n, c) in enumerate(shapes):
        g = generator("01.1", seed, i)
        mp = _member_probs(g, k, n, c)
        w = torch.rand(k, generator=g, dtype=torch.float64) * 3 + 0.2  # raw, not summing to one
        out.append(Case(f"random input {i + 1} of {len(shapes)}", (mp, w), _average_expected(mp, w)))
    g = generator("01.1", seed, 10)
    mp32 = _member_probs(g, 3, 200, 4, dtype=torch.float32)
    w32 = torch.tensor([0.5, 2.0, 1.5])
    out.append(Case("float32 inputs", (mp32, w32), _average_expected(mp32.double(), w32.double()), loose=True))
    mp = _member_probs(g, 3, 50, 4)
    w = torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64)
    out.append(Case("a member with weight 0", (mp, w), _average_expected(mp, w)))
    w = torch.tensor([0.0, 5.0, 0.0], dtype=torch.float64)
    out.append(Case("one member holding all the weight", (mp, w), _average_expected(mp, w)))
    mp1 = _member_probs(g, 1, 20, 3)
    w1 = torch.tensor([0.3], dtype=torch.float64)
    out.append(Case("a single member (K = 1)", (mp1, w1), _average_expected(mp1, w1)))
    return out


AVERAGE = Exercise(
    id="01.1",
    title="The weighted probability average",
    function="my_weighted_average",
    params=("member_probs", "weights"),
    task=(
        "Given the members' probabilities member_probs, shape (K, N, C), and raw non-negative weights, shape (K,), "
        "with a positive sum (NOT necessarily summing to one), return the ensemble's probabilities, shape (N, C): "
        "sum_k w_k p_k / sum_k w_k.  A member with weight 0 simply does not count.  The checker compares with "
        "ensemble_lab.combine.combine(log p, weights, rule='prob')."
    ),
    hints=(
        "Normalise the weights first so that they sum to one; then it is a weighted sum over the member axis (axis 0).",
        "To multiply each member's (N, C) slice by its weight, give the weights the shape (K, 1, 1): "
        "weights[:, None, None] broadcasts against (K, N, C).",
        "w = weights / weights.sum(); return (w[:, None, None] * member_probs).sum(dim=0)",
    ),
    reference=my_weighted_average,
    cases=_average_cases,
    compare=_array_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 01.2 the NLL
# ----------------------------------------------------------------------------------------------------------


def my_nll(probs, labels):
    p_true = probs[torch.arange(len(labels)), labels]  # the probability of each sample's true class
    return float(-torch.log(p_true).mean())


def _nll_cases(seed: int) -> list[Case]:
    out = []
    for i, (n, c) in enumerate([(200, 5), (200, 3), (200, 10)]):
        g = generator("01.2", seed, i)
        p = _member_probs(g, 1, n, c)[0]
        y = torch.randint(0, c, (n,), generator=g)
        out.append(Case(f"random input {i + 1} of 3", (p, y), metrics.nll(p, y)))
    g = generator("01.2", seed, 10)
    p32 = _member_probs(g, 1, 200, 4, dtype=torch.float32)[0]
    y = torch.randint(0, 4, (200,), generator=g)
    out.append(Case("float32 probabilities", (p32, y), metrics.nll(p32, y), loose=True))
    p1 = torch.tensor([[0.2, 0.7, 0.1]], dtype=torch.float64)
    y1 = torch.tensor([1])
    out.append(Case("one sample (N = 1)", (p1, y1), metrics.nll(p1, y1)))
    pc = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    yc = torch.tensor([0, 1, 1])
    out.append(Case("certain, correct predictions (probability 1 on the label)", (pc, yc), metrics.nll(pc, yc)))
    return out


NLL = Exercise(
    id="01.2",
    title="The NLL of a prediction",
    function="my_nll",
    params=("probs", "labels"),
    task=(
        "Given probabilities probs, shape (N, C), and integer labels, shape (N,), return the mean negative "
        "log-likelihood -mean_i log probs[i, labels[i]] as a python float, in nats (natural log).  The checker "
        "compares with ensemble_lab.metrics.nll."
    ),
    hints=(
        "Only one entry per row matters: the probability the model gave to the TRUE class.",
        "probs[torch.arange(N), labels] picks entry (i, labels[i]) of every row i; then take -log and the MEAN "
        "over samples (not the sum).",
        "p_true = probs[torch.arange(len(labels)), labels]; return float(-torch.log(p_true).mean())",
    ),
    reference=my_nll,
    cases=_nll_cases,
    compare=_scalar_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 01.3 mutual information per image
# ----------------------------------------------------------------------------------------------------------


def my_mutual_information(member_probs):
    def entropy(p):  # along the class axis, with 0 log 0 = 0
        return -torch.where(p > 0, p * torch.log(p), torch.zeros_like(p)).sum(dim=-1)

    return entropy(member_probs.mean(dim=0)) - entropy(member_probs).mean(dim=0)  # (N,)


def _mi_expected(mp: torch.Tensor) -> torch.Tensor:
    # metrics.mutual_information averages over images: one call per image gives the per-image value
    return torch.tensor([metrics.mutual_information(mp[:, i : i + 1]) for i in range(mp.shape[1])])


def _mi_cases(seed: int) -> list[Case]:
    out = []
    for i, (k, n, c) in enumerate([(5, 200, 4), (3, 200, 10), (8, 200, 2)]):
        g = generator("01.3", seed, i)
        mp = _member_probs(g, k, n, c, scale=3.0)
        out.append(Case(f"random input {i + 1} of 3", (mp,), _mi_expected(mp)))
    g = generator("01.3", seed, 10)
    same = _member_probs(g, 1, 30, 4).expand(4, 30, 4).clone()
    out.append(Case("identical members (the information is 0)", (same,), _mi_expected(same)))
    zeros = torch.tensor([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]], dtype=torch.float64)
    out.append(Case("probabilities of exactly 0 (0 log 0 = 0)", (zeros,), _mi_expected(zeros)))
    one = _member_probs(g, 1, 20, 3)
    out.append(Case("a single member (K = 1)", (one,), _mi_expected(one)))
    return out


MUTUAL_INFORMATION = Exercise(
    id="01.3",
    title="Mutual information per image",
    function="my_mutual_information",
    params=("member_probs",),
    task=(
        "Given the members' probabilities member_probs, shape (K, N, C), return the mutual information of every "
        "image, shape (N,), in nats: H(mean_k p_k) - mean_k H(p_k), with the entropy H(p) = -sum_c p_c log p_c "
        "and 0 log 0 = 0.  The checker compares with ensemble_lab.metrics.mutual_information, image by image."
    ),
    hints=(
        "Two entropies: that of the AVERAGED prediction, and the average of the members' own entropies.  Both "
        "are per image, so the result keeps the image axis.",
        "The entropy sums over the class axis (the last one); average over the member axis (axis 0).  A "
        "probability of exactly 0 gives 0 * log 0 = 0 * -inf = nan: use torch.where(p > 0, p * log p, 0).",
        "H = lambda p: -torch.where(p > 0, p * p.log(), 0.0).sum(-1); "
        "return H(member_probs.mean(0)) - H(member_probs).mean(0)",
    ),
    reference=my_mutual_information,
    cases=_mi_cases,
    compare=_array_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 01.4 geometric pooling
# ----------------------------------------------------------------------------------------------------------


def my_geometric_pool(member_probs, weights):
    log_pool = (weights[:, None, None] * torch.log(member_probs)).sum(dim=0)  # (N, C)
    return torch.softmax(log_pool, dim=-1)  # renormalise over the classes


def _geo_expected(mp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return combine.combine(torch.log(mp), w, rule="geo")


def _geo_cases(seed: int) -> list[Case]:
    out = []
    for i, (k, n, c) in enumerate([(3, 200, 4), (5, 200, 3), (4, 200, 6)]):
        g = generator("01.4", seed, i)
        mp = _member_probs(g, k, n, c)
        w = torch.rand(k, generator=g, dtype=torch.float64) + 0.1
        w = w / w.sum()
        out.append(Case(f"random input {i + 1} of 3", (mp, w), _geo_expected(mp, w)))
    g = generator("01.4", seed, 10)
    mp = _member_probs(g, 3, 50, 4)
    w = torch.tensor([0.75, 0.0, 0.25], dtype=torch.float64)
    out.append(Case("a member with weight 0", (mp, w), _geo_expected(mp, w)))
    w = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    out.append(Case("one member holding all the weight", (mp, w), _geo_expected(mp, w)))
    mp32 = _member_probs(g, 2, 100, 3, dtype=torch.float32)
    w32 = torch.tensor([0.4, 0.6])
    out.append(Case("float32 inputs", (mp32, w32), _geo_expected(mp32.double(), w32.double()), loose=True))
    return out


GEOMETRIC = Exercise(
    id="01.4",
    title="Geometric pooling",
    function="my_geometric_pool",
    params=("member_probs", "weights"),
    task=(
        "Given the members' probabilities member_probs, shape (K, N, C), and weights, shape (K,), that sum to "
        "one, return the normalised weighted geometric mean, shape (N, C): softmax over the classes of "
        "sum_k w_k log p_kc (the product of the p_kc ** w_k, renormalised so each row sums to one).  The checker "
        "compares with ensemble_lab.combine.combine(log p, weights, rule='geo')."
    ),
    hints=(
        "Work with log-probabilities: a weighted product of probabilities is a weighted SUM of their logs.",
        "Sum w_k log p_k over the member axis (axis 0) to get an (N, C) array of scores, then turn each row "
        "into probabilities: the softmax is over the CLASS axis (dim=-1), not the sample axis.",
        "return torch.softmax((weights[:, None, None] * member_probs.log()).sum(0), dim=-1)",
    ),
    reference=my_geometric_pool,
    cases=_geo_cases,
    compare=_array_compare,
)

EXERCISES = (AVERAGE, NLL, MUTUAL_INFORMATION, GEOMETRIC)
