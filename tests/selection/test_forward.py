"""Forward selection (Caruana et al. 2004) against a slow, obviously correct loop that rebuilds every candidate
ensemble from its counts and scores it with ``ensemble_lab.metrics``."""

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab import metrics
from ensemble_lab.selection import SelectionResult, forward_select, top_k, uniform
from ensemble_lab.selection.forward import METRICS, _Scorer

TOL = 1e-12


def _library(k=6, n=40, c=4, seed=0, dtype=torch.float64, sharp=2.0):
    g = torch.Generator().manual_seed(seed)
    logits = sharp * torch.randn(k, n, c, generator=g, dtype=torch.float64)
    labels = torch.randint(0, c, (n,), generator=g)
    return torch.softmax(logits, -1).to(dtype), labels


def _score(metric, probs, labels):
    if metric == "nll":
        return metrics.nll(probs, labels)
    if metric == "brier":
        return metrics.brier(probs, labels)
    if metric == "ece":
        return metrics.ece(probs, labels)
    return 1.0 - metrics.accuracy(probs, labels)


def _ensemble(p, counts):
    total = torch.zeros(p.shape[1:], dtype=torch.float64)
    for k, c in enumerate(counts):
        if c:
            total = total + c * p[k].double()
    return total / sum(counts)


def _reference(p, y, metric, steps, init=0, members=None, held_out=None):
    """The plain loop: returns (models added, hill-climbing scores, held-out scores, counts at every step)."""
    k = p.shape[0]
    members = list(range(k)) if members is None else members
    counts = [0] * k
    singles = {m: _score(metric, p[m].double(), y) for m in members}
    order = sorted(members, key=lambda m: (singles[m], m))[:init]
    added, scores, held, history = [], [], [], []

    def add(m, s):
        counts[m] += 1
        added.append(m)
        scores.append(s)
        history.append(list(counts))
        if held_out is not None:
            held.append(_score(metric, _ensemble(held_out[0], counts), held_out[1]))

    for m in order:
        c = list(counts)
        c[m] += 1
        add(m, _score(metric, _ensemble(p, c), y))
    for _ in range(steps):
        best, best_score = None, None
        for m in members:  # increasing index: a strict < keeps the lowest index among ties
            c = list(counts)
            c[m] += 1
            s = _score(metric, _ensemble(p, c), y)
            if best is None or s < best_score:
                best, best_score = m, s
        add(best, best_score)
    return added, scores, held, history


def _best(scores, init):
    first = max(init, 1)
    tail = scores[first - 1 :]
    return first + tail.index(min(tail))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("init", [0, 2])
def test_matches_the_reference_loop(metric, init):
    p, y = _library(seed=3 + init)
    ho = _library(seed=99)
    ho = (ho[0], ho[1])
    r = forward_select(p, y, metric=metric, steps=7, init=init, held_out=ho)
    added, scores, held, history = _reference(p, y, metric, 7, init, held_out=ho)
    assert [s.model for s in r.path] == added
    assert [s.init for s in r.path] == [True] * init + [False] * 7
    assert [s.step for s in r.path] == list(range(1, init + 8))
    for mine, ref in zip(r.path, scores, strict=True):
        assert abs(mine.score - ref) <= TOL
    for mine, ref in zip(r.path, held, strict=True):
        assert abs(mine.held_out - ref) <= TOL
    best = _best(scores, init)
    assert r.best_step == best
    assert r.counts.tolist() == history[best - 1]
    assert abs(r.score - scores[best - 1]) <= TOL
    assert abs(r.held_out_score - held[best - 1]) <= TOL
    unpruned = forward_select(p, y, metric=metric, steps=7, init=init, prune_to_best=False)
    assert unpruned.counts.tolist() == history[-1]


