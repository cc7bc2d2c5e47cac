"""Headless tests of the calibration Lab: set State or widget values, press buttons, read the result; every
number is checked against the routines it should come from."""

import warnings
from types import SimpleNamespace

import pytest
import torch
import traitlets

from ensemble_lab import calibration, calibration_error, metrics
from ensemble_lab.combine import combine
from ensemble_lab.labs import CalibrationLab, CalibrationState

from .conftest import assert_refused, html_table_rows


def overconfident_predictions(k=4, n=600, c=5, seed=0):
    """Members whose logits are too sharp by a factor 2.5 (each over-confident) with independent noise (so their
    average is under-confident), on val and test, and a noisier 'noise-3' split."""
    g = torch.Generator().manual_seed(seed)
    logits, labels = {}, {}
    for split, noise in (("val", 1.0), ("test", 1.0), ("noise-3", 2.5)):
        y = torch.randint(0, c, (n,), generator=g)
        z = 1.5 * torch.nn.functional.one_hot(y, c).float() + noise * torch.randn(k, n, c, generator=g)
        logits[split], labels[split] = 2.5 * z, y
    return SimpleNamespace(logits=logits, labels=labels)


@pytest.fixture
def lab():
    return CalibrationLab(overconfident_predictions())


def _probs(lab, split="test"):
    return combine(lab.predictions.logits[split]), lab.predictions.labels[split]


def test_initial_result_before_equals_after_and_matches_the_routines(lab):
    r = lab.result
    p, y = _probs(lab)
    assert r.before == r.after
    assert r.temperature == 1.0
    assert r.member_temperatures == (1.0,) * 4
    assert r.before["nll"] == pytest.approx(metrics.nll(p, y), rel=1e-6)
    assert r.before["ece"] == pytest.approx(metrics.ece(p, y), abs=1e-6)
    est, low, high = calibration_error.bootstrap_ece(p, y, n_boot=100, level=0.9, seed=0)
    assert (r.before["error"], r.before["error_low"], r.before["error_high"]) == pytest.approx(
        (est, low, high), abs=1e-6
    )
    assert r.before["confidence"] == pytest.approx(float(p.max(1).values.mean()), abs=1e-6)
    assert r.n_cal == 600
    assert lab.status == ""


def test_fit_pool_then_calibrate_uses_the_routine_and_helps(lab):
    assert lab.press("fit")
    want = calibration.pool_then_calibrate(lab.predictions.logits["val"], lab.predictions.labels["val"])
    assert lab.state.temperature == pytest.approx(want.temperature, abs=1e-4)
    r = lab.result
    p = want.apply(lab.predictions.logits["test"])
    assert r.after["nll"] == pytest.approx(metrics.nll(p, lab.predictions.labels["test"]), abs=1e-4)
    assert r.after["nll"] < r.before["nll"]
    assert r.after["ece"] < r.before["ece"]
    assert r.temperature < 1  # independent members average into an under-confident pool: T sharpens it


def test_fit_calibrate_then_pool_fits_one_temperature_per_member(lab):
    assert lab.set(order="calibrate-then-pool")
    assert lab.press("fit")
    z, y = lab.predictions.logits["val"], lab.predictions.labels["val"]
    want = calibration.fit_member_temperatures(z, y)
    assert lab.state.member_temperatures == pytest.approx(want.tolist(), abs=1e-4)
    p = calibration.calibrate_then_pool(z, y).apply(lab.predictions.logits["test"])
    assert lab.result.after["nll"] == pytest.approx(metrics.nll(p, lab.predictions.labels["test"]), abs=1e-4)
    # calibrated members pool into an under-confident ensemble: confidence below accuracy
    assert lab.result.after["confidence"] < lab.result.after["accuracy"]
    assert lab.press("reset")
    assert lab.result.after == lab.result.before


