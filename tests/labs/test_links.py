"""Links: every Lab's State survives a round trip through a short URL-safe string, exactly (floats included), and
every kind of bad link is refused with a ValueError naming ``link`` that says what is wrong."""

import base64
import re
import zlib
from types import SimpleNamespace

import pytest
from soups_fixtures import tiny_world

from ensemble_lab.artefacts.soup_world import SHIFTED, ZERO_SHOT, endpoint_name
from ensemble_lab.artefacts.zeroshot import ZeroShotData
from ensemble_lab.labs import CalibrationLab, CascadesLab, DeepEnsemblesLab, Lab, PromptsLab, SoupsLab, links
from ensemble_lab.labs import base as labs_base

from .conftest import synthetic_predictions
from .test_cascades import COSTS
from .test_cascades import _predictions as cascade_predictions
from .test_prompts import NAMES, POOL, FakeModel, _domain

URL_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_LENGTH = 400  # characters: every link below (each with several non-default settings, lists included)


@pytest.fixture(scope="module")
def worlds():
    domains = {"clean": _domain(1, 400, 0.6), "noisy": _domain(2, 300, 1.0)}
    return SimpleNamespace(
        predictions=synthetic_predictions(),
        cascades=cascade_predictions(),
        zero_shot=ZeroShotData(FakeModel(), domains, _domain(3, 500, 0.6).images, NAMES, progress=False),
        soups=tiny_world(),
    )


def _cases(worlds):
    """Lab class, constructor arguments, and a non-default State (list-valued settings and inexact floats)."""
    soups = worlds.soups
    return {
        "deep_ensembles": (
            DeepEnsemblesLab,
            (worlds.predictions,),
            {},
            {"weights": [0.1 + 0.2, 1e-7, 0.0, 2.5], "rule": "logit", "temperature": 1 / 3, "split": "noise-3"},
        ),
        "calibration": (
            CalibrationLab,
            (worlds.predictions,),
            {},
            {
                "order": "calibrate-then-pool",
                "member_temperatures": [0.1 + 0.2, 1.25, 2 / 3, 1.0],
                "n_cal": 123,
                "n_bins": 7,
                "strategy": "quantile",
                "estimator": "debiased",
                "seed": 4,
            },
        ),
        "cascades": (
            CascadesLab,
            (worlds.cascades, COSTS),
            {},
            {"order": [2, 0, 1], "target": 0.1 + 0.2, "target_kind": "risk", "half_width": 0.15, "adjusted": True},
        ),
        "prompts": (
            PromptsLab,
            (worlds.zero_shot, POOL),
            {"hand_crafted": POOL[:3]},
            {
                "selected": [POOL[3], POOL[0], POOL[5]],
                "weighting": "zpe-select",
                "tau": 0.1 + 0.2,
                "temperature": 0.7,
                "n_images": 100,
                "domain": "noisy",
            },
        ),
        "soups": (
            SoupsLab,
            (soups,),
            {},
            {
                "ingredients": list(soups.ingredients[:3]),
                "alpha": 0.3,
                "head_scale": 0.1 + 0.2,
                "split": SHIFTED[0],
                "bang": True,
                "line_a": ZERO_SHOT,
                "line_b": endpoint_name(1e-3),
            },
        ),
    }


KEYS = ("deep_ensembles", "calibration", "cascades", "prompts", "soups")


@pytest.mark.parametrize("key", KEYS)
def test_round_trip_of_a_non_default_state(worlds, key):
    klass, args, kwargs, changes = _cases(worlds)[key]
    lab = klass(*args, **kwargs)
    default_link = lab.link()
    assert lab.set(**changes), lab.status
    text = lab.link()
    print(f"{key}: default link {len(default_link)} chars, non-default {len(text)} chars")
    assert URL_SAFE.match(text)
    assert text.startswith(f"el1.{key}.")
    assert len(default_link) <= 80
    assert len(text) <= MAX_LENGTH
    want = lab.state.to_dict()
    for opener in (klass, Lab):  # the Lab's own from_link, and the base's, which dispatches on the link's key
        again = opener.from_link(text, *args, **kwargs)
        assert type(again) is klass
        assert again.state.to_dict() == want  # exactly: 0.1 + 0.2 comes back as 0.30000000000000004
        assert again.link() == text
    assert klass.from_link(default_link, *args, **kwargs).state.to_dict() == klass(*args, **kwargs).state.to_dict()
    other = klass(*args, **kwargs)  # apply_link: an open Lab jumps to the link's State
    assert other.apply_link(text)
    assert other.state.to_dict() == want


def test_floats_and_lists_are_exact(worlds):
    lab = DeepEnsemblesLab(worlds.predictions)
    weights = [0.1 + 0.2, 1 / 3, 2.0**-30, 123456.789]
    assert lab.set(weights=weights, temperature=0.1 + 0.7)
    again = DeepEnsemblesLab.from_link(lab.link(), worlds.predictions)
    assert again.state.weights == weights
    assert again.state.temperature == 0.1 + 0.7
    assert [type(v) for v in again.state.weights] == [float] * 4


def test_only_changed_settings_are_stored(worlds):
    lab = DeepEnsemblesLab(worlds.predictions)
    assert links.decode_link(lab.link())["settings"] == {}
    assert lab.set(rule="geo")
    assert links.decode_link(lab.link())["settings"] == {"rule": "geo"}


