"""The exercises of notebook 02 (calibration): a binned ECE and fitting one temperature.  Expected answers come
from ``metrics.ece`` and ``calibration.fit_temperature``."""

from __future__ import annotations

import math

import torch

from .. import calibration, metrics
from .checking import as_number, compare_scalar, fmt
from .exercise import Case, Exercise, generator

__all__ = ["EXERCISES"]


# ----------------------------------------------------------------------------------------------------------
# 02.1 a binned ECE
# ----------------------------------------------------------------------------------------------------------


def my_ece(probs, labels, n_bins):
    confidence, predicted = probs.max(dim=1)  # top-label confidence and class
    correct = (predicted == labels).double()
    edges = torch.arange(n_bins + 1, dtype=torch.float64) / n_bins
    ece = 0.0
    for b in range(n_bins):  # bin b is (lo, hi]: a confidence on an edge belongs to the bin below it
        in_bin = (confidence > edges[b]) & (confidence <= edges[b + 1])
        if in_bin.any():  # an empty bin contributes nothing
            gap = (correct[in_bin].mean() - confidence[in_bin].mean()).abs()
            ece += in_bin.double().mean() * gap  # weighted by the fraction of samples in the bin
    return float(ece)


def _rows_with_confidence(conf: torch.Tensor, top: torch.Tensor, c: int) -> torch.Tensor:
    """``(N, C)`` rows whose maximum ``conf[i]`` sits in column ``top[i]``, the rest spread evenly."""
    n = conf.shape[0]
    rest = ((1 - conf) / (c - 1))[:, None].expand(n, c).clone()
    rest[torch.arange(n), top] = conf
    return rest


def _ece_cases(seed: int) -> list[Case]:
    out = []
    for i, (c, bins, scale) in enumerate([(3, 15, 2.0), (5, 10, 3.0), (2, 7, 1.5)]):
        g = generator("02.1", seed, i)
        z = torch.randn(200, c, generator=g, dtype=torch.float64) * scale
        p = torch.softmax(z, dim=-1)
        y = torch.multinomial(torch.softmax(z / 1.5, dim=-1), 1, generator=g).squeeze(1)
        out.append(Case(f"random input {i + 1} of 3", (p, y, bins), metrics.ece(p, y, n_bins=bins)))
    # confidences exactly 1/4, 1/2, 3/4 and 1 with 4 bins: each edge value belongs to the bin BELOW it
    conf = torch.tensor([0.25, 0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.75, 0.75, 0.8, 1.0, 1.0], dtype=torch.float64)
    top = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3])
    p = _rows_with_confidence(conf, top, 4)
    pred = p.argmax(dim=1)
    right = torch.tensor([1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0], dtype=torch.bool)
    y = torch.where(right, pred, (pred + 1) % 4)
    out.append(Case("confidences exactly on the bin edges (4 bins)", (p, y, 4), metrics.ece(p, y, n_bins=4)))
    g = generator("02.1", seed, 10)
    conf = 0.9 + 0.1 * torch.rand(60, generator=g, dtype=torch.float64)
    top = torch.randint(0, 3, (60,), generator=g)
    p = _rows_with_confidence(conf, top, 3)
    y = torch.where(torch.rand(60, generator=g) < 0.8, top, (top + 1) % 3)
    out.append(Case("empty bins (every confidence above 0.9, 10 bins)", (p, y, 10), metrics.ece(p, y, n_bins=10)))
    z = torch.randn(100, 4, generator=g, dtype=torch.float64) * 2
    p = torch.softmax(z, dim=-1)
    y = torch.randint(0, 4, (100,), generator=g)
    out.append(Case("a single bin (n_bins = 1)", (p, y, 1), metrics.ece(p, y, n_bins=1)))
    return out


def _ece_compare(case: Case, got) -> str | None:
    problem = compare_scalar(case.expected, got, loose=case.loose)
    if problem is not None and problem.startswith("got nan"):
        problem += " An empty bin has no mean: skip it."
    return problem


