"""Weight-space operations on tiny models, against hand-computed averages and a reference greedy loop."""

import pytest
import torch
from torch import nn

from ensemble_lab.soups import greedy_soup, interpolate, interpolation_logits, task_arithmetic, uniform_soup


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


@pytest.mark.parametrize("call, exc, match", [
    (lambda s: uniform_soup([]), ValueError, "at least one state dict"),
    (lambda s: uniform_soup(s[0]), TypeError, "list of state dicts"),
    (lambda s: uniform_soup([s[0], {k: v for k, v in s[1].items() if k != "3.bias"}]), ValueError, "'3.bias'"),
    (lambda s: uniform_soup([s[0], {**s[1], "0.weight": torch.zeros(2, 2)}]), ValueError, "'0.weight'\\] has shape"),
    (lambda s: uniform_soup([s[0], {**s[1], "0.bias": torch.full((4,), float("nan"))}]), ValueError, "finite"),
    (lambda s: interpolate(s[0], s[1], 1.2), ValueError, "alpha must be in \\[0, 1\\]"),
    (lambda s: interpolate(s[0], s[1], float("nan")), ValueError, "alpha must be a finite number"),
    (lambda s: greedy_soup(s, "accuracy"), TypeError, "evaluate must be a callable"),
    (lambda s: greedy_soup(s, lambda sd: 0.0, scores=[1.0]), ValueError, "scores must have one entry per state"),
])
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
