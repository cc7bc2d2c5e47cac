"""Headless tests of the deep-ensembles Lab: set State or widget values, press buttons, read the result."""

import pytest
import torch
import traitlets

from ensemble_lab import metrics
from ensemble_lab.combine import combine, learn_weights
from ensemble_lab.labs import DeepEnsemblesLab, DeepEnsemblesState

from .conftest import synthetic_predictions


@pytest.fixture
def lab():
    return DeepEnsemblesLab(synthetic_predictions())


def test_initial_result_is_the_uniform_ensemble(lab):
    r = lab.result
    assert r.split == "test"
    assert lab.state.weights == [1.0] * 4
    p = combine(lab.predictions.logits["test"])
    assert r.metrics["ensemble"]["nll"] == pytest.approx(metrics.nll(p, lab.predictions.labels["test"]))
    assert set(r.metrics) == {"ensemble", "best member", "average member"}
    assert lab.status == ""


def test_one_hot_on_the_best_member_reproduces_its_row(lab):
    assert lab.press("best")
    m = lab.result.metrics
    assert lab.state.weights[lab.result.best_member] == 1.0
    for key in ("accuracy", "nll", "brier", "ece"):
        assert m["ensemble"][key] == pytest.approx(m["best member"][key], abs=1e-6)
    assert lab.result.diversity["disagreement"] == 0.0


def test_weight_change_moves_the_numbers(lab):
    before = lab.result.metrics["ensemble"]["nll"]
    assert lab.set(weights=[1.0, 0.0, 0.0, 0.0])  # the weakest member alone
    assert lab.result.metrics["ensemble"]["nll"] > before


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ([1.0, -0.5, 1.0, 1.0], "non-negative"),
        ([0.0, 0.0, 0.0, 0.0], "sum > 0"),
        ([1.0, float("nan"), 1.0, 1.0], "finite"),
        ([1.0, 1.0], "one entry per member"),
    ],
)
def test_invalid_weights_go_to_the_status_line_and_change_nothing(lab, bad, fragment):
    result, state = lab.result, lab.state.to_dict()
    assert not lab.set(weights=bad)
    assert fragment in lab.status
    assert "weights" in lab.status
    assert lab.state.to_dict() == state
    assert lab.result is result
    assert lab.set(weights=[1.0, 2.0, 3.0, 4.0])
    assert lab.status == ""


def test_direct_state_assignment_is_rolled_back_when_invalid(lab):
    result = lab.result
    lab.state.weights = [1.0, 1.0, 1.0]
    assert lab.state.weights == [1.0] * 4
    assert lab.result is result
    assert "shape (4,), one entry per member" in lab.status
    lab.state.split = "noise-3"
    assert lab.result.split == "noise-3"
    assert lab.status == ""
    with pytest.raises(traitlets.TraitError, match="split must be one of test, noise-3, val"):
        lab.state.split = "nope"  # refused by the State itself: a split the predictions do not hold
    assert lab.state.split == "noise-3"
    assert lab.result.split == "noise-3"


def test_trait_validation_refuses_bad_values(lab):
    with pytest.raises(traitlets.TraitError, match="temperature"):
        lab.state.temperature = 0.0
    assert not lab.set(rule="median")
    assert "rule must be one of" in lab.status
    assert not lab.set(n_bins=0)
    assert "n_bins" in lab.status
    assert not lab.set(colour="red")
    assert "unknown setting" in lab.status
    assert lab.state.rule == "prob"
    assert lab.state.n_bins == 15


def test_learn_button_uses_validation_nll(lab):
    assert lab.press("learn")
    want = learn_weights(lab.predictions.logits["val"], lab.predictions.labels["val"])
    torch.testing.assert_close(lab.result.weights.float(), want.float(), atol=1e-5, rtol=0)
    val = lab.predictions.logits["val"], lab.predictions.labels["val"]
    learned = metrics.nll(combine(val[0], lab.state.weights), val[1])
    assert learned < metrics.nll(combine(val[0]), val[1])
    lab.set(rule="vote")
    assert not lab.press("learn")
    assert "vote" in lab.status
    assert lab.press("uniform")
    assert lab.state.weights == [1.0] * 4


