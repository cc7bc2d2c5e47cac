"""Notebook 02's experiments and figures: each number against the routine or a slow reference it must equal."""

import functools
import math
from types import SimpleNamespace

import pytest
import torch
from matplotlib.figure import Figure

from ensemble_lab import calibration, calibration_error, metrics, stats
from ensemble_lab.calibration_simulation import binned_errors, linear_world, wave_world
from ensemble_lab.labs.calibration import experiments as ex
from ensemble_lab.labs.calibration import figures
from ensemble_lab.plots import StaticFigure


def world_predictions(k=4, n=900, c=5, seed=0, per_source=3):
    """Over-confident members (logits 2.5x too sharp) with independent noise, on val, test and a noisier shift;
    every source digit is shown ``per_source`` times (consecutive images share a source)."""
    g = torch.Generator().manual_seed(seed)
    logits, labels, sources = {}, {}, {}
    for split, noise in (("val", 1.0), ("test", 1.0), ("noise-3", 2.5)):
        base = torch.randint(0, c, (n // per_source,), generator=g)
        y = base.repeat_interleave(per_source)
        shared = torch.randn(n // per_source, c, generator=g).repeat_interleave(per_source, 0)
        z = 1.5 * torch.nn.functional.one_hot(y, c).float() + noise * (0.6 * shared + torch.randn(k, n, c, generator=g))
        logits[split], labels[split] = 2.5 * z, y
        sources[split] = torch.arange(n) // per_source + (0 if split == "val" else 10_000)
    return SimpleNamespace(logits=logits, labels=labels, sources=sources)


@pytest.fixture(scope="module")
def preds():
    return world_predictions()


@pytest.fixture(scope="module")
def pair(preds):
    cal = ex.calibrated_ensembles(preds, "test")
    return cal.probs["calibrate-then-pool"], cal.probs["pool-then-calibrate"], cal.labels, cal.sources


# -- paired intervals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("clustered", [True, False])
@pytest.mark.parametrize("name", list(ex.METRICS))
def test_paired_intervals_equal_the_slow_paired_bootstrap(pair, name, clustered):
    a, b, y, src = pair
    clusters = src if clustered else None
    fast = ex.paired_intervals(a, b, y, clusters=clusters, names=(name,), n_bins=10, n_resamples=200, seed=3)[name]
    metric = functools.partial(metrics.ece, n_bins=10) if name == "ece" else ex.METRICS[name]
    slow = stats.paired_bootstrap(metric, a, b, y, clusters=clusters, n_resamples=200, seed=3)
    assert fast.difference == pytest.approx(slow.difference, abs=1e-12)
    assert fast.low == pytest.approx(slow.low, abs=1e-9)
    assert fast.high == pytest.approx(slow.high, abs=1e-9)
    assert (fast.resolved, fast.n_units, fast.n_resamples, fast.level) == (
        slow.resolved,
        slow.n_units,
        slow.n_resamples,
        slow.level,
    )


def test_clusters_widen_the_interval_of_shared_sources(pair):
    a, b, y, src = pair
    by_image = ex.paired_intervals(a, b, y, names=("nll",))["nll"]
    by_source = ex.paired_intervals(a, b, y, clusters=src, names=("nll",))["nll"]
    assert by_source.n_units == 300
    assert by_image.n_units == 900
    assert by_source.high - by_source.low > by_image.high - by_image.low


def test_confidence_gap_is_mean_confidence_minus_accuracy():
    p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    y = torch.tensor([0, 1, 1])
    assert ex.confidence_gap(p, y) == pytest.approx((0.9 + 0.6 + 0.8) / 3 - 2 / 3)


def test_argmax_changes_counts_the_predictions_that_change_class(pair):
    a, b, _, src = pair
    r = ex.argmax_changes(a, b, clusters=src, n_resamples=200)
    share = float((a.argmax(1) != b.argmax(1)).double().mean())
    assert r.difference == pytest.approx(share)
    slow = stats.paired_bootstrap(metrics.accuracy, a, b, a.argmax(1), clusters=src, n_resamples=200)
    assert (r.low, r.high) == pytest.approx((slow.low, slow.high), abs=1e-12)
    assert ex.argmax_changes(a, a.clone(), n_resamples=50).difference == 0.0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"names": ("brier",)}, "names must be among"),
        ({"names": "ece"}, "names"),
        ({"clusters": torch.arange(5)}, "clusters must have shape (900,)"),
        ({"clusters": torch.rand(900)}, "integer group ids"),
        ({"n_resamples": 1}, "n_resamples must be in"),
        ({"level": 1.0}, "level must be in"),
        ({"n_bins": 0}, "n_bins must be in"),
    ],
)
def test_paired_intervals_refuse_bad_input_by_name(pair, kwargs, fragment):
    a, b, y, _ = pair
    with pytest.raises((ValueError, TypeError)) as info:
        ex.paired_intervals(a, b, y, **kwargs)
    assert fragment in str(info.value)


