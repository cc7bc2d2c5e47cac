"""Train the course's learned forecasters and write the weights that ship with the package.

Run ``python -m ensemble_lab.forecast.forecasters_train [--out DIR] [--only PART ...] [--threads T]``.  The
defaults reproduce ``ensemble_lab/forecast/weights/forecasters.{safetensors,json}``: the same torch version on
the same kind of cpu with the same ``--threads`` (default 2) gives bit-identical weights (seeded data, seeded
initialisation and batch order, deterministic algorithms) with the same kernels: the shipped ones were made
with torch's, MKL's and oneDNN's instruction sets capped at AVX2 (``ATEN_CPU_CAPABILITY=avx2
MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2``, what ``make`` and the test session set on x86-64); on an
AVX-512 cpu without the cap the scores agree to about 0.001, not bit for bit.  ``--only`` trains some parts (the
others are copied from the shipped file, so the written file is complete); the emulator is needed by
"gaussian-members" and is loaded from the shipped file when it is not retrained.

Data (all from :mod:`~ensemble_lab.forecast.world`, with seeds none of the course's evaluation worlds use):

- ``emulator``: 20,000 states of the IMPERFECT model (forcing 8 + model error -0.5), 16 chains, one lead apart;
- ``crps-generator``: 20,000 states of the TRUE system, started from the truth plus observation noise 0.5;
- ``seeds`` / ``seeds-post-processed``: a training world of 1,000 cases, its 8-member physics ensemble
  (random perturbations of 0.5) at leads 0-10; targets a third member / the truth;
- ``gaussian-members``: the same training world, the emulator's forecast from each analysis, and the truth.

Afterwards the script scores every forecaster (31 members, fair CRPS averaged over variables and cases at
leads 1, 3, 5, 10 days) on the evaluation world ``lorenz96(n_cases=200, seed=0)`` and records it in the JSON,
with the recipe, the command and the training time (with ``--only``, only the retrained parts are scored
again).  About 2.5 minutes on 2 idle cpu cores (4 when they are shared): 110 s of training, 50 s of
scoring (the SEEDS generators sample 29 members x 200 cases x 11 leads x 8 flow steps each).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from ..device import cpu_quota, fit_threads_to_cpus
from .crps_generator import train_crps_generator
from .emulator import train_emulator
from .forecasters import (
    FORECASTERS,
    PARTS,
    LearnedForecasters,
    ensemble_forecast,
    forecaster_paths,
    load_forecasters,
)
from .gaussian_members import train_gaussian_members
from .perturbations import physics_ensemble
from .scores import crps_ensemble
from .seeds import train_seeds
from .world import climate_run, lorenz96

__all__ = ["RECIPE", "SCORED_LEADS", "train_part", "score_forecasters", "main"]

MODEL_ERROR = -0.5
OBS_NOISE = 0.5
RECIPE = {
    "emulator": dict(iterations=800, batch_size=256, lr=3e-3, hidden=24, layers=4, seed=0),
    "crps-generator": dict(iterations=800, batch_size=48, lr=3e-3, hidden=24, layers=4, seed=1, rollout=3, members=4),
    "seeds": dict(iterations=1000, batch_size=256, lr=3e-3, hidden=24, layers=4, seed=2),
    "seeds-post-processed": dict(iterations=1000, batch_size=256, lr=3e-3, hidden=24, layers=4, seed=3),
    "gaussian-members": dict(iterations=1000, batch_size=64, lr=3e-3, hidden=24, layers=4, seed=4, members=5),
}
DATA_SEEDS = dict(model_climate=11, truth_climate=12, training_world=13, training_ensemble=14)
SCORED_LEADS = (1, 3, 5, 10)
N_SAMPLES = 20_000


def _training_world():
    return lorenz96(n_cases=1000, seed=DATA_SEEDS["training_world"], model_error=MODEL_ERROR, obs_noise=OBS_NOISE)


def train_part(name: str, *, emulator=None, progress: bool = True):
    """Train part ``name`` with :data:`RECIPE`; returns ``(network, config, losses)``."""
    r = dict(RECIPE[name])
    if name == "emulator":
        states = climate_run(N_SAMPLES, forcing=8.0 + MODEL_ERROR, seed=DATA_SEEDS["model_climate"])
        net, losses = train_emulator(states, progress=progress, **r)
        return net, dict(hidden=r["hidden"], layers=r["layers"]), losses
    if name == "crps-generator":
        states = climate_run(N_SAMPLES, forcing=8.0, seed=DATA_SEEDS["truth_climate"])
        net, losses = train_crps_generator(states, OBS_NOISE, progress=progress, **r)
        return net, dict(hidden=r["hidden"], layers=r["layers"]), losses
    world = _training_world()
    if name in ("seeds", "seeds-post-processed"):
        ens = physics_ensemble(world, 8, OBS_NOISE, seed=DATA_SEEDS["training_ensemble"])
        targets = world.truth if name == "seeds-post-processed" else None
        net, losses = train_seeds(ens, targets, progress=progress, **r)
        return net, dict(hidden=r["hidden"], layers=r["layers"], max_lead=net.max_lead), losses
    if emulator is None:
        raise ValueError("train_part('gaussian-members') needs the trained emulator")
    control = emulator.rollout(world.analysis.float(), world.n_leads)
    net, losses = train_gaussian_members(control, world.truth, progress=progress, **r)
    return net, dict(members=r["members"], hidden=r["hidden"], layers=r["layers"], max_lead=net.max_lead), losses


def score_forecasters(forecasters: LearnedForecasters, names=FORECASTERS, n_members: int = 31) -> dict:
    """Fair CRPS of the forecasters ``names`` at :data:`SCORED_LEADS` on ``lorenz96(n_cases=200, seed=0)``."""
    world = lorenz96(n_cases=200, seed=0)
    truth = world.truth.float()
    out = {}
    for name in names:
        ens = ensemble_forecast(name, world, n_members, seed=0, forecasters=forecasters)
        crps = crps_ensemble(ens, truth, fair=True).mean(dim=(0, 2))
        out[name] = {str(lead): round(float(crps[lead]), 4) for lead in SCORED_LEADS}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m ensemble_lab.forecast.forecasters_train", description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the package's weights/)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=None, help="train these parts only")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (fixed, for reproducible runs)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    fit_threads_to_cpus()
    quota = cpu_quota()
    if quota is not None and quota < args.threads:
        print(f"note: {args.threads} threads on {quota} cpu(s): slower, same result", file=sys.stderr)
    parts = list(PARTS) if args.only is None else [p for p in PARTS if p in args.only]
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    try:
        shipped = None if args.only is None else load_forecasters()
        nets, configs, record = {}, {}, {}
        for name in PARTS:
            if name not in parts:
                nets[name] = shipped.part(name)
                configs[name] = shipped.meta["parts"][name]["config"]
                record[name] = shipped.meta["parts"][name] | {"retrained": False}
                continue
            start = time.perf_counter()
            with torch.random.fork_rng(devices=[]):
                net, config, losses = train_part(name, emulator=nets.get("emulator"), progress=not args.no_progress)
            seconds = time.perf_counter() - start
            nets[name], configs[name] = net, config
            record[name] = dict(
                config=config,
                recipe=RECIPE[name],
                seconds=round(seconds, 1),
                final_loss=round(sum(losses[-50:]) / len(losses[-50:]), 4),
                retrained=True,
            )
            print(f"{name}: {seconds:.1f} s, final loss {record[name]['final_loss']}", file=sys.stderr)
        forecasters = LearnedForecasters.from_parts(nets, meta={})
        # score what was retrained (and what depends on it); keep the shipped scores of the rest
        rescored = [
            n for n in FORECASTERS if n in ("physics", *parts) or (n == "gaussian-members" and "emulator" in parts)
        ]
        scores = score_forecasters(forecasters, rescored)
        if shipped is not None:
            scores = {n: scores.get(n, shipped.meta["fair_crps_31_members"][n]) for n in FORECASTERS}
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    weights_path, record_path = forecaster_paths(args.out)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    tensors = {f"{name}.{k}": v.detach().contiguous() for name in PARTS for k, v in nets[name].state_dict().items()}
    save_file(tensors, str(weights_path))
    meta = dict(
        training_command="python -m ensemble_lab.forecast.forecasters_train"
        + (" " + shlex.join(argv if argv is not None else sys.argv[1:]) if (argv or sys.argv[1:]) else ""),
        torch=torch.__version__,
        threads=args.threads,
        model_error=MODEL_ERROR,
        obs_noise=OBS_NOISE,
        data_seeds=DATA_SEEDS,
        parts=record,
        fair_crps_31_members=scores,
        scored_leads=list(SCORED_LEADS),
    )
    record_path.write_text(json.dumps(meta, indent=1) + "\n")
    for name, by_lead in scores.items():
        print(f"{name:22s} " + "  ".join(f"day {k}: {v:.3f}" for k, v in by_lead.items()))
    return meta


if __name__ == "__main__":  # pragma: no cover
    main()
