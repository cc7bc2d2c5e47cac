"""Tests of notebook 03's experiments (ensemble_lab.labs.prompts.experiments) on the fake text-image model of
test_prompts.py: the resampler against stats.paired_bootstrap on the same draws, the methods against the routines
and a slow reference of the ZPE score, and the experiments' bookkeeping (ranks, seeds, curves)."""

from types import SimpleNamespace

import pytest
import torch

from ensemble_lab import metrics, prompts, stats
from ensemble_lab.artefacts.zeroshot import ZeroShotData
from ensemble_lab.labs.prompts import experiments as ex
from ensemble_lab.labs.prompts import figures

from .test_prompts import NAMES, POOL, FakeModel, _domain

GROUPS = {t: ("spurious:sketch" if "sketch" in t else "style:blurry" if "blurry" in t else "generic") for t in POOL}
N = 240


def _sources(seed):
    return torch.randperm(N, generator=torch.Generator().manual_seed(seed)) % (N // 2)  # two images per source


@pytest.fixture(scope="module")
def data():
    domains = {"clean": _domain(1, N, 0.6), "noisy": _domain(2, N, 1.2)}
    return ZeroShotData(FakeModel(), domains, _domain(3, 300, 0.6).images, NAMES, progress=False)


@pytest.fixture(scope="module")
def world(data):
    return ex.prompt_world(data, {"clean": _sources(0), "noisy": _sources(1)}, POOL, GROUPS)


@pytest.fixture(scope="module")
def comparator(world):
    return ex.Comparator(world, n_resamples=300, seed=3)


@pytest.fixture(scope="module")
def pretrain(data):
    """Three 'pre-training samples' of the fake world, one per seed."""
    text = data.text_embeddings(POOL)
    return {s: prompts.prompt_logits(_domain(20 + s, 200, 0.6).images, text, data.logit_scale) for s in (0, 1, 2)}


def _probs(g, n, c=4, shift=1.0):
    y = torch.randint(0, c, (n,), generator=g)
    z = torch.randn(n, c, generator=g, dtype=torch.float64) + shift * torch.nn.functional.one_hot(y, c)
    return torch.softmax(z, -1), y


# -- the resampler ------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["accuracy", "nll"])
@pytest.mark.parametrize("clustered", [False, True])
def test_resampler_matches_paired_bootstrap(metric, clustered):
    g = torch.Generator().manual_seed(0)
    a, y = _probs(g, 150)
    b = torch.softmax(torch.log(a) + 0.8 * torch.randn(150, 4, generator=g, dtype=torch.float64), -1)
    clusters = torch.randint(0, 40, (150,), generator=g) * 7 if clustered else torch.arange(150)
    fn = metrics.accuracy if metric == "accuracy" else metrics.nll
    want = stats.paired_bootstrap(fn, a, b, y, clusters=clusters, n_resamples=200, seed=5, level=0.8)
    got = ex.PairedResampler(clusters, n_resamples=200, seed=5, level=0.8).compare(metric, a, b, y)
    assert got.difference == pytest.approx(want.difference, abs=1e-12)
    assert got.low == pytest.approx(want.low, abs=1e-12)
    assert got.high == pytest.approx(want.high, abs=1e-12)
    assert (got.resolved, got.n_units, got.n_resamples, got.level) == (
        want.resolved,
        want.n_units,
        want.n_resamples,
        want.level,
    )


def test_resampler_refuses_bad_input():
    r = ex.PairedResampler(torch.arange(10), n_resamples=10)
    p = torch.full((10, 2), 0.5, dtype=torch.float64)
    y = torch.zeros(10, dtype=torch.int64)
    with pytest.raises(ValueError, match="metric must be one of"):
        r.compare("ece", p, p, y)
    with pytest.raises(ValueError, match=r"probs_b must have shape \(10, C\)"):
        r.compare("accuracy", p, p[:5], y)
    with pytest.raises(ValueError, match="clusters must hold integer group ids"):
        ex.PairedResampler(torch.rand(10))
    with pytest.raises(ValueError, match="n_resamples"):
        ex.PairedResampler(torch.arange(10), n_resamples=1)


# -- the world and the methods ------------------------------------------------------------------------


def test_world_logits_and_clip_embedding_average(world, data):
    for d in world.domains:
        torch.testing.assert_close(world.logits[d], data.logits(d, POOL))
        cls = prompts.average_text_embeddings(data.text_embeddings(POOL))
        want = prompts.zero_shot_logits(data.images[d], cls, data.logit_scale)
        torch.testing.assert_close(world.embedding_logits[d], want, atol=1e-5, rtol=1e-5)
    assert world.groups[POOL.index("a sketch of a {}.")] == "spurious:sketch"
    acc = world.prompt_accuracy("clean")
    for p in (0, 3):
        assert float(acc[p]) == pytest.approx(metrics.top1_accuracy(world.logits["clean"][:, p], world.labels["clean"]))


def test_world_refuses_bad_sources(data):
    with pytest.raises(ValueError, match="missing: noisy"):
        ex.prompt_world(data, {"clean": _sources(0)}, POOL)
    with pytest.raises(ValueError, match=r"sources\['noisy'\] must hold 240 integer source ids"):
        ex.prompt_world(data, {"clean": _sources(0), "noisy": _sources(0)[:10]}, POOL)
    with pytest.raises(TypeError, match="sources must be a dict"):
        ex.prompt_world(data, [_sources(0)], POOL)


def _slow_score(z, pre, debias):
    """The ZPE score with python loops: mean over images of the max over classes of the debiased logit."""
    n, p, c = z.shape
    mu_test = [[sum(float(z[i, q, k]) for i in range(n)) / n for k in range(c)] for q in range(p)]
    m = pre.shape[0]
    mu_pre = [[sum(float(pre[i, q, k]) for i in range(m)) / m for k in range(c)] for q in range(p)]
    out = []
    for q in range(p):
        bias = [
            {"both": (mu_pre[q][k] + mu_test[q][k]) / 2, "pretrain": mu_pre[q][k], "test": mu_test[q][k], "none": 0.0}[
                debias
            ]
            for k in range(c)
        ]
        out.append(sum(max(float(z[i, q, k]) - bias[k] for k in range(c)) for i in range(n)) / n)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize(
    ("method", "debias"),
    [("max-logit", "none"), ("zpe-pretrain", "pretrain"), ("zpe-test", "test"), ("zpe-both", "both")],
)
def test_method_weights_are_a_softmax_of_the_slow_score(world, method, debias):
    z = world.logits["clean"][:60]
    w, s = ex.method_weights(method, z, world.pretrain, temperature=0.7)
    slow = _slow_score(z, world.pretrain, debias)
    torch.testing.assert_close(s, slow, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(w, torch.softmax(slow / 0.7, 0), atol=1e-5, rtol=1e-5)


def test_equal_and_select_weights(world):
    z = world.logits["noisy"]
    w, _ = ex.method_weights("equal-logits", z, world.pretrain)
    torch.testing.assert_close(w, torch.full((len(POOL),), 1 / len(POOL), dtype=torch.float64))
    w, s = ex.method_weights("zpe-select", z, world.pretrain, tau=0.0)
    torch.testing.assert_close(w, prompts.zpe_select(s, 0.0).double())
    with pytest.raises(ValueError, match="method must be one of"):
        ex.method_weights("equal-embeddings", z, world.pretrain)


def test_evaluate_against_direct_computation(world):
    ev = ex.evaluate(world, ("equal-embeddings", "equal-logits", "zpe-both"), n_scored=50, seed=4)
    for d in world.domains:
        y = world.labels[d]
        z = world.logits[d]
        assert ev.metric("accuracy", "equal-logits", d) == pytest.approx(metrics.top1_accuracy(z.mean(1), y))
        assert ev.metric("accuracy", "equal-embeddings", d) == pytest.approx(
            metrics.top1_accuracy(world.embedding_logits[d], y)
        )
        idx = ex.scoring_index(N, 50, 4)
        s = prompts.zpe_scores(z[idx], world.pretrain, debias="both")
        p = torch.softmax(prompts.ensemble_prompt_logits(z, prompts.zpe_weights(s)).double(), -1)
        assert ev.metric("nll", "zpe-both", d) == pytest.approx(metrics.nll(p, y), rel=1e-6)
    pooled = metrics.accuracy(ev.pooled_probs("zpe-both"), world.pooled(world.labels))
    assert ev.metric("accuracy", "zpe-both") == pytest.approx(pooled)  # equal-size domains: mean == pooled
    with pytest.raises(ValueError, match="methods must be one of"):
        ex.evaluate(world, ("median",))


def test_scoring_index():
    assert ex.scoring_index(10, 0, 3).sort().values.tolist() == list(range(10))
    assert ex.scoring_index(10, 20, 3).shape == (10,)
    idx = ex.scoring_index(10, 4, 3)
    assert idx.tolist() == torch.randperm(10, generator=torch.Generator().manual_seed(3))[:4].tolist()
    with pytest.raises(ValueError, match="n_scored"):
        ex.scoring_index(10, -1, 0)


def test_effective_prompts():
    assert ex.effective_prompts(torch.full((8,), 1 / 8)) == pytest.approx(8.0)
    assert ex.effective_prompts(torch.tensor([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="weights must be"):
        ex.effective_prompts(torch.tensor([0.5, -0.5]))


# -- the experiments ----------------------------------------------------------------------------------


def test_comparator_pooled_matches_paired_bootstrap(world, comparator):
    ev = ex.evaluate(world, ("equal-logits", "zpe-both"))
    got = comparator.compare(ev, "zpe-both", ev, "equal-logits")
    want = stats.paired_bootstrap(
        metrics.accuracy,
        ev.pooled_probs("zpe-both"),
        ev.pooled_probs("equal-logits"),
        world.pooled(world.labels),
        clusters=world.pooled(world.sources),
        n_resamples=300,
        seed=3,
    )
    assert (got.low, got.high) == pytest.approx((want.low, want.high), abs=1e-12)
    assert got.n_units == N // 2  # a source is drawn with its images in both domains


def test_domain_table_counts_resolved_wins(world, comparator):
    ev = ex.evaluate(world)
    t = ex.domain_table(world, ev, comparator)
    assert set(t.differences) == set(ex.BASELINES)
    for b in ex.BASELINES:
        for d in world.domains:
            r = t.differences[b][d]
            assert r.difference == pytest.approx(t.accuracy[d]["zpe-both"] - t.accuracy[d][b])
        wins = sum(r.resolved and r.difference > 0 for d, r in t.differences[b].items() if d != "mean")
        assert t.resolved(b, +1) == wins
        assert t.resolved(b, +1) + t.resolved(b, -1) <= len(world.domains)


def test_headline_over_seeds(world, comparator, pretrain):
    h = ex.headline_over_seeds(world, comparator, pretrain, n_scored=100)
    assert h.seeds == (0, 1, 2)
    for s in h.seeds:
        ev = ex.evaluate(world, ("zpe-both", "equal-logits"), pretrain=pretrain[s], n_scored=100, seed=s)
        assert h.accuracy["zpe-both"].values[s] == pytest.approx(ev.metric("accuracy", "zpe-both"))
        assert h.intervals[s]["equal-logits"].difference == pytest.approx(
            ev.metric("accuracy", "zpe-both") - ev.metric("accuracy", "equal-logits")
        )
    assert h.difference["equal-logits"].mean == pytest.approx(
        sum(h.intervals[s]["equal-logits"].difference for s in h.seeds) / 3
    )
    assert h.accuracy["equal-embeddings"].std == pytest.approx(0.0, abs=1e-12)  # nothing random in it
    with pytest.raises(TypeError, match="pretrain must be a non-empty dict"):
        ex.headline_over_seeds(world, comparator, {})


def test_spurious_report_ranks(world):
    ev = ex.evaluate(world, ("max-logit", "zpe-both"))
    r = ex.spurious_report(world, ev, "clean", "max-logit")
    scores = ev.scores["max-logit", "clean"]
    sketch = POOL.index("a sketch of a {}.")
    assert r.ranks == (int((scores > scores[sketch]).sum()) + 1,)
    assert r.ranks == (1,)  # in this fake world "sketch" has every logit high: the naive score's favourite
    assert r.weight == pytest.approx(float(ev.weights["max-logit", "clean"][sketch]))
    assert r.top == "a sketch of a {}."
    z = ex.spurious_report(world, ev, "clean", "zpe-both")
    assert z.ranks[0] > 1
    assert z.weight < r.weight
    with pytest.raises(ValueError, match="weighted method"):
        ex.spurious_report(world, ex.evaluate(world, ("equal-embeddings",)), "clean", "equal-embeddings")


def test_score_anatomy(world):
    a = ex.score_anatomy(world, "clean")
    z = world.logits["clean"].double()
    torch.testing.assert_close(a.naive, prompts.zpe_scores(z, debias="none"))
    torch.testing.assert_close(a.spread, prompts.zpe_scores(z, debias="test"))
    torch.testing.assert_close(a.level, z.mean(0).mean(1))
    # max_c (mu + r) <= max_c mu + max_c r, and >= level + ... : the naive score is at most lean + level + spread
    assert bool((a.naive <= a.level + a.lean + a.spread + 1e-9).all())
    sketch = POOL.index("a sketch of a {}.")
    assert float(a.level[sketch]) == float(a.level.max())  # the fake "sketch" raises every logit
    assert bool(((a.favourite >= 1 / len(NAMES) - 1e-12) & (a.favourite <= 1)).all())
    torch.testing.assert_close(a.shift, (z.mean(0) - world.pretrain.double().mean(0)).mean(1))
    assert a.group("style:clean") == "own style"
    assert a.group("style:noisy") == "other style"
    assert a.group("spurious:sketch") == "spurious"


def test_anatomy_by_group(world):
    anatomies = [ex.score_anatomy(world, d) for d in world.domains]
    g = ex.anatomy_by_group(anatomies)
    sk = [i for i, t in enumerate(POOL) if "sketch" in t]
    want = sum(float(a.naive[sk].mean()) for a in anatomies) / len(anatomies)
    assert g["spurious"]["naive"] == pytest.approx(want)
    assert set(g) == {"generic", "spurious", "other style"}  # no rare prompt; no blurry domain
    assert g["spurious"]["level"] > g["generic"]["level"]  # the fake "sketch" lifts every logit
    with pytest.raises(ValueError, match="anatomies must hold"):
        ex.anatomy_by_group([])


def test_debias_table(world, comparator):
    ev = ex.evaluate(world)
    t = ex.debias_table(ev, comparator)
    assert t.n_prompts == len(POOL)
    assert t.effective["equal-logits"] == pytest.approx(len(POOL))
    assert t.score_range["equal-logits"] == pytest.approx(t.score_range["zpe-both"])  # same ("both") scores
    assert "equal-logits" not in t.vs_reference["accuracy"]
    r = t.vs_reference["nll"]["zpe-both"]
    assert r.difference == pytest.approx(t.nll["zpe-both"] - t.nll["equal-logits"])
    assert t.accuracy["zpe-test"] == pytest.approx(ev.metric("accuracy", "zpe-test"))


def test_scoring_curve(world, comparator, pretrain):
    c = ex.scoring_curve(world, comparator, pretrain, sizes=(5, 50))
    assert c.accuracy.shape == (3, 2)
    for i, s in enumerate(c.seeds):
        ev = ex.evaluate(world, ("zpe-both",), pretrain=pretrain[s], n_scored=50, seed=s)
        assert float(c.accuracy[i, 1]) == pytest.approx(ev.metric("accuracy", "zpe-both"))
        full = ex.evaluate(world, ("zpe-both",), pretrain=pretrain[s])
        small = ex.evaluate(world, ("zpe-both",), pretrain=pretrain[s], n_scored=5, seed=s)
        assert c.smallest_vs_all[s].difference == pytest.approx(
            small.metric("accuracy", "zpe-both") - full.metric("accuracy", "zpe-both")
        )
    assert set(c.baselines) == set(ex.BASELINES)
    with pytest.raises(ValueError, match="sizes"):
        ex.scoring_curve(world, comparator, pretrain, sizes=(0,))


def test_pretrain_logits_draws_from_the_pretraining_pairs(data, monkeypatch):
    from ensemble_lab.data import captions

    pool = _domain(7, 50, 0.6).images
    monkeypatch.setattr(captions, "pretraining_pairs", lambda seed, n: SimpleNamespace(images=pool[:n]))
    got = ex.pretrain_logits(data, POOL, seed=2, n=10, n_pairs=50)
    idx = torch.randperm(50, generator=torch.Generator().manual_seed(2))[:10].sort().values
    emb = torch.nn.functional.normalize(pool[idx], dim=-1)
    torch.testing.assert_close(got, prompts.prompt_logits(emb, data.text_embeddings(POOL), data.logit_scale))
    assert not torch.equal(got, ex.pretrain_logits(data, POOL, seed=3, n=10, n_pairs=50))
    with pytest.raises(ValueError, match="n must be"):
        ex.pretrain_logits(data, POOL, seed=0, n=100, n_pairs=50)


# -- the figures --------------------------------------------------------------------------------------


def test_figures_draw(world, comparator, pretrain):
    from ensemble_lab.plots import StaticFigure

    ev = ex.evaluate(world)
    table = ex.domain_table(world, ev, comparator)
    head = ex.headline_over_seeds(world, comparator, pretrain, n_scored=100)
    anatomies = [ex.score_anatomy(world, d) for d in world.domains]
    curve = ex.scoring_curve(world, comparator, pretrain, sizes=(5, 50))
    for fig in (
        figures.domain_figure(table, head),
        figures.score_figure(anatomies),
        figures.debias_figure(ex.debias_table(ev, comparator)),
        figures.scoring_figure(curve),
    ):
        assert StaticFigure(fig)._repr_png_()[:4] == b"\x89PNG"
        assert fig.axes
