"""The deep-ensembles Lab: weight the members of a trained ensemble and watch accuracy and calibration move."""

from .lab import DeepEnsemblesLab, DeepEnsemblesResult, DeepEnsemblesState
from .view import DeepEnsemblesView

__all__ = ["DeepEnsemblesLab", "DeepEnsemblesResult", "DeepEnsemblesState", "DeepEnsemblesView"]