def test_rule_temperature_and_bins_change_the_result(lab):
    ece = lab.result.metrics["ensemble"]["ece"]
    assert lab.set(temperature=3.0)
    assert lab.result.metrics["ensemble"]["ece"] != ece
    assert lab.set(rule="vote")
    p = combine(lab.predictions.logits["test"], rule="vote")
    assert lab.result.metrics["ensemble"]["brier"] == pytest.approx(metrics.brier(p, lab.predictions.labels["test"]))
    assert lab.set(n_bins=7, strategy="quantile")
    assert lab.result.reliability.count.shape == (7,)


def test_state_round_trips_and_rejects_unknown_keys(lab):
    lab.set(weights=[0.1, 0.2, 0.3, 0.4], rule="geo", split="noise-3")
    copy = DeepEnsemblesLab(lab.predictions, DeepEnsemblesState.from_json(lab.state.to_json()))
    assert copy.state.to_dict() == lab.state.to_dict()
    assert copy.result.metrics == lab.result.metrics
    with pytest.raises(ValueError, match="unknown key"):
        DeepEnsemblesState.from_dict({"weights": [1.0], "colour": "red"})


def test_lab_needs_a_validation_split():
    preds = synthetic_predictions()
    del preds.logits["val"]
    with pytest.raises(ValueError, match="'val' split"):
        DeepEnsemblesLab(preds)


# -- through the widgets ------------------------------------------------------------------------------


def test_slider_moves_update_state_and_numbers(lab):
    view = lab.view
    nll = lab.result.metrics["ensemble"]["nll"]
    view.sliders[3].value = 0.0
    assert lab.state.weights == [1.0, 1.0, 1.0, 0.0]
    assert lab.result.metrics["ensemble"]["nll"] != nll
    assert "ensemble" in view.table.value
    assert f"{lab.result.metrics['ensemble']['nll']:.3f}" in view.table.value


def test_all_weights_to_zero_shows_a_message_and_reverts_the_slider(lab):
    view = lab.view
    for i in range(3):
        view.sliders[i].value = 0.0
    result = lab.result
    view.sliders[3].value = 0.0
    assert "sum > 0" in lab.status
    assert "⚠" in view.status.value
    assert lab.state.weights == [0.0, 0.0, 0.0, 1.0]
    assert lab.result is result
    assert view.sliders[3].value == 1.0  # the control shows the State again
    view.sliders[0].value = 0.5
    assert lab.status == ""
    assert "ok" in view.status.value


def test_weights_text_box(lab):
    view = lab.view
    view.weights_text.value = "1, 2, x, 4"
    assert "numbers separated by commas" in lab.status
    assert lab.state.weights == [1.0] * 4
    assert view.weights_text.value == "1, 1, 1, 1"
    view.weights_text.value = "4, 3, 2, 1"
    assert lab.state.weights == [4.0, 3.0, 2.0, 1.0]
    assert [s.value for s in view.sliders] == [1.0, 1.0, 1.0, 1.0]  # sliders clip at 1, the State does not


def test_buttons_dropdowns_and_reliability_bars(lab):
    view = lab.view
    view.buttons["best"].click()
    assert sum(v > 0 for v in lab.state.weights) == 1
    view.buttons["uniform"].click()
    assert lab.state.weights == [1.0] * 4
    view.split.value = "noise-3"
    assert lab.result.split == "noise-3"
    view.n_bins.value = 9
    assert len(view.reliability_plot._acc_bars) == 9
    heights = [b.get_height() for b in view.reliability_plot._acc_bars]
    acc = torch.nan_to_num(lab.result.reliability.accuracy).tolist()
    assert heights == pytest.approx(acc)
    view.rule.value = "vote"
    view.buttons["learn"].click()
    assert "vote" in view.status.value


def test_many_members_get_a_note_and_eight_sliders():
    lab = DeepEnsemblesLab(synthetic_predictions(k=12, n=100))
    view = lab.view
    assert len(view.sliders) == 8
    view.weights_text.value = ", ".join(["1"] * 11 + ["0"])
    assert lab.state.weights[-1] == 0.0
    assert len(lab.result.weights) == 12


def test_every_split_the_lab_accepts_can_be_shown(lab):
    view = lab.view
    assert lab.set(split="val")
    assert view.split.value == "val"
    assert lab.status == ""