@pytest.mark.parametrize("metric", METRICS)
def test_bagged_selection_matches_the_reference_on_each_bag(metric):
    p, y = _library(k=8, seed=5)
    r = forward_select(p, y, metric=metric, steps=4, init=1, bags=3, seed=11, bag_fraction=0.5)
    g = torch.Generator().manual_seed(11)
    bags = [sorted(torch.randperm(8, generator=g)[:4].tolist()) for _ in range(3)]
    assert [list(b) for b in r.bags] == bags
    total = [0] * 8
    for b, bag in enumerate(bags):
        added, scores, _, history = _reference(p, y, metric, 4, 1, members=bag)
        mine = [s for s in r.path if s.bag == b]
        assert [s.model for s in mine] == added
        assert all(abs(s.score - ref) <= TOL for s, ref in zip(mine, scores, strict=True))
        best = _best(scores, 1)
        assert r.best_steps[b] == best
        total = [t + c for t, c in zip(total, history[best - 1], strict=True)]
    assert r.counts.tolist() == total
    assert r.best_step is None
    again = forward_select(p, y, metric=metric, steps=4, init=1, bags=3, seed=11)
    assert again.bags == r.bags
    assert torch.equal(again.counts, r.counts)
    other = forward_select(p, y, metric=metric, steps=4, init=1, bags=3, seed=12)
    assert other.bags != r.bags


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    metric=st.sampled_from(METRICS),
    n_sel=st.integers(0, 5),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_vectorised_candidate_scores_equal_the_metrics(seed, metric, n_sel, dtype):
    """Every candidate of a step, not only the chosen one: (S + P_k) / (n + 1) scored by ensemble_lab.metrics."""
    p, y = _library(k=5, n=300, c=5, seed=seed, dtype=dtype)
    g = torch.Generator().manual_seed(seed + 1)
    chosen = torch.randint(0, 5, (n_sel,), generator=g).tolist()
    s = torch.zeros(300, 5, dtype=torch.float64)
    for m in chosen:
        s += p[m].double()
    got = _Scorer(p, y, metric).scores(s, n_sel, torch.arange(5))
    for k in range(5):
        want = _score(metric, (s + p[k].double()) / (n_sel + 1), y)
        assert abs(float(got[k]) - want) <= TOL


def test_with_replacement_adds_one_model_twice():
    # the best ensemble is 2/3 of model 1 and 1/3 of model 0 (see the docstring example)
    p = torch.tensor([[[0.8, 0.2], [0.4, 0.6]], [[0.6, 0.4], [0.1, 0.9]], [[0.3, 0.7], [0.5, 0.5]]]).double()
    r = forward_select(p, torch.tensor([0, 1]), metric="brier", steps=3)
    assert [s.model for s in r.path] == [1, 0, 1]
    assert r.counts.tolist() == [1, 2, 0]
    assert r.weights.tolist() == pytest.approx([1 / 3, 2 / 3, 0])
    # NLL here prefers model 1 alone: adding it again keeps the ensemble, the count grows, the score stays
    r = forward_select(p, torch.tensor([0, 1]), metric="nll", steps=3, prune_to_best=False)
    assert r.counts.tolist() == [0, 3, 0]


@pytest.mark.parametrize("metric", METRICS)
def test_ties_pick_the_lowest_index(metric):
    p, y = _library(k=3, seed=7)
    lib = torch.cat([p[2:3], p[0:1], p[2:3], p[1:2], p[2:3]])  # model 2 of p at 0, 2 and 4
    r = forward_select(lib, y, metric=metric, steps=4, init=2, prune_to_best=False)
    init_models = [s.model for s in r.path if s.init]
    assert 4 not in init_models
    assert 2 not in init_models or init_models.index(0) < init_models.index(2)
    assert all(s.model not in (2, 4) for s in r.path if not s.init)  # exact ties: always the copy at index 0
    # identical models, each alone and together: the first wins every step, and the earliest step is best
    same = p[0:1].expand(3, -1, -1).contiguous()
    r = forward_select(same, y, metric=metric, steps=2)  # (P + P) / 2 == P exactly: equal scores
    assert [s.model for s in r.path] == [0, 0]
    assert r.best_step == 1
    assert r.counts.tolist() == [1, 0, 0]


def test_held_out_path_and_float32_and_result_type():
    p, y = _library(k=5, seed=1, dtype=torch.float32)
    ho, yo = _library(k=5, n=30, seed=2, dtype=torch.float32)
    r = forward_select(p, y, steps=6, held_out=(ho, yo))
    assert isinstance(r, SelectionResult)
    assert r.counts.dtype == torch.int64
    assert all(s.held_out is not None for s in r.path)
    history = _reference(p, y, "nll", 6)[3]
    for s in r.path:
        want = _score("nll", _ensemble(ho, history[s.step - 1]), yo)
        assert abs(s.held_out - want) <= 1e-9
    assert torch.allclose(r.ensemble(ho), _ensemble(ho, r.counts.tolist()))
    assert forward_select(p, y, steps=2).path[0].held_out is None


