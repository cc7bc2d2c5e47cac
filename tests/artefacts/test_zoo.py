"""The zoo: build once, load from the cache afterwards; shapes; config changes; the family's accuracy spread."""

import time

import pytest
import torch

from ensemble_lab import cache
from ensemble_lab.artefacts import zoo
from ensemble_lab.models import StackedEnsemble, macs
from ensemble_lab.train import predict_logits

SMALL = dict(dataset="digits", arch="mlp-s", k=3, seed=0, epochs=3, progress=False, device="cpu")


def _artefacts(kind: str) -> set:
    folder = cache.cache_dir() / kind
    return set(folder.glob("*.safetensors")) if folder.exists() else set()


@pytest.fixture(scope="module")
def first_and_second():
    start = time.perf_counter()
    first = zoo.ensemble_predictions(**SMALL)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    second = zoo.ensemble_predictions(**SMALL)
    warm = time.perf_counter() - start
    return first, second, cold, warm


def test_second_call_loads_identical_tensors(first_and_second):
    first, second, cold, warm = first_and_second
    assert first.splits == second.splits
    for split in first.splits:
        assert torch.equal(first.logits[split], second.logits[split])
        assert torch.equal(first.labels[split], second.labels[split])
    assert first.config == second.config
    assert first.classes == second.classes
    assert warm < 1.0
    assert warm < cold


def test_shapes_and_metadata(first_and_second):
    preds, *_ = first_and_second
    assert preds.splits[:2] == ("val", "test")
    assert len(preds.splits) >= 2 + 4 * 3
    assert preds.k == 3
    assert len(preds.classes) == 10
    for split in preds.splits:
        logits, labels = preds.logits[split], preds.labels[split]
        assert logits.dtype == torch.float32
        assert labels.dtype == torch.int64
        assert logits.shape == (3, labels.shape[0], 10)
        assert logits.device.type == "cpu"
        assert torch.isfinite(logits).all()
    assert preds.labels["test"].shape == preds.labels[preds.splits[-1]].shape  # shifted copies of the test set
    assert preds.member_macs == macs("mlp-s", (1, 8, 8), 10)
    c = preds.config
    assert (c["dataset"], c["arch"], c["k"], c["seed"], c["epochs"]) == ("digits", "mlp-s", 3, 0, 3)
    # members learned something on the clean test set
    acc = (preds.logits["test"].argmax(-1) == preds.labels["test"]).float().mean()
    assert acc > 0.6


def test_trained_ensemble_is_cached_and_matches_predictions(first_and_second):
    preds, *_ = first_and_second
    before = _artefacts("zoo_weights")
    ens = zoo.trained_ensemble(**SMALL)
    assert _artefacts("zoo_weights") == before  # loaded, not rebuilt
    assert isinstance(ens, StackedEnsemble)
    assert ens.k == 3
    assert not ens.training
    from ensemble_lab.data import load_digits

    test = load_digits(seed=0)["test"]
    torch.testing.assert_close(predict_logits(ens, test.images), preds.logits["test"])


def test_config_change_gives_a_different_artefact(first_and_second):
    preds, *_ = first_and_second
    before = _artefacts("zoo_predictions")
    other = zoo.ensemble_predictions(**(SMALL | {"seed": 1}))
    after = _artefacts("zoo_predictions")
    assert len(after - before) == 1
    assert not torch.equal(other.logits["test"], preds.logits["test"])
    fewer = zoo.ensemble_predictions(**(SMALL | {"k": 2, "epochs": 2}))
    assert fewer.k == 2
    assert len(_artefacts("zoo_predictions") - after) == 1


def test_every_family_member_has_its_own_epochs_and_others_fall_back():
    from dataclasses import replace

    from ensemble_lab.models.family import FAMILY

    for dataset in zoo.DATASETS:
        tuned = {arch for (d, arch) in zoo.DEFAULT_EPOCHS if d == dataset}
        assert tuned == set(FAMILY), f"{dataset}: a family member without tuned epochs would silently fall back"
        for arch in FAMILY:
            assert zoo.default_epochs(dataset, arch) == zoo.DEFAULT_EPOCHS[(dataset, arch)]
    custom = replace(FAMILY["mlp-s"], name="mlp-custom")
    assert zoo.default_epochs("digits", custom) == zoo.FALLBACK_EPOCHS["digits"]
    assert zoo.default_epochs("distorted", custom) == zoo.FALLBACK_EPOCHS["distorted"]
    with pytest.raises(ValueError, match="dataset"):
        zoo.default_epochs("cifar", "mlp-s")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(dataset="cifar"), ValueError, "dataset must"),
        (dict(arch="vit"), ValueError, "spec must"),
        (dict(k=0), ValueError, "k must"),
        (dict(epochs=0), ValueError, "epochs must"),
        (dict(seed=-1), ValueError, "seed must"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        zoo.ensemble_predictions(**(SMALL | kwargs))


@pytest.mark.slow
def test_family_spans_a_wide_accuracy_range_on_distorted_digits():
    """Data requirement: on distorted digits the smallest and largest models differ by >= 8 accuracy points."""
    from ensemble_lab.data import load_distorted_digits
    from ensemble_lab.models import FAMILY

    names = list(FAMILY)
    smallest, largest = names[0], names[-1]
    test = load_distorted_digits(seed=0)["test"]
    acc = {}
    for arch in (smallest, largest):  # one member each, default epochs; weights cached by the zoo
        ens = zoo.trained_ensemble("distorted", arch, k=1, seed=0, progress=False)
        acc[arch] = float((predict_logits(ens, test.images)[0].argmax(-1) == test.labels.to(ens.device)).float().mean())
    assert acc[largest] - acc[smallest] >= 0.08, acc
