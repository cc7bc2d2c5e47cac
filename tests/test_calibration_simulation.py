"""The synthetic calibration world: its exact errors against closed forms and huge Monte Carlo samples, its samples
against their definition, and its batched estimators against the package's own estimators."""

import math

import numpy as np
import pytest
import torch

from ensemble_lab import calibration_error, metrics
from ensemble_lab.calibration_simulation import CalibrationWorld, binned_errors, linear_world, wave_world

LINEAR = [
    linear_world(slope=0.8),
    linear_world(slope=0.95, n_classes=2, a=2.0, b=1.0),
    linear_world(slope=1.1, intercept=-0.1, n_classes=5, a=1.0, b=1.0),  # under-confident at the top
    CalibrationWorld(n_classes=10, a=6.0, b=2.0, curve="linear", intercept=0.005, slope=0.9),
    linear_world(slope=1.0),  # calibrated
]
WAVES = [wave_world(0.6, 4), wave_world(-0.9, 1.5, n_classes=3, a=1.5, b=1.2), wave_world(1.0, 2, a=1.0, b=1.0)]


def _monte_carlo(world, n=1_000_000, seed=123):
    """Confidences of a huge sample drawn by numpy's own Beta sampler, independently of the quadrature."""
    u = np.random.default_rng(seed).beta(world.a, world.b, size=n)
    return torch.from_numpy(world.chance + (1 - world.chance) * u)


@pytest.mark.parametrize("world", LINEAR, ids=str)
def test_quadrature_matches_the_closed_form_of_a_linear_world(world):
    for norm in ("l1", "l2"):
        assert world.true_error(norm) == pytest.approx(world.closed_form_error(norm), abs=1e-7)


def test_closed_form_by_hand():
    # C = 2, u ~ Beta(1, 1): c uniform on [1/2, 1]; accuracy = 0.8 c + 0.1: gap = 0.1 - 0.2 c in [-0.1, 0]
    w = linear_world(slope=0.8, intercept=0.1, n_classes=2, a=1.0, b=1.0)
    assert w.closed_form_error("l1") == pytest.approx(0.05)  # |0.1 - 0.2 * 0.75|
    # E gap^2 = int_{1/2}^{1} 2 (0.1 - 0.2 c)^2 dc = (2 / 0.2) int_{-0.1}^{0} x^2 dx = 1/300
    assert w.closed_form_error("l2") == pytest.approx(math.sqrt(1 / 300))
    assert w.true_error("l2") == pytest.approx(math.sqrt(1 / 300), abs=1e-9)


@pytest.mark.parametrize("world", LINEAR[:4] + WAVES, ids=str)
def test_true_errors_match_a_huge_monte_carlo_sample(world):
    c = _monte_carlo(world)
    gap = world.gap(c)
    se = float(gap.abs().std()) / math.sqrt(c.numel())
    assert world.true_error("l1") == pytest.approx(float(gap.abs().mean()), abs=5 * se + 1e-9)
    se2 = float((gap * gap).std()) / math.sqrt(c.numel())
    assert world.true_error("l2") ** 2 == pytest.approx(float((gap * gap).mean()), abs=5 * se2 + 1e-12)


@pytest.mark.parametrize("world", LINEAR[:1] + WAVES[:2], ids=str)
def test_binned_limit_matches_monte_carlo_bin_averages(world):
    c = _monte_carlo(world, seed=7)
    gap = world.gap(c)
    for b in (1, 3, 10, 40):
        bins = torch.clamp(torch.ceil(c * b) - 1, 0, b - 1).to(torch.int64)
        mass = torch.bincount(bins, minlength=b).double() / c.numel()
        mean_gap = torch.bincount(bins, weights=gap, minlength=b) / c.numel()  # P_b * E[gap | b]
        l1 = float(mean_gap.abs().sum())
        l2 = math.sqrt(float((mean_gap[mass > 0] ** 2 / mass[mass > 0]).sum()))
        assert world.binned_error(b, "l1") == pytest.approx(l1, abs=2e-3)
        assert world.binned_error(b, "l2") == pytest.approx(l2, abs=2e-3)


