"""Training engines: stacked vs one-by-one reference, determinism, prediction."""

import pytest
import torch

from ensemble_lab.data import load_digits
from ensemble_lab.models import StackedEnsemble, build_model, member_seed
from ensemble_lab.recipe import Recipe
from ensemble_lab.train import predict_logits, train_ensemble, train_members_one_by_one

RECIPE = Recipe(epochs=10, batch_size=128, lr=3e-3, weight_decay=1e-4)
CPU = dict(device="cpu", progress=False)


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


def member_accuracy(ens, split) -> torch.Tensor:
    logits = predict_logits(ens, split.images)
    return (logits.argmax(-1) == split.labels).float().mean(dim=1)


@pytest.fixture(scope="module")
def both_engines(digits):
    stacked = train_ensemble("mlp-m", digits["train"], k=3, recipe=RECIPE.replace(seed=3), **CPU)
    separate = train_members_one_by_one("mlp-m", digits["train"], k=3, recipe=RECIPE.replace(seed=3), **CPU)
    return stacked, separate


def test_stacked_matches_one_by_one(both_engines, digits):
    stacked, separate = both_engines
    reference = StackedEnsemble.from_members(separate)
    acc_stacked = member_accuracy(stacked, digits["test"])
    acc_separate = member_accuracy(reference, digits["test"])
    assert acc_stacked.mean() > 0.9
    assert abs(float(acc_stacked.mean() - acc_separate.mean())) < 0.015
    # same recipe and seeds: the members are the same up to float round-off, so they agree almost everywhere
    images = digits["test"].images
    agree = predict_logits(stacked, images).argmax(-1) == predict_logits(reference, images).argmax(-1)
    assert agree.float().mean() > 0.98


def test_members_start_from_their_own_seeded_init_and_differ(digits):
    ens = train_ensemble("mlp-s", digits["train"], k=3, recipe=RECIPE.replace(seed=5, epochs=1), **CPU)
    assert ens.k == 3
    assert not ens.training
    first = ens.state_dict()["1.weight"]  # layer 0 is the Flatten
    assert not torch.equal(first[0], first[1])
    # one epoch from member_seed(5, 0)'s init moves the weights, but not far from it
    init = build_model("mlp-s", (1, 8, 8), 10, seed=member_seed(5, 0)).state_dict()["1.weight"]
    other_init = build_model("mlp-s", (1, 8, 8), 10, seed=member_seed(5, 1)).state_dict()["1.weight"]
    assert (first[0] - init).norm() < (first[0] - other_init).norm()


def test_deterministic_on_cpu(digits):
    small = digits["train"].subset(slice(0, 300))
    r = RECIPE.replace(epochs=2)
    a = train_ensemble("cnn-s", small, k=2, recipe=r.replace(seed=7), **CPU)
    b = train_ensemble("cnn-s", small, k=2, recipe=r.replace(seed=7), **CPU)
    c = train_ensemble("cnn-s", small, k=2, recipe=r.replace(seed=8), **CPU)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(a.state_dict()["0.weight"], c.state_dict()["0.weight"])


def test_each_stacked_member_follows_its_own_recipe(digits):
    """Member i of the stacked engine equals the reference's member i (its own init and its own data order)."""
    small = digits["train"].subset(slice(0, 256))
    members = train_members_one_by_one("mlp-s", small, k=2, recipe=RECIPE.replace(epochs=1), **CPU)
    ens = train_ensemble("mlp-s", small, k=2, recipe=RECIPE.replace(epochs=1), **CPU)
    for i, member in enumerate(members):  # reference and stacked see member i's order
        for key, value in member.state_dict().items():
            torch.testing.assert_close(value, ens.state_dict()[key][i], atol=1e-5, rtol=1e-4)


def test_predict_logits(both_engines, digits):
    stacked, _ = both_engines
    images = digits["test"].images
    full = predict_logits(stacked, images)
    chunked = predict_logits(stacked, images, batch_size=37)
    assert full.shape == (3, len(images), 10)
    assert full.dtype == torch.float32
    assert not full.requires_grad
    assert full.device == stacked.device
    torch.testing.assert_close(full, chunked)
    torch.testing.assert_close(predict_logits(stacked, digits["test"]), full)
    assert predict_logits(stacked, images[:0]).shape == (3, 0, 10)


