"""Interactive Labs: a State of declared settings, a compute step over cached predictions, and a View of widgets.

Every Lab is importable from here and named by one rule: the folder ``labs/<topic>/`` holds ``<Topic>Lab``,
``<Topic>State``, ``<Topic>Result`` (in ``lab.py``; the selection Lab's is ``SelectionLabResult``, since
``ensemble_lab.selection.SelectionResult`` is forward selection's) and ``<Topic>View`` (in ``view.py``).  See
CONTRIBUTING.md for how to add one.
"""

from .base import Lab, LabState, cached
from .calibration import CalibrationLab, CalibrationResult, CalibrationState, CalibrationView
from .cascades import CascadesLab, CascadesResult, CascadesState, CascadesView
from .deep_ensembles import DeepEnsemblesLab, DeepEnsemblesResult, DeepEnsemblesState, DeepEnsemblesView
from .forecast import ForecastLab, ForecastResult, ForecastState, ForecastView
from .forests import ForestsLab, ForestsResult, ForestsState, ForestsView
from .prompts import PromptsLab, PromptsResult, PromptsState, PromptsView
from .selection import SelectionLab, SelectionLabResult, SelectionState, SelectionView
from .soups import SoupsLab, SoupsResult, SoupsState, SoupsView
from .state import Setting
from .view import LabView

__all__ = [
    "Lab",
    "LabState",
    "LabView",
    "Setting",
    "cached",
    "CalibrationLab",
    "CalibrationResult",
    "CalibrationState",
    "CalibrationView",
    "CascadesLab",
    "CascadesResult",
    "CascadesState",
    "CascadesView",
    "DeepEnsemblesLab",
    "DeepEnsemblesResult",
    "DeepEnsemblesState",
    "DeepEnsemblesView",
    "ForecastLab",
    "ForecastResult",
    "ForecastState",
    "ForecastView",
    "PromptsLab",
    "PromptsResult",
    "PromptsState",
    "PromptsView",
    "SelectionLab",
    "SelectionLabResult",
    "SelectionState",
    "SelectionView",
    "SoupsLab",
    "SoupsResult",
    "SoupsState",
    "SoupsView",
    "ForestsLab",
    "ForestsResult",
    "ForestsState",
    "ForestsView",
]
