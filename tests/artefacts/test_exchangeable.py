"""The evidence the course stands on: in the default world, validation and test are exchangeable and large enough.

These use the real default ensembles (8 x mlp-m on the distorted digits, member seeds 0, 1, 2), which the
notebooks load too; the session shares one cache, so they are trained once per test run.
"""

import pytest
import torch

from ensemble_lab import combine, metrics, stats
from ensemble_lab.artefacts import zoo


@pytest.fixture(scope="module", params=[0, 1, 2], ids=lambda s: f"seed{s}")
def predictions(request):
    return zoo.ensemble_predictions(seed=request.param, progress=False)


def test_val_and_test_accuracy_differ_by_less_than_their_interval(predictions):
    """The 8-member ensemble's val and test accuracies: the difference is inside its 90% interval (clustered by
    source digit, each split resampled on its own), so nothing fitted on val inherits a gap that test lacks."""
    p = predictions
    r = stats.two_sample_bootstrap(
        metrics.accuracy,
        combine.combine(p.logits["val"]),
        p.labels["val"],
        combine.combine(p.logits["test"]),
        p.labels["test"],
        clusters_a=p.sources["val"],
        clusters_b=p.sources["test"],
    )
    assert not r.resolved, r
    assert abs(r.difference) < (r.high - r.low) / 2, r
    assert r.n_units == len(p.sources["val"].unique()) + len(p.sources["test"].unique())


def test_each_split_has_enough_sources_to_resolve_one_point(predictions):
    """About 1,700 independent sources per split: the ensemble-minus-member accuracy interval is narrower than
    one point on either side, so a one-point difference between two ensembles can be resolved."""
    p = predictions
    for split in ("val", "test"):
        assert len(p.sources[split].unique()) >= 1650
        r = stats.paired_bootstrap(
            metrics.accuracy,
            combine.combine(p.logits[split]),
            torch.softmax(p.logits[split][0], -1),
            p.labels[split],
            clusters=p.sources[split],
        )
        assert (r.high - r.low) / 2 < 0.01, r