def test_baselines():
    p, y = _library(k=6, seed=4)
    singles = [metrics.brier(p[k], y) for k in range(6)]
    r = top_k(p, y, 3, metric="brier", held_out=(p, y))
    best3 = sorted(range(6), key=lambda k: (singles[k], k))[:3]
    assert r.counts.tolist() == [int(k in best3) for k in range(6)]
    assert r.path == ()
    assert r.best_step is None
    assert abs(r.score - metrics.brier(_ensemble(p, r.counts.tolist()), y)) <= TOL
    assert r.held_out_score == pytest.approx(r.score, abs=TOL)
    u = uniform(p)
    assert u.counts.tolist() == [1] * 6
    assert u.score is None
    assert u.weights.tolist() == pytest.approx([1 / 6] * 6)
    u = uniform(p, y, metric="ece")
    assert abs(u.score - metrics.ece(p.mean(0), y)) <= TOL
    # forward selection never does worse on its hill-climbing set than the best single model (init=1)
    fs = forward_select(p, y, metric="brier", steps=5, init=1)
    assert fs.score <= min(singles) + TOL


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(member_probs=torch.ones(4, 2) / 2), "member_probs"),
        (dict(member_probs=torch.full((2, 4, 2), 0.7)), "member_probs"),
        (dict(labels=torch.tensor([0, 1, 2, 0])), "labels"),
        (dict(labels=torch.tensor([0, 1])), "labels"),
        (dict(metric="auc"), "metric"),
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(init=3), "init"),
        (dict(init=-1), "init"),
        (dict(bags=0), "bags"),
        (dict(bags=2, bag_fraction=0.0), "bag_fraction"),
        (dict(bags=2, bag_fraction=1.5), "bag_fraction"),
        (dict(bags=2, bag_fraction=0.5, init=2), "init"),
        (dict(seed=-1), "seed"),
        (dict(prune_to_best="yes"), "prune_to_best"),
        (dict(held_out=torch.ones(2, 4, 2) / 2), "held_out"),
        (dict(held_out=(torch.ones(3, 4, 2) / 2, torch.zeros(4, dtype=torch.int64))), "held_out[0]"),
        (dict(held_out=(torch.ones(2, 4, 3) / 3, torch.zeros(4, dtype=torch.int64))), "held_out[0]"),
        (dict(held_out=(torch.ones(2, 4, 2) / 2, torch.full((4,), 5))), "held_out[1]"),
    ],
)
def test_bad_input_names_the_argument(kwargs, name):
    args = dict(member_probs=torch.ones(2, 4, 2) / 2, labels=torch.tensor([0, 1, 1, 0]), steps=2)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match="^" + re.escape(name)):
        forward_select(**args)


def test_baselines_bad_input():
    p, y = _library(k=3)
    with pytest.raises(ValueError, match="^k "):
        top_k(p, y, 4)
    with pytest.raises(ValueError, match="^metric"):
        top_k(p, y, 1, metric="acc")
    with pytest.raises(ValueError, match="^metric"):
        uniform(p, metric="acc")
    u = uniform(p)
    with pytest.raises(ValueError, match="^member_probs"):
        u.ensemble(p[:2])


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    metric=st.sampled_from(METRICS),
    init=st.integers(0, 3),
    steps=st.integers(1, 6),
    bags=st.integers(1, 3),
)
def test_the_returned_ensemble_is_the_best_of_each_path(seed, metric, init, steps, bags):
    p, y = _library(k=6, n=30, c=3, seed=seed)
    r = forward_select(p, y, metric=metric, steps=steps, init=init, bags=bags, seed=seed)
    assert len(r.path) == bags * (init + steps)
    assert int(r.counts.sum()) == sum(r.best_steps)
    assert float(r.weights.sum()) == pytest.approx(1.0, abs=1e-12)
    for b, bag in enumerate(r.bags):
        mine = [s for s in r.path if s.bag == b]
        assert {s.model for s in mine} <= set(bag)
        tail = [s.score for s in mine[max(init, 1) - 1 :]]
        assert mine[r.best_steps[b] - 1].score == min(tail)
        assert r.best_steps[b] >= max(init, 1)
    if bags == 1:
        assert abs(r.score - r.path[r.best_step - 1].score) <= TOL
