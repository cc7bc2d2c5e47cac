import json

import pytest
import torch
from safetensors import safe_open

from ensemble_lab import cache, combine


def test_builds_once_then_loads(tmp_cache):
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.arange(4.0)}

    a = cache.load_or_build("thing", {"n": 4}, build)
    b = cache.load_or_build("thing", {"n": 4}, build)
    assert calls == [1]
    assert torch.equal(a["x"], b["x"])
    (path,) = (tmp_cache / "thing").glob("*.safetensors")
    with safe_open(str(path), "pt") as f:
        assert json.loads(f.metadata()["config"]) == {"n": 4}
    assert not list((tmp_cache / "thing").glob("*.tmp"))


def test_config_and_code_are_part_of_the_key(tmp_cache):
    assert cache.fingerprint({"n": 1}) != cache.fingerprint({"n": 2})
    assert cache.fingerprint({"n": 1}) != cache.fingerprint({"n": 1}, modules=[combine])
    assert cache.fingerprint({"a": 1, "b": 2}) == cache.fingerprint({"b": 2, "a": 1})


def test_a_failed_build_leaves_nothing_behind(tmp_cache):
    def build():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cache.load_or_build("thing", {"n": 1}, build)
    assert not (tmp_cache / "thing").exists() or not list((tmp_cache / "thing").iterdir())


def test_bad_kind_and_clear(tmp_cache):
    with pytest.raises(ValueError, match="kind"):
        cache.load_or_build("../escape", {}, dict)
    cache.load_or_build("thing", {}, lambda: {"x": torch.zeros(1)})
    cache.clear_cache()
    assert not tmp_cache.exists()
