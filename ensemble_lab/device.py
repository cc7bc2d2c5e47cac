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

from ._validation import check_seed

__all__ = ["default_device", "resolve_device", "seed_everything", "make_generator", "cpu_quota", "fit_threads_to_cpus"]

_ENV_VAR = "ENSEMBLE_LAB_DEVICE"


def default_device() -> torch.device:
    """The device new tensors go to: ``$ENSEMBLE_LAB_DEVICE`` if set, else cuda, then mps, then cpu."""
    forced = os.environ.get(_ENV_VAR)
    if forced:
        return resolve_device(forced, name=_ENV_VAR)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _available(dev: torch.device) -> str | None:
    """Why ``dev`` cannot be used on this machine, or None when it can."""
    if dev.type == "cpu":
        return None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA device is available on this machine"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f"this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
        return None
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        return None if mps is not None and mps.is_available() else "MPS is not available on this machine"
    return "only 'cpu', 'cuda', 'cuda:N' and 'mps' are supported"


def resolve_device(device: str | torch.device | None, name: str = "device") -> torch.device:
    """``None`` -> :func:`default_device`; a name or device -> that device, checked to exist on this machine.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None:
        return default_device()
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be a device name such as 'cpu' or 'cuda:0', or a torch.device, got {device!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}") from exc
    why = _available(dev)
    if why is not None:
        raise ValueError(f"{name} {str(device)!r} cannot be used: {why}")
    return dev


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices); ``seed`` an int in ``[0, 2**63 - 1]``."""
    seed = check_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator seeded with ``seed`` (an int in ``[0, 2**63 - 1]``, numpy ints too) on ``device``
    (a name or a torch.device that exists on this machine; not None).

    >>> make_generator(0).initial_seed()
    0
    """
    seed = check_seed(seed)
    if device is None:  # resolve_device(None) would pick the default device; a generator's device is explicit
        raise TypeError("device must be a device name such as 'cpu' or 'cuda:0', or a torch.device, got None")
    gen = torch.Generator(device=resolve_device(device))
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
