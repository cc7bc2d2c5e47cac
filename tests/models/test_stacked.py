"""StackedEnsemble: K members in one pass, equal to the separate members in outputs and gradients."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ensemble_lab.models import (
    StackedConv2d,
    StackedEnsemble,
    StackedLinear,
    build_model,
    macs,
    member_seed,
)


# ----------------------------------------------------------------------------- stacked
@pytest.mark.parametrize("name", ["mlp-s", "mlp-l", "cnn-s", "cnn-l"])
@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 12, 10)])
def test_stacked_forward_equals_separate_members(name, shape):
    k = 3
    ens = StackedEnsemble(name, k, shape, 10, seed=4)
    separate = [build_model(name, shape, 10, seed=member_seed(4, i)) for i in range(k)]
    x = torch.rand(5, *shape)
    xs = torch.rand(k, 5, *shape)
    with torch.no_grad():
        out = ens(x)
        out_per_member = ens(xs)
        ref = torch.stack([m(x) for m in separate])
        ref_per_member = torch.stack([m(xi) for m, xi in zip(separate, xs, strict=False)])
    assert out.shape == (k, 5, 10)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_per_member, ref_per_member, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["mlp-m", "cnn-s"])
def test_stacked_gradients_equal_separate_gradients(name):
    k, shape = 3, (1, 8, 8)
    ens = StackedEnsemble(name, k, shape, 10, seed=1)
    separate = ens.members()
    xs, ys = torch.rand(k, 6, *shape), torch.randint(0, 10, (k, 6))
    loss = F.cross_entropy(ens(xs).reshape(-1, 10), ys.reshape(-1)) * k
    loss.backward()
    for i, (m, x, y) in enumerate(zip(separate, xs, ys, strict=False)):
        F.cross_entropy(m(x), y).backward()
        for (key, p), (_, stacked) in zip(m.named_parameters(), ens.named_parameters(), strict=False):
            torch.testing.assert_close(stacked.grad[i], p.grad, atol=1e-5, rtol=1e-4, msg=key)


def test_members_round_trip_and_subset():
    ens = StackedEnsemble("cnn-s", 4, (1, 8, 8), 10, seed=2)
    members = ens.members()
    assert len(members) == 4
    assert all(isinstance(m, nn.Sequential) for m in members)
    again = StackedEnsemble.from_members(members)
    assert again.k == 4
    assert again.spec == ens.spec
    assert again.input_shape == (1, 8, 8)
    for (key, a), (_, b) in zip(ens.state_dict().items(), again.state_dict().items(), strict=False):
        assert torch.equal(a, b), key
    x = torch.rand(7, 1, 8, 8)
    with torch.no_grad():
        sub = ens.subset([3, 1])
        torch.testing.assert_close(sub(x), ens(x)[[3, 1]])
    # state-dict keys are those of one member, with a leading K axis
    assert list(ens.state_dict()) == list(members[0].state_dict())
    assert ens.macs_per_member == macs("cnn-s", (1, 8, 8), 10)


def test_stacked_rejects_bad_input():
    ens = StackedEnsemble("mlp-s", 2, (1, 8, 8), 10)
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\) or \(2, N, 1, 8, 8\)"):
        ens(torch.rand(4, 1, 16, 16))
    with pytest.raises(ValueError, match="x must have shape"):
        ens(torch.rand(3, 4, 1, 8, 8))
    with pytest.raises(ValueError, match="k must be"):
        StackedEnsemble("mlp-s", 0)
    with pytest.raises(ValueError, match="members"):
        StackedEnsemble.from_members([])
    with pytest.raises(ValueError, match="members must have"):
        StackedEnsemble.from_members([build_model("mlp-s", (1, 8, 8))], "mlp-s", (1, 16, 16), 10)


# bad-input regressions ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-1, 0, True, None, 2.0, 2**64])
def test_stacked_layers_check_their_sizes(bad):
    with pytest.raises((ValueError, TypeError), match="^k must"):
        StackedLinear(bad, 4, 3)
    with pytest.raises((ValueError, TypeError), match="^kernel_size must"):
        StackedConv2d(2, 1, 2, bad)


def test_forward_accepts_numpy_and_float64_and_refuses_non_finite_input():
    ens = StackedEnsemble("mlp-xs", 2, (1, 8, 8), 4, seed=0).eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        want = ens(x)
        assert torch.equal(ens(x.numpy()), want)
        torch.testing.assert_close(ens(x.double()), want)
        assert ens(x[:0]).shape == (2, 0, 4)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x must be finite"):
        ens(bad)
    with pytest.raises(TypeError, match="x"):
        ens(x.to(torch.complex64))


def test_subset_takes_tensors_and_refuses_generators():
    ens = StackedEnsemble("mlp-xs", 3, (1, 8, 8), 4, seed=0)
    assert torch.equal(ens.subset(torch.tensor([2, 0])).state_dict()["1.weight"], ens.state_dict()["1.weight"][[2, 0]])
    with pytest.raises(TypeError, match="indices"):
        ens.subset(i for i in range(2))
    with pytest.raises(ValueError, match="indices"):
        ens.subset([3])


def test_from_members_names_the_bad_member():
    a, b = (build_model("mlp-xs", (1, 8, 8), 4, seed=s) for s in (0, 1))
    with pytest.raises(TypeError, match=r"members\[1\]"):
        StackedEnsemble.from_members([a, "x"])
    other = build_model("mlp-s", (1, 8, 8), 4, seed=0)
    with pytest.raises(ValueError, match=r"members must have .* members\[1\]"):
        StackedEnsemble.from_members([a, other])
    assert StackedEnsemble.from_members((a, b)).k == 2