ECE = Exercise(
    id="02.1",
    title="A binned ECE",
    function="my_ece",
    params=("probs", "labels", "n_bins"),
    task=(
        "Given probabilities probs, shape (N, C), integer labels, shape (N,), and a number of bins n_bins, return "
        "the top-label expected calibration error as a python float: the confidence of a sample is its largest "
        "probability and it is correct when that class is the label; split [0, 1] into n_bins equal bins "
        "(lo, hi], so a confidence exactly on an edge belongs to the bin BELOW it (the first bin also holds 0, which "
        "a top-label confidence never is); ECE = sum over bins of (n_b / N) * |accuracy_b - mean confidence_b|, "
        "where empty bins contribute nothing.  The checker compares with "
        "ensemble_lab.metrics.ece(probs, labels, n_bins)."
    ),
    hints=(
        "Three steps: the top-label confidence and correctness of every sample; which bin each sample is in; "
        "per non-empty bin, the gap between its accuracy and its mean confidence, weighted by its share of the "
        "samples.",
        "n_bins bins have n_bins + 1 edges: torch.arange(n_bins + 1) / n_bins.  A sample is in bin b when "
        "edges[b] < confidence <= edges[b + 1] (note which side is strict); skip a bin with no samples, "
        "otherwise its mean is 0/0 = nan.",
        "for b in range(n_bins): in_bin = (conf > edges[b]) & (conf <= edges[b + 1]); if in_bin.any(): "
        "ece += in_bin.double().mean() * (correct[in_bin].mean() - conf[in_bin].mean()).abs()",
    ),
    reference=my_ece,
    cases=_ece_cases,
    compare=_ece_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 02.2 fitting one temperature
# ----------------------------------------------------------------------------------------------------------


def my_temperature(logits, labels):
    temperatures = torch.logspace(-2, 2, 1001, dtype=torch.float64)  # 0.01 ... 100, 0.9% apart
    log_p = torch.log_softmax(logits.double() / temperatures[:, None, None], dim=-1)  # (T, N, C)
    nlls = -log_p[:, torch.arange(len(labels)), labels].mean(dim=1)  # the mean NLL at every temperature
    return float(temperatures[nlls.argmin()])


#: a temperature counts as right within this relative distance of the package's fit
T_RTOL = 0.01


def _temperature_case(name: str, g: torch.Generator, n: int, c: int, scale: float, dtype=torch.float64) -> Case:
    """Logits ``scale`` times too confident (or too timid) for labels drawn from the true probabilities."""
    true = torch.randn(n, c, generator=g, dtype=torch.float64) * 1.5
    y = torch.multinomial(torch.softmax(true, dim=-1), 1, generator=g).squeeze(1)
    z = (true * scale).to(dtype)
    return Case(name, (z, y), calibration.fit_temperature(z, y), loose=dtype != torch.float64, extra={"z": z, "y": y})


def _temperature_cases(seed: int) -> list[Case]:
    out = []
    for i, scale in enumerate([2.5, 0.6, 1.8]):
        out.append(_temperature_case(f"random input {i + 1} of 3", generator("02.2", seed, i), 200, 5, scale))
    g = generator("02.2", seed, 10)
    out.append(_temperature_case("a temperature far above 1 (logits 8 times too confident)", g, 200, 5, 8.0))
    out.append(_temperature_case("a temperature far below 1 (logits 7 times too timid)", g, 200, 4, 0.15))
    out.append(_temperature_case("float32 logits", g, 200, 3, 3.0, dtype=torch.float32))
    return out


def _nll_at(z: torch.Tensor, y: torch.Tensor, t: float) -> float:
    return metrics.nll(calibration.apply_temperature(z.double(), t), y)


def _temperature_compare(case: Case, got) -> str | None:
    t, problem = as_number(got, "a temperature (one number)")
    if problem is not None:
        return problem
    want = float(case.expected)
    if not math.isfinite(t) or t <= 0:
        return f"expected T = {fmt(want)} (a temperature is a finite number > 0), got {fmt(t)}"
    if abs(t / want - 1) <= T_RTOL:
        return None
    z, y = case.extra["z"], case.extra["y"]
    return (
        f"expected T = {fmt(want)} (NLL {fmt(_nll_at(z, y, want))}), got T = {fmt(t)} (NLL {fmt(_nll_at(z, y, t))}); "
        f"within {T_RTOL:.0%} of the package's fit counts as right"
    )


TEMPERATURE = Exercise(
    id="02.2",
    title="Fitting one temperature",
    function="my_temperature",
    params=("logits", "labels"),
    task=(
        "Given the logits of a calibration split, shape (N, C), and its labels, shape (N,), return the "
        "temperature T > 0 (a python float) that minimises the mean NLL of softmax(logits / T): the logits are "
        "DIVIDED by T, so T > 1 softens an over-confident model.  Within 1% of "
        "ensemble_lab.calibration.fit_temperature counts as right; a grid search over log T or a few steps of "
        "an optimiser are both fine."
    ),
    hints=(
        "Write the NLL of softmax(logits / T) as a function of T (torch.nn.functional.cross_entropy(logits / T, "
        "labels) is exactly that mean NLL), then find the T where it is smallest.",
        "Search over log T, not T: try many temperatures spread evenly on a log scale, e.g. "
        "torch.logspace(-2, 2, 1001) (0.01 to 100), and keep the one with the lowest NLL.",
        "ts = torch.logspace(-2, 2, 1001, dtype=torch.float64); "
        "nlls = torch.stack([F.cross_entropy(logits.double() / t, labels) for t in ts]); "
        "return float(ts[nlls.argmin()])  (or all temperatures at once: logits / ts[:, None, None])",
    ),
    reference=my_temperature,
    cases=_temperature_cases,
    compare=_temperature_compare,
)

EXERCISES = (ECE, TEMPERATURE)
