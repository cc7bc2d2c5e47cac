"""The training recipe: checked on construction, its dict is a cache key, its optimiser follows the schedule."""

import math

import pytest
import torch

from ensemble_lab.recipe import Recipe, optimizer


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(lr=0.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(epochs=0), "epochs"),
        (dict(batch_size=0), "batch_size"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(label_smoothing=-0.1), "label_smoothing"),
        (dict(mixup=-0.2), "mixup"),
        (dict(seed=-1), "seed"),
        (dict(seed=2**64), "seed"),
        (dict(schedule="linear"), "schedule"),
    ],
)
def test_recipe_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Recipe(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(augment="yes"), "augment"),
        (dict(lr="1e-3"), "lr"),
        (dict(epochs=True), "epochs"),
        (dict(mixup=True), "mixup"),
    ],
)
def test_recipe_rejects_bad_types(kwargs, match):
    with pytest.raises(TypeError, match=match):
        Recipe(**kwargs)


def test_recipe_is_frozen_and_its_dict_is_a_key():
    r = Recipe(lr=1e-3, epochs=3)
    with pytest.raises(AttributeError):
        r.lr = 1.0
    assert r.to_dict() == Recipe(**r.to_dict()).to_dict()
    assert r.replace(seed=1).to_dict() != r.to_dict()
    assert r.replace(seed=1).to_dict() | {"seed": 0} == r.to_dict()
    assert Recipe(mixup=0.4).bang
    assert Recipe(label_smoothing=0.1).bang
    assert not Recipe().bang


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_optimizer_follows_the_schedule(schedule):
    w = torch.nn.Parameter(torch.zeros(3))
    opt, sched = optimizer([w], Recipe(lr=0.1, weight_decay=0.0, schedule=schedule), total_steps=4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    want = [0.1 * 0.5 * (1 + math.cos(math.pi * s / 4)) for s in range(4)] if schedule == "cosine" else [0.1] * 4
    assert lrs == pytest.approx(want)


def test_optimizer_refuses_what_is_not_a_recipe():
    with pytest.raises(TypeError, match="recipe"):
        optimizer([torch.nn.Parameter(torch.zeros(1))], {"lr": 1e-3}, 10)
    with pytest.raises(ValueError, match="total_steps"):
        optimizer([torch.nn.Parameter(torch.zeros(1))], Recipe(), 0)


def test_recipe_stores_numpy_scalars_as_python_values():
    import numpy as np

    r = Recipe(epochs=np.int64(3), lr=np.float64(1e-3), augment=np.bool_(True), schedule=np.str_("constant"))
    assert r.to_dict() == Recipe(epochs=3, lr=1e-3, augment=True, schedule="constant").to_dict()
    assert type(r.epochs) is int
    assert type(r.augment) is bool


def test_total_steps_are_bounded():
    assert Recipe(epochs=3, batch_size=10).total_steps(25) == 9
    with pytest.raises(ValueError, match="recipe.epochs"):
        Recipe(epochs=2**64).total_steps(10)