def test_calibration_set_size_changes_the_fit_not_the_current_temperature(lab):
    full = lab.result.fitted["temperature"]
    assert lab.result.fitted["note"] is None
    assert lab.set(n_cal=5)  # 5 samples, 5 classes: the pooled ensemble separates them all
    assert "no finite temperature" in lab.result.fitted["note"]
    assert lab.set(n_cal=20)
    assert lab.result.fitted["temperature"] != full
    assert lab.state.temperature == 1.0
    z, y = lab.predictions.logits["val"], lab.predictions.labels["val"]
    idx = torch.randperm(600, generator=torch.Generator().manual_seed(0))[:20]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = calibration.fit_temperature(calibration.pooled_logits(z[:, idx]), y[idx])
    assert lab.result.fitted["temperature"] == pytest.approx(want, abs=1e-4)
    assert lab.set(seed=1)
    assert lab.result.fitted["temperature"] != pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("estimator", ["binned", "debiased", "smooth"])
def test_each_estimator_with_its_interval(lab, estimator):
    assert lab.set(estimator=estimator, temperature=2.0, n_bins=10, strategy="quantile")
    p = calibration.PooledCalibrator("prob", 2.0, torch.ones(4)).apply(lab.predictions.logits["test"])
    y = lab.predictions.labels["test"]
    est, low, high = calibration_error.bootstrap_ece(p, y, estimator, n_bins=10, strategy="quantile", n_boot=100)
    a = lab.result.after
    if estimator == "debiased":  # shown as the rooted l2 error
        est, low, high = (max(v, 0.0) ** 0.5 for v in (est, low, high))
    assert (a["error"], a["error_low"], a["error_high"]) == pytest.approx((est, low, high), abs=1e-6)
    assert a["error_low"] <= a["error"] <= a["error_high"] or estimator == "debiased"
    assert (lab.result.curve_after is not None) == (estimator == "smooth")
    assert lab.result.reliability_after.count.shape == (10,)


def test_shift_split_is_evaluated(lab):
    assert lab.press("fit")
    clean = lab.result.after["ece"]
    assert lab.set(split="noise-3")
    r = lab.result
    assert r.split == "noise-3"
    assert r.after["ece"] != clean
    assert r.before["accuracy"] == pytest.approx(metrics.accuracy(*_probs(lab, "noise-3")))


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"n_cal": 3}, "n_cal must be at least the number of classes (5)"),
        ({"n_cal": 601}, "n_cal must be at most the 600 samples"),
        ({"n_cal": -1}, "n_cal must be >= 0"),
        ({"temperature": 0.0}, "temperature must be in [0.01, 100]"),
        ({"temperature": 1e-39}, "float32 logits overflow"),
        ({"temperature": float("inf")}, "temperature"),
        ({"member_temperatures": [1.0, 1.0]}, "one entry per member (4)"),
        ({"member_temperatures": [1.0, -1.0, 1.0, 1.0]}, "member_temperatures"),
        ({"n_bins": 0}, "n_bins must be in [1, 1000]"),
        ({"estimator": "kde"}, "estimator must be one of"),
        ({"order": "sideways"}, "order must be one of"),
        ({"rule": "vote"}, "rule must be one of"),
        ({"split": "val"}, None),  # allowed: val is a split, just not the default
        ({"split": "nope"}, "split must be one of"),
        ({"colour": "red"}, "unknown setting"),
    ],
)
def test_bad_input_goes_to_the_status_line_and_changes_nothing(lab, changes, fragment):
    if fragment is None:
        assert lab.set(**changes)
        return
    assert_refused(lab, changes, fragment)
    assert lab.set(temperature=1.5)
    assert lab.status == ""


def test_direct_assignment_is_rolled_back(lab):
    lab.state.n_cal = 2
    assert lab.state.n_cal == 0
    assert "n_cal" in lab.status
    with pytest.raises(traitlets.TraitError, match="temperature"):
        lab.state.temperature = -1.0


def test_state_round_trips(lab):
    lab.set(
        order="calibrate-then-pool",
        member_temperatures=[1.1, 1.2, 1.3, 1.4],
        estimator="smooth",
        split="noise-3",
        n_cal=100,
    )
    copy = CalibrationLab(lab.predictions, CalibrationState.from_json(lab.state.to_json()))
    assert copy.state.to_dict() == lab.state.to_dict()
    assert copy.result.after == lab.result.after


def test_unknown_button(lab):
    assert not lab.press("explode")
    assert "unknown button" in lab.status


