"""The exercises of notebook 05 (weight averaging): WiSE-FT's interpolation and the greedy soup.  Expected answers
come from ``soups.interpolate`` and ``soups.greedy_soup``."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .. import soups
from .checking import as_values, compare_values, describe_result
from .exercise import Case, Exercise, generator

__all__ = ["EXERCISES"]


# ----------------------------------------------------------------------------------------------------------
# 05.1 WiSE-FT
# ----------------------------------------------------------------------------------------------------------


def my_wise_ft(a, b, alpha):
    out = {}
    for key in a:
        if a[key].is_floating_point():
            out[key] = (1 - alpha) * a[key] + alpha * b[key]
        else:  # an integer buffer (a counter) cannot be averaged: keep a's
            out[key] = a[key].clone()
    return out


def _state(g: torch.Generator, dtype=torch.float32, counter: int | None = None) -> dict[str, torch.Tensor]:
    sd = {
        "layer1.weight": torch.randn(4, 3, generator=g).to(dtype),
        "layer1.bias": torch.randn(4, generator=g).to(dtype),
        "head.weight": torch.randn(2, 4, generator=g).to(dtype),
    }
    if counter is not None:
        sd["bn.num_batches_tracked"] = torch.tensor(counter)
    return sd


def _wise_cases(seed: int) -> list[Case]:
    out = []
    for i, alpha in enumerate([0.3, 0.8, 0.55]):
        g = generator("05.1", seed, i)
        a, b = _state(g, torch.float64), _state(g, torch.float64)
        out.append(Case(f"random input {i + 1} of 3", (a, b, alpha), soups.interpolate(a, b, alpha)))
    g = generator("05.1", seed, 10)
    a, b = _state(g, torch.float64), _state(g, torch.float64)
    out.append(Case("alpha = 0 (the zero-shot model a)", (a, b, 0.0), soups.interpolate(a, b, 0.0)))
    out.append(Case("alpha = 1 (the fine-tuned model b)", (a, b, 1.0), soups.interpolate(a, b, 1.0)))
    a, b = _state(g, torch.float64, counter=5), _state(g, torch.float64, counter=9)
    out.append(Case("an integer buffer (batch norm's num_batches_tracked)", (a, b, 0.5), soups.interpolate(a, b, 0.5)))
    a, b = _state(g), _state(g)
    out.append(Case("float32 weights", (a, b, 0.25), soups.interpolate(a, b, 0.25), loose=True))
    return out


def _compare_state(want: Mapping, got, *, loose: bool, what: str = "") -> str | None:
    if not isinstance(got, Mapping):
        return f"expected a state dict (a dict name -> tensor){what}, got {describe_result(got)}"
    missing = [k for k in want if k not in got]
    if missing:
        return f"the result has no key {missing[0]!r} (expected the keys {list(want)})"
    extra = [k for k in got if k not in want]
    if extra:
        return f"the result has an extra key {extra[0]!r} (expected the keys {list(want)})"
    for key, w in want.items():
        problem = compare_values(w, got[key], loose=loose, what=f"key {key!r}")
        if problem is not None:
            if not w.is_floating_point():
                problem += " (an integer buffer is not averaged: it comes from a)"
            return problem
    return None


def _wise_compare(case: Case, got) -> str | None:
    return _compare_state(case.expected, got, loose=case.loose)


WISE_FT = Exercise(
    id="05.1",
    title="WiSE-FT: interpolating weights",
    function="my_wise_ft",
    params=("a", "b", "alpha"),
    task=(
        "Given two state dicts of one architecture, a (the zero-shot model) and b (the fine-tuned one), and "
        "alpha in [0, 1], return a new state dict with (1 - alpha) * a[key] + alpha * b[key] for every floating "
        "tensor (alpha = 0 gives a, alpha = 1 gives b); an integer tensor (a counter such as batch norm's "
        "num_batches_tracked) cannot be averaged and is copied from a.  Do not modify a or b.  The checker "
        "compares with ensemble_lab.soups.interpolate(a, b, alpha)."
    ),
    hints=(
        "A state dict is a dict name -> tensor: build a new dict with the same keys, one interpolated tensor per key.",
        "alpha is the weight of b (the fine-tuned model): alpha = 0 must give back a.  Check "
        "tensor.is_floating_point() to spot the integer buffers, and take those from a.",
        "return {k: (1 - alpha) * a[k] + alpha * b[k] if a[k].is_floating_point() else a[k].clone() for k in a}",
    ),
    reference=my_wise_ft,
    cases=_wise_cases,
    compare=_wise_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 05.2 the greedy soup
# ----------------------------------------------------------------------------------------------------------


def my_greedy_soup(states, evaluate):
    def soup(indices):  # the uniform average of some ingredients
        return {k: sum(states[i][k] for i in indices) / len(indices) for k in states[0]}

    own = [evaluate(s) for s in states]
    order = sorted(range(len(states)), key=lambda i: -own[i])  # best first; ties keep the input order
    kept, best = [order[0]], own[order[0]]
    for i in order[1:]:
        score = evaluate(soup(kept + [i]))
        if score > best:  # strictly better, or the ingredient stays out
            kept, best = kept + [i], score
    return kept


def _distance_to(target: torch.Tensor, plateau: float = 0.0):
    """``evaluate``: minus the distance of the state's ``w`` to ``target``, flat (0) within ``plateau``."""

    def evaluate(state) -> float:
        d = float(torch.linalg.vector_norm(torch.as_tensor(state["w"], dtype=torch.float64) - target))
        return -max(0.0, d - plateau)

    return evaluate


