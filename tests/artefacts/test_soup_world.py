"""The pre-train -> fine-tune world: the zero-shot classifier, the target-task data, and world assembly."""

import pytest
import torch
import torch.nn.functional as F
from soups_fixtures import tiny_world

from ensemble_lab.artefacts.soup_world import ALPHAS, CURVE_SPLITS, SPLITS, ZERO_SHOT, assemble_world, endpoint_name
from ensemble_lab.data import styled_digits
from ensemble_lab.data.captions import CLASS_NAMES, STYLES
from ensemble_lab.models.clip_classifier import ClipClassifier, zero_shot_classifier
from ensemble_lab.models.miniclip import load_miniclip
from ensemble_lab.prompts import fill_template


def test_zero_shot_classifier_equals_clip_zero_shot_with_the_averaged_prompts():
    clip = load_miniclip("cpu")
    templates = ["a photo of the number {}.", "the digit {}."]
    model = zero_shot_classifier(clip, CLASS_NAMES, templates)
    x = styled_digits("val", "clean", 50).images
    with torch.no_grad():
        emb = torch.stack(
            [F.normalize(clip.encode_text([fill_template(t, c) for c in CLASS_NAMES]), dim=-1) for t in templates]
        ).mean(0)
        want = clip.logit_scale * F.normalize(clip.encode_image(x), dim=-1) @ F.normalize(emb, dim=-1).T
        torch.testing.assert_close(model(x), want, rtol=1e-4, atol=1e-4)
    # the classifier owns its encoder: training it leaves the CLIP model alone
    assert model.visual is not clip.visual
    assert float((model(x).argmax(-1) == styled_digits("val", "clean", 50).labels).double().mean()) > 0.8


def test_macs_are_counted_by_hand():
    visual = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, stride=2, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 6)
    )
    model = ClipClassifier(visual, torch.randn(3, 6))
    assert model.macs((1, 16, 16)) == 4 * 9 * 64 + 256 * 6 + 6 * 3


def test_classifier_rejects_bad_heads():
    visual = torch.nn.Flatten()
    with pytest.raises(ValueError, match="head_weight"):
        ClipClassifier(visual, torch.randn(3))
    with pytest.raises(ValueError, match="head_bias"):
        ClipClassifier(visual, torch.randn(3, 4), torch.randn(4))
    with pytest.raises(TypeError, match="visual"):
        ClipClassifier("encoder", torch.randn(3, 4))
    with pytest.raises(ValueError, match=r"\{\}"):
        zero_shot_classifier(load_miniclip("cpu"), CLASS_NAMES, ["no placeholder"])


def test_styled_digits_splits_draw_on_disjoint_source_digits(tmp_cache, monkeypatch):
    """Train, val and test styled digits are drawn from disjoint sets of source digits: the raw digits each split
    renders are recorded and are exactly the source digits its ``sources`` names."""
    from ensemble_lab.data import captions
    from ensemble_lab.data.sources import source_digits

    raw, _, _ = source_digits()
    rendered = {}
    render = captions._render

    def recording_render(images, styles, gen):
        rendered[split] = images.clone()
        return render(images, styles, gen)

    monkeypatch.setattr(captions, "_render", recording_render)
    used = {}
    for split in ("train", "val", "test"):
        ds = styled_digits(split, "clean", 300)
        assert torch.equal(rendered[split], raw[ds.sources])
        used[split] = set(ds.sources.tolist())
    assert not used["train"] & used["val"]
    assert not used["train"] & used["test"]
    assert not used["val"] & used["test"]
    assert min(len(v) for v in used.values()) == 300  # pools of 1,699+ sources: 300 images, 300 sources


def test_styled_digits_are_deterministic_per_split_and_style():
    a = styled_digits("train", "clean", 200)
    b = styled_digits("train", "clean", 200)
    assert torch.equal(a.images, b.images)
    assert a.images.shape == (200, 1, 16, 16)
    assert a.name == "captions/train/clean"
    assert float(a.images.min()) >= 0
    assert float(a.images.max()) <= 1
    noisy = styled_digits("train", "noisy", 200)
    assert not torch.equal(a.images, noisy.images)
    # same class balance as the source pool: every class present
    assert set(a.labels.tolist()) == set(range(len(CLASS_NAMES)))
    for bad, match in (
        (dict(split="holdout"), "split"),
        (dict(split="val", style="sepia"), "style"),
        (dict(split="val", n=0), "n"),
    ):
        with pytest.raises(ValueError, match=match):
            styled_digits(**bad)
    assert "clean" in STYLES


def test_assemble_world_caches_logits_and_curves_that_match_the_models():
    world = tiny_world()
    assert world.ingredients[0] == endpoint_name(3e-4)
    assert len(world.curve_terms) == 8
    x, y = world.images["test"], world.labels["test"]
    name = endpoint_name(1e-3)
    world.model.load_state_dict(world.states[name])
    with torch.no_grad():
        torch.testing.assert_close(world.logits[name]["test"], world.model(x))
    world.model.load_state_dict(world.states[ZERO_SHOT])
    assert set(world.curve_terms[name]) == set(CURVE_SPLITS)
    assert "val" not in CURVE_SPLITS
    terms = world.curve_terms[name]["test"]
    assert terms.shape == (len(ALPHAS), 2, x.shape[0], 10)
    # alpha 0 is the zero-shot model, alpha 1 the fine-tuned one
    torch.testing.assert_close(terms[0, 0], world.logits[ZERO_SHOT]["test"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(terms[-1, 1], world.logits[name]["test"], rtol=1e-5, atol=1e-5)
    assert set(world.images) == set(SPLITS)
    assert y.dtype == torch.int64


def test_assemble_world_rejects_incomplete_input():
    world = tiny_world()
    states = dict(world.states)
    states.pop(ZERO_SHOT)
    with pytest.raises(ValueError, match="states"):
        assemble_world(world.model, states, world.recipes, world.images, world.labels)
    images = dict(world.images)
    images.pop("noisy")
    with pytest.raises(ValueError, match="noisy"):
        assemble_world(world.model, world.states, world.recipes, images, world.labels)
