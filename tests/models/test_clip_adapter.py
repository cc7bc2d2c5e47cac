"""The open_clip adapter: its own logic against a stand-in for open_clip's API, and (where open_clip imports) a
randomly initialised real open_clip model.  Nothing is downloaded."""

import importlib.util
import sys
import types

import pytest
import torch

from ensemble_lab.models.clip_adapter import CLIP_MEAN, CLIP_STD, OpenClipModel


class _TinyClip(torch.nn.Module):
    """The part of open_clip's CLIP that the adapter uses: encode_image, encode_text, logit_scale (a log)."""

    def __init__(self, dim=8, size=12):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.image_proj = torch.nn.Parameter(torch.randn(3 * size * size, dim, generator=g))
        self.token_emb = torch.nn.Parameter(torch.randn(50, dim, generator=g))
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.0))
        self.seen_images = []

    def encode_image(self, x):
        self.seen_images.append(x)
        return x.flatten(1) @ self.image_proj

    def encode_text(self, tokens):
        return self.token_emb[tokens].mean(1)


def _tokenizer(texts):
    return torch.tensor([[len(w) % 50 for w in (t.split() + ["pad"] * 4)[:4]] for t in texts])


@pytest.fixture
def fake_open_clip(monkeypatch):
    module = types.ModuleType("open_clip")
    calls = []

    def create_model_and_transforms(name, pretrained=None, device=None):
        calls.append((name, pretrained))
        model = _TinyClip()
        model.visual = types.SimpleNamespace(image_size=(12, 12))
        return model, None, None

    module.create_model_and_transforms = create_model_and_transforms
    module.get_tokenizer = lambda name: _tokenizer
    monkeypatch.setitem(sys.modules, "open_clip", module)
    return calls


def test_create_passes_pretrained_through_and_reads_the_image_size(fake_open_clip):
    model = OpenClipModel.create("ViT-B-32", pretrained=None)
    assert fake_open_clip == [("ViT-B-32", None)]
    assert model.image_size == 12
    assert model.logit_scale == pytest.approx(torch.tensor(2.0).exp().item())


def test_images_are_resized_and_normalised_like_clip(fake_open_clip):
    model = OpenClipModel.create(pretrained=None, batch_size=3)
    grey = torch.full((5, 1, 16, 16), 0.5)
    emb = model.encode_image(grey)
    assert emb.shape == (5, 8)
    seen = torch.cat(model.model.seen_images)
    assert seen.shape == (5, 3, 12, 12)
    assert len(model.model.seen_images) == 2
    want = (0.5 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(seen[0, :, 6, 6], want)


def test_text_encoding_and_interface(fake_open_clip):
    model = OpenClipModel.create(pretrained=None)
    emb = model.encode_text(["a photo of a cat.", "a dog"])
    assert emb.shape == (2, 8)
    assert model.embed_dim == 8
    assert model.unknown_words("a photo of a zyzzyva") == []  # byte-level BPE: nothing is unknown


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda m: m.encode_image(torch.rand(2, 2, 8, 8)), ValueError, "images must have shape"),
        (lambda m: m.encode_image(torch.rand(2, 3, 8, 8) * 255), ValueError, r"images must lie in \[0, 1\]"),
        (lambda m: m.encode_text("a cat"), TypeError, "texts must be a list of str"),
        (lambda m: m.encode_text([]), ValueError, "texts must not be empty"),
        (lambda m: m.unknown_words(3), TypeError, "text must be a str"),
    ],
)
def test_bad_input(fake_open_clip, call, exc, match):
    with pytest.raises(exc, match=match):
        call(OpenClipModel.create(pretrained=None))


def test_a_missing_open_clip_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip -> ImportError
    with pytest.raises(ImportError, match="pip install 'ensemble_lab\\[clip\\]'"):
        OpenClipModel.create(pretrained=None)


def _open_clip_imports() -> tuple[bool, str]:
    if importlib.util.find_spec("open_clip") is None:
        return False, "open_clip is not installed (optional extra 'clip')"
    try:
        import open_clip  # noqa: F401
    except Exception as exc:  # open_clip imports torchvision, which may not match the installed torch
        return False, f"open_clip does not import here: {exc}"
    return True, ""


_OK, _WHY = _open_clip_imports()


@pytest.mark.skipif(not _OK, reason=_WHY)
def test_random_open_clip_model_end_to_end():
    model = OpenClipModel.create("ViT-B-32", pretrained=None)
    img = model.encode_image(torch.rand(2, 3, 32, 32))
    txt = model.encode_text(["a photo of a cat.", "a photo of a dog."])
    assert img.shape[1] == txt.shape[1] == model.embed_dim
    assert torch.isfinite(img).all()
    assert torch.isfinite(txt).all()
    assert model.logit_scale > 0