def test_progress_bar_can_be_silenced(digits, capsys):
    small = digits["train"].subset(slice(0, 64))
    train_ensemble("mlp-xs", small, k=2, recipe=RECIPE.replace(epochs=1), device="cpu", progress=False)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""
    train_ensemble("mlp-xs", small, k=2, recipe=RECIPE.replace(epochs=1), device="cpu", progress=True)
    assert "training 2 x mlp-xs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(k=0), ValueError, "k must"),
        (dict(k=True), TypeError, "k must"),
        (dict(recipe={"epochs": 1}), TypeError, "recipe must"),
        (dict(recipe=Recipe(mixup=0.4)), ValueError, "recipe: .*mixup"),
        (dict(recipe=Recipe(augment=True)), ValueError, "recipe: .*augment"),
        (dict(spec="resnet"), ValueError, "spec must"),
        (dict(train="digits"), TypeError, "train must"),
        (dict(train=(torch.rand(5, 64), torch.zeros(5, dtype=torch.long))), ValueError, "train.images"),
    ],
)
def test_bad_arguments(digits, kwargs, error, match):
    args = dict(spec="mlp-xs", train=digits["train"]) | kwargs
    spec, train = args.pop("spec"), args.pop("train")
    with pytest.raises(error, match=match):
        train_ensemble(spec, train, progress=False, device="cpu", **args)


def test_label_smoothing_makes_members_less_confident(digits):
    small = digits["train"].subset(slice(0, 256))
    r = RECIPE.replace(epochs=40, batch_size=64, lr=1e-2)
    sharp = train_ensemble("mlp-s", small, k=2, recipe=r, **CPU)
    smooth = train_ensemble("mlp-s", small, k=2, recipe=r.replace(label_smoothing=0.3), **CPU)

    def confidence(ens):
        return float(predict_logits(ens, small.images).softmax(-1).amax(-1).mean())

    assert confidence(smooth) < confidence(sharp) - 0.05


def test_predict_logits_bad_input(both_engines):
    stacked, _ = both_engines
    with pytest.raises(TypeError, match="ensemble"):
        predict_logits(build_model("mlp-m", (1, 8, 8)), torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="images"):
        predict_logits(stacked, torch.rand(2, 64))


# bad-input regressions ------------------------------------------------------------------------------------
def _pair(digits, n=60):
    small = digits["train"].subset(slice(0, n))
    return small.images, small.labels


def test_a_numpy_pair_trains_the_same_members_as_a_tensor_pair(digits):
    x, y = _pair(digits)
    r = RECIPE.replace(epochs=1, batch_size=20)
    a = train_ensemble("mlp-xs", (x, y), k=2, recipe=r, **CPU)
    b = train_ensemble("mlp-xs", (x.numpy(), y.numpy()), k=2, recipe=r, **CPU)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("engine", [train_ensemble, train_members_one_by_one])
def test_non_finite_training_is_refused_by_name(digits, engine):
    x, y = _pair(digits)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    r = RECIPE.replace(epochs=1, batch_size=20)
    with pytest.raises(ValueError, match="train.images must be finite"):
        engine("mlp-xs", (bad, y), k=2, recipe=r, **CPU)
    with pytest.raises(ValueError, match="train.labels"):
        engine("mlp-xs", (x, y - 1), k=2, recipe=r, **CPU)
    for huge in (dict(lr=1e308), dict(weight_decay=1e308), dict(lr=2.0**70)):
        with pytest.raises(ValueError, match="recipe.lr"):
            engine("mlp-xs", (x, y), k=2, recipe=r.replace(**huge), **CPU)
    with pytest.raises(ValueError, match="recipe.epochs"):
        engine("mlp-xs", (x, y), k=2, recipe=r.replace(epochs=2**64), **CPU)
    with pytest.raises(ValueError, match="^k must"):
        engine("mlp-xs", (x, y), k=2**64, recipe=r, **CPU)
    with pytest.raises(TypeError, match="progress"):
        engine("mlp-xs", (x, y), k=2, recipe=r, device="cpu", progress="no")


def test_predict_logits_takes_numpy_and_refuses_nan_and_complex(both_engines, digits):
    stacked, _ = both_engines
    x = digits["test"].images[:7]
    assert torch.equal(predict_logits(stacked, x.numpy()), predict_logits(stacked, x))
    bad = x.clone()
    bad[3, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="images must be finite"):
        predict_logits(stacked, bad)
    with pytest.raises(TypeError, match="images"):
        predict_logits(stacked, x.to(torch.complex64))