def _soup_case(name: str, ws, target, plateau: float = 0.0) -> Case:
    states = [{"w": torch.as_tensor(w, dtype=torch.float64).reshape(-1)} for w in ws]
    evaluate = _distance_to(torch.as_tensor(target, dtype=torch.float64).reshape(-1), plateau)
    kept = soups.greedy_soup(states, evaluate).kept
    return Case(name, (states, evaluate), kept)


def _soup_cases(seed: int) -> list[Case]:
    out = []
    for i, k in enumerate([6, 8, 5]):
        g = generator("05.2", seed, i)
        target = torch.randn(3, generator=g, dtype=torch.float64)
        ws = target + torch.randn(k, 3, generator=g, dtype=torch.float64) * (1 + torch.rand(k, 1, generator=g) * 2)
        out.append(_soup_case(f"random input {i + 1} of 3", list(ws), target))
    out.append(_soup_case("the best ingredient is not the first one", [9.0, 2.2, 2.0], 2.0))
    # ingredients 0 and 1 score 0; their soup (w = 2.2) scores 0 too: a tie, so 1 is NOT added
    out.append(_soup_case("a candidate that leaves the soup's score unchanged (a tie)", [2.0, 2.4, 9.0], 2.0, 0.5))
    out.append(_soup_case("an ingredient that is worse alone but improves the soup", [3.0, 1.4, 9.0, 0.5], 2.0))
    # uniform soups: {0, 1} -> 1.75, {0, 1, 2} -> 2.17 (kept); a running average (1.75 + 3) / 2 = 2.375 is not
    out.append(_soup_case("three ingredients kept (the soup is their uniform average)", [2.5, 1.0, 3.0], 2.0))
    out.append(_soup_case("a single ingredient", [1.0], 2.0))
    return out


def _soup_compare(case: Case, got) -> str | None:
    want = case.expected
    if isinstance(got, Mapping):
        return "expected the list of the indices kept (e.g. [2, 0]), got a state dict: return the indices, not the soup"
    t, reason, _ = as_values(got)
    if t is None or t.ndim != 1:
        shown = reason if t is None else describe_result(got)
        return f"expected a list of indices (ints) such as {want}, got {shown}"
    values = t.tolist()
    if any(float(v) != int(v) for v in values):
        return f"expected a list of indices (ints) such as {want}, got {describe_result(got)}"
    kept = [int(v) for v in values]
    repeated = sorted({i for i in kept if kept.count(i) > 1})
    if repeated:
        return (
            f"expected the ingredients kept, such as {sorted(want)}, got {kept}: index {repeated[0]} appears more "
            "than once (each ingredient is kept at most once)"
        )
    if sorted(kept) == sorted(want):
        return None
    return f"expected the ingredients {sorted(want)} to be kept, got {sorted(kept)}"


GREEDY_SOUP = Exercise(
    id="05.2",
    title="The greedy soup",
    function="my_greedy_soup",
    params=("states", "evaluate"),
    task=(
        "Given the ingredients' state dicts, a list of K dicts, and evaluate, a function state dict -> held-out "
        "score (higher is better), return the indices of the ingredients in the greedy soup, a list of ints (in "
        "any order): sort the ingredients by their own score, best first (ties keep the input order); start the "
        "soup with the best; try each next one and keep it only if the uniform average of the kept ingredients "
        "plus it scores STRICTLY higher than the soup without it (an equal score leaves it out).  The checker "
        "compares with ensemble_lab.soups.greedy_soup(states, evaluate).kept."
    ),
    hints=(
        "Score every ingredient alone first, and visit them from the best to the worst: the order matters.",
        "Keep a list of the indices kept and the best score so far.  For each next ingredient, average the kept "
        "ingredients' tensors and its own (a uniform average, key by key), evaluate that soup, and keep the "
        "ingredient only if the score is > (not >=) the best so far.",
        "order = sorted(range(K), key=lambda i: -own[i]); kept, best = [order[0]], own[order[0]]; "
        "for i in order[1:]: s = evaluate(average(kept + [i])); if s > best: kept, best = kept + [i], s",
    ),
    reference=my_greedy_soup,
    cases=_soup_cases,
    compare=_soup_compare,
)

EXERCISES = (WISE_FT, GREEDY_SOUP)
