"""The course's forecasters behind one call: the physics ensemble and the four learned ones.

:func:`ensemble_forecast` gives every forecaster's ensemble ``(M, N, L + 1, J)`` for a
:class:`~ensemble_lab.forecast.world.Lorenz96World` (float32, lead 0 first), so scores, plots and the Lab treat
them alike.  The learned forecasters are small networks trained once by
``python -m ensemble_lab.forecast.forecasters_train`` and shipped as safetensors next to this module
(:func:`load_forecasters`); training them all takes about 2 minutes on 2 cpu cores, too long for a notebook.

==========================  ===================================================================================
``"physics"``               the imperfect model from perturbed analyses (random or bred perturbations)
``"emulator"``              the MSE-trained emulator of the imperfect model's step, from the same perturbed analyses
``"crps-generator"``        FuXi-ENS's idea: noise inputs, trained on CRPS against the truth, from the analysis
``"seeds"``                 SEEDS's idea: 2 physics members plus ``M - 2`` generated from them (emulating the
                            ensemble)
``"seeds-post-processed"``  the same, but the generator was trained towards the truth (SEEDS-GPP)
``"gaussian-members"``      a deep ensemble of 5 Gaussian regressors on the emulator's forecast from the analysis;
                            the ensemble is ``M`` draws from their mixture (stratified over the members)
==========================  ===================================================================================

Cost (:func:`forecast_cost`) is counted in multiply-accumulates (MACs) per member and lead, the physics
counting its RK4 steps' arithmetic.  At this scale the physics is CHEAPER than any network: SEEDS's saving
(a generated member at under a tenth of a physics member) needs a physics model far more expensive than
Lorenz-96; the notebook says so.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._validation import check_choice, check_in_range, check_int, check_seed
from .crps_generator import CRPSGenerator
from .emulator import StepEmulator
from .gaussian_members import GaussianMembers, sample_mixture
from .perturbations import PERTURBATIONS, initial_ensemble, physics_ensemble
from .seeds import SeedsGenerator
from .world import Lorenz96World, check_world

__all__ = [
    "FORECASTERS",
    "LearnedForecasters",
    "WEIGHTS_DIR",
    "ensemble_forecast",
    "forecast_cost",
    "forecaster_paths",
    "load_forecasters",
    "PHYSICS_MACS_PER_STEP",
]

FORECASTERS = ("physics", "emulator", "crps-generator", "seeds", "seeds-post-processed", "gaussian-members")
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: multiply-accumulates per variable of one RK4 step of Lorenz-96: 4 tendencies of 2 products and 3 sums each
#: (5 MACs counting an add as one), 3 stage updates and the final weighted sum (about 7 more)
PHYSICS_MACS_PER_STEP = 27
#: the parts of the shipped file, in the order the script trains them
PARTS = ("emulator", "crps-generator", "seeds", "seeds-post-processed", "gaussian-members")


@dataclass(frozen=True)
class LearnedForecasters:
    """The trained networks (eval mode, cpu) and the training record (``meta``: recipe, command, scores)."""

    emulator: StepEmulator
    generator: CRPSGenerator
    seeds: SeedsGenerator
    seeds_post_processed: SeedsGenerator
    gaussian: GaussianMembers
    meta: dict = field(repr=False)

    #: part name (:data:`PARTS`) -> the attribute that holds its network
    FIELDS = {
        "emulator": "emulator",
        "crps-generator": "generator",
        "seeds": "seeds",
        "seeds-post-processed": "seeds_post_processed",
        "gaussian-members": "gaussian",
    }

    @classmethod
    def from_parts(cls, nets: dict, meta: dict) -> LearnedForecasters:
        """The forecasters from ``{part name: network}`` (every name of :data:`PARTS`) and the record ``meta``."""
        return cls(**{field_: nets[name] for name, field_ in cls.FIELDS.items()}, meta=meta)

    def part(self, name: str):
        """The network of part ``name`` (one of :data:`PARTS`)."""
        return getattr(self, self.FIELDS[name])


def forecaster_paths(weights_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """``(weights .safetensors, record .json)`` in ``weights_dir`` (default: the shipped ones)."""
    if weights_dir is not None and not isinstance(weights_dir, (str, os.PathLike)):
        raise TypeError(f"weights_dir must be a folder path (a str or a pathlib.Path), got {weights_dir!r}")
    if weights_dir == "":
        raise ValueError("weights_dir must be a folder path, got an empty str")
    root = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
    return root / "forecasters.safetensors", root / "forecasters.json"


def build_part(name: str, config: dict):
    """An untrained network of part ``name`` with its recorded ``config``."""
    if name == "emulator":
        return StepEmulator(hidden=config["hidden"], layers=config["layers"])
    if name == "crps-generator":
        return CRPSGenerator(hidden=config["hidden"], layers=config["layers"])
    if name in ("seeds", "seeds-post-processed"):
        return SeedsGenerator(hidden=config["hidden"], layers=config["layers"], max_lead=config["max_lead"])
    return GaussianMembers(
        members=config["members"], hidden=config["hidden"], layers=config["layers"], max_lead=config["max_lead"]
    )


_LOADED: dict[tuple[str, float], LearnedForecasters] = {}


def load_forecasters(weights_dir: str | os.PathLike | None = None) -> LearnedForecasters:
    """The trained forecasters shipped with the package (read with safetensors, never unpickled; cached per
    file and modification time).  ``weights_dir`` loads another copy, e.g. a re-trained one."""
    from safetensors.torch import load_file

    weights, record = forecaster_paths(weights_dir)
    if not weights.exists() or not record.exists():
        raise FileNotFoundError(f"forecaster weights not found: expected {weights} and {record}")
    key = (str(weights), weights.stat().st_mtime)
    if key in _LOADED:
        return _LOADED[key]
    meta = json.loads(record.read_text())
    tensors = load_file(str(weights))
    nets = {}
    for name in PARTS:
        net = build_part(name, meta["parts"][name]["config"])
        prefix = name + "."
        net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)
        nets[name] = net.eval()
    out = LearnedForecasters.from_parts(nets, meta)
    _LOADED[key] = out
    return out


def _check_trained_on(world: Lorenz96World) -> None:
    """A ValueError unless ``world`` is of the kind the learned forecasters were trained on."""
    if world.n_variables != 40 or abs(world.forcing - 8.0) > 1e-12 or abs(world.lead_interval - 0.2) > 1e-12:
        raise ValueError(
            "the learned forecasters were trained on Lorenz-96 with 40 variables, F = 8 and leads 0.2 apart; "
            f"this world has {world.n_variables} variables, F = {world.forcing}, leads {world.lead_interval} apart"
        )


def ensemble_forecast(
    forecaster: str,
    world,
    n_members: int,
    *,
    amplitude: float | None = None,
    kind: str = "random",
    model_error: float | None = None,
    sampling_steps: int = 8,
    seed: int = 0,
    forecasters: LearnedForecasters | None = None,
) -> torch.Tensor:
    """The ensemble forecast ``(M, N, L + 1, J)`` (float32) of ``forecaster`` (one of :data:`FORECASTERS`).

    ``amplitude`` (default: the world's ``obs_noise``) and ``kind`` ("random" or "bred") perturb the analysis
    for "physics", "emulator" and the two physics seeds of "seeds*"; ``model_error`` (default: the world's)
    sets the physics' forcing error (the learned ones were trained at the world's default, -0.5).
    ``sampling_steps`` is the number of flow steps of the SEEDS generators.  ``seed`` draws everything random.
    """
    name = check_choice(forecaster, "forecaster", FORECASTERS)
    w = check_world(world)
    if name != "physics":  # the physics runs on any Lorenz-96 world, the networks only on the one they learned
        _check_trained_on(w)
    m = check_int(n_members, "n_members", minimum=2 if name.startswith("seeds") else 1, maximum=10_000)
    amp = w.obs_noise if amplitude is None else check_in_range(amplitude, "amplitude", 0.0, 100.0)
    kind = check_choice(kind, "kind", PERTURBATIONS)
    seed = check_seed(seed)
    steps = check_int(sampling_steps, "sampling_steps", minimum=1, maximum=1000)
    if name == "physics":
        return physics_ensemble(w, m, amp, kind=kind, model_error=model_error, seed=seed).float()
    nets = load_forecasters() if forecasters is None else forecasters
    if not isinstance(nets, LearnedForecasters):
        raise TypeError(f"forecasters must be a LearnedForecasters (load_forecasters()), got {type(nets).__name__}")
    if name == "emulator":
        start = initial_ensemble(w, m, amp, kind=kind, model_error=model_error, seed=seed)
        return nets.emulator.rollout(start.float(), w.n_leads)
    if name == "crps-generator":
        return nets.generator.ensemble(w.analysis, m, w.n_leads, seed=seed)
    if name == "gaussian-members":
        control = nets.emulator.rollout(w.analysis.float(), w.n_leads)
        mean, std = nets.gaussian.predict(control)
        return sample_mixture(mean, std, m, seed=seed)
    two = physics_ensemble(w, 2, amp, kind=kind, model_error=model_error, seed=seed).float()
    if m == 2:
        return two
    gen = nets.seeds if name == "seeds" else nets.seeds_post_processed
    return torch.cat([two, gen.sample(two, m - 2, steps=steps, seed=seed + 1)])


def forecast_cost(forecaster: str, *, n_variables: int = 40, sampling_steps: int = 8, forecasters=None) -> float:
    """Multiply-accumulates per member and lead interval (0.2 time units) of ``forecaster``.

    For "seeds*" it is the cost of a GENERATED member (the two physics seeds cost what physics members do);
    for "gaussian-members" it is one draw's share of the emulator's control run and the K members' heads.
    """
    name = check_choice(forecaster, "forecaster", FORECASTERS)
    n_variables = check_int(n_variables, "n_variables", minimum=4, maximum=10_000)
    if name == "physics":
        return float(PHYSICS_MACS_PER_STEP * n_variables * 4)
    nets = load_forecasters() if forecasters is None else forecasters
    if name == "emulator":
        return float(nets.emulator.macs_per_lead(n_variables))
    if name == "crps-generator":
        return float(nets.generator.macs_per_lead(n_variables))
    if name in ("seeds", "seeds-post-processed"):
        steps = check_int(sampling_steps, "sampling_steps", minimum=1, maximum=1000)
        return float(nets.part(name).macs_per_lead(n_variables, steps))
    return float(nets.emulator.macs_per_lead(n_variables) + nets.gaussian.macs_per_lead(n_variables))