def test_paired_intervals_refuse_mismatched_predictions(pair):
    a, b, y, _ = pair
    with pytest.raises(ValueError, match="pred_b must have the shape of pred_a"):
        ex.paired_intervals(a, b[:10], y)
    with pytest.raises(ValueError, match="pred_b"):
        ex.argmax_changes(a, b[:, :3])


# -- the simulation sweep ------------------------------------------------------------------------------


def test_bias_sweep_estimates_are_the_package_estimators_on_the_same_draws():
    w = wave_world(0.6, 4)
    s = ex.bias_sweep(w, n_bins=(3, 15), sizes=(50, 400), repeats=6, seed=5)
    conf, correct = w.sample_top_label(400, 6, seed=5)
    for i, n in enumerate(s.sizes):
        for j, b in enumerate(s.n_bins):
            want = binned_errors(conf[:, :n], correct[:, :n], b)
            for name in ex.SWEEP_ESTIMATORS:
                assert torch.allclose(s.estimates[name][i, j], want[name], atol=1e-15)
    assert s.true_l1 == pytest.approx(w.true_error("l1"))
    assert s.binned_l2.tolist() == pytest.approx([w.binned_error(b, "l2") for b in (3, 15)])
    lo, hi = s.band("l1", level=0.5)
    assert bool((lo <= s.mean("l1") + 1e-12).all())
    assert bool((hi >= lo).all())


def test_bias_sweep_shows_both_biases():
    line = ex.bias_sweep(linear_world(0.95), n_bins=(5, 100), sizes=(100, 10_000), repeats=40)
    assert line.at(100, 100) > 3 * line.true_l1  # many bins, few samples: far above the truth
    assert line.at(10_000, 5) == pytest.approx(line.true_l1, rel=0.1)
    wave = ex.bias_sweep(wave_world(0.6, 4), n_bins=(5, 100), sizes=(100, 10_000), repeats=40)
    assert wave.at(10_000, 5) < 0.4 * wave.true_l1  # few bins on a crossing curve: far below, however large N
    assert wave.at(10_000, 5) == pytest.approx(float(wave.binned_l1[0]), abs=3e-3)
    # the debiased square is unbiased for the binned square; its root is not (Jensen) but is far closer than the plug-in
    d = wave.estimates["l2_debiased_squared"][0, 1]
    se = float(d.std()) / math.sqrt(d.numel())
    assert float(d.mean()) == pytest.approx(float(wave.binned_l2[1]) ** 2, abs=4 * se)
    assert abs(wave.at(100, 100, "l2_debiased") - wave.true_l2) < abs(wave.at(100, 100, "l2") - wave.true_l2)


def test_bias_sweep_refuses_bad_input_by_name():
    w = linear_world(0.9)
    with pytest.raises(TypeError, match="world must be a CalibrationWorld"):
        ex.bias_sweep("world")
    with pytest.raises(ValueError, match="n_bins must not repeat"):
        ex.bias_sweep(w, n_bins=(5, 5))
    with pytest.raises(ValueError, match=r"sizes\[0\] must be in"):
        ex.bias_sweep(w, sizes=(1,))
    with pytest.raises(ValueError, match="estimator must be one of"):
        ex.bias_sweep(w, n_bins=(5,), sizes=(10,), repeats=2).mean("l3")
    with pytest.raises(ValueError, match="n must be one of"):
        ex.bias_sweep(w, n_bins=(5,), sizes=(10,), repeats=2).at(11, 5)


