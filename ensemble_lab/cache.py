"""Build-or-load of expensive tensors (generated data, trained weights, predictions).

An artefact is a ``dict[str, Tensor]`` saved as safetensors under ``cache_dir()/<kind>/<fingerprint>.safetensors``.
The fingerprint hashes the artefact's config *and* the source code of the modules that build it, so changing
either rebuilds instead of silently reusing stale results.  Safetensors holds tensors only: nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType

import torch
from safetensors.torch import load_file, save_file

from . import __version__

__all__ = ["cache_dir", "fingerprint", "load_or_build", "clear_cache"]

_ENV_VAR = "ENSEMBLE_LAB_CACHE"


def cache_dir() -> Path:
    """``$ENSEMBLE_LAB_CACHE`` if set, else ``~/.cache/ensemble_lab``."""
    root = os.environ.get(_ENV_VAR)
    return Path(root) if root else Path.home() / ".cache" / "ensemble_lab"


def fingerprint(config: Mapping, modules: Iterable[ModuleType] = ()) -> str:
    """16 hex digits identifying ``config`` (JSON-serialisable) and the source of ``modules``."""
    try:
        blob = json.dumps(dict(config), sort_keys=True, default=str)
    except TypeError as exc:
        raise ValueError(f"config must be JSON-serialisable, got {config!r}") from exc
    h = hashlib.sha256(blob.encode())
    h.update(__version__.encode())
    for module in modules:
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:16]


def load_or_build(
    kind: str,
    config: Mapping,
    build: Callable[[], Mapping[str, torch.Tensor]],
    modules: Iterable[ModuleType] = (),
) -> dict[str, torch.Tensor]:
    """Load the artefact ``kind`` for ``config`` from the cache, or ``build()`` it and save it.

    Tensors come back on the cpu; callers move them.  Writes are atomic (temp file + rename), so an
    interrupted build never leaves a half-written artefact behind.
    """
    if not kind or not kind.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"kind must be a short alphanumeric name, got {kind!r}")
    path = cache_dir() / kind / f"{fingerprint(config, modules)}.safetensors"
    if path.exists():
        return load_file(str(path))
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in build().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"config": json.dumps(dict(config), sort_keys=True, default=str)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return tensors


def clear_cache() -> None:
    """Delete every cached artefact (the next run rebuilds them)."""
    shutil.rmtree(cache_dir(), ignore_errors=True)
