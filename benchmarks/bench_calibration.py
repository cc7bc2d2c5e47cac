"""Temperature scaling: ``ensemble_lab.calibration`` against scikit-learn, measured side by side in one run.

Run ``python benchmarks/bench_calibration.py``; ``main()`` returns (and prints) a markdown section for
BENCHMARKS.md.

1. Fit one temperature on N = 100k x C = 10 float32 logits (seeded, over-confident by a factor 2.5):
   ``calibration.fit_temperature`` (L-BFGS over log T, closed-form NLL gradient, float64) against scikit-learn's
   ``CalibratedClassifierCV(method="temperature")`` (new in scikit-learn 1.8) wrapped around a frozen
   pass-through classifier whose ``decision_function`` returns the same logits, so both fit the same NLL on the
   same numbers.  Also timed: the calibrator scikit-learn fits inside, ``sklearn.calibration._TemperatureScaling``
   (private; bounded Brent search over log(1/T) with ``scipy.optimize.minimize_scalar``), to separate the optimiser
   from the meta-estimator's overhead.  Calls alternate so background load hits all alike; one warm-up, then
   the median of 5 repetitions, with torch's default thread count and with one thread (scikit-learn's loss runs
   single-threaded either way).  Both temperatures are scored with one float64 numpy NLL.
2. Per-member temperatures for K = 16 members (N = 10k, C = 10): one vectorised fit against a loop of K fits.
3. The one-time cost in a fresh process: the first ``torch.optim`` optimiser imports ``torch._dynamo``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import machine, median, time_calls  # noqa: E402
from ensemble_lab.calibration import fit_member_temperatures, fit_temperature  # noqa: E402

N, C, PLANTED = 100_000, 10, 2.5
K_MEM, N_MEM = 16, 10_000
REPS = 5


def _data(n: int, c: int, seed: int = 0, k: int | None = None):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    shape = (n, c) if k is None else (k, n, c)
    base = 1.5 * torch.randn(*shape, generator=g) + 2.0 * torch.nn.functional.one_hot(y, c).float()
    return PLANTED * base, y


def _nll64(logits: np.ndarray, labels: np.ndarray, t: float) -> float:
    """Mean NLL of softmax(logits / t), float64 numpy (the shared yardstick)."""
    z = logits.astype(np.float64) / t
    z = z - z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return float((lse - z[np.arange(len(labels)), labels]).mean())


def _sklearn_fitters(logits: np.ndarray, labels: np.ndarray):
    """Two callables returning scikit-learn's fitted temperature, or None (and why) if unavailable."""
    import sklearn
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.calibration import CalibratedClassifierCV

    try:
        from sklearn.calibration import _TemperatureScaling
        from sklearn.frozen import FrozenEstimator
    except ImportError:
        return None, None, f"scikit-learn {sklearn.__version__} has no FrozenEstimator/temperature scaling"

    class PassThroughLogits(ClassifierMixin, BaseEstimator):
        """A 'classifier' whose decision_function is its input: the logits themselves."""

        def fit(self, X, y):
            self.classes_ = np.arange(X.shape[1])
            return self

        def decision_function(self, X):
            return X

        def predict(self, X):
            return np.argmax(X, axis=1)

    # FrozenEstimator: scikit-learn >= 1.6's replacement for cv="prefit"; fit is a no-op, so the calibrator is
    # fitted on decision_function(logits) = the logits, for all N samples (ensemble="auto" -> one calibrator)
    frozen = FrozenEstimator(PassThroughLogits().fit(logits, labels))

    def meta():
        cal = CalibratedClassifierCV(frozen, method="temperature").fit(logits, labels)
        return 1.0 / float(cal.calibrated_classifiers_[0].calibrators[0].beta_)

    def core():
        return 1.0 / float(_TemperatureScaling().fit(logits, labels).beta_)

    return meta, core, sklearn.__version__


def _alternate(fns: dict, reps: int) -> dict[str, list[float]]:
    for f in fns.values():
        f()  # warm-up (the first torch.optim optimiser in a process imports torch._dynamo)
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            times[k] += time_calls(f, repeat=1, warmup=0)
    return times


