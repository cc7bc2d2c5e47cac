"""The forecasting Lab: ensemble forecasts of a Lorenz-96 world (physics and learned forecasters) and their scores."""

from .lab import (
    AMPLITUDES,
    MAX_MEMBERS,
    MODEL_ERRORS,
    N_CASES,
    QUANTILES,
    ForecastLab,
    ForecastResult,
    ForecastState,
    ensemble_key,
)
from .view import ForecastView

__all__ = [
    "ForecastLab",
    "ForecastResult",
    "ForecastState",
    "ForecastView",
    "ensemble_key",
    "AMPLITUDES",
    "MAX_MEMBERS",
    "MODEL_ERRORS",
    "N_CASES",
    "QUANTILES",
]
