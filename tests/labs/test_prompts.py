"""Headless tests of the prompts Lab on a small fake text-image model whose embeddings are known by construction:
images sit near their class's direction plus a direction all images share; a word's embedding is a fixed random
vector, a class name's is its class direction, and the word "sketch" points along the shared direction: under
"a sketch of a {}." every image gets high logits for every class (a high naive max-logit score, little
information), the kind of bias ZPE's debiasing removes."""

from types import SimpleNamespace

import pytest
import torch

from ensemble_lab import metrics, prompts
from ensemble_lab.artefacts.zeroshot import ZeroShotData
from ensemble_lab.combine import learn_weights
from ensemble_lab.data.captions import PLAIN_PROMPT
from ensemble_lab.labs.prompts import TABLE_COLUMNS, PromptsLab, PromptsState

from .conftest import assert_refused

C, D = 10, 32
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class FakeModel:
    logit_scale = 20.0

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.classes = torch.nn.functional.normalize(torch.randn(C, D, generator=g), dim=-1)
        self.common = torch.nn.functional.normalize(torch.randn(D, generator=g), dim=-1)
        self.vocab = {}
        for word in [
            "a",
            "photo",
            "of",
            "the",
            "number",
            "picture",
            "drawing",
            "blurry",
            "noisy",
            "sketch",
            "digit",
            "handwritten",
        ]:
            self.vocab[word] = 0.3 * torch.randn(D, generator=g)
        self.vocab["sketch"] = 5.0 * self.common
        for c, name in enumerate(NAMES):
            self.vocab[name] = self.classes[c]

    def encode_image(self, images):
        return images  # the "images" of this world are already embeddings

    def _words(self, text):
        return [w for w in text.lower().replace(".", " ").split() if w]

    def unknown_words(self, text):
        return [w for w in self._words(text) if w not in self.vocab]

    def encode_text(self, texts):
        out = []
        for t in texts:
            known = [self.vocab[w] for w in self._words(t) if w in self.vocab]
            if not known:
                raise ValueError(f"text {t!r} has no known word")
            out.append(torch.stack(known).sum(0))
        return torch.stack(out)


def _domain(seed, n, noise):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    model = FakeModel()
    images = model.classes[y] + 1.5 * model.common + noise * torch.randn(n, D, generator=g)
    return SimpleNamespace(images=images, labels=y)


POOL = [
    "a photo of the number {}.",
    "a picture of a {}.",
    "a drawing of the digit {}.",
    "a sketch of a {}.",
    "a blurry photo of a {}.",
    "handwritten {}",
    "{}",
    "a photo of a {}.",
]


@pytest.fixture(scope="module")
def data():
    domains = {"clean": _domain(1, 400, 0.6), "noisy": _domain(2, 300, 1.0)}
    pre = _domain(3, 500, 0.6).images
    return ZeroShotData(FakeModel(), domains, pre, NAMES, progress=False)


@pytest.fixture
def lab(data):
    return PromptsLab(data, POOL, hand_crafted=POOL[:3])


def _accuracy(logits, y):
    return float((logits.argmax(1) == y).double().mean())


def test_zpe_result_matches_the_routines(lab, data):
    r = lab.result
    assert r.domain == "clean"
    assert r.weighting == "zpe-both"
    assert lab.status == ""
    logits = data.logits("clean", POOL)
    scores = prompts.zpe_scores(logits, data.pretrain_logits(POOL), debias="both")
    torch.testing.assert_close(r.scores.double(), scores.double())
    w = prompts.zpe_weights(scores, 1.0)
    torch.testing.assert_close(r.weights, w.double())
    p = torch.softmax(prompts.ensemble_prompt_logits(logits, w).double(), -1)
    assert r.metrics["nll"] == pytest.approx(metrics.nll(p, data.labels["clean"]), rel=1e-6)


def test_the_biased_prompt_fools_the_naive_score_but_not_zpe(lab):
    sketch = POOL.index("a sketch of a {}.")
    lab.set(weighting="max-logit")
    naive = lab.result.weights
    assert int(naive.argmax()) == sketch  # every logit is high under "sketch": the highest max-logit
    lab.set(weighting="zpe-both")
    w = lab.result.weights
    assert w[sketch] < naive[sketch]
    assert w[sketch] < w.median()


def test_equal_average_is_the_clip_prompt_ensemble(lab, data):
    assert lab.set(weighting="equal")
    cls = prompts.average_text_embeddings(data.text_embeddings(POOL))
    z = prompts.zero_shot_logits(data.images["clean"], cls, data.logit_scale)
    assert lab.result.metrics["accuracy"] == pytest.approx(_accuracy(z, data.labels["clean"]))
    torch.testing.assert_close(lab.result.weights, torch.full((len(POOL),), 1 / len(POOL), dtype=torch.float64))


def test_equal_logits_is_the_mean_of_the_prompts_logits(lab, data):
    """The ZPE authors' equal baseline (``agg_logits`` without weights): mean_p l[n, p, c], not CLIP's embedding
    average, whose per-class re-normalisation can change predictions."""
    assert lab.set(weighting="equal-logits")
    z = data.logits("clean", POOL).mean(dim=1)
    y = data.labels["clean"]
    assert lab.result.metrics["accuracy"] == pytest.approx(_accuracy(z, y))
    assert lab.result.metrics["nll"] == pytest.approx(metrics.nll(torch.softmax(z.double(), -1), y), rel=1e-6)
    torch.testing.assert_close(lab.result.weights, torch.full((len(POOL),), 1 / len(POOL), dtype=torch.float64))
    assert lab.result.table["clean"]["logit average"] == pytest.approx(_accuracy(z, y))