@pytest.mark.parametrize("world", WAVES, ids=str)
def test_binning_only_loses_error_and_finer_nested_bins_lose_less(world):
    for norm in ("l1", "l2"):
        values = [world.binned_error(b, norm, grid=1 << 14) for b in (1, 2, 4, 8, 16, 64, 256)]  # nested bins
        assert all(x <= y + 1e-9 for x, y in zip(values, values[1:], strict=False))
        assert values[-1] <= world.true_error(norm) + 1e-9
        assert values[-1] == pytest.approx(world.true_error(norm), rel=0.02)
    mean_gap = float(world.gap(_monte_carlo(world, n=200_000)).mean())
    assert world.binned_error(1) == pytest.approx(abs(mean_gap), abs=1e-3)  # one bin: |E gap|


def test_a_gap_of_one_sign_loses_nothing_to_bins():
    w = linear_world(slope=0.8)
    for b in (1, 5, 15, 100):
        assert w.binned_error(b, "l1") == pytest.approx(w.true_error("l1"), abs=1e-9)


def test_the_wave_crosses_the_diagonal_and_coarse_bins_cancel():
    w = wave_world(0.6, 4)
    c = torch.linspace(w.chance, 1, 100_001)[1:-1]
    signs = torch.sign(w.gap(c))
    assert int((signs[1:] != signs[:-1]).sum()) == 7  # 2 * periods - 1 crossings inside the range
    assert w.binned_error(5) < 0.35 * w.true_error()


def test_density_integrates_to_one_and_is_the_beta_density():
    w = CalibrationWorld(n_classes=4, a=2.0, b=1.0)
    c = torch.tensor([0.25 + 0.75 * 0.3])
    assert float(w.density(c)) == pytest.approx(2 * 0.3 / 0.75)  # Beta(2, 1) density 2u, over dc = 0.75 du
    grid = torch.linspace(0.25, 1, 200_001)
    assert float(torch.trapezoid(w.density(grid), grid)) == pytest.approx(1.0, abs=1e-6)


def test_samples_follow_their_definition():
    w = wave_world(0.6, 4)
    s = w.sample(50_000, seed=3)
    assert s.probs.shape == (50_000, 10)
    assert s.probs.dtype == torch.float64
    assert torch.allclose(s.probs.sum(1), torch.ones(50_000, dtype=torch.float64))
    assert torch.equal(s.probs.max(1).values, s.confidence)
    assert torch.equal(s.probs.argmax(1) == s.labels, s.correct)
    assert float(s.confidence.min()) >= 0.1
    assert metrics.accuracy(s.probs, s.labels) == pytest.approx(float(w.accuracy(s.confidence).mean()), abs=0.01)
    # labels of wrong predictions are spread over the other classes
    wrong = s.labels[~s.correct] != s.probs.argmax(1)[~s.correct]
    assert bool(wrong.all())
    again = w.sample(50_000, seed=3)
    assert torch.equal(again.probs, s.probs)
    assert torch.equal(again.labels, s.labels)
    assert not torch.equal(w.sample(50_000, seed=4).labels, s.labels)
    conf, correct = w.sample_top_label(50_000, 1, seed=3)
    assert torch.equal(conf[0], s.confidence)
    assert torch.equal(correct[0], s.correct)
    conf, correct = w.sample_top_label(100, 7, seed=0)
    assert conf.shape == correct.shape == (7, 100)
    assert correct.dtype == torch.bool


@pytest.mark.parametrize("n_bins", [1, 2, 7, 15, 100, 3000])
def test_batched_estimators_equal_the_package_estimators(n_bins):
    w = wave_world(0.6, 4)
    for seed, n in ((0, 1000), (1, 37), (2, 5000)):
        s = w.sample(n, seed=seed)
        conf, correct = w.sample_top_label(n, 1, seed=seed)
        e = binned_errors(conf, correct, n_bins)
        assert float(e["l1"][0]) == pytest.approx(metrics.ece(s.probs, s.labels, n_bins=n_bins), abs=1e-12)
        assert float(e["l2"][0]) == pytest.approx(metrics.ece(s.probs, s.labels, n_bins=n_bins, norm="l2"), abs=1e-12)
        d = calibration_error.debiased_ece(s.probs, s.labels, n_bins=n_bins, strategy="uniform")
        assert float(e["l2_debiased_squared"][0]) == pytest.approx(d, abs=1e-12)
        assert float(e["l2_debiased"][0]) == pytest.approx(math.sqrt(max(d, 0.0)), abs=1e-12)


