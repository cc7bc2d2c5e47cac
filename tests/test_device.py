import pytest
import torch

from ensemble_lab import device


def test_default_device_honours_the_environment(monkeypatch):
    monkeypatch.setenv("ENSEMBLE_LAB_DEVICE", "cpu")
    assert device.default_device() == torch.device("cpu")
    monkeypatch.delenv("ENSEMBLE_LAB_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert device.default_device().type == "cuda"
    else:
        assert device.default_device().type in ("cpu", "mps")


def test_resolve_device_and_bad_names():
    assert device.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be"):
        device.resolve_device("gpu0")


def test_seeding_is_reproducible_and_validated():
    device.seed_everything(3)
    a = torch.rand(3)
    device.seed_everything(3)
    assert torch.equal(a, torch.rand(3))
    assert torch.equal(
        torch.rand(2, generator=device.make_generator(5)), torch.rand(2, generator=device.make_generator(5))
    )
    for bad in (-1, 1.5, True):
        with pytest.raises((ValueError, TypeError), match="seed"):
            device.seed_everything(bad)


def test_threads_are_lowered_to_the_quota_and_never_raised():
    before = torch.get_num_threads()
    quota = device.cpu_quota()
    assert quota is None or quota >= 1
    try:
        torch.set_num_threads(1)
        assert device.fit_threads_to_cpus() == 1
        if quota is not None:
            torch.set_num_threads(quota + 3)
            assert device.fit_threads_to_cpus() == quota
    finally:
        torch.set_num_threads(before)


def test_make_generator_takes_numpy_seeds_and_refuses_no_device():
    import numpy as np

    assert device.make_generator(np.int64(7)).initial_seed() == 7
    device.seed_everything(np.int32(3))
    for bad in (None, "cuda:7", 1.5):
        with pytest.raises((ValueError, TypeError), match="device"):
            device.make_generator(0, bad)
    with pytest.raises(ValueError, match="seed"):
        device.make_generator(2**64)
