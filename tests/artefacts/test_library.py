"""The model library of the ensemble-selection notebook: 32 members of 7 groups, straight from the zoo."""

import pytest
import torch

from ensemble_lab.artefacts.library import LIBRARY_GROUPS, ModelLibrary, model_library
from ensemble_lab.artefacts.zoo import ensemble_predictions

SPLITS = ("val", "test")


@pytest.fixture(scope="module")
def library() -> ModelLibrary:
    return model_library(progress=False)  # built from the zoo once per session (cached), then read


@pytest.fixture(scope="module")
def group_predictions():
    """The zoo's predictions of every group (read from the cache the library filled)."""
    return {
        group: ensemble_predictions(dataset="distorted", progress=False, **config) for group, config in LIBRARY_GROUPS
    }


def test_library_holds_32_models_in_the_seven_groups_in_order(library):
    assert isinstance(library, ModelLibrary)
    assert library.k == 32 == len(library.names) == len(library.groups)
    assert sum(config["k"] for _, config in LIBRARY_GROUPS) == 32
    want_names, want_groups = [], []
    for group, config in LIBRARY_GROUPS:
        want_names += [f"{group} #{i}" for i in range(config["k"])]
        want_groups += [group] * config["k"]
    assert library.names == tuple(want_names)
    assert library.groups == tuple(want_groups)
    assert len(set(library.names)) == 32
    assert len(set(library.groups)) == len(LIBRARY_GROUPS) == 7
    assert "k=32" in repr(library)
    assert "groups=7" in repr(library)


def test_probabilities_are_float32_rows_on_the_simplex(library):
    assert set(library.probs) == set(SPLITS)
    for split in SPLITS:
        p = library.probs[split]
        n = library.labels[split].shape[0]
        assert p.dtype == torch.float32
        assert p.device.type == "cpu"
        assert p.shape == (32, n, 10)
        assert bool(torch.isfinite(p).all())
        assert bool((p >= 0).all())
        assert bool((p <= 1).all())
        torch.testing.assert_close(p.double().sum(-1), torch.ones(32, n, dtype=torch.float64), atol=1e-5, rtol=0)


def test_labels_and_sources_are_the_zoos(library, group_predictions):
    for split in SPLITS:
        y, s = library.labels[split], library.sources[split]
        assert y.dtype == torch.int64
        assert s.dtype == torch.int64
        assert y.shape == s.shape == (library.probs[split].shape[1],)
        assert int(y.min()) >= 0
        assert int(y.max()) <= 9
        for pred in group_predictions.values():  # every group is scored on the same images
            assert torch.equal(pred.labels[split], y)
            assert torch.equal(pred.sources[split], s)
    # validation and test come from disjoint pools of source digits
    assert not set(library.sources["val"].tolist()) & set(library.sources["test"].tolist())


@pytest.mark.parametrize("index", [0, 4])  # 01's ensemble, and a group only the library adds
def test_probs_are_the_softmax_of_the_zoo_logits(library, group_predictions, index):
    group, config = LIBRARY_GROUPS[index]
    start = sum(c["k"] for _, c in LIBRARY_GROUPS[:index])
    logits = group_predictions[group].logits
    for split in SPLITS:
        want = logits[split].softmax(-1)
        got = library.probs[split][start : start + config["k"]]
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert library.groups[start : start + config["k"]] == (group,) * config["k"]


def test_macs_are_the_zoos_per_group(library, group_predictions):
    assert library.macs.dtype == torch.int64
    assert library.macs.shape == (32,)
    assert bool((library.macs > 0).all())
    by_group = {}
    for g, m in zip(library.groups, library.macs.tolist(), strict=True):
        by_group.setdefault(g, set()).add(m)
    for group, pred in group_predictions.items():
        assert by_group[group] == {pred.member_macs}  # one cost per group: the members share an architecture
    cost = {group: next(iter(m)) for group, m in by_group.items()}
    # the architecture sets the cost, the training length does not
    assert cost["mlp-m 15 ep"] == cost["mlp-m 40 ep"] == cost["mlp-m 3 ep"]
    assert cost["mlp-s 15 ep"] == cost["mlp-s 5 ep"]
    assert cost["mlp-xs 20 ep"] < cost["mlp-s 15 ep"] < cost["mlp-m 15 ep"] < cost["mlp-l 10 ep"]
