"""The exercises of notebook 06 (ensemble selection): Caruana et al.'s forward selection with replacement and
Krogh & Vedelsby's ambiguity decomposition of the Brier score.  Expected answers come from
``selection.forward_select`` and ``decompositions.brier_decomposition``."""

from __future__ import annotations

import math

import torch

from .. import decompositions, metrics, selection
from .checking import as_values, compare_scalar, describe_result, fmt
from .exercise import Case, Exercise, generator

__all__ = ["EXERCISES"]


def _library(g: torch.Generator, k: int, n: int, c: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``(K, N, C)`` probabilities of K models of unequal skill, and ``(N,)`` labels."""
    y = torch.randint(0, c, (n,), generator=g)
    skill = torch.rand(k, 1, 1, generator=g, dtype=torch.float64) * 2 + 0.5  # a bonus on the true class
    logits = torch.randn(k, n, c, generator=g, dtype=torch.float64) * 1.5
    logits = logits + skill * torch.nn.functional.one_hot(y, c).to(torch.float64)
    return torch.softmax(logits, dim=-1).to(dtype), y


def _brier_of(member_probs: torch.Tensor, labels: torch.Tensor, chosen: list[int]) -> float:
    """The Brier score of the average of the chosen models (a model chosen twice counts twice)."""
    return metrics.brier(member_probs.double()[chosen].mean(dim=0), labels)


# ----------------------------------------------------------------------------------------------------------
# 06.1 forward selection with replacement
# ----------------------------------------------------------------------------------------------------------


def my_forward_select(member_probs, labels, steps):
    onehot = torch.nn.functional.one_hot(labels, member_probs.shape[-1]).to(member_probs.dtype)
    total = torch.zeros_like(member_probs[0])  # the sum of the chosen models' probabilities, (N, C)
    chosen = []
    for n in range(1, steps + 1):
        candidates = (total + member_probs) / n  # (K, N, C): the ensemble after adding each model
        brier = ((candidates - onehot) ** 2).sum(dim=-1).mean(dim=-1)  # (K,): one score per candidate
        best = int(brier.argmin())  # the first minimum: ties go to the lowest index
        chosen.append(best)  # any model may be chosen again (with replacement)
        total = total + member_probs[best]
    return chosen


def _path(member_probs: torch.Tensor, labels: torch.Tensor, steps: int) -> list[int]:
    result = selection.forward_select(
        member_probs, labels, metric="brier", steps=steps, init=0, bags=1, prune_to_best=False
    )
    return [s.model for s in result.path]


def _smallest_gap(member_probs: torch.Tensor, labels: torch.Tensor, path: list[int]) -> float:
    """The smallest distance, over the path's steps, between the best and the second-best candidate's score:
    a random input is redrawn when rounding could decide a step."""
    p = member_probs.double()
    onehot = torch.nn.functional.one_hot(labels, p.shape[-1]).to(torch.float64)
    total, gap = torch.zeros_like(p[0]), math.inf
    for n, model in enumerate(path, start=1):
        scores = (((total + p) / n - onehot) ** 2).sum(dim=-1).mean(dim=-1)
        if scores.shape[0] > 1:
            gap = min(gap, float(scores.sort().values[1] - scores.min()))
        total = total + p[model]
    return gap


def _random_select_case(name: str, seed: int, case: int, k: int, n: int, c: int, steps: int, dtype) -> Case:
    min_gap = 1e-4 if dtype == torch.float32 else 1e-9
    for attempt in range(100):
        p, y = _library(generator("06.1", seed, case + 100 * attempt), k, n, c, dtype)
        path = _path(p, y, steps)
        if _smallest_gap(p, y, path) > min_gap:
            break
    return Case(name, (p, y, steps), path, loose=dtype == torch.float32)


def _select_case(name: str, p: torch.Tensor, y: torch.Tensor, steps: int) -> Case:
    return Case(name, (p, y, steps), _path(p, y, steps))


def _select_cases(seed: int) -> list[Case]:
    out = []
    for i, (k, n, c, steps) in enumerate([(5, 30, 3, 4), (4, 24, 4, 6), (6, 40, 3, 8)]):
        out.append(_random_select_case(f"random input {i + 1} of 3", seed, i, k, n, c, steps, torch.float64))
    g = generator("06.1", seed, 10)
    p, y = _library(g, 5, 30, 4)
    out.append(_select_case("steps = 1 (the best single model)", p, y, 1))
    # model 1 is best alone, model 0 helps it, then model 1 AGAIN beats the unused model 2
    p = torch.tensor(
        [[[0.8, 0.2], [0.4, 0.6]], [[0.6, 0.4], [0.1, 0.9]], [[0.3, 0.7], [0.5, 0.5]]], dtype=torch.float64
    )
    out.append(_select_case("a library where the best third step re-adds model 1", p, torch.tensor([0, 1]), 3))
    p, y = _library(g, 4, 30, 3)
    p[1] = p[1] * 0.4 + torch.nn.functional.one_hot(y, 3).to(torch.float64) * 0.6  # the best model ...
    p[2] = p[1]  # ... twice
    out.append(_select_case("two identical models (a tie: the lowest index wins)", p, y, 4))
    p, y = _library(g, 1, 20, 3)
    out.append(_select_case("a library of one model (K = 1)", p, y, 3))
    out.append(_random_select_case("float32 probabilities", seed, 11, 5, 30, 3, 5, torch.float32))
    return out


def _select_compare(case: Case, got) -> str | None:
    want = case.expected
    member_probs, labels, steps = case.args
    k = member_probs.shape[0]
    t, reason, _ = as_values(got)
    if t is None or t.ndim != 1:
        shown = reason if t is None else describe_result(got)
        return f"expected a list of {steps} model indices (ints) such as {want}, got {shown}"
    values = t.tolist()
    if any(not math.isfinite(v) or float(v) != int(v) for v in values):
        return f"expected a list of {steps} model indices (ints) such as {want}, got {describe_result(got)}"
    chosen = [int(v) for v in values]
    if len(chosen) != steps:
        text = f"expected {steps} model indices (one per step, in the order added) such as {want}, got {len(chosen)}"
        if len(chosen) == k and sum(chosen) == steps and min(chosen) >= 0:
            text += (
                f" numbers {chosen}: these look like how many times each model was chosen (counts); "
                "return the indices in the order they were added"
            )
        else:
            text += f" indices {chosen} (one step too few or too many? range(steps) gives exactly steps)"
        return text
    bad = [i for i in chosen if not 0 <= i < k]
    if bad:
        return f"model {bad[0]} is not in the library (its models are 0 .. {k - 1}); expected {want}, got {chosen}"
    for step, (w, m) in enumerate(zip(want, chosen, strict=True), start=1):
        if w == m:
            continue
        prefix = want[: step - 1]
        s_want, s_got = _brier_of(member_probs, labels, prefix + [w]), _brier_of(member_probs, labels, prefix + [m])
        text = f"step {step}: expected model {w}, got model {m} (expected {want}, got {chosen}); "
        if abs(s_want - s_got) <= 1e-12 * max(1.0, abs(s_want)):
            text += f"models {min(w, m)} and {max(w, m)} tie there (the same Brier score): ties go to the LOWEST index"
        else:
            text += (
                f"the ensemble's Brier score after adding model {w} is {fmt(s_want)}, after adding model {m} "
                f"{fmt(s_got)} (the ensemble is the AVERAGE of the probabilities of all the models chosen so far)"
            )
        if len(set(chosen)) == len(chosen) and len(set(want)) < len(want):
            text += (
                "; your list never repeats a model, but the selection is WITH replacement: a model already "
                "in the ensemble may be added again (it then counts twice)"
            )
        return text
    return None


FORWARD_SELECT = Exercise(
    id="06.1",
    title="Forward selection with replacement",
    function="my_forward_select",
    params=("member_probs", "labels", "steps"),
    task=(
        "Given the probabilities of a library of K models on the hill-climbing set, member_probs, shape "
        "(K, N, C), its labels, shape (N,), and steps >= 1, return the list of the steps model indices (ints) "
        "in the order added by Caruana et al.'s forward selection with replacement: start from the empty "
        "ensemble; at each step add the library model (ANY model, also one already in) whose addition gives "
        "the lowest Brier score (the mean over samples of the sum over classes of (p - onehot)^2) of the "
        "ensemble, the average of the probabilities of the models chosen so far (a model chosen twice counts "
        "twice); ties go to the lowest index.  The checker compares with "
        "[s.model for s in ensemble_lab.selection.forward_select(member_probs, labels, metric='brier', "
        "steps=steps, init=0, bags=1, prune_to_best=False).path]."
    ),
    hints=(
        "Keep the running SUM of the chosen models' probabilities, an (N, C) tensor.  At step n every library "
        "model is a candidate, also the ones already chosen: the ensemble with candidate k is "
        "(sum + member_probs[k]) / n.",
        "All candidates at once: (total + member_probs) / n broadcasts to (K, N, C).  Its Brier score per "
        "candidate: square the difference to the one-hot labels, sum over the classes (dim=-1), then average "
        "over the samples; torch.argmin returns the first minimum, which is the lowest index among ties.",
        "for n in range(1, steps + 1): b = (((total + member_probs) / n - onehot) ** 2).sum(-1).mean(-1); "
        "best = int(b.argmin()); chosen.append(best); total = total + member_probs[best]",
    ),
    reference=my_forward_select,
    cases=_select_cases,
    compare=_select_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 06.2 the ambiguity decomposition
# ----------------------------------------------------------------------------------------------------------


def my_ambiguity(member_probs, labels):
    onehot = torch.nn.functional.one_hot(labels, member_probs.shape[-1]).to(member_probs.dtype)

    def brier(p):  # the mean over samples of the sum over classes
        return float(((p - onehot) ** 2).sum(dim=-1).mean())

    ensemble = member_probs.mean(dim=0)  # (N, C): the uniform average
    mean_member = sum(brier(p) for p in member_probs) / len(member_probs)
    ambiguity = float(((member_probs - ensemble) ** 2).sum(dim=-1).mean())  # mean over members and samples
    return mean_member, ambiguity, brier(ensemble)  # ensemble = mean_member - ambiguity


def _ambiguity_case(name: str, p: torch.Tensor, y: torch.Tensor, loose: bool = False) -> Case:
    d = decompositions.brier_decomposition(p, y)
    return Case(name, (p, y), (d.mean_member_loss, d.diversity, d.ensemble_loss), loose=loose)


def _ambiguity_cases(seed: int) -> list[Case]:
    out = []
    for i, (k, n, c) in enumerate([(4, 100, 3), (6, 150, 5), (3, 80, 4)]):
        p, y = _library(generator("06.2", seed, i), k, n, c)
        out.append(_ambiguity_case(f"random input {i + 1} of 3", p, y))
    g = generator("06.2", seed, 10)
    p, y = _library(g, 1, 60, 4)
    out.append(_ambiguity_case("identical members (the ambiguity is 0)", p.expand(4, 60, 4).clone(), y))
    p, y = _library(g, 1, 50, 3)
    out.append(_ambiguity_case("a single member (K = 1)", p, y))
    p, y = _library(g, 3, 60, 3)
    wrong = torch.nn.functional.one_hot((y + 1) % 3, 3).to(torch.float64) * 0.97 + 0.01  # sure of a wrong class
    p[0] = wrong
    out.append(_ambiguity_case("a confident, wrong member", p, y))
    p, y = _library(g, 5, 100, 4, dtype=torch.float32)
    out.append(_ambiguity_case("float32 probabilities", p, y, loose=True))
    return out


_PARTS = ("the mean member Brier", "the ambiguity", "the ensemble's Brier")


def _close(a: float, b: float, loose: bool) -> bool:
    rtol, atol = (1e-4, 1e-5) if loose else (1e-6, 1e-8)
    return abs(a - b) <= atol + rtol * abs(b)


def _ambiguity_compare(case: Case, got) -> str | None:
    want = case.expected
    member_probs, labels = case.args
    k, c = member_probs.shape[0], member_probs.shape[2]
    shown = "(" + ", ".join(fmt(w) for w in want) + ")"
    t, reason, _ = as_values(got)
    if t is None or t.ndim != 1 or t.numel() != 3:
        what = reason if t is None else describe_result(got)
        return (
            f"expected a tuple of 3 numbers (mean_member_brier, ambiguity, ensemble_brier) such as {shown}, got {what}"
        )
    values = [float(v) for v in t.tolist()]
    if not all(math.isfinite(v) for v in values):
        return f"expected 3 finite numbers such as {shown}, got {describe_result(got)}"
    if all(_close(v, w, case.loose) for v, w in zip(values, want, strict=True)):
        return None
    for perm in ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        if all(_close(values[i], want[j], case.loose) for i, j in enumerate(perm)):
            return (
                f"the right three numbers in the wrong order: expected {shown}, got "
                f"({', '.join(fmt(v) for v in values)}); return (mean_member_brier, ambiguity, ensemble_brier)"
            )
    mean_member, ambiguity, ensemble = want
    for i, (v, w) in enumerate(zip(values, want, strict=True)):
        problem = compare_scalar(w, v, loose=case.loose, what=_PARTS[i])
        if problem is None:
            continue
        if c > 1 and _close(v, w / c, case.loose):
            return problem + (
                f" ({c} times too small: the Brier score SUMS over the classes, then averages over the samples)"
            )
        if i == 0:
            return problem + " (average each member's own Brier score over the K members)"
        if i == 1:
            if k > 1 and _close(v, ambiguity * k, case.loose):
                return problem + f" ({k} times too large: average the squared distances over the members, not sum)"
            if _close(v, mean_member, case.loose):
                return problem + (
                    " (that is the mean member Brier: the distances were measured around the label; the "
                    "ambiguity measures them around the ENSEMBLE, the average prediction pbar)"
                )
            return problem + " (the ambiguity is mean_i (1/K) sum_k ||p_ki - pbar_i||^2, around the ensemble pbar)"
        if _close(v, mean_member, case.loose):
            return problem + (
                " (that is the mean member Brier: the ensemble's Brier is that of the AVERAGED probabilities)"
            )
        return problem + " (the Brier score of the uniform average of the members' probabilities)"
    return None  # pragma: no cover - some part differs above


AMBIGUITY = Exercise(
    id="06.2",
    title="The ambiguity decomposition",
    function="my_ambiguity",
    params=("member_probs", "labels"),
    task=(
        "Given the members' probabilities member_probs, shape (K, N, C), and labels, shape (N,), return a tuple "
        "of 3 python floats (mean_member_brier, ambiguity, ensemble_brier) for the uniform average pbar = "
        "mean_k p_k: the mean over the members of each member's Brier score (the mean over samples of the sum "
        "over classes of (p - onehot)^2), the ambiguity mean_i (1/K) sum_k ||p_ki - pbar_i||^2 (the spread of "
        "the members around the ENSEMBLE, not around the label), and the Brier score of pbar.  Krogh & "
        "Vedelsby's identity ensemble_brier = mean_member_brier - ambiguity then holds exactly.  The checker "
        "compares with ensemble_lab.decompositions.brier_decomposition(member_probs, labels) (its "
        "mean_member_loss, diversity and ensemble_loss)."
    ),
    hints=(
        "Three numbers from one average: compute pbar = member_probs.mean(dim=0) first; the ambiguity measures "
        "how far the members are from pbar, so the labels do not enter it.",
        "The Brier score sums the squared differences over the classes (dim=-1) and averages over the samples. "
        "For the ambiguity, (member_probs - pbar) broadcasts to (K, N, C): square it, sum over the classes, then "
        "average over BOTH the members and the samples.",
        "brier = lambda p: float(((p - onehot) ** 2).sum(-1).mean()); pbar = member_probs.mean(0); "
        "return (sum(brier(p) for p in member_probs) / len(member_probs), "
        "float(((member_probs - pbar) ** 2).sum(-1).mean()), brier(pbar))",
    ),
    reference=my_ambiguity,
    cases=_ambiguity_cases,
    compare=_ambiguity_compare,
)

EXERCISES = (FORWARD_SELECT, AMBIGUITY)
