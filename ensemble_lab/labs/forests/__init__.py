"""The forests Lab: a random forest as an adaptive smoother (Curth, Jeffares & van der Schaar 2024), its weights at
a query point, its smoothness at and away from the training data, and the three mechanisms of its gain."""

from .lab import (
    AXIS,
    DISTANCES,
    LEAF_SIZES,
    N_TRAIN,
    N_TREES,
    NOISES,
    ForestsLab,
    ForestsResult,
    ForestsState,
    fit_key,
)
from .view import ForestsView

__all__ = [
    "ForestsLab",
    "ForestsResult",
    "ForestsState",
    "ForestsView",
    "fit_key",
    "AXIS",
    "DISTANCES",
    "LEAF_SIZES",
    "N_TRAIN",
    "N_TREES",
    "NOISES",
]
