"""Lab update latency: from a weight change to recomputed numbers, and with the plot redraw.

N = 10k test samples, K = 16 members, C = 10 classes (synthetic logits: the latency depends on the shapes,
not on what the members learned).  A weight change is ``lab.set(weights=...)`` with fresh random weights.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from benchmarks._timing import median, p95  # noqa: E402
from ensemble_lab.labs import DeepEnsemblesLab  # noqa: E402

K, N, C, MOVES = 16, 10_000, 10, 100


def _predictions(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits, labels = {}, {}
    for split in ("val", "test", "noise-3"):
        y = torch.randint(0, C, (N,), generator=g)
        strength = torch.linspace(1.0, 4.0, K).view(K, 1, 1)
        logits[split] = strength * torch.nn.functional.one_hot(y, C).float() + 1.5 * torch.randn(K, N, C, generator=g)
        labels[split] = y
    return SimpleNamespace(logits=logits, labels=labels)


def _latencies(lab, with_view: bool) -> list[float]:
    g = torch.Generator().manual_seed(1)
    if with_view:
        lab.view  # noqa: B018 - build the widgets and the figure once
    out = []
    for _ in range(MOVES):
        weights = (torch.rand(K, generator=g) + 0.05).tolist()
        start = time.perf_counter()
        ok = lab.set(weights=weights)  # with a view: the observer redraws (Agg draw_idle renders synchronously)
        out.append(time.perf_counter() - start)
        assert ok, lab.status
    return out


def main() -> str:
    preds = _predictions()
    compute = _latencies(DeepEnsemblesLab(preds), with_view=False)
    redraw = _latencies(DeepEnsemblesLab(preds), with_view=True)
    lines = [
        "## Lab update latency (deep-ensembles Lab, N = 10k, K = 16, C = 10, 100 weight changes)",
        "",
        "| what | median | p95 | target p95 |",
        "|---|---|---|---|",
        f"| weight change -> recomputed numbers | {1e3 * median(compute):.1f} ms | "
        f"{1e3 * p95(compute):.1f} ms | 30 ms |",
        f"| ... plus table and plot redraw (Agg render) | {1e3 * median(redraw):.1f} ms | "
        f"{1e3 * p95(redraw):.1f} ms | 150 ms |",
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