# -- through the widgets ------------------------------------------------------------------------------


def test_temperature_slider_moves_the_after_side(lab):
    view = lab.view
    nll = lab.result.after["nll"]
    view.temperature.value = 2.0
    assert lab.state.temperature == 2.0
    assert lab.result.after["nll"] != nll
    assert f"{lab.result.after['nll']:.3f}" in view.table.value
    assert "T = <b>2</b>" in view.temperatures.value


def test_slider_in_calibrate_then_pool_sets_every_member(lab):
    view = lab.view
    view.order.value = "calibrate-then-pool"
    view.temperature.value = 1.5
    assert lab.state.member_temperatures == [1.5] * 4
    assert lab.state.temperature == 1.0
    view.buttons["fit"].click()
    geo = torch.tensor(lab.state.member_temperatures).log().mean().exp().item()
    assert view.temperature.value == pytest.approx(geo)
    assert lab.state.member_temperatures != [1.5] * 4  # the slider's sync did not overwrite the fit


def test_bad_widget_entry_shows_message_and_reverts(lab):
    view = lab.view
    view.n_cal.value = 2
    assert "n_cal must be at least" in view.status.value
    assert view.n_cal.value == 0
    assert lab.state.n_cal == 0
    view.n_bins.value = 7
    assert lab.result.reliability_after.count.shape == (7,)
    assert "ok" in view.status.value


def test_estimator_dropdown_and_buttons(lab):
    view = lab.view
    view.estimator.value = "smooth"
    assert lab.result.curve_after is not None
    assert "smooth ECE" in view.table.value
    view.buttons["fit"].click()
    assert lab.state.temperature < 1
    view.buttons["reset"].click()
    assert lab.state.temperature == 1.0
    assert view.temperature.value == 1.0


def test_every_split_the_lab_accepts_can_be_shown(lab):
    view = lab.view
    assert lab.set(split="val")
    assert view.split.value == "val"
    assert lab.status == ""
    assert lab.result.split == "val"


def test_both_norms_each_with_its_own_estimator(lab):
    p, y = _probs(lab)
    r = lab.result
    assert r.before["ece_l2"] == pytest.approx(metrics.ece(p, y, norm="l2"), abs=1e-6)
    assert r.before["ece_l2"] >= r.before["ece"]  # the rms of the bins' gaps is at least their mean |gap|
    assert lab.set(n_bins=7, strategy="quantile")
    want = metrics.ece(p, y, n_bins=7, strategy="quantile", norm="l2")
    assert lab.result.before["ece_l2"] == pytest.approx(want, abs=1e-6)
    header = html_table_rows(lab.view.table.value)[0][1]
    assert header[-3:-1] == ["ECE l1", "CE l2"]
    assert lab.set(estimator="debiased")
    assert "debiased CE (l2)" in lab.view.table.value


def test_one_temperature_after_pooling_keeps_every_class_member_temperatures_do_not(lab):
    z, y = lab.predictions.logits["test"], lab.predictions.labels["test"]
    assert lab.result.changed == 0
    assert lab.set(temperature=3.0)
    assert lab.result.changed == 0
    assert lab.result.after["accuracy"] == lab.result.before["accuracy"]
    temps = [0.3, 1.0, 3.0, 10.0]
    assert lab.set(order="calibrate-then-pool", member_temperatures=temps)
    after = calibration.PooledCalibrator("prob", 1.0, torch.tensor(temps)).apply(z)
    want = int((combine(z).argmax(1) != after.argmax(1)).sum())
    assert want > 0
    assert lab.result.changed == want
    assert lab.result.after["accuracy"] == pytest.approx(metrics.accuracy(after, y))
    assert f"{want} of 600 predictions change class" in lab.view.temperatures.value
    # with probability averaging, even one temperature shared by every member can change the ensemble's class
    assert lab.set(member_temperatures=[4.0] * 4)
    shared = calibration.PooledCalibrator("prob", 1.0, torch.full((4,), 4.0)).apply(z)
    assert lab.result.changed == int((combine(z).argmax(1) != shared.argmax(1)).sum())
    assert lab.set(rule="logit")  # ... while with logit averaging it cannot
    assert lab.result.changed == 0
