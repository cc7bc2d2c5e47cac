"""ClipClassifier and zero_shot_classifier: the checks on the head, the images and the CLIP-like model."""

import numpy as np
import pytest
import torch
from torch import nn

from ensemble_lab.models.clip_classifier import ClipClassifier, zero_shot_classifier
from ensemble_lab.models.miniclip import MiniCLIP


def _visual() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 6))


def test_head_is_checked_and_numpy_is_accepted():
    w = torch.randn(3, 6)
    a = ClipClassifier(_visual(), w)
    b = ClipClassifier(_visual(), w.numpy(), np.zeros(3))
    assert torch.equal(a.head.weight, b.head.weight)
    assert torch.equal(a.head.bias, b.head.bias)
    nan = w.clone()
    nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="head_weight must be finite"):
        ClipClassifier(_visual(), nan)
    with pytest.raises(ValueError, match="head_weight must have D = 6"):
        ClipClassifier(_visual(), torch.randn(3, 7))
    with pytest.raises(TypeError, match="head_weight"):
        ClipClassifier(_visual(), w.to(torch.complex64))
    with pytest.raises(ValueError, match="head_bias must be finite"):
        ClipClassifier(_visual(), w, torch.tensor([0.0, float("inf"), 0.0]))
    with pytest.raises(TypeError, match="head_bias"):
        ClipClassifier(_visual(), w, "abc")


def test_forward_checks_images_and_keeps_the_arithmetic():
    model = ClipClassifier(_visual(), torch.randn(3, 6)).eval()
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        want = model.head(torch.nn.functional.normalize(model.visual(x), dim=-1))
        assert torch.equal(model(x), want)
        assert torch.equal(model(x, validate=False), want)
        assert torch.equal(model(x.numpy()), want)
        torch.testing.assert_close(model(x.double()), want)
        bad = x.clone()
        bad[1, 0, 2, 2] = float("inf")
        with pytest.raises(ValueError, match="images must be finite"):
            model(bad)
        with pytest.raises(ValueError, match="images of shape .* do not fit the image encoder"):
            model(torch.rand(5, 1, 4, 4))
        with pytest.raises(ValueError, match="images must have shape"):
            model(x.unsqueeze(0))
    with pytest.raises(ValueError, match="image_shape"):
        model.macs((1, 4, 4))
    with pytest.raises(ValueError, match="image_shape"):
        model.macs((1, 8))


def test_zero_shot_classifier_checks_clip_and_the_scaled_head():
    with pytest.raises(TypeError, match="clip"):
        zero_shot_classifier(None, ["one", "two"], ["a photo of the {}"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clip = MiniCLIP(
            ["a", "photo", "of", "the", "one", "two"],
            embed_dim=8,
            context_length=6,
            image_widths=[4],
            image_hidden=8,
            text_width=8,
            text_layers=1,
            text_heads=2,
            image_size=8,
        )
    model = zero_shot_classifier(clip, ["one", "two"], ["a photo of the {}"])
    assert model.head.weight.shape == (2, 8)
    with pytest.raises(ValueError, match="scale"):
        zero_shot_classifier(clip, ["one", "two"], ["a photo of the {}"], scale=1e308)
