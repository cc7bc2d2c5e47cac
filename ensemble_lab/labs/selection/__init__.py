"""The selection Lab: choose the team from a library of models, and choose source models for a new task."""

from .lab import HILL_SIZES, MAX_STEPS, SelectionLab, SelectionLabResult, SelectionState
from .view import SelectionView

__all__ = ["SelectionLab", "SelectionLabResult", "SelectionState", "SelectionView", "HILL_SIZES", "MAX_STEPS"]
