"""The model family: names, cost order, multiply-accumulate counts, seeding and spec checks."""

import numpy as np
import pytest
import torch
from torch import nn

from ensemble_lab.models import (
    FAMILY,
    ModelSpec,
    build_model,
    get_spec,
    macs,
    member_seed,
)

SHAPES = [(1, 16, 16), (1, 8, 8), (3, 12, 10)]


def hook_macs(model: nn.Module, input_shape) -> int:
    """Independent counter: MACs of every Linear/Conv2d seen in a real forward pass, from the tensors' shapes."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features * output.shape[:-1].numel() // output.shape[0]
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_position = module.in_channels // module.groups * kh * kw
            total += output[0].numel() * per_position

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return total


# ----------------------------------------------------------------------------- family
def test_family_names_and_cost_order():
    assert {"mlp-xs", "mlp-s", "mlp-m", "mlp-l", "cnn-s", "cnn-m", "cnn-l"} <= set(FAMILY)
    costs = [macs(spec, (1, 16, 16), 10) for spec in FAMILY.values()]
    assert costs == sorted(costs)
    assert len(set(costs)) == len(costs)


def test_macs_hand_count_tiny_mlp():
    spec = ModelSpec("tiny-mlp", "mlp", (3,))
    # Linear(4 -> 3) + Linear(3 -> 2)
    assert macs(spec, (1, 2, 2), 2) == 4 * 3 + 3 * 2


def test_macs_hand_count_tiny_cnn():
    spec = ModelSpec("tiny-cnn", "cnn", (2,), hidden=(3,))
    # conv 1->2, 3x3 at 4x4 positions; pool -> 2x2; Linear(2*2*2 -> 3); Linear(3 -> 2)
    assert macs(spec, (1, 4, 4), 2) == 2 * 16 * 1 * 9 + 8 * 3 + 3 * 2


def test_macs_hand_count_family_member():
    # cnn-s at 16x16: conv 1->8 at 16x16, conv 8->16 at 8x8, Linear(16*4*4 -> 10)
    assert macs("cnn-s", (1, 16, 16), 10) == 8 * 256 * 9 + 16 * 64 * 8 * 9 + 256 * 10
    assert macs("mlp-m", (1, 16, 16), 10) == 256 * 128 + 128 * 128 + 128 * 10


@pytest.mark.parametrize("name", list(FAMILY))
@pytest.mark.parametrize("shape", SHAPES + [(2, 3, 3), (1, 1, 1)])
def test_macs_match_hook_counter(name, shape):
    model = build_model(name, shape, 7, seed=0)
    assert macs(name, shape, 7) == hook_macs(model, shape)
    assert model(torch.rand(3, *shape)).shape == (3, 7)


def test_build_model_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = build_model("cnn-s", seed=5)
    after = torch.rand(3)
    assert torch.equal(before, after)
    b = build_model("cnn-s", seed=5)
    c = build_model("cnn-s", seed=6)
    for (ka, va), (_, vb), (_, vc) in zip(
        a.state_dict().items(), b.state_dict().items(), c.state_dict().items(), strict=False
    ):
        assert torch.equal(va, vb), ka
        assert not torch.equal(va, vc), ka
    assert a.spec is FAMILY["cnn-s"]
    assert a.input_shape == (1, 16, 16)
    assert a.n_classes == 10


def test_member_seed_distinct():
    seeds = {member_seed(s, i, stream) for s in range(4) for i in range(16) for stream in (0, 1)}
    assert len(seeds) == 4 * 16 * 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(name="x", kind="rnn", widths=(3,)), "kind"),
        (dict(name="x", kind="mlp", widths=(0,)), "widths"),
        (dict(name="x", kind="cnn", widths=()), "widths"),
        (dict(name="x", kind="mlp", widths=(3,), hidden=(2,)), "hidden"),
        (dict(name="x", kind="cnn", widths=(3,), kernel_size=2), "kernel_size"),
    ],
)
def test_model_spec_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelSpec(**kwargs)


def test_bad_names_and_shapes():
    with pytest.raises(ValueError, match="spec"):
        get_spec("mlp-xxl")
    with pytest.raises(TypeError, match="spec"):
        get_spec(3)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("mlp-s", (16, 16))
    with pytest.raises(ValueError, match="n_classes"):
        macs("mlp-s", (1, 8, 8), 1)


# bad-input regressions ------------------------------------------------------------------------------------
def test_model_spec_accepts_numpy_int_widths_and_refuses_non_sequences():
    spec = ModelSpec("mlp-xs", "mlp", (np.int64(16),))
    assert spec == FAMILY["mlp-xs"]
    assert type(spec.widths[0]) is int
    for bad in (None, 16, "16"):
        with pytest.raises(TypeError, match="widths"):
            ModelSpec("x", "mlp", bad)
    with pytest.raises(ValueError, match="widths"):
        ModelSpec("x", "mlp", (2**70,))


def test_huge_sizes_and_seeds_are_refused_by_name():
    with pytest.raises(ValueError, match="n_classes"):
        build_model("mlp-xs", (1, 8, 8), 2**64)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("mlp-xs", (1, 2**70, 8), 4)
    with pytest.raises(ValueError, match="seed"):
        build_model("mlp-xs", (1, 8, 8), 4, seed=2**64)


def test_member_seed_checks_stream():
    assert member_seed(3, 1, np.int64(1)) == member_seed(3, 1, 1)
    for bad, error in ((2, ValueError), (-1, ValueError), (True, TypeError), ("0", TypeError), (0.5, TypeError)):
        with pytest.raises(error, match="stream"):
            member_seed(0, 0, bad)
