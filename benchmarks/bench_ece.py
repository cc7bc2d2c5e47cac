"""ECE and Lab-path timings for ``ensemble_lab.metrics``, measured side by side in one run.

Run ``python benchmarks/bench_ece.py``; ``main()`` returns (and prints) a markdown section for BENCHMARKS.md.

1. Top-label ECE (l1, 15 uniform bins) on 1M samples x 10 classes (seeded random logits, softmaxed, float32)
   against torchmetrics' functional ``multiclass_calibration_error`` on the same tensors, both with their input
   checks on (their defaults).  Calls alternate (ours, theirs, ours, ...) so background load hits both alike;
   warm-up, then the median of >= 5 repetitions (time.perf_counter).  Also reported: each result against an
   independent float64 numpy reference (numpy argmax/max, ``searchsorted`` with the (lo, hi] convention,
   ``bincount`` with float64 weights).
2. What a Lab recomputes on every slider move: ``summary`` + ``reliability`` + the three diversity numbers for
   N = 10k, K = 16, C = 10 (median and p95 ms), with torch's default thread count and with one thread.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ensemble_lab import metrics  # noqa: E402

N_ECE, C_ECE, BINS = 1_000_000, 10, 15
N_LAB, K_LAB, C_LAB = 10_000, 16, 10


def _import_torchmetrics_ce():
    """torchmetrics' functional top-label calibration error, and its version."""
    import torchmetrics
    from torchmetrics.functional.classification import multiclass_calibration_error

    return multiclass_calibration_error, torchmetrics.__version__


def _reference_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> float:
    """Independent float64 numpy ECE (l1, uniform (lo, hi] bins with edges k / B in the input dtype)."""
    p = probs.numpy()
    y = labels.numpy()
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.arange(n_bins + 1, dtype=p.dtype) / p.dtype.type(n_bins)
    idx = np.searchsorted(edges[1:-1], conf, side="left")
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    s_conf = np.bincount(idx, weights=conf.astype(np.float64), minlength=n_bins)
    s_hit = np.bincount(idx, weights=correct, minlength=n_bins)
    assert count.sum() == len(y)
    return float(np.abs(s_hit - s_conf).sum() / len(y))


def _side_by_side(fns: dict, reps: int, warmup: int = 2) -> dict[str, list[float]]:
    for f in fns.values():
        for _ in range(warmup):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return times


def _ms(ts: list[float], q: float = 0.5) -> float:
    return float(np.quantile(np.asarray(ts), q) * 1e3)


def _machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), load average {load}"
    )


def bench_ece(reps: int = 11) -> list[str]:
    tm_ce, tm_version = _import_torchmetrics_ce()
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(N_ECE, C_ECE, generator=g), dim=1)  # float32
    labels = torch.randint(0, C_ECE, (N_ECE,), generator=g)

    def ours():
        return metrics.ece(probs, labels, n_bins=BINS)

    def theirs():
        return float(tm_ce(probs, labels, num_classes=C_ECE, n_bins=BINS, norm="l1"))

    default_threads = torch.get_num_threads()
    rows, ratios = [], []
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        try:
            times = _side_by_side({"ours": ours, "torchmetrics": theirs}, reps)
        finally:
            torch.set_num_threads(default_threads)
        t_ours, t_tm = _ms(times["ours"]), _ms(times["torchmetrics"])
        ratios.append(f"{threads} thread(s): **{t_tm / t_ours:.2f}x**")
        rows.append(
            f"| {threads} | {t_ours:.1f} ({min(times['ours']) * 1e3:.1f}) "
            f"| {t_tm:.1f} ({min(times['torchmetrics']) * 1e3:.1f}) | {t_tm / t_ours:.2f} |"
        )
    e_ours, e_tm, e_ref = ours(), theirs(), _reference_ece(probs, labels, BINS)
    return [
        f"### Top-label ECE, {N_ECE:,} x {C_ECE} (l1, {BINS} uniform bins)",
        "",
        f"Input: softmax of seeded N(0, 1) logits, **float32** (torchmetrics {tm_version} casts confidences to "
        "float32 and accumulates bins in float32 whatever the input dtype; ours accumulates in float64). "
        f"Both with input checks on. Median (min) of {reps} alternating repetitions after warm-up.",
        "",
        "| threads | ours ms | torchmetrics ms | speed-up |",
        "|---:|---:|---:|---:|",
        *rows,
        "",
        f"- speed-up (median torchmetrics / median ours): {'; '.join(ratios)}",
        f"- ECE: ours {e_ours:.9f}, torchmetrics {e_tm:.9f}, float64 numpy reference {e_ref:.9f}",
        f"- abs(ours - torchmetrics) = {abs(e_ours - e_tm):.2e}; abs(ours - reference) = {abs(e_ours - e_ref):.2e}; "
        f"abs(torchmetrics - reference) = {abs(e_tm - e_ref):.2e} (the gap to torchmetrics is its float32 "
        "accumulation over ~67k samples per bin)",
    ]


def bench_lab(reps: int = 40) -> list[str]:
    g = torch.Generator().manual_seed(1)
    member_probs = torch.softmax(2 * torch.randn(K_LAB, N_LAB, C_LAB, generator=g), dim=-1)
    labels = torch.randint(0, C_LAB, (N_LAB,), generator=g)
    probs = member_probs.mean(dim=0)

    def lab_diversity():
        metrics.summary(probs, labels)
        metrics.reliability(probs, labels)
        metrics.diversity(member_probs)

    def lab_separate():
        metrics.summary(probs, labels)
        metrics.reliability(probs, labels)
        metrics.disagreement(member_probs)
        metrics.kl_to_ensemble(member_probs)
        metrics.mutual_information(member_probs)

    fns = {
        "summary + reliability + diversity()": lab_diversity,
        "summary + reliability + disagreement + kl_to_ensemble + mutual_information": lab_separate,
        "summary": lambda: metrics.summary(probs, labels),
        "reliability": lambda: metrics.reliability(probs, labels),
        "diversity": lambda: metrics.diversity(member_probs),
    }
    lines = [
        f"### Lab path, N = {N_LAB:,}, K = {K_LAB}, C = {C_LAB} (float32, budget ~30 ms)",
        "",
        "| call | threads | median ms | p95 ms |",
        "|---|---:|---:|---:|",
    ]
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        try:
            times = _side_by_side(fns, reps)
        finally:
            torch.set_num_threads(default_threads)
        for k, ts in times.items():
            lines.append(f"| {k} | {threads} | {_ms(ts):.2f} | {_ms(ts, 0.95):.2f} |")
    return lines


def main() -> str:
    lines = ["## metrics: ECE and the Lab path", "", f"Machine: {_machine()}", ""]
    lines += bench_ece()
    lines += [""]
    lines += bench_lab()
    text = "\n".join(lines) + "\n"
    print(text)
    return text


if __name__ == "__main__":
    main()
