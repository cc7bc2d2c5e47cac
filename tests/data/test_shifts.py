"""The shifted test sets: corruption kinds, severities and their properties."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab.data import (
    SEVERITIES,
    SHIFT_KINDS,
    ImageDataset,
    load_digits,
    shift,
    shifted_sets,
)

from .conftest import toy_dataset as _toy

# ----------------------------------------------------------------------------------------------------------
# Shifts
# ----------------------------------------------------------------------------------------------------------


def _mean_distance(a: ImageDataset, b: ImageDataset) -> float:
    return float((a.images - b.images).abs().mean())


@pytest.fixture(scope="module")
def digits_test():
    return load_digits(0)["test"]


def test_shift_kinds_and_severities():
    assert len(SHIFT_KINDS) >= 4
    assert len(set(SHIFT_KINDS)) == len(SHIFT_KINDS)
    assert tuple(SEVERITIES) == (1, 2, 3)


@pytest.mark.parametrize("kind", SHIFT_KINDS)
def test_shift_monotone_and_well_formed(kind, digits_test):
    clean = digits_test
    distances = []
    for severity in SEVERITIES:
        s = shift(clean, kind, severity, seed=0)
        assert s.images.shape == clean.images.shape
        assert s.images.dtype == torch.float32
        assert s.images.min() >= 0
        assert s.images.max() <= 1
        assert torch.equal(s.labels, clean.labels)
        assert s.classes == clean.classes
        assert s.name == f"digits/test/{kind}-{severity}"
        distances.append(_mean_distance(s, clean))
    assert 0 < distances[0] < distances[1] < distances[2], distances
    # deterministic
    again = shift(clean, kind, 2, seed=0)
    assert torch.equal(again.images, shift(clean, kind, 2, seed=0).images)


@pytest.mark.parametrize("shape", [(6, 3, 32, 32), (5, 1, 16, 16), (4, 3, 8, 12)])
def test_shift_any_image_shape_monotone(shape):
    ds = _toy(*shape)
    before = ds.images.clone()
    for kind in SHIFT_KINDS:
        d = [_mean_distance(shift(ds, kind, s, seed=1), ds) for s in SEVERITIES]
        assert d[0] < d[1] < d[2], (kind, d)
    assert torch.equal(ds.images, before)


def test_shift_seed_matters_for_random_kinds(digits_test):
    for kind in ("noise", "salt_pepper", "occlusion"):
        assert not torch.equal(shift(digits_test, kind, 2, seed=0).images, shift(digits_test, kind, 2, seed=1).images)


@settings(max_examples=25, deadline=None)
@given(
    c=st.sampled_from([1, 3]),
    h=st.integers(4, 20),
    w=st.integers(4, 20),
    kind=st.sampled_from(SHIFT_KINDS),
    severity=st.sampled_from(SEVERITIES),
    seed=st.integers(0, 2**31),
    data_seed=st.integers(0, 1000),
)
def test_shift_properties(c, h, w, kind, severity, seed, data_seed):
    ds = _toy(3, c, h, w, seed=data_seed)
    s = shift(ds, kind, severity, seed=seed)
    assert s.images.shape == ds.images.shape
    assert torch.isfinite(s.images).all()
    assert s.images.min() >= 0
    assert s.images.max() <= 1
    assert torch.equal(s.labels, ds.labels)


def test_shift_bad_input(digits_test):
    with pytest.raises(ValueError, match="kind"):
        shift(digits_test, "fog", 1)
    for bad in (0, 4, 1.0, True):
        with pytest.raises(ValueError, match="severity"):
            shift(digits_test, "noise", bad)
    with pytest.raises(ValueError, match="seed"):
        shift(digits_test, "noise", 1, seed=-3)
    with pytest.raises(TypeError, match="dataset"):
        shift(digits_test.images, "noise", 1)


def test_shifted_sets(digits_test):
    sets = shifted_sets(digits_test, seed=0)
    assert list(sets) == [f"{k}-{s}" for k in SHIFT_KINDS for s in SEVERITIES]
    for key, ds in sets.items():
        kind, severity = key.rsplit("-", 1)
        assert torch.equal(ds.images, shift(digits_test, kind, int(severity), seed=0).images)
        assert torch.equal(ds.labels, digits_test.labels)
        assert ds.name == f"digits/test/{key}"
    cached = shifted_sets(digits_test, seed=0)
    assert all(torch.equal(cached[k].images, sets[k].images) for k in sets)
    other = shifted_sets(digits_test, seed=1)
    assert not torch.equal(other["noise-1"].images, sets["noise-1"].images)
    # a different dataset is a different cache entry
    val = load_digits(0)["val"]
    assert len(shifted_sets(val)["blur-1"]) == len(val)
