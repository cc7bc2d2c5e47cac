"""The calibration Lab: temperature-scale an ensemble, before or after pooling, and see calibration move."""

from .lab import ORDERS, CalibrationLab, CalibrationResult, CalibrationState
from .view import CalibrationView

__all__ = ["CalibrationLab", "CalibrationResult", "CalibrationState", "CalibrationView", "ORDERS"]