def test_a_url_with_the_query_parameter_opens_too(worlds):
    lab = DeepEnsemblesLab(worlds.predictions)
    assert lab.set(split="noise-3")
    url = f"http://localhost:8866/voila/render/01_deep_ensembles.ipynb?theme=dark&lab={lab.link()}"
    assert DeepEnsemblesLab.from_link(url, worlds.predictions).state.split == "noise-3"


def _forged(payload: bytes, key="deep_ensembles") -> str:
    return f"el1.{key}." + base64.urlsafe_b64encode(zlib.compress(payload)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "must look like el1.<lab>.<payload>"),
        ("hello world", "must look like"),
        ("el1.deep_ensembles", "must look like"),
        ("el9.deep_ensembles.eNqrVkpRslIyM7MwTjEwMVDSUSpWsqqurQUAQsIGAw", "version 'el9'"),
        ("el1.Deep-Ensembles.abc", "names no Lab"),
        ("el1.deep_ensembles.!!!!", "corrupt"),
        ("el1.deep_ensembles.eNqrVkpRslIyM7MwTjEwMVDSUSpWsqqur", "corrupt"),  # truncated
        (_forged(b"[1, 2]"), "not a Lab's settings"),
        (_forged(b"\xff\xfe"), "corrupt"),
        (_forged(b'{"d": "0", "s": {}}', key="nope"), "unknown Lab 'nope'"),
        ("http://host/page?theme=dark", "no lab= parameter"),
    ],
)
def test_garbled_links_are_refused_with_a_message(worlds, text, fragment):
    with pytest.raises(ValueError, match=r"\blink\b") as info:
        Lab.from_link(text, worlds.predictions)
    assert fragment in str(info.value)
    assert info.value.__cause__ is None  # raised from None: no zlib/base64/json traceback underneath


def test_links_of_another_lab_or_other_data_or_bad_settings_are_refused(worlds):
    lab = DeepEnsemblesLab(worlds.predictions)
    assert lab.set(rule="geo")
    text = lab.link()
    with pytest.raises(ValueError, match="link is a link of DeepEnsemblesLab, not of CalibrationLab"):
        CalibrationLab.from_link(text, worlds.predictions)
    fewer = SimpleNamespace(
        logits={s: z[:3] for s, z in worlds.predictions.logits.items()}, labels=worlds.predictions.labels
    )
    with pytest.raises(ValueError, match="link was made on other data"):
        DeepEnsemblesLab.from_link(text, fewer)
    digest = links.decode_link(text)["digest"]
    for settings, fragment in (
        ({"rule": "median"}, "rule must be one of"),
        ({"weights": "abc"}, "weights must be a list"),
        ({"colour": 1}, "unknown setting(s) ['colour']"),
        ({"weights": [0.0, 0.0, 0.0, 0.0]}, "weights"),  # refused by the computation (no weight > 0)
        ({"split": "rotation-9"}, "split must be one of"),  # a split these predictions do not hold
    ):
        forged = _forged(f'{{"d": "{digest}", "s": {links._dumps(settings)}}}'.encode())
        with pytest.raises(ValueError, match=r"^link") as info:
            DeepEnsemblesLab.from_link(forged, worlds.predictions)
        assert fragment in str(info.value)
    with pytest.raises(TypeError, match="link must be a string"):
        Lab.from_link(42)
    with pytest.raises(ValueError, match="state: give a link or a state"):
        DeepEnsemblesLab.from_link(text, worlds.predictions, state=lab.state)


def test_open_link_from_url_reads_voilas_query_string_and_is_a_no_op_elsewhere(worlds, monkeypatch):
    lab = DeepEnsemblesLab(worlds.predictions)
    source = DeepEnsemblesLab(worlds.predictions)
    assert source.set(weights=[1.0, 0.0, 0.5, 0.0])
    monkeypatch.delenv("SERVER_SOFTWARE", raising=False)
    monkeypatch.setenv("QUERY_STRING", f"lab={source.link()}")
    assert lab.open_link_from_url() is False  # not a Voila kernel (no front end here): nothing happens
    assert lab.state.weights == [1.0] * 4
    monkeypatch.setenv("SERVER_SOFTWARE", "voila/0.5.13")
    monkeypatch.setenv("QUERY_STRING", "")
    assert lab.open_link_from_url() is False
    monkeypatch.setenv("QUERY_STRING", f"theme=light&lab={source.link()}")
    assert lab.open_link_from_url() is True
    assert lab.state.to_dict() == source.state.to_dict()
    monkeypatch.setenv("QUERY_STRING", "lab=el1.deep_ensembles.garbage")
    assert lab.open_link_from_url() is False
    assert "the page's link was not opened: link is corrupt" in lab.status
    assert lab.state.to_dict() == source.state.to_dict()


def test_every_lab_has_a_key_and_the_registry_knows_it():
    assert {k: labs_base._LABS[k] for k in KEYS} == {
        "deep_ensembles": DeepEnsemblesLab,
        "calibration": CalibrationLab,
        "cascades": CascadesLab,
        "prompts": PromptsLab,
        "soups": SoupsLab,
    }
