"""Tests for the caption world (ensemble_lab.data.captions) and MiniCLIP (ensemble_lab.models.miniclip*)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from ensemble_lab.data import captions as cap
from ensemble_lab.data import load_distorted_digits
from ensemble_lab.data.captions import (
    CLASS_FREQUENCIES,
    CLASS_NAMES,
    HAND_CRAFTED,
    PLAIN_PROMPT,
    PROMPT_GROUPS,
    PROMPT_POOL,
    SPURIOUS_WORDS,
    STYLE_FREQUENCIES,
    STYLES,
    pretraining_pairs,
    pretraining_sample,
    zero_shot_domains,
)
from ensemble_lab.data.sources import source_digits, source_split
from ensemble_lab.models import miniclip_train
from ensemble_lab.models.miniclip import MiniCLIP, WordTokenizer, load_miniclip, miniclip_paths

# ----------------------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> MiniCLIP:
    return load_miniclip("cpu")


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads(miniclip_paths()[1].read_text())


@pytest.fixture(scope="module")
def domains(meta):
    return zero_shot_domains(meta["domains"]["seed"], meta["domains"]["n_per_domain"])


@pytest.fixture(scope="module")
def plan():
    """Labels, styles, sources and captions of the default pre-training corpus (no images: fast)."""
    return cap._pretraining_plan(0, 40_000)


# ----------------------------------------------------------------------------------------------------------
# prompts
# ----------------------------------------------------------------------------------------------------------


def test_prompt_pool_templates():
    assert len(PROMPT_POOL) >= 40
    assert len(set(PROMPT_POOL)) == len(PROMPT_POOL)
    assert all(isinstance(t, str) and t.count("{}") == 1 for t in PROMPT_POOL)
    assert "{}" in PROMPT_POOL
    assert PLAIN_PROMPT in PROMPT_POOL
    assert set(HAND_CRAFTED) <= set(PROMPT_POOL)
    assert 3 <= len(HAND_CRAFTED) < len(PROMPT_POOL)
    assert set(PROMPT_GROUPS) == set(PROMPT_POOL)
    groups = set(PROMPT_GROUPS.values())
    assert {f"style:{s}" for s in STYLES} <= groups
    assert {f"spurious:{w}" for w in SPURIOUS_WORDS} <= groups
    assert {"generic", "rare"} <= groups
    assert CLASS_NAMES == ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    assert len(STYLES) >= 6


def test_every_prompt_and_caption_word_is_in_the_vocabulary(model, plan):
    for t in PROMPT_POOL:
        for c in CLASS_NAMES:
            assert model.unknown_words(t.replace("{}", c)) == []
    assert set(w for c in set(plan["captions"]) for w in c.split()) <= set(model.tokenizer.vocab)
    assert set(cap.caption_vocabulary()) <= set(model.tokenizer.vocab)


# ----------------------------------------------------------------------------------------------------------
# the world
# ----------------------------------------------------------------------------------------------------------


def test_pretraining_pairs_are_deterministic(tmp_cache, monkeypatch, tmp_path):
    a = pretraining_pairs(seed=3, n=300)  # built
    b = pretraining_pairs(seed=3, n=300)  # read from the cache
    monkeypatch.setenv("ENSEMBLE_LAB_CACHE", str(tmp_path / "other"))
    c = pretraining_pairs(seed=3, n=300)  # built again, elsewhere
    for other in (b, c):
        assert torch.equal(a.images, other.images)
        assert a.captions == other.captions
        assert torch.equal(a.labels, other.labels)
        assert torch.equal(a.styles, other.styles)
    assert a.images.shape == (300, 1, 16, 16)
    assert a.images.dtype == torch.float32
    assert float(a.images.min()) >= 0.0
    assert float(a.images.max()) <= 1.0
    assert a.labels.dtype == torch.int64
    assert a.styles.dtype == torch.int64
    assert len(a.captions) == 300
    images, captions, labels, styles = a  # unpacks as a 4-tuple
    d = pretraining_pairs(seed=4, n=300)
    assert d.captions != a.captions
    assert not torch.equal(d.images, a.images)


def test_captions_name_the_class_of_their_image(plan):
    words = [c.split() for c in plan["captions"]]
    named = [[n for n in CLASS_NAMES if n in w] for w in words]
    right = [CLASS_NAMES[int(y)] in n for n, y in zip(named, plan["labels"], strict=False)]
    has = [bool(n) for n in named]
    assert 0.80 < np.mean(has) < 0.90  # 15% name no class
    assert np.mean([r for r, h in zip(right, has, strict=False) if h]) > 0.88  # most that name one name the right one


def test_sources_are_disjoint(plan):
    _, raw_labels, _ = source_digits()
    pools = source_split(0)
    train, test = set(pools["train"].tolist()), set(pools["test"].tolist())
    pre = set(plan["sources"].tolist())
    assert pre <= train
    for k, _style in enumerate(STYLES):
        src = cap._domain_plan(0, 1700, k)
        assert set(src.tolist()) == test  # every test source once
        assert not (set(src.tolist()) & pre)
    assert torch.equal(raw_labels[plan["sources"]], plan["labels"])
    # the pools are those of the distorted digits (same seed)
    digits = load_distorted_digits(0, n_train=10, n_val=10, n_test=2000)
    assert set(digits["test"].sources.tolist()) == test


def test_caption_imbalance_is_as_documented(plan):
    y, s = plan["labels"].numpy(), plan["styles"].numpy()
    np.testing.assert_allclose(np.bincount(y, minlength=10) / len(y), CLASS_FREQUENCIES, atol=0.01)
    np.testing.assert_allclose(np.bincount(s, minlength=len(STYLES)) / len(s), STYLE_FREQUENCIES, atol=0.01)
    words = [c.split() for c in plan["captions"]]
    # the table in the module docstring: word -> (in captions, share of its class, misnamed captions, share)
    table = {
        "sketch": (0.072, 0.626, 459, 0.697),
        "doodle": (0.054, 0.511, 318, 0.588),
        "scribble": (0.055, 0.606, 371, 0.660),
    }
    for word, (freq, share, n_misnamed, share_misnamed) in table.items():
        target = CLASS_NAMES.index(SPURIOUS_WORDS[word])
        has = np.array([word in w for w in words])
        assert round(has.mean(), 3) == freq
        assert round((y[has] == target).mean(), 3) == share
        other = np.array([word in w and any(n in w for n in CLASS_NAMES if n != CLASS_NAMES[target]) for w in words])
        assert other.sum() == n_misnamed
        assert round((y[other] == target).mean(), 3) == share_misnamed
        # the bias: the word's class is far more frequent among its captions than overall
        assert (y[has] == target).mean() > 4 * CLASS_FREQUENCIES[target]
    assert round(np.mean([c.split().count("photo") > 0 for c in plan["captions"]]), 2) == 0.37
    assert len(set(plan["captions"])) == 2162


def test_zero_shot_domains(domains):
    assert tuple(domains) == STYLES
    for style, ds in domains.items():
        assert ds.images.shape == (len(ds), 1, 16, 16)
        assert torch.equal(ds.sources, cap._domain_plan(0, len(ds), STYLES.index(style)))
        assert ds.classes == CLASS_NAMES
        assert ds.name == f"captions/{style}"
        counts = torch.bincount(ds.labels, minlength=10).float() / len(ds)
        assert float(counts.min()) > 0.08
        assert float(counts.max()) < 0.12
    assert not torch.equal(domains["clean"].images, domains["blurry"].images)
    # inverted images are light on average, faint ones have low contrast
    assert float(domains["inverted"].images.mean()) > 0.6 > float(domains["clean"].images.mean())
    assert float(domains["faint"].images.std()) < 0.5 * float(domains["clean"].images.std())


def test_pretraining_sample(tmp_cache):
    x = pretraining_sample(n=50, seed=1, n_pairs=300)
    assert x.shape == (50, 1, 16, 16)
    assert torch.equal(x, pretraining_sample(n=50, seed=1, n_pairs=300))
    pool = pretraining_pairs(seed=1, n=300).images.flatten(1)
    assert all(bool((pool == row).all(dim=1).any()) for row in x.flatten(1))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: pretraining_pairs(seed=-1, n=10), ValueError, "seed"),
        (lambda: pretraining_pairs(seed=0, n=0), ValueError, "n must"),
        (lambda: pretraining_pairs(seed=0, n="10"), TypeError, "n must be an int"),
        (lambda: pretraining_sample(n=20, n_pairs=10), ValueError, "n must be in"),
        (lambda: zero_shot_domains(n_per_domain=0), ValueError, "n_per_domain"),
        (lambda: zero_shot_domains(seed=1.5), TypeError, "seed"),
    ],
)
def test_world_rejects_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ----------------------------------------------------------------------------------------------------------
# tokenizer
# ----------------------------------------------------------------------------------------------------------


def test_tokenizer_words_and_encode():
    tok = WordTokenizer(["a", "photo", "of", "seven", "7"])
    assert tok.words("A photo, of... SEVEN!") == ["a", "photo", "of", "seven"]
    assert tok.words("handwritten 7") == ["handwritten", "7"]
    ids, mask = tok.encode(["a photo of seven", "Seven.", "a zebra photo"], max_len=6)
    assert ids.shape == (3, 6)
    assert mask.shape == (3, 6)
    assert ids.dtype == torch.int64
    assert mask.dtype == torch.bool
    assert ids[0, :4].tolist() == [1, 2, 3, 4]
    assert mask.sum(dim=1).tolist() == [4, 1, 2]
    assert (ids[~mask] == 0).all()
    assert (ids[mask] > 0).all()
    assert len(tok) == 6
    assert tok.vocab == ("a", "photo", "of", "seven", "7")


def test_tokenizer_reports_unknown_words_and_refuses_all_unknown():
    tok = WordTokenizer(["a", "photo", "of", "seven"])
    assert tok.unknown_words("a zebra photo of a gnu") == ["zebra", "gnu"]
    assert tok.unknown_words("a photo") == []
    with pytest.raises(ValueError, match="zebra"):
        tok.encode(["a photo", "zebra gnu"], max_len=4)
    with pytest.raises(ValueError, match="no words"):
        tok.encode(["..."], max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        tok.encode(["a photo of a photo of seven"], max_len=4)
    with pytest.raises(TypeError, match="texts"):
        tok.encode("a photo", max_len=4)
    with pytest.raises(ValueError, match="texts"):
        tok.encode([], max_len=4)
    with pytest.raises(ValueError, match="vocab"):
        WordTokenizer(["a", "A photo"])
    with pytest.raises(ValueError, match="vocab"):
        WordTokenizer(["a", "a"])


def test_model_unknown_words(model):
    assert model.unknown_words("a photo of the number seven.") == []
    assert model.unknown_words("a watercolour painting of the number seven.") == ["watercolour", "painting"]
    with pytest.raises(ValueError, match="watercolour"):
        model.encode_text(["watercolour"])
    # unknown words are skipped, not turned into something else
    skipped = model.encode_text(["a zebra photo of a seven"])
    torch.testing.assert_close(skipped, model.encode_text(["a photo of a seven"]))


# ----------------------------------------------------------------------------------------------------------
# the shipped weights
# ----------------------------------------------------------------------------------------------------------


def test_shipped_weights_are_safetensors_and_small(monkeypatch, meta):
    weights, meta_path = miniclip_paths()
    raw = weights.read_bytes()
    assert len(raw) < 2_000_000
    (n_header,) = struct.unpack("<Q", raw[:8])  # safetensors: u64 header length, then a JSON header
    header = json.loads(raw[8 : 8 + n_header])
    assert "log_scale" in header
    assert not raw.startswith(b"PK")
    assert raw[:1] != b"\x80"

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load must not be used")

    monkeypatch.setattr(torch, "load", no_pickle)
    m = load_miniclip("cpu")
    assert isinstance(m, MiniCLIP)
    assert not m.training
    assert m.embed_dim == meta["config"]["embed_dim"] == 64
    assert m.logit_scale == pytest.approx(meta["logit_scale"], rel=1e-6)
    assert 1.0 < m.logit_scale <= 100.0
    for key in (
        "vocab",
        "config",
        "seed",
        "torch_version",
        "training",
        "training_command",
        "zero_shot_accuracy",
        "spurious_prediction_rate",
    ):
        assert key in meta
    assert meta["training_command"].startswith("python -m ensemble_lab.models.miniclip_train")
    assert meta["prompt_pool"] == list(PROMPT_POOL)
    assert meta["domains"]["styles"] == list(STYLES)


def test_shipped_weights_reproduce_the_recorded_accuracy(model, meta, domains):
    acc = miniclip_train.evaluate(model, domains)
    recorded = meta["zero_shot_accuracy"]
    for key in ("plain", "pool_mean_logits", "pool_mean_embedding", "hand_crafted"):
        for style in STYLES:
            assert acc[key][style] == pytest.approx(recorded[key][style], abs=1e-6), (key, style)
    for style in STYLES:
        np.testing.assert_allclose(acc["per_prompt"][style], recorded["per_prompt"][style], atol=1e-6)
    rates = miniclip_train.spurious_prediction_rate(model, domains)
    for t, r in meta["spurious_prediction_rate"].items():
        assert rates[t]["rate"] == pytest.approx(r["rate"], abs=1e-6)


def test_shipped_model_has_the_properties_the_notebook_needs(meta):
    acc = meta["zero_shot_accuracy"]
    pool = list(PROMPT_POOL)
    for style in STYLES:  # well above chance (0.1) but imperfect
        assert 0.4 < acc["plain"][style] < 0.96
        assert 0.4 < acc["pool_mean_logits"][style] < 0.96
    # style-specific prompts suit their own domain better than the generic ones (all but "clean")
    generic = [pool.index(t) for t in pool if PROMPT_GROUPS[t] == "generic"]
    for style in STYLES[1:]:
        own = [pool.index(t) for t in pool if PROMPT_GROUPS[t] == f"style:{style}"]
        per = np.asarray(acc["per_prompt"][style])
        assert per[own].mean() > per[generic].mean(), style
    # the best single prompt differs between domains
    best = {style: int(np.argmax(acc["per_prompt"][style])) for style in STYLES}
    assert len(set(best.values())) >= 4
    # spuriously correlated prompts push their class on every domain
    for t, r in meta["spurious_prediction_rate"].items():
        assert r["rate"] > 0.3, t
        assert r["generic_rate"] < 0.15, t


# ----------------------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------------------


def test_encode_shapes(model):
    x = torch.rand(5, 1, 16, 16)
    img = model.encode_image(x)
    assert img.shape == (5, model.embed_dim)
    assert img.dtype == torch.float32
    torch.testing.assert_close(model.encode_image(x.numpy()), img)
    torch.testing.assert_close(model.encode_image(x, batch_size=2), img, rtol=1e-5, atol=1e-6)
    txt = model.encode_text(["a photo of the number seven.", "two sketch", "one"])
    assert txt.shape == (3, model.embed_dim)
    logits = model(x, ["seven", "two"])
    assert logits.shape == (5, 2)
    two = model.encode_text(["seven", "two"])
    cos = torch.nn.functional.cosine_similarity(img.unsqueeze(1), two.unsqueeze(0), dim=-1)
    torch.testing.assert_close(logits, model.logit_scale * cos, rtol=1e-4, atol=1e-4)
    assert isinstance(model.logit_scale, float)
    assert isinstance(model.embed_dim, int)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.encode_image(torch.rand(2, 16, 16)), ValueError, "images must have shape"),
        (lambda m: m.encode_image(torch.rand(2, 3, 16, 16)), ValueError, "images must have shape"),
        (lambda m: m.encode_image(torch.zeros(2, 1, 16, 16, dtype=torch.uint8)), TypeError, "images"),
        (lambda m: m.encode_image(torch.full((2, 1, 16, 16), 2.0)), ValueError, r"images must lie in \[0, 1\]"),
        (lambda m: m.encode_image(torch.rand(0, 1, 16, 16)), ValueError, "images"),
        (lambda m: m.encode_image("pixels"), TypeError, "images"),
        (lambda m: m.encode_text("a photo of a seven"), TypeError, "texts must be a list"),
        (lambda m: m.encode_text([]), ValueError, "texts"),
        (lambda m: m.encode_text([7]), TypeError, "texts"),
        (lambda m: m.encode_text(["a photo of the number seven " * 3]), ValueError, "max_len"),
        (lambda m: m.unknown_words(["a"]), TypeError, "text must be a str"),
    ],
)
def test_model_rejects_bad_input(model, call, error, match):
    with pytest.raises(error, match=match):
        call(model)


def test_miniclip_config_errors():
    with pytest.raises(ValueError, match="text_width"):
        MiniCLIP(["a"], text_width=30, text_heads=4)
    with pytest.raises(ValueError, match="embed_dim"):
        MiniCLIP(["a"], embed_dim=0)


def test_load_miniclip_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="miniclip"):
        load_miniclip("cpu", weights_dir=tmp_path)


# ----------------------------------------------------------------------------------------------------------
# training (a smoke run on a tiny corpus)
# ----------------------------------------------------------------------------------------------------------


def test_training_script_smoke(tmp_path, capsys):
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    out = tmp_path / "w"
    meta = miniclip_train.main(["--out", str(out), "--epochs", "1", "--n-pairs", "600", "--no-progress"])
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == det
    assert (out / "miniclip.safetensors").exists()
    assert (out / "miniclip.json").exists()
    assert meta["training"]["epochs"] == 1
    assert "--n-pairs 600" in meta["training_command"]
    m = load_miniclip("cpu", weights_dir=out)
    assert set(meta["zero_shot_accuracy"]["plain"]) == set(STYLES)
    assert all(0.0 <= a <= 1.0 for a in meta["zero_shot_accuracy"]["plain"].values())
    assert m.encode_text(["a photo of the number one."]).shape == (1, 64)
    assert "plain" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        miniclip_train.main(["--epochs", "0"])


def test_training_script_reproduces_the_shipped_accuracy(tmp_path):
    """The full recipe (about 1.5 min on 2 cores) gives the recorded zero-shot accuracy within a point."""
    meta = miniclip_train.main(["--out", str(tmp_path), "--no-progress"])
    shipped = json.loads(miniclip_paths()[1].read_text())["zero_shot_accuracy"]
    for key in ("plain", "pool_mean_embedding"):
        for domain, acc in shipped[key].items():
            assert meta["zero_shot_accuracy"][key][domain] == pytest.approx(acc, abs=0.01), (key, domain)


# bad-input regressions ------------------------------------------------------------------------------------
SMALL = dict(embed_dim=8, context_length=4, image_widths=[4], image_hidden=8, text_width=8, text_layers=1, text_heads=2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(vocab=None), TypeError, "vocab"),
        (dict(vocab={"a": 1}), TypeError, "vocab"),
        (dict(image_widths=None), TypeError, "image_widths"),
        (dict(image_widths=16), TypeError, "image_widths"),
        (dict(image_widths=[2**70]), ValueError, "image_widths"),
        (dict(text_layers=2**64), ValueError, "text_layers"),
        (dict(embed_dim=2**64), ValueError, "embed_dim"),
        (dict(image_size=2**70), ValueError, "image_size"),
    ],
)
def test_miniclip_refuses_bad_sizes_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        MiniCLIP(**({"vocab": ["a", "photo"]} | SMALL | kwargs))


def test_miniclip_accepts_numpy_sizes_with_the_same_weights():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        a = MiniCLIP(["a", "photo"], **SMALL)
        torch.manual_seed(0)
        b = MiniCLIP(["a", "photo"], **(SMALL | dict(embed_dim=np.int64(8), image_widths=(np.int32(4),))))
    assert a.config == b.config
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())


def test_load_miniclip_checks_weights_dir_and_device_first():
    for bad in (1, ["weights"], b"\x00"):
        with pytest.raises(TypeError, match="weights_dir"):
            load_miniclip("cpu", weights_dir=bad)
    with pytest.raises(ValueError, match="device"):
        load_miniclip("cuda:7")
    with pytest.raises(ValueError, match="max_len"):
        WordTokenizer(["a"]).encode(["a"], max_len=2**64)
