"""Weight-space operations on tiny models, against hand-computed averages and a reference greedy loop."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ensemble_lab.soups import (
    _combine,
    greedy_soup,
    interpolate,
    interpolation_logits,
    learned_soup,
    task_arithmetic,
    uniform_soup,
)


def _model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def _states(n=3):
    states = []
    for i in range(n):
        m = _model(i)
        m.train()
        m(torch.randn(8, 3))  # moves the batch-norm statistics and num_batches_tracked
        states.append({k: v.clone() for k, v in m.state_dict().items()})
    return states


def test_interpolate_endpoints_are_exact_and_midpoint_is_the_average():
    a, b = _states(2)
    for key, v in interpolate(a, b, 0.0).items():
        assert torch.equal(v, a[key])
    one = interpolate(a, b, 1.0)
    for key, v in one.items():
        assert torch.equal(v, b[key] if v.is_floating_point() else a[key])
    mid = interpolate(a, b, 0.25)
    w = "0.weight"
    torch.testing.assert_close(mid[w], 0.75 * a[w] + 0.25 * b[w])
    torch.testing.assert_close(mid["1.running_mean"], 0.75 * a["1.running_mean"] + 0.25 * b["1.running_mean"])
    assert torch.equal(mid["1.num_batches_tracked"], a["1.num_batches_tracked"])  # integer buffer: from a
    assert interpolate(a, b, 1.5, extrapolate=True)[w].sub(-0.5 * a[w] + 1.5 * b[w]).abs().max() < 1e-6


def test_uniform_soup_is_the_hand_computed_mean_and_inputs_are_untouched():
    states = _states(3)
    before = {k: v.clone() for k, v in states[0].items()}
    soup = uniform_soup(states)
    for key in ("0.weight", "3.bias", "1.running_var"):
        torch.testing.assert_close(soup[key], (states[0][key] + states[1][key] + states[2][key]) / 3)
    assert all(torch.equal(states[0][k], v) for k, v in before.items())
    # the soup loads into the architecture
    m = _model(0)
    m.load_state_dict(soup)


def test_task_arithmetic_generalises_interpolation_and_soups():
    base, s1, s2 = _states(3)
    one = task_arithmetic(base, [s1], [0.3])
    torch.testing.assert_close(one["0.weight"], interpolate(base, s1, 0.3)["0.weight"])
    both = task_arithmetic(base, [s1, s2], [0.5, 0.5])
    torch.testing.assert_close(both["0.weight"], uniform_soup([s1, s2])["0.weight"])
    with pytest.raises(ValueError, match="lambdas must have one entry per state"):
        task_arithmetic(base, [s1, s2], [0.5])


def _reference_greedy(states, evaluate):
    own = [evaluate(s) for s in states]
    order = sorted(range(len(states)), key=lambda i: -own[i])
    kept, best = [order[0]], own[order[0]]
    for i in order[1:]:
        trial = kept + [i]
        mean = {k: sum(states[j][k].double() for j in trial) / len(trial) for k in states[0]}
        score = evaluate(mean)
        if score > best:
            kept, best = trial, score
    return kept


@pytest.mark.parametrize("target_scale", [0.0, 1.0])
def test_greedy_soup_matches_a_reference_loop(target_scale):
    states = _states(5)
    target = {k: target_scale * v.double() for k, v in uniform_soup(states[:3]).items()}

    def evaluate(sd):  # higher is better: closeness of the first layer to a target
        return -float((sd["0.weight"].double() - target["0.weight"]).norm())

    soup = greedy_soup(states, evaluate)
    assert soup.kept == _reference_greedy(states, evaluate)
    torch.testing.assert_close(soup["0.weight"], uniform_soup([states[i] for i in soup.kept])["0.weight"])
    assert soup.scores == sorted(soup.scores)


def test_greedy_soup_can_keep_a_single_ingredient():
    states = _states(3)
    scores = [1.0, 3.0, 2.0]
    soup = greedy_soup(states, lambda sd: 0.0, scores=scores)  # no soup beats the best ingredient's 3.0
    assert soup.kept == [1]
    assert torch.equal(soup["0.weight"], states[1]["0.weight"])


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda s: uniform_soup([]), ValueError, "at least one state dict"),
        (lambda s: uniform_soup(s[0]), TypeError, "list of state dicts"),
        (lambda s: uniform_soup([s[0], {k: v for k, v in s[1].items() if k != "3.bias"}]), ValueError, "'3.bias'"),
        (
            lambda s: uniform_soup([s[0], {**s[1], "0.weight": torch.zeros(2, 2)}]),
            ValueError,
            "'0.weight'\\] has shape",
        ),
        (lambda s: uniform_soup([s[0], {**s[1], "0.bias": torch.full((4,), float("nan"))}]), ValueError, "finite"),
        (lambda s: interpolate(s[0], s[1], 1.2), ValueError, "alpha must be in \\[0, 1\\]"),
        (lambda s: interpolate(s[0], s[1], float("nan")), ValueError, "alpha must be a finite number"),
        (lambda s: greedy_soup(s, "accuracy"), TypeError, "evaluate must be a callable"),
        (lambda s: greedy_soup(s, lambda sd: 0.0, scores=[1.0]), ValueError, "scores must have one entry per state"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call(_states(2))


def test_interpolation_logits_equals_loading_each_interpolated_model():
    a, b = _states(2)
    model = _model(7).eval()
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0))
    alphas = [0.0, 0.3, 0.5, 1.0]
    out = interpolation_logits(model, a, b, alphas, x)
    assert out.shape == (4, 10, 2)
    for i, alpha in enumerate(alphas):
        reference = _model(0).eval()
        reference.load_state_dict(interpolate(a, b, alpha))
        with torch.no_grad():
            torch.testing.assert_close(out[i], reference(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="alphas must be in"):
        interpolation_logits(model, a, b, [0.5, 2.0], x)
    with pytest.raises(ValueError, match="architecture"):
        interpolation_logits(nn.Linear(3, 2), a, b, [0.5], x)


# --- learned soup ----------------------------------------------------------------------------------------------


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def _planted(n=64):
    """Ingredient A computes 5 * x @ w_true exactly (relu(z) - relu(-z) = z), so it is right on every held-out
    sample; ingredient B has random large weights; a third is A plus small noise."""
    g = torch.Generator().manual_seed(0)
    w_true = torch.randn(4, 3, generator=g)
    x = torch.randn(n, 4, generator=g)
    y = (x @ w_true).argmax(dim=1)
    a = {
        "0.weight": torch.cat([w_true.T, -w_true.T, torch.zeros(2, 4)]),
        "0.bias": torch.zeros(8),
        "2.weight": 5 * torch.cat([torch.eye(3), -torch.eye(3), torch.zeros(3, 2)], dim=1),
        "2.bias": torch.zeros(3),
    }
    b = {k: 3 * torch.randn(v.shape, generator=g) for k, v in a.items()}
    return a, b, x, y


def _held_out_loss(state, x, y):
    model = _mlp()
    model.load_state_dict(state)
    with torch.no_grad():
        return float(F.cross_entropy(model(x), y))


def test_learned_soup_of_one_ingredient_is_that_ingredient_exactly():
    a, _, x, y = _planted()
    soup = learned_soup(_mlp(), [a], x, y, steps=5)
    assert all(torch.equal(soup[k], a[k]) for k in a)
    assert soup.coefficients.shape == (1, 2)
    assert soup.coefficients.dtype == torch.float64
    assert torch.equal(soup.coefficients, torch.ones(1, 2, dtype=torch.float64))


def test_learned_soup_equals_a_reference_mix_with_its_coefficients():
    states = [_mlp(i).state_dict() for i in range(3)]
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)), torch.arange(16) % 3
    glob = learned_soup(_mlp(), states, x, y, by_layer=False, steps=10)
    assert glob.groups == ("*",)
    assert glob.coefficients.shape == (3, 1)
    reference = _combine(states, glob.coefficients[:, 0].tolist())
    for key in states[0]:
        torch.testing.assert_close(glob[key], reference[key])
    per = learned_soup(_mlp(), states, x, y, by_layer=True, steps=10)
    assert per.groups == ("0", "2")
    assert per.coefficients.shape == (3, 2)
    torch.testing.assert_close(per.coefficients.sum(dim=0), torch.ones(2, dtype=torch.float64))
    assert (per.coefficients >= 0).all()
    for key in states[0]:
        column = per.coefficients[:, per.groups.index(key.rpartition(".")[0])]
        mixed = sum(float(c) * sd[key].double() for c, sd in zip(column, states, strict=False))
        torch.testing.assert_close(per[key], mixed.float())
    assert len(per.losses) == 11
    assert all(isinstance(v, float) for v in per.losses)


def test_learned_soup_finds_the_good_ingredient_and_beats_the_uniform_soup():
    a, b, x, y = _planted()
    states = [b, a]  # the garbage first, so picking states[0] would fail
    soup = learned_soup(_mlp(), states, x, y, steps=100, lr=0.1)
    assert soup.groups == ("0", "2")
    assert (soup.coefficients[1] > 0.8).all(), soup.coefficients
    assert soup.losses[-1] <= soup.losses[0]
    assert soup.losses[0] == pytest.approx(_held_out_loss(uniform_soup(states), x, y), rel=1e-4)  # start: T = 1
    assert _held_out_loss(soup, x, y) <= _held_out_loss(uniform_soup(states), x, y)
    # the reported final loss is the soup's loss at the learned temperature
    model = _mlp()
    model.load_state_dict(soup)
    with torch.no_grad():
        final = float(F.cross_entropy(model(x) / soup.temperature, y))
    assert soup.losses[-1] == pytest.approx(final, rel=1e-3)
    assert soup.temperature > 0


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        (dict(steps=0), ValueError, "steps must be in \\[1, 10000000\\]"),
        (dict(steps=2.0), TypeError, "steps must be an int"),
        (dict(lr=0.0), ValueError, "lr must be a finite number > 0"),
        (dict(lr=-0.1), ValueError, "lr must be a finite number > 0"),
        (dict(lr=float("inf")), ValueError, "lr must be a finite number > 0"),
        (dict(by_layer="yes"), TypeError, "by_layer must be a bool"),
        (dict(labels=torch.zeros(5, dtype=torch.int64)), ValueError, "labels must have shape \\(8,\\)"),
        (dict(labels=torch.full((8,), 3)), ValueError, "labels must lie in \\[0, 2\\]"),
        (dict(labels=torch.full((8,), -1)), ValueError, "labels must lie in"),
        (
            dict(inputs=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.int64)),
            ValueError,
            "inputs must have shape",
        ),
        (dict(model=nn.Sequential(nn.Linear(4, 3))), ValueError, "model must have the architecture"),
        (
            dict(model=nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()),
            ValueError,
            "'2.weight' has shape",
        ),
        (dict(model=_mlp().train()), ValueError, "model must be in eval mode"),
        (dict(states=[]), ValueError, "states must hold at least one state dict"),
    ],
)
def test_learned_soup_bad_input(change, exc, match):
    a, b, x, y = _planted(8)
    kwargs = {**dict(model=_mlp(), states=[a, b], inputs=x, labels=y, steps=2), **change}
    with pytest.raises(exc, match=match):
        learned_soup(**kwargs)


def test_learned_soup_leaves_states_and_model_untouched():
    a, b, x, y = _planted(16)
    before = [{k: v.clone() for k, v in sd.items()} for sd in (a, b)]
    model = _mlp(5)
    own = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():  # the fit enables gradients for itself
        soup = learned_soup(model, [a, b], x, y, steps=3)
    assert len(soup.losses) == 4
    for sd, ref in zip((a, b), before, strict=False):
        assert all(torch.equal(sd[k], v) for k, v in ref.items())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in own.items())
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert not any(v.requires_grad for v in soup.values())


def test_learned_soup_mixes_batch_norm_statistics_with_their_module():
    def bn_model(seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))

    states = []
    for seed in range(2):
        m = bn_model(seed).train()
        for _ in range(seed + 1):  # different num_batches_tracked per ingredient
            m(torch.randn(16, 4) * (seed + 1) + seed)
        with torch.no_grad():  # different affine parameters too: the group's gradient comes from its parameters
            m[1].weight.normal_(1.0, 0.5)
            m[1].bias.normal_(0.0, 0.5)
        states.append({k: v.clone() for k, v in m.state_dict().items()})
    x, y = torch.randn(24, 4, generator=torch.Generator().manual_seed(3)), torch.arange(24) % 3
    soup = learned_soup(bn_model(9).eval(), states, x, y, steps=20)
    assert soup.groups == ("0", "1", "3")
    column = soup.coefficients[:, 1]
    assert not torch.allclose(column, torch.full((2,), 0.5, dtype=torch.float64))  # the fit moved them
    for key in ("1.weight", "1.running_mean", "1.running_var"):
        mixed = column[0] * states[0][key].double() + column[1] * states[1][key].double()
        torch.testing.assert_close(soup[key], mixed.float())
    assert torch.equal(soup["1.num_batches_tracked"], states[0]["1.num_batches_tracked"])
    assert int(states[1]["1.num_batches_tracked"]) == 2
    bn_model(0).load_state_dict(soup)


# --- BANG's head scale and the WiSE-FT head terms ---------------------------------------------------------
def _clip_like(seed=0):
    from ensemble_lab.models.clip_classifier import ClipClassifier

    torch.manual_seed(seed)
    visual = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 6))
    return ClipClassifier(visual, torch.randn(4, 6)).eval()


def test_head_terms_recombine_into_the_interpolated_model_with_a_scaled_head():
    from ensemble_lab.soups import combine_head_terms, interpolation_head_terms, scale_head

    model = _clip_like()
    a = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    b = {k: v + 0.5 * torch.randn(v.shape, generator=g) for k, v in a.items()}
    x = torch.rand(7, 1, 4, 4, generator=g)
    alphas = [0.0, 0.25, 0.6, 1.0]
    terms = interpolation_head_terms(model, a, b, alphas, x)
    assert terms.shape == (4, 2, 7, 4)
    for s in (1.0, 0.4, 1.7):
        want = torch.stack([_load(model, interpolate(a, scale_head(b, "head", s), al))(x) for al in alphas])
        torch.testing.assert_close(combine_head_terms(terms, alphas, s), want, rtol=1e-5, atol=1e-5)
    # at alpha 0 the head terms are the zero-shot model with each head
    torch.testing.assert_close(terms[0, 0], _load(model, a)(x), rtol=1e-5, atol=1e-6)


def _load(model, sd):
    import copy

    m = copy.deepcopy(model)
    m.load_state_dict(sd)
    return m


def test_scale_head_scales_the_logits_and_nothing_else():
    from ensemble_lab.soups import scale_head

    model = _clip_like()
    sd = model.state_dict()
    out = scale_head(sd, "head", 0.5)
    x = torch.rand(5, 1, 4, 4)
    torch.testing.assert_close(_load(model, out)(x), 0.5 * model(x), rtol=1e-5, atol=1e-6)
    assert all(torch.equal(out[k], sd[k]) for k in sd if not k.startswith("head."))


@pytest.mark.parametrize(
    ("function", "args", "match"),
    [
        ("scale_head", ("SD", "head", 0.0), "scale"),
        ("scale_head", ("SD", "head", float("inf")), "scale"),
        ("scale_head", ("SD", "visual.9", 1.0), "head"),
        ("combine_head_terms", (torch.zeros(3, 2, 4), [0, 1], 1.0), "terms"),
        ("combine_head_terms", (torch.zeros(3, 2, 4, 5), [0, 1], 1.0), "alphas"),
        ("combine_head_terms", (torch.zeros(2, 2, 4, 5), [0, 1], -1.0), "scale"),
        ("interpolation_head_terms", ("MODEL", "SD", "SD", [1.5], torch.rand(2, 1, 4, 4)), "alphas"),
    ],
)
def test_head_helpers_reject_bad_input(function, args, match):
    import ensemble_lab.soups as soups_module

    fill = {"SD": _clip_like().state_dict(), "MODEL": _clip_like()}
    args = [fill[a] if isinstance(a, str) and a in fill else a for a in args]
    with pytest.raises(ValueError, match=match):
        getattr(soups_module, function)(*args)


def test_curves_in_chunks_equal_one_pass():
    from ensemble_lab.soups import interpolation_head_terms

    model = _clip_like()
    a = {k: v.clone() for k, v in model.state_dict().items()}
    b = {k: v + 0.3 for k, v in a.items()}
    x = torch.rand(7, 1, 4, 4)
    torch.testing.assert_close(
        interpolation_logits(model, a, b, [0.2, 0.9], x, batch_size=3), interpolation_logits(model, a, b, [0.2, 0.9], x)
    )
    torch.testing.assert_close(
        interpolation_head_terms(model, a, b, [0.2, 0.9], x, batch_size=2),
        interpolation_head_terms(model, a, b, [0.2, 0.9], x),
    )
    with pytest.raises(ValueError, match="batch_size"):
        interpolation_logits(model, a, b, [0.5], x, batch_size=0)
    with pytest.raises(ValueError, match="inputs"):
        interpolation_logits(model, a, b, [0.5], x[:0])


def test_vmap_and_loop_over_alphas_agree():
    from ensemble_lab.soups import interpolation_head_terms

    model = _clip_like()
    a = {k: v.clone() for k, v in model.state_dict().items()}
    b = {k: v - 0.2 for k, v in a.items()}
    x = torch.rand(9, 1, 4, 4)
    for batch_size in (4, 100):
        torch.testing.assert_close(
            interpolation_logits(model, a, b, [0.0, 0.4, 1.0], x, batch_size=batch_size, vectorise=True),
            interpolation_logits(model, a, b, [0.0, 0.4, 1.0], x, batch_size=batch_size),
        )
        torch.testing.assert_close(
            interpolation_head_terms(model, a, b, [0.3, 0.7], x, batch_size=batch_size, vectorise=True),
            interpolation_head_terms(model, a, b, [0.3, 0.7], x, batch_size=batch_size),
        )
    with pytest.raises(TypeError, match="vectorise"):
        interpolation_logits(model, a, b, [0.5], x, vectorise="yes")


# ----------------------------------------------------------------------------------------------------------
# bad-input regressions
# ----------------------------------------------------------------------------------------------------------


def _reordered(sd):
    return dict(reversed(list(sd.items())))


def test_state_dicts_with_reordered_keys_are_matched_by_name():
    a, b, c = _states(3)
    rb, rc = _reordered(b), _reordered(c)
    for got, want in [
        (interpolate(a, rb, 0.3), interpolate(a, b, 0.3)),
        (interpolate(a, rb, 1.0), interpolate(a, b, 1.0)),
        (uniform_soup([a, rb, rc]), uniform_soup([a, b, c])),
        (task_arithmetic(a, [rb, c], [0.2, 0.5]), task_arithmetic(a, [b, c], [0.2, 0.5])),
        (
            greedy_soup([a, rb], lambda sd: float(sd["3.bias"].sum())),
            greedy_soup([a, b], lambda sd: float(sd["3.bias"].sum())),
        ),
    ]:
        assert list(got) == list(a)  # the first state dict's order
        assert all(torch.equal(got[k], want[k]) for k in want)
    model, x = _model(0).eval(), torch.randn(5, 3)
    torch.testing.assert_close(
        interpolation_logits(model, a, rb, [0.5], x), interpolation_logits(model, a, b, [0.5], x)
    )
    # a learned soup's groups and coefficients follow the model, whatever the order of states[0]
    y = torch.tensor([0, 1, 0, 1, 0]) % 2
    plain, mixed = learned_soup(model, [a, b], x, y, steps=3), learned_soup(model, [_reordered(a), b], x, y, steps=3)
    assert plain.groups == mixed.groups == ("0", "1", "3")
    torch.testing.assert_close(plain.coefficients, mixed.coefficients)
    assert list(mixed) == list(model.state_dict())
    with pytest.raises(ValueError, match=r"b has different keys from a: first difference at '3.bias' \(missing"):
        interpolate(a, {k: v for k, v in b.items() if k != "3.bias"}, 0.5)


@pytest.mark.parametrize("returned", [float("nan"), "x", None, float("inf")])
def test_greedy_soup_refuses_an_evaluate_that_returns_no_finite_number(returned):
    with pytest.raises((TypeError, ValueError), match="evaluate must return a finite number"):
        greedy_soup(_states(2), lambda sd: returned)
    calls = []
    with pytest.raises((TypeError, ValueError), match="evaluate must return a finite number.*the soup of states"):
        greedy_soup(_states(2), lambda sd: calls.append(1) or returned, scores=[0.2, 0.1])
    assert greedy_soup(_states(2), lambda sd: torch.tensor(0.5)).kept == [0]  # a 0-d tensor is a number


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda s: greedy_soup(s, lambda sd: 0.0, scores=0.3), TypeError, "scores must be a list or tuple"),
        (lambda s: greedy_soup(s, lambda sd: 0.0, scores=(v for v in [0.1, 0.2])), TypeError, "scores"),
        (lambda s: task_arithmetic(s[0], (t for t in s[1:]), [0.5, 0.5]), TypeError, "states must be a list"),
        (lambda s: task_arithmetic(s[0], None, [0.5]), TypeError, "states must be a list"),
        (lambda s: task_arithmetic(s[0], [], []), ValueError, "states must hold at least one state dict"),
        (lambda s: task_arithmetic(s[0], s[1:], None), TypeError, "lambdas must be a list"),
        (lambda s: task_arithmetic(s[0], s[1:], 0.5), TypeError, "lambdas must be a list"),
        (lambda s: task_arithmetic(s[0], s[1:], [True, 0.5]), TypeError, r"lambdas\[0\] must be a number"),
        (lambda s: task_arithmetic(s[0], s[1:], [1e308, 1e308]), ValueError, "lambdas"),
        (lambda s: task_arithmetic(s[0], s[1:], [1e300, -1e300]), ValueError, "lambdas.*overflows"),
        (lambda s: interpolate(s[0], s[1], 0.5, extrapolate="no"), TypeError, "extrapolate must be True or False"),
        (lambda s: interpolate(s[0], s[1], 1e300, extrapolate=True), ValueError, "alpha=1e\\+300.*overflows"),
    ],
)
def test_sequences_and_overflows_are_refused_by_name(call, exc, match):
    with pytest.raises(exc, match=match):
        call(_states(3))


def test_interpolation_inputs_and_alphas():
    import numpy as np

    from ensemble_lab.soups import combine_head_terms, interpolation_head_terms

    model = _clip_like()
    a = {k: v.clone() for k, v in model.state_dict().items()}
    b = {k: v + 0.3 for k, v in a.items()}
    x = torch.rand(6, 1, 4, 4)
    want = interpolation_logits(model, a, b, [0.0, 0.5], x)
    for other in (x.numpy(), x.double()):  # numpy accepted; float64 cast to the weights' dtype
        assert torch.equal(interpolation_logits(model, a, b, [0.0, 0.5], other), want)
    terms = interpolation_head_terms(model, a, b, [0.0, 0.5], x.double())
    assert terms.dtype == torch.float32
    assert torch.equal(
        combine_head_terms(terms.numpy(), np.array([0.0, 0.5]), 2.0), combine_head_terms(terms, [0, 0.5], 2.0)
    )
    for bad, exc, match in [
        (dict(model=None), TypeError, "model must be a torch.nn.Module"),
        (dict(alphas=[True, 0.5]), TypeError, r"alphas\[0\] must be a number"),
        (dict(alphas=[[0.0, 0.5]]), TypeError, r"alphas\[0\] must be a number"),
        (dict(alphas="0.5"), TypeError, "alphas must be a list"),
        (dict(alphas=None), TypeError, "alphas must be a list"),
        (dict(inputs=x.unsqueeze(0)), ValueError, "model cannot run on inputs of shape"),
        (dict(inputs=x.to(torch.complex64)), TypeError, "inputs must hold real numbers"),
        (dict(inputs=torch.where(x > 0.5, float("nan"), x)), ValueError, "inputs must be finite"),
        (dict(extrapolate=None), TypeError, "extrapolate must be True or False"),
    ]:
        kwargs = {**dict(model=model, a=a, b=b, alphas=[0.0, 0.5], inputs=x), **bad}
        with pytest.raises(exc, match=match):
            interpolation_logits(**kwargs)
    nan_terms = terms.clone()
    nan_terms[1, 1, 2, 0] = float("inf")
    with pytest.raises(ValueError, match="terms must be finite"):
        combine_head_terms(nan_terms, [0.0, 0.5], 1.0)
    with pytest.raises(ValueError, match="scale=1e\\+308"):
        combine_head_terms(terms, [0.0, 0.5], 1e308)


def test_learned_soup_refuses_bad_inputs_by_name_and_casts_float64():
    a, b, x, y = _planted(8)
    with pytest.raises(ValueError, match="steps must be in"):
        learned_soup(_mlp(), [a, b], x, y, steps=2**64)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs must be finite"):
        learned_soup(_mlp(), [a, b], bad, y, steps=1)
    with pytest.raises(TypeError, match="inputs must hold real numbers"):
        learned_soup(_mlp(), [a, b], x.to(torch.complex64), y, steps=1)
    want = learned_soup(_mlp(), [a, b], x, y, steps=2)
    got = learned_soup(_mlp(), [a, _reordered(b)], x.double(), y, steps=2)
    assert got.losses == want.losses
    assert all(torch.equal(got[k], want[k]) for k in want)