# -- real-prediction experiments --------------------------------------------------------------------------


def test_estimator_table_puts_each_norm_with_its_own_estimator(pair):
    p, _, y, _ = pair
    t = ex.estimator_table(p, y, (5, 15))
    assert t["l1 binned"] == pytest.approx((metrics.ece(p, y, n_bins=5), metrics.ece(p, y, n_bins=15)))
    assert t["l2 binned"][1] == pytest.approx(metrics.ece(p, y, n_bins=15, norm="l2"))
    want = calibration_error.debiased_ece(p, y, n_bins=15, strategy="uniform", squared=False)
    assert t["l2 debiased"][1] == pytest.approx(want)
    assert t["l1 smooth"] == pytest.approx((calibration_error.smooth_ece(p, y),) * 2)
    assert all(l2 >= l1 for l1, l2 in zip(t["l1 binned"], t["l2 binned"], strict=True))


def test_calibrated_ensembles_use_the_calibration_routines(preds):
    cal = ex.calibrated_ensembles(preds, "test")
    z_val, y_val = preds.logits["val"].double(), preds.labels["val"]
    ptc = calibration.pool_then_calibrate(z_val, y_val)
    ctp = calibration.calibrate_then_pool(z_val, y_val)
    z = preds.logits["test"].double()
    assert cal.temperature == pytest.approx(ptc.temperature)
    assert torch.allclose(cal.member_temperatures, ctp.member_temperatures)
    assert torch.allclose(cal.probs["pool-then-calibrate"], ptc.apply(z))
    assert torch.allclose(cal.probs["calibrate-then-pool"], ctp.apply(z))
    assert torch.allclose(cal.probs["as trained"], calibration.pooled_logits(z).exp())
    assert torch.equal(cal.sources, preds.sources["test"])
    with pytest.raises(ValueError, match="split must be one of"):
        ex.calibrated_ensembles(preds, "nope")


def test_member_scaling_is_guo_et_al_on_one_network(preds):
    r = ex.member_scaling(preds, member=1, n_resamples=100)
    t = calibration.fit_temperature(preds.logits["val"][1].double(), preds.labels["val"])
    assert r["temperature"] == pytest.approx(t)
    assert r["changed"] == 0
    assert r["rows"]["after"]["accuracy"] == r["rows"]["before"]["accuracy"]
    assert r["rows"]["before"]["confidence_gap"] > 0  # sharpened logits: over-confident
    assert r["change"]["ece"].difference < 0
    with pytest.raises(ValueError, match="member must be in"):
        ex.member_scaling(preds, member=4)


def test_pooling_comparison(preds):
    r = ex.pooling_comparison(preds, n_resamples=200)
    rows = r["rows"]
    assert rows["calibrate-then-pool"]["confidence_gap"] < 0  # calibrated members pool into an under-confident ensemble
    assert r["changed_ptc"] == 0
    assert rows["pool-then-calibrate"]["accuracy"] == rows["as trained"]["accuracy"]
    assert r["ptc_minus_trained"]["accuracy"].difference == 0.0
    cal = r["calibrated"]
    a, b = cal.probs["calibrate-then-pool"], cal.probs["pool-then-calibrate"]
    slow = stats.paired_bootstrap(metrics.nll, a, b, cal.labels, clusters=cal.sources, n_resamples=200)
    assert r["ctp_minus_ptc"]["nll"].low == pytest.approx(slow.low, abs=1e-9)
    assert r["changed"].difference == pytest.approx(
        float((cal.probs["as trained"].argmax(1) != a.argmax(1)).double().mean())
    )
    for name, m in rows.items():
        assert m["ece"] == pytest.approx(metrics.ece(cal.probs[name], cal.labels))
        assert m["ece_l2"] == pytest.approx(metrics.ece(cal.probs[name], cal.labels, norm="l2"))


