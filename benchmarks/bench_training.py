"""Training K members: the stacked engine vs torchensemble's VotingClassifier vs a plain python loop.

All three train K = 8 members of the digits MLP (``mlp-m`` on 8x8 digits, ~1.1k training images) for the same
number of epochs, batch size and optimizer (AdamW, constant learning rate -- torchensemble has no per-step
schedule), on the same data, timed side by side in one run (interleaved repeats, median).  A second table
compares two ways of stacking members (explicit stacked layers vs ``torch.func`` ``stack_module_state`` +
``vmap``) per training step, which is why ``ensemble_lab.models.stacked`` uses explicit layers.

Run: ``python benchmarks/bench_training.py`` (or ``python -m benchmarks bench_training``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``ensemble_lab`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from ensemble_lab.models import StackedEnsemble, build_model  # noqa: E402
from ensemble_lab.recipe import Recipe  # noqa: E402
from ensemble_lab.train import predict_logits, train_ensemble, train_members_one_by_one  # noqa: E402

ARCH = "mlp-m"
K = 8
EPOCHS = 20
BATCH = 128
LR = 3e-3
WD = 1e-4
REPEATS = 5


def _digits():
    try:
        from ensemble_lab.data import load_digits

        sets = load_digits(seed=0)
        return (sets["train"].images, sets["train"].labels), (sets["test"].images, sets["test"].labels)
    except ImportError:  # data layer not available: same kind of split straight from scikit-learn
        from sklearn.datasets import load_digits as sk_digits

        d = sk_digits()
        x = torch.tensor(d.images / 16.0, dtype=torch.float32)[:, None]
        y = torch.tensor(d.target, dtype=torch.int64)
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        cut = int(0.6 * len(y))
        return (x[perm[:cut]], y[perm[:cut]]), (x[perm[cut:]], y[perm[cut:]])


class FamilyModel(nn.Module):
    """A family model as a class, the form torchensemble instantiates ``n_estimators`` times."""

    def __init__(self, arch: str, input_shape, n_classes: int):
        super().__init__()
        self.net = build_model(arch, tuple(input_shape), n_classes)

    def forward(self, x):
        return self.net(x)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean member accuracy for (K, N, C) logits."""
    return float((logits.argmax(-1) == labels.to(logits.device)).float().mean())


def _engines(train, test, device: torch.device, k: int, epochs: int = EPOCHS):
    x, y = train
    shape, n_classes = tuple(x.shape[1:]), int(y.max()) + 1
    recipe = Recipe(epochs=epochs, batch_size=BATCH, lr=LR, weight_decay=WD, schedule="constant", seed=0)
    common = dict(k=k, recipe=recipe, device=device, progress=False)
    results = {}

    def stacked():
        ens = train_ensemble(ARCH, train, **common)
        results["stacked"] = _accuracy(predict_logits(ens, test[0]), test[1])

    def loop():
        members = train_members_one_by_one(ARCH, train, **common)
        results["python loop"] = _accuracy(predict_logits(StackedEnsemble.from_members(members), test[0]), test[1])

    def voting():
        from torchensemble import VotingClassifier

        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH, shuffle=True)
        model = VotingClassifier(
            estimator=FamilyModel,
            n_estimators=k,
            estimator_args={"arch": ARCH, "input_shape": shape, "n_classes": n_classes},
            cuda=device.type == "cuda",
        )
        model.set_optimizer("AdamW", lr=LR, weight_decay=WD)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                model.fit(loader, epochs=epochs, log_interval=10**9, save_model=False)
        finally:
            root.setLevel(level)
        with torch.no_grad():
            logits = torch.stack([m(test[0].to(device)) for m in model.estimators_])
        results["torchensemble VotingClassifier"] = _accuracy(logits, test[1])

    return {"stacked": stacked, "torchensemble VotingClassifier": voting, "python loop": loop}, results


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def compare_engines(device: torch.device, k: int = K, repeats: int = REPEATS) -> tuple[dict, dict]:
    """Seconds per full training run for each engine (``repeats`` interleaved runs) and mean member accuracy."""
    train, test = _digits()
    for fn in _engines(train, test, device, k, epochs=1)[0].values():  # warm-up: allocator, oneDNN, imports
        fn()
    engines, accuracy = _engines(train, test, device, k)
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(repeats):
        for name, fn in engines.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times, accuracy


