"""Interactive Labs: a State of settings, a compute step over cached predictions, and a View of widgets."""

from .base import Lab, LabState
from .calibration import CalibrationLab, CalibrationResult, CalibrationState
from .deep_ensembles import DeepEnsembleLab, DeepEnsembleResult, DeepEnsembleState

__all__ = ["Lab", "LabState", "DeepEnsembleLab", "DeepEnsembleResult", "DeepEnsembleState", "CalibrationLab",
           "CalibrationResult", "CalibrationState"]
