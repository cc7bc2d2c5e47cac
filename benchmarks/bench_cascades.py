"""Window-cascade sweep: 50 half-widths of the window policy over N = 100k samples and 4 stages, all at once
(`cascades.window_sweep`), against calling `window_cascade` once per half-width, side by side; and the cascades
Lab's update after a half-width slider move (N = 10k, 4 members run as 4 stages, each with its own tau and window
fitted on val: `cascades.fit_windows`; the Lab's default is 2 stages).

Synthetic logits (C = 10): the time depends on the shapes, not on what the members learned.  Half-widths in
quantile space of validation scores, as in the paper.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import torch

from benchmarks._timing import median, p95, time_calls  # noqa: I001
from ensemble_lab import cascades, selective
from ensemble_lab.labs import CascadesLab, CascadesState

K, N, C, W = 4, 100_000, 10, 50


def _world(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (N,), generator=g)
    z = 2.0 * torch.nn.functional.one_hot(y, C).float() + 1.5 * torch.randn(K, N, C, generator=g)
    return z, y


def main() -> str:
    z, y = _world()
    val_scores = cascades.stage_scores(_world(1)[0])[0]
    tau = float(val_scores.median())
    widths = torch.linspace(0.0, 0.5, W)
    costs = torch.tensor([1.0, 1.0, 1.0, 1.0])

    def sweep():
        return cascades.window_sweep(z, tau, widths, costs=costs, val_scores=val_scores, labels=y)

    def loop():
        out = []
        for q in widths.tolist():
            r = cascades.window_cascade(z, tau, q, costs=costs, val_scores=val_scores)
            out.append(selective.selective_risk(r.confidence, r.predictions == y, tau))
        return out

    fast = time_calls(sweep, repeat=5)
    slow = time_calls(loop, repeat=2)
    lines = [
        "## Cascades: window half-width sweep (N = 100k, 4 stages, 50 half-widths, C = 10)",
        "",
        "| how | median | target |",
        "|---|---|---|",
        f"| `window_sweep` (all half-widths at once) | {1e3 * median(fast):.0f} ms | 200 ms |",
        f"| `window_cascade` once per half-width | {1e3 * median(slow):.0f} ms | - |",
        "",
        f"Ratio: {median(slow) / median(fast):.1f}x.",
    ]
    lines += ["", *_lab_lines()]
    text = "\n".join(lines)
    print(text)
    return text


def _lab_lines() -> list[str]:
    g = torch.Generator().manual_seed(2)
    logits, labels = {}, {}
    for split in ("val", "test"):
        y = torch.randint(0, C, (10_000,), generator=g)
        logits[split] = 2.0 * torch.nn.functional.one_hot(y, C).float() + 1.5 * torch.randn(K, 10_000, C, generator=g)
        labels[split] = y
    lab = CascadesLab(
        SimpleNamespace(logits=logits, labels=labels), [50_432.0] * K, state=CascadesState(order=list(range(K)))
    )
    xs = []
    for i in range(100):
        q = 0.005 * ((i * 37) % 100)
        start = time.perf_counter()
        assert lab.set(half_width=q), lab.status
        xs.append(time.perf_counter() - start)
    return [
        "Cascades Lab, N = 10k, 4 members as 4 stages, 100 half-width slider moves (numbers, no redraw): "
        f"median {1e3 * median(xs):.1f} ms, p95 {1e3 * p95(xs):.1f} ms (target p95 30 ms)."
    ]


if __name__ == "__main__":
    main()