def test_batched_estimators_treat_each_row_as_its_own_sample():
    w = linear_world(0.9)
    conf, correct = w.sample_top_label(300, 5, seed=2)
    e = binned_errors(conf, correct, 10)
    for r in range(5):
        row = binned_errors(conf[r : r + 1], correct[r : r + 1].to(torch.int64), 10)
        for name in e:
            assert float(e[name][r]) == pytest.approx(float(row[name][0]), abs=1e-15)


def test_the_debiased_square_is_unbiased_for_the_binned_square():
    w = wave_world(0.6, 4)
    conf, correct = w.sample_top_label(500, 2000, seed=11)
    d = binned_errors(conf, correct, 15)["l2_debiased_squared"]
    plug_in = binned_errors(conf, correct, 15)["l2"] ** 2
    target = w.binned_error(15, "l2") ** 2
    se = float(d.std()) / math.sqrt(d.numel())
    assert float(d.mean()) == pytest.approx(target, abs=4 * se)
    assert float(plug_in.mean()) > target + 10 * se  # the plug-in is biased upward


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: CalibrationWorld(n_classes=1), "n_classes"),
        (lambda: CalibrationWorld(a=0.5), "a must be in [1, 1000]"),
        (lambda: CalibrationWorld(b=float("nan")), "b"),
        (lambda: CalibrationWorld(curve="sine"), "curve must be one of"),
        (lambda: CalibrationWorld(curve="wave", amplitude=1.5), "amplitude must be in [-1, 1]"),
        (lambda: CalibrationWorld(curve="wave", periods=0), "periods"),
        (lambda: linear_world(slope=2.0), "intercept and slope must keep accuracy"),
        (lambda: linear_world(slope="1"), "slope"),
        (lambda: linear_world(0.8).true_error("l3"), "norm must be one of"),
        (lambda: linear_world(0.8).true_error(grid=4), "grid must be in"),
        (lambda: linear_world(0.8).binned_error(0), "n_bins must be in"),
        (lambda: linear_world(0.8).binned_error(100, grid=50), "n_bins must be at most grid"),
        (lambda: wave_world().closed_form_error(), "needs curve='linear'"),
        (lambda: linear_world(0.8, 0.1).closed_form_error("l1"), "one sign"),
        (lambda: linear_world(0.8).sample(0), "n must be in"),
        (lambda: linear_world(0.8).sample(10, seed=-1), "seed must be in"),
        (lambda: linear_world(0.8).sample_top_label(10, repeats=0), "repeats must be in"),
        (lambda: linear_world(0.8).accuracy(torch.tensor([0.05])), "confidence must lie in [1/C, 1]"),
        (lambda: linear_world(0.8).gap(torch.tensor([float("nan")])), "confidence must hold finite"),
        (lambda: binned_errors(torch.rand(3), torch.ones(3)), "confidence must be a float (R, N)"),
        (lambda: binned_errors(torch.rand(2, 3), torch.ones(2, 4)), "correct must have the shape"),
        (lambda: binned_errors(torch.rand(2, 3), torch.full((2, 3), 2)), "correct must be boolean or 0/1"),
        (lambda: binned_errors(torch.rand(2, 3) + 1, torch.ones(2, 3)), "confidence must hold finite values in"),
        (lambda: binned_errors(torch.rand(2, 3), torch.ones(2, 3, dtype=torch.bool), n_bins=0), "n_bins must be in"),
    ],
)
def test_bad_input_is_refused_by_name(build, fragment):
    with pytest.raises((ValueError, TypeError)) as info:
        build()
    assert fragment in str(info.value)
