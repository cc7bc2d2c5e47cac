"""Fixtures shared by every test module (the session-wide cache set-up is in the root conftest.py)."""

import pytest


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A fresh, empty cache folder for one test (``ENSEMBLE_LAB_CACHE`` points at it)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("ENSEMBLE_LAB_CACHE", str(path))
    return path