def test_oracle_has_the_lowest_nll_on_the_labelled_domain(lab, data):
    zpe = lab.result.metrics["nll"]
    assert lab.set(weighting="oracle")
    want = learn_weights(data.logits("clean", POOL).permute(1, 0, 2), data.labels["clean"], rule="logit")
    torch.testing.assert_close(lab.result.weights, want.double(), atol=1e-6, rtol=0)
    assert lab.result.metrics["nll"] <= zpe + 1e-9


def test_selection_keeps_high_scoring_prompts(lab):
    assert lab.set(weighting="zpe-select", tau=0.0)
    w = lab.result.weights
    kept = w > 0
    assert 0 < int(kept.sum()) <= len(POOL)
    torch.testing.assert_close(w[kept], torch.full((int(kept.sum()),), 1 / int(kept.sum()), dtype=torch.float64))


def test_unticking_reweights_without_rescoring(lab):
    before = dict(zip(lab.result.selected, lab.result.scores.tolist(), strict=False))
    assert lab.set(selected=POOL[:4])
    r = lab.result
    assert r.selected == tuple(POOL[:4])
    assert r.weights.shape == (4,)
    assert r.scores.tolist() == [before[t] for t in POOL[:4]]
    assert float(r.weights.sum()) == pytest.approx(1.0)


def test_scoring_images_and_domain(lab):
    assert lab.set(n_images=50)
    assert lab.result.n_scored == 50
    assert lab.set(domain="noisy")
    assert lab.result.n_samples == 300
    assert not lab.set(n_images=301)
    assert "n_images must be at most the 300 images" in lab.status


def test_table_has_the_papers_columns(lab, data):
    t = lab.result.table
    assert set(t) == {"clean", "noisy"}
    assert tuple(t["clean"]) == TABLE_COLUMNS
    cls = prompts.average_text_embeddings(data.text_embeddings([PLAIN_PROMPT]))
    z = prompts.zero_shot_logits(data.images["noisy"], cls, data.logit_scale)
    assert t["noisy"]["plain prompt"] == pytest.approx(_accuracy(z, data.labels["noisy"]))
    lab.set(weighting="equal")
    assert t["clean"]["pool average"] == pytest.approx(lab.result.metrics["accuracy"])


def test_add_template(lab):
    assert lab.add_template("a noisy drawing of a {}.")
    assert lab.state.templates[-1] == "a noisy drawing of a {}."
    assert lab.state.selected[-1] == lab.state.templates[-1]
    assert lab.result.weights.shape == (len(POOL) + 1,)
    assert lab.status == ""
    assert lab.add_template("a shiny photo of a {}.")  # unknown word: flagged, the rest is used
    assert "'shiny'" in lab.status
    assert "ignored" in lab.status


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("a photo of a digit", "placeholder"),
        ("a {} and a {}", "placeholder"),
        ("a {0} photo", "template"),
        ("zzz qqq {}", "only words the model does not know"),
        ("a photo of the number {}.", "already in the pool"),
    ],
)
def test_bad_templates_leave_the_pool_unchanged(lab, template, fragment):
    state, result = lab.state.to_dict(), lab.result
    assert not lab.add_template(template)
    assert fragment in lab.status
    assert lab.state.to_dict() == state
    assert lab.result is result


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"selected": []}, "prompt pool is empty"),
        ({"selected": ["not a template {}"]}, "selected must name known templates"),
        ({"temperature": 0.0}, "temperature must be in [0.01, 100]"),
        ({"weighting": "median"}, "weighting must be one of"),
        ({"domain": "sketches"}, "domain must be one of"),
        ({"n_images": -1}, "n_images must be >= 0"),
        ({"tau": float("nan")}, "tau must be a finite number"),
    ],
)
def test_bad_settings_go_to_the_status_line(lab, changes, fragment):
    assert_refused(lab, changes, fragment)


def test_state_round_trips(lab, data):
    lab.add_template("a noisy drawing of a {}.")
    lab.set(selected=lab.state.templates[2:], weighting="zpe-test", temperature=0.5, domain="noisy")
    copy = PromptsLab(data, POOL, hand_crafted=POOL[:3], state=PromptsState.from_json(lab.state.to_json()))
    assert copy.result.metrics == lab.result.metrics


# -- through the widgets ------------------------------------------------------------------------------


def test_checkboxes_and_buttons(lab):
    view = lab.view
    view.checks[0].value = False
    assert POOL[0] not in lab.state.selected
    assert len(lab.result.selected) == len(POOL) - 1
    view.buttons["none"].click()
    assert "prompt pool is empty" in view.status.value
    assert view.checks[1].value
    view.buttons["all"].click()
    assert lab.state.selected == POOL


def test_adding_through_the_text_box(lab):
    view = lab.view
    view.new_template.value = "a blurry drawing of a {}."  # typed, then Enter: added
    assert len(view.checks) == len(POOL) + 1
    assert view.checks[-1].value
    assert view.new_template.value == ""
    view.add_button.click()  # an empty box adds nothing and says nothing
    assert len(view.checks) == len(POOL) + 1
    assert "ok" in view.status.value
    view.new_template.value = "a blurry sketch of a {}."
    assert view.pool_box.children[:2] == (view.checks[-1], view.checks[-2])  # the learner's, newest on top
    view.new_template.value = "no placeholder"
    view.add_button.click()
    assert "placeholder" in view.status.value
    assert len(view.checks) == len(POOL) + 2


def test_weighting_dropdown_redraws(lab):
    view = lab.view
    view.weighting.value = "max-logit"
    assert lab.state.weighting == "max-logit"
    assert "accuracy" in view.summary.value
    view.temperature.value = 0.1
    assert lab.state.temperature == pytest.approx(0.1)
    assert "el-domain-table" in view.table.value
