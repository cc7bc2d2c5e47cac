"""The soups Lab: mix fine-tuned weights (soups, WiSE-FT, BANG) and watch ID and shifted accuracy respond."""

from .lab import ALL_SHIFTED, SHIFT_CHOICES, SOUPS, SoupsLab, SoupsResult, SoupsState
from .view import SoupsView

__all__ = ["SoupsLab", "SoupsResult", "SoupsState", "SoupsView", "ALL_SHIFTED", "SOUPS", "SHIFT_CHOICES"]