def bench_temperature() -> list[str]:
    z, y = _data(N, C)
    zn, yn = z.numpy(), y.numpy()
    meta, core, sk_version = _sklearn_fitters(zn, yn)
    if meta is None:
        return ["### Temperature scaling", "", f"scikit-learn comparison skipped: {sk_version}"]
    fns = {
        "ours: fit_temperature": lambda: fit_temperature(z, y),
        "sklearn: CalibratedClassifierCV(FrozenEstimator, method='temperature').fit": meta,
        "sklearn: _TemperatureScaling().fit (the calibrator alone)": core,
    }
    rows = []
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        try:
            times = _alternate(fns, REPS)
        finally:
            torch.set_num_threads(default_threads)
        base = median(times["ours: fit_temperature"])
        for k, ts in times.items():
            rows.append(f"| {k} | {threads} | {1e3 * median(ts):.1f} | {1e3 * min(ts):.1f} | {median(ts) / base:.2f} |")
    t_ours, t_meta, t_core = fit_temperature(z, y), meta(), core()
    nll_ours, nll_meta, nll_core = _nll64(zn, yn, t_ours), _nll64(zn, yn, t_meta), _nll64(zn, yn, t_core)
    nll_raw = _nll64(zn, yn, 1.0)
    gap = abs(nll_ours - nll_meta)
    return [
        f"### Temperature scaling, {N:,} x {C} float32 logits (planted over-confidence x{PLANTED})",
        "",
        f'scikit-learn {sk_version}: `CalibratedClassifierCV(FrozenEstimator(pass-through), method="temperature")` '
        "fitted on the same logits and labels. Median (min) of "
        f"{REPS} alternating repetitions after one warm-up; ratio = median / median of ours.",
        "",
        "| fit | torch threads | median ms | min ms | ratio to ours |",
        "|---|---:|---:|---:|---:|",
        *rows,
        "",
        f"- T: ours {t_ours:.6f}, CalibratedClassifierCV {t_meta:.6f}, _TemperatureScaling {t_core:.6f}",
        f"- NLL (float64 numpy): uncalibrated {nll_raw:.6f}; ours {nll_ours:.8f}; CalibratedClassifierCV "
        f"{nll_meta:.8f}; _TemperatureScaling {nll_core:.8f}",
        f"- abs(NLL ours - NLL scikit-learn) = {gap:.2e} ({'equal to 1e-4' if gap < 1e-4 else 'NOT equal to 1e-4'})",
    ]


def bench_members() -> list[str]:
    z, y = _data(N_MEM, C, seed=1, k=K_MEM)
    fns = {
        "fit_member_temperatures (one vectorised L-BFGS)": lambda: fit_member_temperatures(z, y),
        "loop of fit_temperature over K": lambda: [fit_temperature(z[k], y) for k in range(K_MEM)],
    }
    rows = []
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        try:
            times = _alternate(fns, REPS)
        finally:
            torch.set_num_threads(default_threads)
        base = median(times["fit_member_temperatures (one vectorised L-BFGS)"])
        rows += [f"| {k} | {threads} | {1e3 * median(ts):.1f} | {median(ts) / base:.2f} |" for k, ts in times.items()]
    vec = fit_member_temperatures(z.double(), y)  # float64 temperatures, to see the optimiser's differences
    loop = torch.tensor([fit_temperature(z[k], y) for k in range(K_MEM)], dtype=vec.dtype)
    return [
        f"### Per-member temperatures, K = {K_MEM}, N = {N_MEM:,}, C = {C} (float32)",
        "",
        "| fit | torch threads | median ms | ratio |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"- max relative difference between the two sets of temperatures: "
        f"{float(((vec - loop).abs() / loop).max()):.1e}",
    ]


def bench_first_call() -> list[str]:
    code = (
        "import time, torch; t0 = time.perf_counter(); torch.optim.LBFGS([torch.zeros(1, requires_grad=True)]); "
        "print(time.perf_counter() - t0)"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        first = float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:  # pragma: no cover - reporting only
        return [f"- first optimiser in a fresh process: not measured ({exc})"]
    return [
        f"- One-time cost per process: constructing the first `torch.optim` optimiser took {first:.2f} s here "
        "(it imports `torch._dynamo`); every L-BFGS fit (ours, `combine.learn_weights`) pays it once, on first use.",
    ]


def main() -> str:
    lines = ["## calibration: temperature scaling", "", f"Machine: {machine()}", ""]
    lines += bench_temperature()
    lines += [""]
    lines += bench_members()
    lines += [""]
    lines += bench_first_call()
    text = "\n".join(lines) + "\n"
    print(text)
    return text


if __name__ == "__main__":
    main()