def test_pooling_over_seeds_summarises_each_seeds_comparison():
    runs = {s: world_predictions(seed=s) for s in (0, 1, 2)}
    per_seed, summary = ex.pooling_over_seeds(runs, n_resamples=100)
    assert list(per_seed) == [0, 1, 2]
    values = [per_seed[s]["ctp_minus_ptc"]["ece"].difference for s in (0, 1, 2)]
    assert summary["ece ctp - ptc"].values == pytest.approx(values)
    assert summary["gap ctp"].mean == pytest.approx(
        sum(per_seed[s]["rows"]["calibrate-then-pool"]["confidence_gap"] for s in (0, 1, 2)) / 3
    )
    with pytest.raises(TypeError, match="runs must be a non-empty mapping"):
        ex.pooling_over_seeds([runs[0]])


def test_shift_rows(preds):
    t, rows = ex.shift_rows(preds, ["test", "noise-3"], n_resamples=100)
    assert t == pytest.approx(
        calibration.pool_then_calibrate(preds.logits["val"].double(), preds.labels["val"]).temperature
    )
    shifted = rows[1]
    z, y = preds.logits["noise-3"].double(), preds.labels["noise-3"]
    assert shifted.needed == pytest.approx(calibration.pool_then_calibrate(z, y).temperature)
    after = calibration.PooledCalibrator("prob", t, torch.ones(4, dtype=torch.float64)).apply(z)
    assert shifted.after["ece"] == pytest.approx(metrics.ece(after, y))
    assert shifted.change["ece"].difference == pytest.approx(shifted.after["ece"] - shifted.before["ece"])
    assert shifted.change["ece"].n_units == 300
    with pytest.raises(ValueError, match="splits must name splits"):
        ex.shift_rows(preds, ["blur-9"])


def test_load_seeds_asks_the_zoo_for_the_notebooks_ensemble(monkeypatch):
    calls = []
    monkeypatch.setattr(ex.zoo, "ensemble_predictions", lambda **kw: calls.append(kw) or kw["seed"])
    assert ex.load_seeds((0, 2), progress=False) == {0: 0, 2: 2}
    assert calls[0] == {**ex.ENSEMBLE, "seed": 0, "progress": False}
    assert ex.load_seeds((1,), epochs=5, progress=False) == {1: 1}
    assert calls[-1]["epochs"] == 5
    with pytest.raises(ValueError, match="seeds must not repeat"):
        ex.load_seeds((0, 0))


# -- figures ---------------------------------------------------------------------------------------------


def _png(fig):
    assert isinstance(fig, Figure)
    assert StaticFigure(fig)._repr_png_()[:4] == b"\x89PNG"


def test_every_figure_draws(preds, pair):
    sweeps = {
        "line": ex.bias_sweep(linear_world(0.95), n_bins=(5, 15, 100), sizes=(50, 200, 800), repeats=4),
        "wave": ex.bias_sweep(wave_world(0.6, 4), n_bins=(5, 15, 100), sizes=(50, 200, 800), repeats=4),
    }
    fig = figures.bias_figure(sweeps)
    assert len(fig.axes) == 6
    _png(fig)
    p, _, y, _ = pair
    _png(figures.estimators_figure({"all": ex.estimator_table(p, y, (5, 15))}, (5, 15)))
    fig = figures.reliability_figure([("a", metrics.reliability(p, y)), ("b", metrics.reliability(p, y, n_bins=5))])
    assert len(fig.axes) == 4
    _png(fig)
    _, rows = ex.shift_rows(preds, ["test", "noise-3"], n_resamples=50)
    _png(figures.shift_figure(rows))
    per_seed, _ = ex.pooling_over_seeds({0: preds, 1: world_predictions(seed=1)}, n_resamples=50)
    _png(figures.pooling_figure(per_seed))
    with pytest.raises(ValueError, match="panels must hold at least one"):
        figures.reliability_figure([])
