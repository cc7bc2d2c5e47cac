"""Device choice and seeding.

Routines never move data behind the caller's back; only code that *creates* tensors (data generation,
training) asks this module which device to use.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["default_device", "resolve_device", "seed_everything", "make_generator", "cpu_quota", "fit_threads_to_cpus"]

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


def cpu_quota() -> int | None:
    """CPUs this process may really use: the cgroup CPU quota (containers, Binder) or the affinity mask.

    ``None`` when neither is readable.  ``os.cpu_count()`` often reports the host's cores instead.
    """
    limits = []
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]  # cgroup v2
        if quota != "max":
            limits.append(math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        try:  # cgroup v1
            quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if quota > 0:
                limits.append(math.ceil(quota / period))
        except (OSError, ValueError):
            pass
    if hasattr(os, "sched_getaffinity"):
        limits.append(len(os.sched_getaffinity(0)))
    return max(1, min(limits)) if limits else None


def fit_threads_to_cpus() -> int:
    """Lower torch's intra-op threads to :func:`cpu_quota` if it uses more; returns the thread count.

    More threads than CPUs makes every small tensor operation wait on the scheduler (measured here: a Lab
    update went from 6 ms to over 100 ms on a loaded 2-core machine).  Never raises the count.
    """
    quota = cpu_quota()
    if quota is not None and torch.get_num_threads() > quota:
        torch.set_num_threads(quota)
    return torch.get_num_threads()
