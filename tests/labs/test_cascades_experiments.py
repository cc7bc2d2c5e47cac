"""Notebook 04's experiments on small synthetic predictions: every number against an independent computation (the
paired bootstrap of ``stats``, the cascades routines, the Lab's frontiers, a slow loop for the window rule)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from ensemble_lab import cascades, metrics, selective, stats
from ensemble_lab.labs import CascadesLab
from ensemble_lab.labs.cascades import experiments as ex
from ensemble_lab.labs.cascades import figures
from ensemble_lab.plots import StaticFigure

K, C, N = 4, 5, 900
COSTS = [10.0, 10.0, 10.0, 10.0]


def _predictions(seed=0, n=N, k=K, big=0.0):
    """Members of graded quality on val, test and a shifted split; three images per source (the shifted split shares
    the test split's sources); ``big`` adds signal (a "larger" model)."""
    g = torch.Generator().manual_seed(seed)
    logits, labels, sources = {}, {}, {}
    test_sources = torch.arange(n) // 3
    for split, noise in (("val", 1.3), ("test", 1.3), ("noise-2", 2.2)):
        y = torch.randint(0, C, (n,), generator=g) if split != "noise-2" else labels["test"]
        strength = torch.linspace(1.5, 2.5, k).view(k, 1, 1) + big
        logits[split] = strength * torch.nn.functional.one_hot(y, C).float() + noise * torch.randn(k, n, C, generator=g)
        labels[split] = y
        sources[split] = torch.arange(n) // 3 if split == "val" else test_sources
    return SimpleNamespace(logits=logits, labels=labels, sources=sources, member_macs=10)


@pytest.fixture(scope="module")
def preds():
    return _predictions()


@pytest.fixture(scope="module")
def cascade(preds):
    return ex.Cascade(preds, COSTS)


def _packed_risk(coverage):
    """risk at ``coverage`` as a metric of (N, 2) "predictions" [confidence, correct] for ``stats.paired_bootstrap``
    (labels unused)."""
    return lambda p, y: selective.risk_at_coverage(p[:, 0], p[:, 1] > 0.5, coverage)


def _pack(conf, ok):
    return torch.stack([conf.double(), ok.double()], 1)


# -- the cluster bootstrap ----------------------------------------------------------------------------------


@pytest.mark.parametrize("coverage", [0.05, 0.333, 0.8, 1.0])
def test_resampled_risks_equal_the_paired_bootstrap(coverage):
    g = torch.Generator().manual_seed(1)
    n = 240
    clusters = torch.randint(0, 90, (n,), generator=g) * 3 + 7  # sparse ids, uneven cluster sizes
    conf_a = torch.round(torch.rand(n, generator=g, dtype=torch.float64) * 12) / 12  # many tied blocks
    conf_b = torch.rand(n, generator=g, dtype=torch.float64)
    ok_a = torch.rand(n, generator=g) < 0.3 + 0.6 * conf_a
    ok_b = torch.rand(n, generator=g) < 0.4 + 0.5 * conf_b
    ref = stats.paired_bootstrap(
        _packed_risk(coverage),
        _pack(conf_a, ok_a),
        _pack(conf_b, ok_b),
        torch.zeros(n, dtype=torch.long),
        clusters=clusters,
        n_resamples=200,
        seed=4,
    )
    r = ex.ClusterResamples(clusters, n_resamples=200, seed=4, chunk=64)
    a = ex.Outcome(torch.zeros(n), conf_a, ok_a, torch.zeros(n, dtype=torch.bool))
    b = ex.Outcome(torch.zeros(n), conf_b, ok_b, torch.zeros(n, dtype=torch.bool))
    ours = r.compare_risks(a, b, coverage)
    assert ours.difference == pytest.approx(ref.difference, abs=1e-12)
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert (ours.resolved, ours.n_units, ours.n_resamples) == (ref.resolved, ref.n_units, ref.n_resamples)
    est = r.estimate_risk(conf_a, ok_a, coverage)
    assert est.difference == selective.risk_at_coverage(conf_a, ok_a, coverage)


def test_resampled_risks_against_a_slow_loop_over_resamples():
    g = torch.Generator().manual_seed(2)
    n = 60
    clusters = torch.arange(n) // 4
    conf = torch.round(torch.rand(n, generator=g) * 5) / 5
    ok = torch.rand(n, generator=g) < 0.7
    r = ex.ClusterResamples(clusters, n_resamples=40, seed=9)
    fast = r.risks_at_coverage(conf, ok, 0.7)
    draws = stats.resample_units(15, 40, 9)
    for row, value in zip(draws, fast, strict=True):
        idx = torch.cat([torch.nonzero(clusters == u)[:, 0] for u in row.tolist()])
        assert float(value) == pytest.approx(selective.risk_at_coverage(conf[idx], ok[idx], 0.7), abs=1e-12)


def test_resampled_means_equal_the_paired_bootstrap_of_accuracy():
    g = torch.Generator().manual_seed(3)
    n = 120
    y = torch.randint(0, 3, (n,), generator=g)
    pa = torch.softmax(torch.randn(n, 3, generator=g) + 2 * torch.nn.functional.one_hot(y, 3), -1).double()
    pb = torch.softmax(torch.randn(n, 3, generator=g), -1).double()
    clusters = torch.arange(n) // 2
    ref = stats.paired_bootstrap(metrics.accuracy, pa, pb, y, clusters=clusters, n_resamples=300, seed=2)
    r = ex.ClusterResamples(clusters, n_resamples=300, seed=2)
    ours = r.compare_means((pa.argmax(-1) == y).double(), (pb.argmax(-1) == y).double())
    assert (ours.difference, ours.low, ours.high) == pytest.approx((ref.difference, ref.low, ref.high), abs=1e-12)


def test_resamples_refuse_bad_input():
    with pytest.raises(ValueError, match="clusters must hold integer"):
        ex.ClusterResamples(torch.rand(10))
    with pytest.raises(ValueError, match="n_resamples"):
        ex.ClusterResamples(torch.arange(10), n_resamples=1)
    r = ex.ClusterResamples(torch.arange(10), n_resamples=20)
    with pytest.raises(ValueError, match="coverage must be in"):
        r.risks_at_coverage(torch.rand(10), torch.ones(10, dtype=torch.bool), 0.0)
    with pytest.raises(ValueError, match="confidence must have shape \\(10,\\)"):
        r.risks_at_coverage(torch.rand(9), torch.ones(9, dtype=torch.bool), 0.5)
    with pytest.raises(ValueError, match="values must have shape"):
        r.estimate_mean(torch.rand(11))
    with pytest.raises(TypeError, match="outcomes\\['x'\\] must be an Outcome"):
        r.risks({"x": 1.0}, 0.5)


# -- the cascade, fitted the authors' way ---------------------------------------------------------------------


def test_tau_and_window_come_from_the_first_stage(preds, cascade):
    w = cascade.windows(0.1)
    val = cascades.confidence_score(preds.logits["val"][0], "msp")  # the first member alone
    assert w.tau[0] == selective.threshold_for_coverage(val, ex.COVERAGE)
    assert (w.lo[0], w.hi[0]) == ex.window_by_hand(val, w.tau[0], 0.1)
    assert math.isfinite(w.lo[0])
    assert math.isfinite(w.hi[0])
    assert cascade.val_share(w)[0] == pytest.approx(0.2, abs=2 / N)


def test_window_by_hand_matches_fit_windows_on_random_scores():
    g = torch.Generator().manual_seed(5)
    for trial in range(40):
        m = int(torch.randint(5, 60, (1,), generator=g))
        scores = torch.round(torch.rand(m, generator=g, dtype=torch.float64) * (4 + trial)) / (4 + trial)  # ties
        q = float(torch.rand(1, generator=g)) * 0.5
        cov = 0.05 + 0.95 * float(torch.rand(1, generator=g))
        w = cascades.fit_windows(scores, None, q, target_coverage=cov)
        assert ex.window_by_hand(scores, w.tau[0], q) == (w.lo[0], w.hi[0])


def test_matched_threshold_passes_on_the_same_val_share(preds, cascade):
    for q in (0.0, 0.05, 0.1, 0.15, 0.3):
        w = cascade.windows(q)
        thr = cascade.matched_threshold(w)
        a, b = cascade.run("val", w), cascade.run("val", thr, policy="threshold")
        assert a.share_passed == pytest.approx(cascade.val_share(w)[0], abs=1e-12)
        assert b.share_passed == pytest.approx(a.share_passed, abs=1.5 / N)  # within one image (ties aside)
        assert b.macs == pytest.approx(a.macs, abs=1.5 * COSTS[1] / N)


def test_outcomes_match_the_routines(preds, cascade):
    w = cascade.windows(0.1)
    z, y = preds.logits["test"], preds.labels["test"]
    r = cascades.fitted_cascade(z, w, costs=COSTS, order=[0, 1])
    o = cascade.run("test", w)
    assert o.macs == pytest.approx(float(r.cost.mean()))
    assert bool((o.correct == (r.predictions == y)).all())
    full = cascade.full("test")
    assert full.macs == 20.0
    assert bool((full.correct == (cascades.stage_probs(z, order=[0, 1])[-1].argmax(-1) == y)).all())
    first = cascade.first("test")
    assert bool((first.confidence == cascades.confidence_score(z[0])).all())


def test_cascade_refuses_bad_input(preds):
    with pytest.raises(ValueError, match="order must list two or more"):
        ex.Cascade(preds, COSTS, order=(0,))
    with pytest.raises(ValueError, match="order must list two or more"):
        ex.Cascade(preds, COSTS, order=(0, 0))
    with pytest.raises(ValueError, match="costs must be 4"):
        ex.Cascade(preds, [1.0, 2.0])
    with pytest.raises(ValueError, match="score must be one of"):
        ex.Cascade(preds, COSTS, score="margin")
    with pytest.raises(ValueError, match="target_coverage must be in"):
        ex.Cascade(preds, COSTS, target_coverage=1.5)
    with pytest.raises(ValueError, match="split must be one of"):
        ex.Cascade(preds, COSTS).run("nope", ex.Cascade(preds, COSTS).windows())


# -- the policy sweep -----------------------------------------------------------------------------------------


def test_policy_sweep_against_the_lab_and_the_routines(preds, cascade):
    hws = (0.0, 0.05, 0.1, 0.25)
    sweep = ex.policy_sweep(cascade, hws, n_resamples=200)
    lab = CascadesLab(preds, COSTS)  # defaults: two stages, tau for 80% val coverage, risk read at 80% coverage
    lab_macs, lab_quality = lab.result.frontiers["window"]
    from ensemble_lab.labs.cascades.lab import SWEEP

    for q, p in zip(hws, sweep.window, strict=True):
        i = SWEEP.index(q)
        assert p.macs == pytest.approx(float(lab_macs[i]))
        assert p.risk.difference == pytest.approx(float(lab_quality[i]), abs=1e-7)  # the Lab keeps float32
    # q = 0: the window passes nobody on (the first member alone); the matched threshold passes no val image on
    assert sweep.window[0].macs == 10.0
    assert sweep.singles["first member alone"].risk.difference == sweep.window[0].risk.difference
    assert sweep.val_share[0] == 0.0
    assert cascade.run("val", cascade.matched_threshold(cascade.windows(0.0)), policy="threshold").macs == 10.0
    # a window reaching the bottom of the scores (tau at level ~0.2, q = 0.25) IS the threshold at its upper edge
    assert math.isinf(cascade.windows(0.25).lo[0])
    assert sweep.difference[-1].difference == 0.0
    assert sweep.window[-1].macs == sweep.threshold[-1].macs
    assert sweep.resolved() == tuple(q for q, d in zip(hws, sweep.difference, strict=True) if d.resolved)


def test_policy_sweep_singles_and_bad_input(preds, cascade):
    big = _predictions(7, big=1.0)
    sweep = ex.policy_sweep(
        cascade, (0.1,), singles={"big": (big.logits["test"][0], 40.0)}, n_resamples=100
    )  # "big" predicts other labels: only the mechanics are checked
    assert sweep.singles["big"].macs == 40.0
    assert sweep.singles["full ensemble"].share == 1.0
    with pytest.raises(TypeError, match="cascade must be a Cascade"):
        ex.policy_sweep(preds)
    with pytest.raises(ValueError, match="half_widths\\[1\\] must be in"):
        ex.policy_sweep(cascade, (0.1, 0.7))


# -- the adjusted window under shift --------------------------------------------------------------------------


def test_shift_comparison_against_adjust_windows(preds, cascade):
    res = ex.shift_comparison(cascade, ("test", "noise-2"), n_resamples=200)
    plain = cascade.windows(ex.HALF_WIDTH)
    for split, row in res.rows.items():
        first = cascades.stage_scores(preds.logits[split], order=[0, 1])[0]
        adj = cascades.adjust_windows(plain, first)
        assert row.window_adjusted == (adj.lo[0], adj.hi[0])
        assert row.window_plain == (plain.lo[0], plain.hi[0])
        assert row.coverage == pytest.approx(float((first >= plain.tau[0]).double().mean()))
        # the planned share again, 2 q around tau's level on this split (less where it reaches an end of the scores)
        q, u = ex.HALF_WIDTH, adj.level[0]
        assert row.share_adjusted == pytest.approx(min(u, q) + min(1 - u, q), abs=2 / N)
        a = cascades.fitted_cascade(preds.logits[split], plain, costs=COSTS, order=[0, 1])
        b = cascades.fitted_cascade(preds.logits[split], adj, costs=COSTS, order=[0, 1])
        assert row.macs_difference.difference == pytest.approx(float((b.cost - a.cost).mean()))
        y = preds.labels[split]
        want = selective.risk_at_coverage(b.confidence, b.predictions == y, row.coverage) - (
            selective.risk_at_coverage(a.confidence, a.predictions == y, row.coverage)
        )
        assert row.risk_difference.difference == pytest.approx(want, abs=1e-12)
        inside = (plain.lo[0] < first) & (first < plain.hi[0])  # the plain window, in val quantiles
        assert row.share_plain == pytest.approx(float(inside.double().mean()))
    assert set(res.scores) == {"val", "test", "noise-2"}
    with pytest.raises(ValueError, match="split must be one of"):
        ex.shift_comparison(cascade, ("blur-9",))


# -- the headline over seeds ----------------------------------------------------------------------------------


def _load(arch, seed):
    """Medium members of seed ``seed``, and a "large" model on the same images (their labels) with more signal."""
    medium = _predictions(20 + seed)
    if arch != ex.LARGE:
        return medium
    g = torch.Generator().manual_seed(30 + seed)
    logits = {
        s: 3.0 * torch.nn.functional.one_hot(y, C).float() + 1.3 * torch.randn(2, y.shape[0], C, generator=g)
        for s, y in medium.labels.items()
    }
    return SimpleNamespace(logits=logits, labels=medium.labels, sources=medium.sources, member_macs=40)


def test_headline_runs_and_summaries():
    h = ex.headline(seeds=(0, 1), load=_load, n_resamples=100)
    assert [r.seed for r in h.runs] == [0, 1]
    for r in h.runs:
        assert tuple(r.rows) == ex.HEADLINE_ROWS
        assert tuple(r.differences) == ex.HEADLINE_PAIRS
        assert r.rows["2 x mlp-m ensemble"].macs == 20.0
        assert r.rows["4 x mlp-m ensemble"].macs == 40.0
        assert r.rows["one mlp-m"].macs == 10.0
        for (a, b), d in r.differences.items():
            assert d.difference == pytest.approx(r.rows[a].risk.difference - r.rows[b].risk.difference, abs=1e-12)
    for name in ex.HEADLINE_ROWS:
        values = [r.rows[name].risk.difference for r in h.runs]
        assert h.risk[name].mean == pytest.approx(float(np.mean(values)))
        assert h.risk[name].std == pytest.approx(float(np.std(values, ddof=1)))
    for pair in ex.HEADLINE_PAIRS:
        mean = h.differences[pair].mean
        assert h.resolved[pair] == sum(
            1
            for r in h.runs
            if r.differences[pair].resolved and np.sign(r.differences[pair].difference) == np.sign(mean)
        )


def test_headline_takes_preloaded_predictions():
    given = {(arch, s): _load(arch, s) for s in (0, 1) for arch in ex.HEADLINE_ZOO}
    a = ex.headline(seeds=(0, 1), load=given, n_resamples=50)
    b = ex.headline(seeds=(0, 1), load=_load, n_resamples=50)
    assert a.differences == b.differences
    with pytest.raises(ValueError, match="missing \\[\\('mlp-m', 2\\)"):
        ex.headline(seeds=(0, 2), load=given, n_resamples=50)


def test_headline_refuses_mismatched_images():
    other = _predictions(3)
    other.labels = {s: (y + 1) % C for s, y in other.labels.items()}
    with pytest.raises(ValueError, match="must hold the same 'test' images"):
        ex.headline_run(_predictions(1), other, n_resamples=10)
    with pytest.raises(ValueError, match="at least 4 members"):
        ex.headline_run(_predictions(1, k=3), _predictions(2), n_resamples=10)
    with pytest.raises(TypeError, match="load must be a callable"):
        ex.headline(load=3)


# -- figures ----------------------------------------------------------------------------------------------------


def test_figures_draw(preds, cascade):
    h = ex.headline(seeds=(0,), load=_load, n_resamples=50)
    w = cascade.windows()
    fig = figures.window_figure(
        cascade.windowed_scores("val")[0], w.tau[0], (w.lo[0], w.hi[0]), cascade.matched_threshold(w).tau[0], h
    )
    sweep = ex.policy_sweep(cascade, (0.0, 0.1), n_resamples=50)
    shift = ex.shift_comparison(cascade, ("test", "noise-2"), n_resamples=50)
    for f, n_axes in (
        (fig, 2),
        (figures.policy_figure(sweep), 2),
        (figures.shift_figure(shift, "noise-2"), 3),
    ):
        assert isinstance(f, Figure)
        assert len(f.axes) == n_axes
        assert StaticFigure(f)._repr_png_()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="split must be one of"):
        figures.shift_figure(shift, "blur-2")
