"""The cascades Lab: members run one after another, confident samples exit early (Xia & Bouganis, 2023)."""

from .lab import POLICIES, TARGETS, CascadesLab, CascadesResult, CascadesState
from .view import CascadesView

__all__ = ["CascadesLab", "CascadesResult", "CascadesState", "CascadesView", "POLICIES", "TARGETS"]
