"""Ensembles that forecast: a Lorenz-96 world, the scores forecasters use, and learned ensemble forecasters.

- the world: :func:`lorenz96` (truth, noisy observations, an imperfect model; :mod:`.dynamics` holds the
  equations and the RK4 integrator), initial-condition perturbations (:func:`random_perturbations`,
  :func:`bred_vectors`) and the physics ensemble (:func:`physics_ensemble`);
- the scores (:mod:`.scores`): CRPS of an ensemble, standard and fair (:func:`crps_ensemble`), of a Gaussian
  and of a Gaussian mixture, the energy score, spread and skill (:func:`spread_skill_ratio`), the rank
  histogram (:func:`rank_histogram`) and its flatness, the Brier score and reliability of threshold events;
- learned forecasters, at small scale: the MSE emulator (:mod:`.emulator`), the CRPS-trained generator with
  noise inputs (FuXi-ENS's idea, :mod:`.crps_generator`), the flow-matching generator of members from two seeds
  (SEEDS's idea, :mod:`.seeds`), deep-ensemble Gaussian regressors (:mod:`.gaussian_members`), all behind
  :func:`ensemble_forecast` with the weights that ship with the package (:func:`load_forecasters`).

Members axis first everywhere: an ensemble is ``(M, ...)``; a forecast is ``(M, N, L + 1, J)`` (members, cases,
leads 0..L, variables).
"""

from .forecasters import FORECASTERS, LearnedForecasters, ensemble_forecast, forecast_cost, load_forecasters
from .perturbations import PERTURBATIONS, bred_vectors, initial_ensemble, physics_ensemble, random_perturbations
from .scores import (
    RankFlatness,
    SpreadSkill,
    ThresholdReliability,
    brier_threshold,
    crps_ensemble,
    crps_gaussian,
    crps_gaussian_mixture,
    energy_score,
    exceedance_probability,
    rank_histogram,
    rank_histogram_flatness,
    spread_skill,
    spread_skill_ratio,
    threshold_reliability,
)
from .world import Lorenz96World, climate_run, lorenz96

__all__ = [
    "lorenz96",
    "Lorenz96World",
    "climate_run",
    "PERTURBATIONS",
    "random_perturbations",
    "bred_vectors",
    "initial_ensemble",
    "physics_ensemble",
    "crps_ensemble",
    "crps_gaussian",
    "crps_gaussian_mixture",
    "energy_score",
    "spread_skill",
    "SpreadSkill",
    "spread_skill_ratio",
    "rank_histogram",
    "rank_histogram_flatness",
    "RankFlatness",
    "exceedance_probability",
    "brier_threshold",
    "threshold_reliability",
    "ThresholdReliability",
    "FORECASTERS",
    "LearnedForecasters",
    "ensemble_forecast",
    "forecast_cost",
    "load_forecasters",
]
