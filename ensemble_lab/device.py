"""Device choice and seeding.

Routines never move data behind the caller's back; only code that *creates* tensors (data generation,
training) asks this module which device to use.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["default_device", "resolve_device", "seed_everything", "make_generator"]

_ENV_VAR = "ENSEMBLE_LAB_DEVICE"


def default_device() -> torch.device:
    """The device new tensors go to: ``$ENSEMBLE_LAB_DEVICE`` if set, else cuda, then mps, then cpu."""
    forced = os.environ.get(_ENV_VAR)
    if forced:
        return resolve_device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> :func:`default_device`; a name or device -> that device, validated."""
    if device is None:
        return default_device()
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from exc


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator seeded with ``seed`` on ``device``."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(seed)
    return gen
