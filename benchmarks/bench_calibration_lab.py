"""Calibration Lab update latency, and the batched bootstrap that keeps it live.

N = 10k evaluation samples, K = 8 members, C = 10 classes (synthetic logits: the latency depends on the shapes,
not on what the members learned).  A move of the temperature slider is ``lab.set(temperature=...)`` (or
``member_temperatures`` in calibrate-then-pool) with a fresh value; every move recomputes the "after" side:
metrics, reliability diagram and the 100-resample bootstrap interval of the chosen estimator.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from benchmarks._timing import median, p95, time_calls  # noqa: E402
from ensemble_lab import calibration_error, metrics  # noqa: E402
from ensemble_lab.labs.calibration import CalibrationLab  # noqa: E402

K, N, C, MOVES = 8, 10_000, 10, 100


def _predictions(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits, labels = {}, {}
    for split in ("val", "test"):
        y = torch.randint(0, C, (N,), generator=g)
        z = 2.0 * torch.nn.functional.one_hot(y, C).float() + 1.5 * torch.randn(K, N, C, generator=g)
        logits[split], labels[split] = 2.0 * z, y
    return SimpleNamespace(logits=logits, labels=labels)


def _latencies(lab, setting: str, with_view: bool) -> list[float]:
    g = torch.Generator().manual_seed(1)
    if with_view:
        lab.view  # noqa: B018 - build the widgets and the figure once
    out = []
    for _ in range(MOVES):
        t = float(10 ** (torch.rand(1, generator=g).item() * 1.2 - 0.6))  # the slider's range, log-uniform
        value = t if setting == "temperature" else [t] * K
        start = time.perf_counter()
        ok = lab.set(**{setting: value})
        out.append(time.perf_counter() - start)
        assert ok, lab.status
    return out


def _bootstrap_rows() -> list[str]:
    preds = _predictions()
    p, y = torch.softmax(preds.logits["test"][0], -1), preds.labels["test"]
    rows = []
    ce = calibration_error
    for estimator, metric, kwargs in (
        ("binned", metrics.ece, {}),
        ("debiased", calibration_error.debiased_ece, {"strategy": "quantile"}),
        ("smooth", calibration_error.smooth_ece, {"bandwidth": 0.05}),
    ):
        fast = time_calls(lambda e=estimator, kw=kwargs: ce.bootstrap_ece(p, y, e, n_boot=100, **kw), repeat=5)
        slow = time_calls(lambda m=metric, kw=kwargs: ce.bootstrap_ci(m, p, y, n_boot=100, **kw), repeat=3)
        rows.append(
            f"| {estimator} {kwargs or ''} | {1e3 * median(fast):.1f} ms | {1e3 * median(slow):.0f} ms | "
            f"{median(slow) / median(fast):.1f}x |"
        )
    return rows


def main() -> str:
    preds = _predictions()
    lines = [
        "## Calibration Lab (N = 10k, K = 8, C = 10, 100 slider moves)",
        "",
        "| what | median | p95 | target p95 |",
        "|---|---|---|---|",
    ]
    cases = [
        ("pool-then-calibrate, binned ECE: temperature -> numbers", {}, "temperature", False, "30 ms"),
        ("... plus table and both diagrams redrawn (blit)", {}, "temperature", True, "-"),
        (
            "pool-then-calibrate, debiased (quantile bins)",
            {"estimator": "debiased", "strategy": "quantile"},
            "temperature",
            False,
            "-",
        ),
        ("pool-then-calibrate, smooth ECE (+ smoothed curve)", {"estimator": "smooth"}, "temperature", False, "-"),
        (
            "calibrate-then-pool, binned ECE: member temperatures -> numbers",
            {"order": "calibrate-then-pool"},
            "member_temperatures",
            False,
            "-",
        ),
    ]
    for label, settings, setting, view, target in cases:
        lab = CalibrationLab(preds)
        assert lab.set(**settings), lab.status if settings else True
        xs = _latencies(lab, setting, view)
        lines.append(f"| {label} | {1e3 * median(xs):.1f} ms | {1e3 * p95(xs):.1f} ms | {target} |")
    lines += [
        "",
        "Bootstrap interval, 100 resamples of N = 10k: batched `bootstrap_ece` vs one metric call per "
        "resample (`bootstrap_ci`), same resamples, same numbers:",
        "",
        "| estimator | batched | per resample | ratio |",
        "|---|---|---|---|",
        *_bootstrap_rows(),
    ]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
