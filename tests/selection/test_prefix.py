"""SelectionResult.prefix: a shorter selection read off a longer one's path equals running it again."""

import pytest
import torch

from ensemble_lab.selection import forward_select, osborn, osborn_pool, top_k


def _library(seed, k=6, n=40, c=3):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2 * torch.randn(k, n, c, generator=g, dtype=torch.float64), -1)
    return probs, torch.randint(0, c, (n,), generator=g), torch.softmax(torch.randn(k, 30, c, generator=g), -1).double()


@pytest.mark.parametrize("metric", ["nll", "brier", "ece", "error"])
@pytest.mark.parametrize(("init", "bags"), [(0, 1), (2, 1), (0, 4), (1, 3)])
def test_prefix_equals_a_shorter_run(metric, init, bags):
    p, y, ph = _library(hash((metric, init, bags)) % 1000)
    yh = torch.arange(30) % 3
    long = forward_select(p, y, metric=metric, steps=12, init=init, bags=bags, seed=5, held_out=(ph, yh))
    for steps in (1, 4, 12):
        short = forward_select(p, y, metric=metric, steps=steps, init=init, bags=bags, seed=5, held_out=(ph, yh))
        got = long.prefix(steps, p, y, held_out=(ph, yh))
        assert got.counts.tolist() == short.counts.tolist()
        assert got.best_steps == short.best_steps
        assert [(s.bag, s.model) for s in got.path] == [(s.bag, s.model) for s in short.path]
        assert got.score == pytest.approx(short.score, abs=1e-12)
        assert got.held_out_score == pytest.approx(short.held_out_score, abs=1e-12)


def test_prefix_refuses_steps_beyond_the_path_and_baselines():
    p, y, _ = _library(1)
    long = forward_select(p, y, steps=5)
    with pytest.raises(ValueError, match="steps"):
        long.prefix(6, p, y)
    with pytest.raises(ValueError, match="path"):
        top_k(p, y, 2).prefix(1, p, y)
    with pytest.raises(ValueError, match="K=6"):
        long.prefix(2, p[:3], y)


@pytest.mark.parametrize("with_source_labels", [False, True])
def test_osborn_pool_scores_every_team_as_osborn_does(with_source_labels):
    g = torch.Generator().manual_seed(3)
    m, n = 4, 7
    fs = [torch.randn(n, 3, generator=g, dtype=torch.float64) for _ in range(m)]
    ft = [torch.randn(n, 3, generator=g, dtype=torch.float64) for _ in range(m)]
    probs = [torch.softmax(torch.randn(n, 2 + i, generator=g, dtype=torch.float64), 1) for i in range(m)]
    y = torch.randint(0, 3, (n,), generator=g)
    zs = [torch.randint(0, 2 + i, (n,), generator=g) for i in range(m)] if with_source_labels else None
    pool = osborn_pool(fs, ft, probs, y, source_labels=zs)
    for team in [(0,), (2, 1), (0, 1, 3), (3, 2, 1, 0)]:
        for weights in [(1.0, 1.0, 1.0), (0.5, 2.0, 0.0)]:
            want = osborn(fs, ft, probs, y, team, weights=weights, source_labels=zs)
            assert pool.terms(team, weights=weights) == want


def test_osborn_pool_members_limits_the_work():
    g = torch.Generator().manual_seed(4)
    fs = [torch.randn(5, 2, generator=g) for _ in range(3)]
    ft = [torch.randn(5, 2, generator=g) for _ in range(3)]
    probs = [torch.softmax(torch.randn(5, 3, generator=g), 1) for _ in range(3)]
    y = torch.tensor([0, 1, 1, 0, 2])
    pool = osborn_pool(fs, ft, probs, y, members=[0, 2])
    assert torch.isnan(pool.member_domain[1])
    assert pool.terms((2, 0)) == osborn(fs, ft, probs, y, (2, 0))
    with pytest.raises(ValueError, match="source model 1"):
        pool.terms((0, 1))
