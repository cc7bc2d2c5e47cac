"""combine and learn_weights against slow references and scipy's constrained optimiser."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from ensemble_lab.combine import RULES, best_member, combine, learn_weights


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference_combine(logits, weights, rule, temperature=1.0):
    """Per-sample loops over plain numpy: obviously correct, slow."""
    k, n, c = logits.shape
    w = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    out = np.zeros((n, c))
    for i in range(n):
        members = [logits[j, i] / temperature for j in range(k)]
        if rule == "prob":
            out[i] = sum(w[j] * _softmax(members[j]) for j in range(k))
        elif rule == "logit":
            out[i] = _softmax(sum(w[j] * members[j] for j in range(k)))
        elif rule == "geo":
            logs = [np.log(_softmax(m)) for m in members]
            out[i] = _softmax(sum(w[j] * logs[j] for j in range(k)))
        else:
            for j in range(k):
                out[i, int(np.argmax(members[j]))] += w[j]
    return out


@pytest.fixture
def member_logits():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 50, 5, generator=g, dtype=torch.float64) * 2


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_combine_matches_reference(member_logits, rule, temperature):
    weights = [0.1, 0.4, 0.2, 0.3]
    got = combine(member_logits, weights, rule=rule, temperature=temperature)
    want = reference_combine(member_logits.numpy(), weights, rule, temperature)
    assert got.shape == (50, 5)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, atol=1e-10)


@pytest.mark.parametrize("rule", RULES)
def test_uniform_default_and_scale_invariance(member_logits, rule):
    a = combine(member_logits, None, rule=rule)
    b = combine(member_logits, [3.0, 3.0, 3.0, 3.0], rule=rule)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("rule", ["prob", "logit", "geo"])
def test_identical_members_equal_the_member(member_logits, rule):
    one = member_logits[:1]
    stacked = one.expand(5, -1, -1)
    torch.testing.assert_close(combine(stacked, rule=rule), torch.softmax(one[0], -1))


@pytest.mark.parametrize("rule", ["prob", "logit", "geo"])
def test_one_hot_weights_select_a_member(member_logits, rule):
    got = combine(member_logits, [0, 0, 1, 0], rule=rule)
    torch.testing.assert_close(got, torch.softmax(member_logits[2], -1))


def test_numpy_input_and_float32(member_logits):
    got = combine(member_logits.float().numpy(), rule="prob")
    assert isinstance(got, torch.Tensor)
    assert got.dtype == torch.float32


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 5),
    n=st.integers(1, 8),
    c=st.integers(2, 6),
    seed=st.integers(0, 10_000),
    rule=st.sampled_from(RULES),
)
def test_rows_on_simplex_and_member_order_irrelevant(k, n, c, seed, rule):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(k, n, c, generator=g, dtype=torch.float64) * 3
    w = torch.rand(k, generator=g, dtype=torch.float64) + 0.01
    p = combine(z, w, rule=rule)
    assert torch.all(p >= 0)
    torch.testing.assert_close(p.sum(-1), torch.ones(n, dtype=torch.float64))
    perm = torch.randperm(k, generator=g)
    torch.testing.assert_close(combine(z[perm], w[perm], rule=rule), p)


def _nll(logits, labels, w, rule):
    p = reference_combine(logits, w, rule)
    return -np.mean(np.log(np.maximum(p[np.arange(len(labels)), labels], 1e-300)))


def _scipy_simplex_fit(logits, labels, rule):
    k = logits.shape[0]
    res = minimize(
        lambda w: _nll(logits, labels, np.maximum(w, 0) + 1e-300, rule),
        np.full(k, 1 / k),
        method="SLSQP",
        bounds=[(0, 1)] * k,
        constraints=[{"type": "eq", "fun": lambda w: np.sum(w) - 1}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    return res.fun


def _members_of_varying_quality(seed=0, k=4, n=300, c=4):
    g = np.random.default_rng(seed)
    y = g.integers(0, c, n)
    onehot = np.eye(c)[y]
    # member j sees the label with strength s_j, plus its own noise: better members have larger s_j
    strengths = np.linspace(0.2, 2.5, k)
    logits = np.stack([s * onehot * 2 + g.normal(size=(n, c)) * 1.5 for s in strengths])
    return logits, y


@pytest.mark.parametrize("rule", ["prob", "logit", "geo"])
def test_learn_weights_reaches_scipy_optimum(rule):
    logits, y = _members_of_varying_quality()
    w = learn_weights(torch.tensor(logits), torch.tensor(y), rule=rule)
    assert w.shape == (4,)
    assert torch.all(w >= 0)
    assert abs(float(w.sum()) - 1) < 1e-9
    ours = _nll(logits, y, w.numpy(), rule)
    oracle = _scipy_simplex_fit(logits, y, rule)
    assert ours <= oracle + 1e-4
    assert ours <= _nll(logits, y, np.full(4, 0.25), rule) + 1e-9


def test_learn_weights_downweights_a_useless_member():
    logits, y = _members_of_varying_quality()
    noise = np.random.default_rng(1).normal(size=logits[0].shape) * 3
    logits = np.concatenate([logits, noise[None]])
    w = learn_weights(torch.tensor(logits), torch.tensor(y), rule="prob")
    assert float(w[-1]) < 0.02
    assert int(w.argmax()) == 3  # the strongest member carries most weight


def test_best_member():
    logits, y = _members_of_varying_quality()
    assert best_member(logits, y) == 3
    assert best_member(logits, y, by="nll") == 3


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([0.5, -0.1, 0.3, 0.3], "non-negative"),
        ([0.0, 0.0, 0.0, 0.0], "sum > 0"),
        ([0.5, float("nan"), 0.3, 0.2], "finite"),
        ([0.5, 0.5], r"shape \(4,\), one entry per member"),
    ],
)
def test_bad_weights(member_logits, weights, match):
    with pytest.raises(ValueError, match=match) as info:
        combine(member_logits, weights)
    assert "weights" in str(info.value)


def test_bad_arguments(member_logits):
    with pytest.raises(ValueError, match="rule must be one of"):
        combine(member_logits, rule="median")
    with pytest.raises(ValueError, match="temperature"):
        combine(member_logits, temperature=0)
    with pytest.raises(ValueError, match=r"member_logits must have shape \(K, N, C\)"):
        combine(member_logits[0])
    bad = member_logits.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="member_logits must be finite"):
        combine(bad)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\]"):
        learn_weights(member_logits, torch.full((50,), 7))
    with pytest.raises(ValueError, match=r"labels must have shape \(50,\)"):
        learn_weights(member_logits, torch.zeros(49, dtype=torch.long))
    with pytest.raises(ValueError, match="vote"):
        learn_weights(member_logits, torch.zeros(50, dtype=torch.long), rule="vote")


def test_temperature_that_overflows_the_logits_is_refused():
    from ensemble_lab.combine import Combiner

    z = torch.randn(3, 10, 4, generator=torch.Generator().manual_seed(2))
    y = torch.arange(10) % 4
    for call in (
        lambda: combine(z, temperature=1e-320),
        lambda: Combiner(z, 1e-320),
        lambda: learn_weights(z, y, temperature=1e-320),
    ):
        with pytest.raises(ValueError, match=r"member_logits / temperature \(temperature=1e-320\)"):
            call()
    assert torch.isfinite(combine(z, temperature=1e-3)).all()  # small but representable: accepted


def test_labels_on_another_device_are_refused_not_moved():
    z = torch.randn(2, 10, 3, generator=torch.Generator().manual_seed(3))
    y = torch.arange(10) % 3
    for fn in (learn_weights, best_member):
        with pytest.raises(ValueError, match="labels must be on the same device"):
            fn(z, y.to("meta"))
    assert best_member(z, y.numpy()) == best_member(z, y)  # numpy labels are placed on the logits' device


def test_a_boolean_among_the_weights_is_refused_by_name():
    """numpy reads [0.5, True, 0.2] as floats; a weight of True is a mistake, not 1.0 (found by the census)."""
    z = torch.randn(3, 5, 4)
    with pytest.raises(TypeError, match=r"weights must be a sequence of 3 real numbers, got \[0.5, True, 0.2\]"):
        combine(z, [0.5, True, 0.2])
