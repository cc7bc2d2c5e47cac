"""The prompts Lab: a zero-shot classifier from a pool of prompt templates, weighted without labels (ZPE)."""

from .lab import TABLE_COLUMNS, WEIGHTINGS, PromptsLab, PromptsResult, PromptsState
from .view import PromptsView

__all__ = ["PromptsLab", "PromptsResult", "PromptsState", "PromptsView", "TABLE_COLUMNS", "WEIGHTINGS"]