def stacking_engines(device: torch.device, k: int = K, batch: int = BATCH, steps: int = 30) -> list[tuple]:
    """Milliseconds per training step (forward + backward + AdamW) of explicit stacked layers vs vmap."""
    from torch.func import functional_call, stack_module_state, vmap

    rows = []
    for arch, shape in (("mlp-m", (1, 8, 8)), ("mlp-m", (1, 16, 16)), ("cnn-s", (1, 16, 16))):
        g = torch.Generator().manual_seed(0)
        x = torch.rand(k, batch, *shape, generator=g).to(device)
        y = torch.randint(0, 10, (k, batch), generator=g).to(device)
        ens = StackedEnsemble(arch, k, shape, 10).to(device)
        params, buffers = stack_module_state(ens.members())
        params = {name: nn.Parameter(p) for name, p in params.items()}
        base = copy.deepcopy(build_model(arch, shape, 10)).to("meta")

        def call(p, b, xi, base=base):
            return functional_call(base, (p, b), (xi,))

        def step_fn(forward, parameters, y=y):
            opt = torch.optim.AdamW(parameters, lr=LR, weight_decay=WD)

            def step():
                loss = F.cross_entropy(forward().reshape(-1, 10), y.reshape(-1)) * k
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            return step

        fns = {
            "explicit": step_fn(lambda ens=ens, x=x: ens(x), list(ens.parameters())),
            "vmap": step_fn(lambda p=params, b=buffers, x=x: vmap(call)(p, b, x), list(params.values())),
        }
        ms = {}
        for fn in fns.values():  # warm-up
            for _ in range(5):
                fn()
        samples = {name: [] for name in fns}
        for _ in range(3):  # interleaved rounds, median per engine
            for name, fn in fns.items():
                _sync(device)
                start = time.perf_counter()
                for _ in range(steps):
                    fn()
                _sync(device)
                samples[name].append((time.perf_counter() - start) / steps * 1e3)
        ms = {name: statistics.median(v) for name, v in samples.items()}
        rows.append((arch, shape, ms["explicit"], ms["vmap"]))
    return rows


def _machine() -> str:
    try:
        from benchmarks._timing import machine

        return machine()
    except ImportError:
        return f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def _engine_table(device: torch.device, k: int) -> list[str]:
    times, accuracy = compare_engines(device, k)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    best = {name: min(ts) for name, ts in times.items()}
    lines = [
        f"| engine ({device.type}, K = {k}) | median | best | median / stacked | best / stacked "
        "| mean member test accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for name in times:
        lines.append(
            f"| {name} | {med[name]:.2f} s | {best[name]:.2f} s | {med[name] / med['stacked']:.1f}x "
            f"| {best[name] / best['stacked']:.1f}x | {accuracy[name]:.3f} |"
        )
    return lines


def main() -> str:
    """Run the comparison, print the markdown section and return it."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "## Training K members (stacked engine vs torchensemble vs python loop)",
        "",
        f"K = {K} members of `{ARCH}` on the 8x8 digits train split, {EPOCHS} epochs, batch {BATCH}, "
        f"AdamW(lr={LR}, weight_decay={WD}), constant lr; {REPEATS} interleaved runs after a 1-epoch warm-up. "
        "torchensemble: `VotingClassifier(n_estimators=K)`, `set_optimizer('AdamW', ...)`, "
        "`fit(DataLoader(shuffle=True), epochs)`, default `n_jobs`. "
        f"Machine: {_machine()}; 1-min load average at start {load:.2f}.",
        "",
    ]
    cpu = torch.device("cpu")
    lines += _engine_table(cpu, K)
    lines += [
        "",
        "Training step (forward + backward + AdamW), explicit stacked layers vs `stack_module_state` + `vmap`:",
        "",
    ]
    lines += ["| model, input (cpu, K = 8, batch 128) | explicit | vmap | vmap / explicit |", "|---|---|---|---|"]
    for arch, shape, explicit, vmapped in stacking_engines(cpu):
        lines.append(f"| {arch}, {shape} | {explicit:.2f} ms | {vmapped:.2f} ms | {vmapped / explicit:.2f}x |")
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        for k in (K, 32):
            lines += [""] + _engine_table(gpu, k)
    else:
        lines += ["", "(no cuda device here: the GPU rows, K = 8 and K = 32, are skipped)"]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
