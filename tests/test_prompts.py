"""ZPE prompt weighting against slow loop/numpy references, a world with planted biased prompts, invariants,
template checks and bad input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab import prompts
from ensemble_lab.prompts import (
    DEBIAS_MODES,
    average_text_embeddings,
    check_template,
    ensemble_prompt_logits,
    equal_average_logits,
    fill_template,
    fill_templates,
    prompt_logits,
    zero_shot_logits,
    zpe_scores,
    zpe_select,
    zpe_weights,
)


def _randn(*shape, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


# ----------------------------------------------------------------------------------------------------------
# slow, obviously-correct references (python loops over n, p, c; numpy medians)
# ----------------------------------------------------------------------------------------------------------


def _ref_prompt_logits(x, t, s):
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    n_img, n_prompt, n_cls = x.shape[0], t.shape[0], t.shape[1]
    out = np.zeros((n_img, n_prompt, n_cls))
    for n in range(n_img):
        for p in range(n_prompt):
            for c in range(n_cls):
                out[n, p, c] = s * np.dot(x[n] / np.linalg.norm(x[n]), t[p, c] / np.linalg.norm(t[p, c]))
    return out


def _ref_scores(logits, pretrain, debias):
    z = np.asarray(logits, dtype=np.float64)
    n_img, n_prompt, n_cls = z.shape
    out = np.zeros(n_prompt)
    for p in range(n_prompt):
        bias = []
        for c in range(n_cls):
            mu_test = sum(z[n, p, c] for n in range(n_img)) / n_img
            mu_pre = None if pretrain is None else sum(row[p, c] for row in np.asarray(pretrain)) / len(pretrain)
            bias.append(
                {
                    "both": None if mu_pre is None else (mu_pre + mu_test) / 2,
                    "pretrain": mu_pre,
                    "test": mu_test,
                    "none": 0.0,
                }[debias]
            )
        out[p] = sum(max(z[n, p, c] - bias[c] for c in range(n_cls)) for n in range(n_img)) / n_img
    return out


def _ref_weights(scores, temperature):
    top = max(scores)
    e = [math.exp((s - top) / temperature) for s in scores]
    return np.array([v / sum(e) for v in e])


def _ref_select(scores, tau):
    x = np.asarray(scores, dtype=np.float64)
    med = np.median(x)
    mad = np.median(np.abs(x - med))
    z = []
    for v in x:
        if v == med:
            z.append(0.0)
        elif mad == 0:
            z.append(math.inf if v > med else -math.inf)
        else:
            z.append((v - med) / mad)
    keep = [zi > tau for zi in z]
    if not any(keep):
        keep = [i == int(np.argmax(x)) for i in range(len(x))]  # np.argmax: first maximal index
    return np.array([1.0 / sum(keep) if k else 0.0 for k in keep])


def _ref_ensemble(logits, weights):
    z, w = np.asarray(logits, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    n_img, n_prompt, n_cls = z.shape
    out = np.zeros((n_img, n_cls))
    for n in range(n_img):
        for c in range(n_cls):
            out[n, c] = sum(w[p] * z[n, p, c] for p in range(n_prompt))
    return out


def _ref_average(t, weights):
    t = np.asarray(t, dtype=np.float64)
    n_prompt, n_cls, d = t.shape
    w = np.ones(n_prompt) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    out = np.zeros((n_cls, d))
    for c in range(n_cls):
        mean = sum(w[p] * t[p, c] / np.linalg.norm(t[p, c]) for p in range(n_prompt))
        out[c] = mean / np.linalg.norm(mean)
    return out


# ----------------------------------------------------------------------------------------------------------
# against the references
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_prompt_logits_matches_loops(dtype):
    x, t = _randn(7, 6, seed=1, scale=3.0), _randn(4, 3, 6, seed=2, scale=0.5)
    got = prompt_logits(x.to(dtype), t.to(dtype), 100.0)
    assert got.shape == (7, 4, 3)
    assert got.dtype == dtype
    np.testing.assert_allclose(
        got.double().numpy(), _ref_prompt_logits(x, t, 100.0), rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=1e-4
    )
    # numpy in, a 0-d tensor logit scale (CLIP's logit_scale.exp())
    np.testing.assert_allclose(
        prompt_logits(x.numpy(), t.numpy(), torch.tensor(100.0)).numpy(), _ref_prompt_logits(x, t, 100.0), rtol=1e-12
    )


@pytest.mark.parametrize("debias", DEBIAS_MODES)
def test_zpe_scores_match_loops(debias):
    z, pre = _randn(9, 5, 4, seed=3, scale=4.0), _randn(6, 5, 4, seed=4, scale=4.0) + 2.0
    got = zpe_scores(z, pre, debias=debias)
    assert got.shape == (5,)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), _ref_scores(z.numpy(), pre.numpy(), debias), rtol=1e-12)
    if debias in ("test", "none"):  # pretrain_logits unused
        torch.testing.assert_close(zpe_scores(z, debias=debias), got)
    assert zpe_scores(z.float(), pre.float(), debias).dtype == torch.float32  # returned in the logits' dtype


@pytest.mark.parametrize("temperature", [0.05, 1.0, 7.5])
def test_zpe_weights_match_loops(temperature):
    scores = _randn(6, seed=5, scale=3.0)
    got = zpe_weights(scores, temperature)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), _ref_weights(scores.tolist(), temperature), rtol=1e-12, atol=1e-300)


@settings(max_examples=60, deadline=None)
@given(
    scores=st.lists(st.one_of(st.integers(-3, 3).map(float), st.floats(-1e3, 1e3)), min_size=1, max_size=12),
    tau=st.floats(-3.0, 3.0),
)
def test_zpe_select_matches_numpy_median_and_mad(scores, tau):
    got = zpe_select(torch.tensor(scores, dtype=torch.float64), tau)
    np.testing.assert_array_equal(got.numpy(), _ref_select(scores, tau))


def test_zpe_select_uses_numpys_median_for_an_even_count():
    scores = torch.tensor([0.0, 1.0, 2.0, 10.0], dtype=torch.float64)
    assert float(torch.median(scores)) == 1.0
    assert np.median(scores.numpy()) == 1.5
    # numpy: median 1.5, MAD 1.0, z = [-1.5, -0.5, 0.5, 8.5]; torch.median's lower middle would give z(2) = 1
    np.testing.assert_array_equal(zpe_select(scores, 0.75).numpy(), [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(zpe_select(scores, 0.4).numpy(), [0.0, 0.0, 0.5, 0.5])


def test_zpe_select_edge_cases():
    # MAD == 0: z = +inf above the median, 0 at it, -inf below
    s = torch.tensor([1.0, 1.0, 1.0, 5.0, 0.0])
    np.testing.assert_array_equal(zpe_select(s, 100.0).numpy(), [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(zpe_select(s, -1.0).numpy(), [0.25, 0.25, 0.25, 0.25, 0])
    # all equal: nobody passes tau = 0 -> the single best prompt, lowest index among ties
    np.testing.assert_array_equal(zpe_select(torch.full((3,), 2.0), 0.0).numpy(), [1, 0, 0])
    np.testing.assert_array_equal(zpe_select(torch.full((3,), 2.0, dtype=torch.float64), -0.5).numpy(), [1 / 3] * 3)
    np.testing.assert_array_equal(zpe_select(torch.tensor([3.0, 1.0, 3.0, 2.0]), 100.0).numpy(), [1, 0, 0, 0])
    np.testing.assert_array_equal(zpe_select([4.0], 0.0).numpy(), [1.0])  # a single prompt, from a list
    assert zpe_select(torch.tensor([1.0, 2.0]), 0.0).dtype == torch.float32


def test_ensemble_prompt_logits_matches_loops_and_keeps_the_scale():
    z = _randn(8, 5, 3, seed=6, scale=10.0)
    w = [0.5, 0.0, 2.0, 1.0, 0.25]
    got = ensemble_prompt_logits(z, w)
    assert got.shape == (8, 3)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), _ref_ensemble(z.numpy(), w), rtol=1e-12)
    np.testing.assert_allclose(ensemble_prompt_logits(z, np.asarray(w)).numpy(), got.numpy(), rtol=1e-14)
    # P copies of one prompt ensemble to that prompt's logits: no extra division by P
    same = z[:, :1, :].expand(8, 5, 3)
    torch.testing.assert_close(ensemble_prompt_logits(same, torch.ones(5, dtype=torch.float64)), z[:, 0, :])


@pytest.mark.parametrize("weights", [None, [1.0, 3.0, 0.0, 0.5]])
def test_average_text_embeddings_matches_loops(weights):
    t = _randn(4, 3, 6, seed=7) * torch.tensor([1.0, 5.0, 0.2, 2.0], dtype=torch.float64).view(4, 1, 1)
    got = average_text_embeddings(t, weights)
    assert got.shape == (3, 6)
    np.testing.assert_allclose(got.numpy(), _ref_average(t.numpy(), weights), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(got.norm(dim=1), torch.ones(3, dtype=torch.float64))


def test_zero_shot_logits_and_how_averaging_embeddings_differs_from_averaging_logits():
    x, t, s = _randn(10, 6, seed=8), _randn(4, 3, 6, seed=9), 50.0
    w = torch.tensor([1.0, 2.0, 0.5, 0.5], dtype=torch.float64)
    class_emb = 7.0 * average_text_embeddings(t, w)  # zero_shot_logits normalises whatever the norm
    got = zero_shot_logits(x, class_emb, s)
    want = np.array(
        [[s * np.dot(xi / np.linalg.norm(xi), e / np.linalg.norm(e)) for e in class_emb.numpy()] for xi in x.numpy()]
    )
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    # averaging embeddings = averaging logits, then dividing class c by the norm of its mean unit embedding
    t_unit = t / t.norm(dim=-1, keepdim=True)
    norms = torch.einsum("p,pcd->cd", w / w.sum(), t_unit).norm(dim=-1)
    torch.testing.assert_close(got, ensemble_prompt_logits(prompt_logits(x, t, s), w) / norms)


# ----------------------------------------------------------------------------------------------------------
# a world with planted biased prompts
# ----------------------------------------------------------------------------------------------------------


def _biased_world(seed=0, n_classes=5, dim=32, n_good=8, favoured=(1, 4), n_test=400, n_pre=300):
    """Images ``e_y + 1.5 u + noise`` (every image, test and pre-training, shares the direction ``u``).

    Good prompts embed class c near ``e_c``; each biased prompt adds ``3 u`` to the text of one class c*, so
    it gives every image a high logit for c* (a high naive max-logit score) while telling c* apart poorly.
    """
    g = torch.Generator().manual_seed(seed)
    eye = torch.eye(dim, dtype=torch.float64)
    cls, u = eye[:n_classes], eye[n_classes]

    def images(n):
        y = torch.randint(0, n_classes, (n,), generator=g)
        return cls[y] + 1.5 * u + 0.25 * torch.randn(n, dim, generator=g, dtype=torch.float64), y

    x_test, y_test = images(n_test)
    x_pre, _ = images(n_pre)
    n_prompts = n_good + len(favoured)
    text = cls.expand(n_prompts, n_classes, dim) + 0.05 * torch.randn(
        n_prompts, n_classes, dim, generator=g, dtype=torch.float64
    )
    biased = list(range(n_good, n_prompts))
    for p, c_star in zip(biased, favoured, strict=False):
        text[p, c_star] += 3.0 * u
    return x_test, y_test, x_pre, text, biased


def test_debiasing_finds_the_planted_biased_prompts():
    x, y, x_pre, text, biased = _biased_world()
    good = [p for p in range(text.shape[0]) if p not in biased]
    z, z_pre = prompt_logits(x, text, 100.0), prompt_logits(x_pre, text, 100.0)

    naive = zpe_weights(zpe_scores(z, debias="none"))
    assert bool((naive[biased] > naive[good].median()).all())  # the naive max-logit score favours them

    w = zpe_weights(zpe_scores(z, z_pre, debias="both"))
    assert float(w[biased].max()) < float(w[good].min())  # ZPE ranks them below every good prompt
    for debias in ("pretrain", "test"):
        s = zpe_scores(z, z_pre, debias=debias)
        assert float(s[biased].max()) < float(s[good].min())

    def acc(weights):
        return float((ensemble_prompt_logits(z, weights).argmax(dim=1) == y).double().mean())

    assert acc(w) > acc(naive) + 0.1
    assert acc(w) > 0.95
    assert acc(w) >= acc(torch.ones(len(w), dtype=torch.float64)) - 0.01  # at least as good as the plain mean
    assert acc(zpe_select(zpe_scores(z, z_pre), tau=-1.0)) > acc(naive)


# ----------------------------------------------------------------------------------------------------------
# invariants
# ----------------------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    p=st.integers(1, 9),
    seed=st.integers(0, 10_000),
    spread=st.floats(0.01, 50.0),
    temperature=st.floats(0.01, 100.0),
    tau=st.floats(-5.0, 5.0),
)
def test_weights_are_on_the_simplex(p, seed, spread, temperature, tau):
    scores = _randn(p, seed=seed, scale=spread)
    for w in (zpe_weights(scores, temperature), zpe_select(scores, tau)):
        assert w.shape == (p,)
        assert bool((w >= 0).all())
        assert float(w.sum()) == pytest.approx(1.0, abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 12),
    m=st.integers(1, 12),
    p=st.integers(1, 5),
    c=st.integers(2, 5),
    seed=st.integers(0, 10_000),
    shift=st.floats(-100.0, 100.0),
)
def test_debiased_scores_ignore_a_per_prompt_class_offset(n, m, p, c, seed, shift):
    z, pre = _randn(n, p, c, seed=seed, scale=5.0), _randn(m, p, c, seed=seed + 1, scale=5.0)
    offset = shift * _randn(p, c, seed=seed + 2)  # the same constant for every image
    torch.testing.assert_close(zpe_scores(z + offset, debias="test"), zpe_scores(z, debias="test"), rtol=0, atol=1e-9)
    torch.testing.assert_close(
        zpe_scores(z + offset, pre + offset, "both"), zpe_scores(z, pre, "both"), rtol=0, atol=1e-9
    )


@settings(max_examples=30, deadline=None)
@given(p=st.integers(1, 9), seed=st.integers(0, 10_000), shift=st.floats(-1e3, 1e3), temperature=st.floats(0.1, 10.0))
def test_zpe_weights_ignore_a_constant_shift_of_the_scores(p, seed, shift, temperature):
    scores = _randn(p, seed=seed, scale=3.0)
    torch.testing.assert_close(
        zpe_weights(scores + shift, temperature), zpe_weights(scores, temperature), rtol=1e-9, atol=1e-12
    )


# ----------------------------------------------------------------------------------------------------------
# templates
# ----------------------------------------------------------------------------------------------------------


def test_templates():
    assert check_template("a photo of a {}.") == "a photo of a {}."
    assert fill_template("a photo of a {}.", "dog") == "a photo of a dog."
    # class names are inserted literally, never formatted
    assert fill_template("a photo of a {}.", "{}") == "a photo of a {}."
    assert fill_template("a photo of a {}.", "{0} {x}") == "a photo of a {0} {x}."
    assert fill_templates(["a {}.", "itap of a {}"], ("cat", "{0}")) == [
        ["a cat.", "a {0}."],
        ["itap of a cat", "itap of a {0}"],
    ]


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("a photo", r"exactly one '\{\}' placeholder .*found 0 in 'a photo'"),
        ("{} and {}", r"exactly one '\{\}' placeholder .*found 2 in"),
        ("a {0}", r"braces only as one literal '\{\}' placeholder \('\{0\}' or '\{x\}' fields are not"),
        ("a {x}", r"braces only as one literal '\{\}'.*never with str.format"),
        ("{} or {0}", r"braces only as one literal '\{\}'"),
        ("{", "braces only"),
        ("}", "braces only"),
        ("{{}}", "braces only"),
    ],
)
def test_bad_templates(template, match):
    with pytest.raises(ValueError, match="^template .*" + match):
        check_template(template)
    with pytest.raises(ValueError, match=r"^templates\[1\] .*" + match):
        fill_templates(["a {}", template], ["dog"])
    with pytest.raises(ValueError, match="^template .*" + match):
        fill_template(template, "dog")
    with pytest.raises(ValueError, match="^prompt .*" + match):
        check_template(template, name="prompt")


def test_bad_template_arguments():
    with pytest.raises(TypeError, match="template must be a str"):
        check_template(b"a {}")
    with pytest.raises(TypeError, match="template must be a str"):
        fill_template(None, "dog")
    with pytest.raises(TypeError, match="class_name must be a str"):
        fill_template("a {}", 3)
    with pytest.raises(ValueError, match="class_name must be a non-empty str"):
        fill_template("a {}", "")
    with pytest.raises(TypeError, match="templates must be a sequence"):
        fill_templates("a {}", ["dog"])
    with pytest.raises(TypeError, match="class_names must be a sequence"):
        fill_templates(["a {}"], "dog")
    with pytest.raises(ValueError, match="templates is an empty prompt pool"):
        fill_templates([], ["dog"])
    with pytest.raises(ValueError, match="class_names must hold"):
        fill_templates(["a {}"], [])
    with pytest.raises(TypeError, match=r"class_names\[1\] must be a str"):
        fill_templates(["a {}"], ["dog", 7])
    with pytest.raises(ValueError, match=r"class_names\[0\] must be a non-empty str"):
        fill_templates(["a {}"], [""])


# ----------------------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------------------

_Z = _randn(4, 3, 2, seed=10)
_X, _T = _randn(4, 5, seed=11), _randn(3, 2, 5, seed=12)
_NAN = _Z.clone()
_NAN[0, 0, 0] = float("nan")
_ZERO_ROW = _X.clone()
_ZERO_ROW[1] = 0.0

_BAD = [
    # prompt_logits
    (lambda: prompt_logits(_X[0], _T, 100.0), ValueError, r"image_embeddings must have shape \(N, D\)"),
    (lambda: prompt_logits(_X, _T[0], 100.0), ValueError, r"text_embeddings must have shape \(P, C, D\)"),
    (lambda: prompt_logits(_X, _T[:0], 100.0), ValueError, "text_embeddings must have shape"),
    (
        lambda: prompt_logits(_X[:, :4], _T, 100.0),
        ValueError,
        r"image_embeddings and text_embeddings .* shapes \(4, 4\) and \(3, 2, 5\)",
    ),
    (lambda: prompt_logits(_X, _T[:, :1], 100.0), ValueError, "text_embeddings needs C >= 2"),
    (lambda: prompt_logits(_X, _T, 0.0), ValueError, "logit_scale must be a finite number > 0"),
    (lambda: prompt_logits(_X, _T, "big"), TypeError, "logit_scale must be a number"),
    (lambda: prompt_logits(_X, _T, None), TypeError, "logit_scale must be a number"),
    (lambda: prompt_logits("x", _T, 100.0), TypeError, "image_embeddings must be"),
    (lambda: prompt_logits(_ZERO_ROW, _T, 100.0), ValueError, r"image_embeddings must have no all-zero .* 1 zero"),
    (lambda: prompt_logits(_X, _T * float("inf"), 100.0), ValueError, "text_embeddings must be finite"),
    # zpe_scores
    (lambda: zpe_scores(_Z[0]), ValueError, r"logits must have shape \(N, P, C\)"),
    (lambda: zpe_scores(_Z[:, :0], debias="none"), ValueError, "logits has an empty prompt pool"),
    (lambda: zpe_scores(_Z[:0], debias="none"), ValueError, "logits needs N >= 1"),
    (lambda: zpe_scores(_NAN, debias="test"), ValueError, "logits must be finite"),
    (lambda: zpe_scores(_Z), ValueError, "debias='both' needs pretrain_logits"),
    (lambda: zpe_scores(_Z, debias="pretrain"), ValueError, "debias='pretrain' needs pretrain_logits"),
    (
        lambda: zpe_scores(_Z, _Z[:, :2]),
        ValueError,
        r"logits .* and pretrain_logits .* same P and C, got shapes \(4, 3, 2\) and \(4, 2, 2\)",
    ),
    (lambda: zpe_scores(_Z, _NAN), ValueError, "pretrain_logits must be finite"),
    (
        lambda: zpe_scores(_Z, _Z, debias="mean"),
        ValueError,
        "debias must be one of 'both', 'pretrain', 'test', 'none'; got 'mean'",
    ),
    (lambda: zpe_scores({"a": 1}, debias="none"), TypeError, "logits must be"),
    # zpe_weights
    (lambda: zpe_weights(_Z[0, 0], 0.0), ValueError, "temperature must be a finite number > 0"),
    (lambda: zpe_weights(_Z[0, 0], -1.0), ValueError, "temperature"),
    (lambda: zpe_weights(_Z[0, 0], float("inf")), ValueError, "temperature"),
    (lambda: zpe_weights(_Z[0, 0], float("nan")), ValueError, "temperature"),
    (lambda: zpe_weights(_Z[0, 0], [1.0]), TypeError, "temperature must be a number"),
    (lambda: zpe_weights(_Z[0]), ValueError, r"scores must have shape \(P,\)"),
    (lambda: zpe_weights(_Z[0, 0, :0]), ValueError, "scores is an empty prompt pool"),
    (lambda: zpe_weights(_NAN[0, 0]), ValueError, "scores must be finite"),
    # zpe_select
    (lambda: zpe_select(_Z[0, 0], float("nan")), ValueError, "tau must be a finite number"),
    (lambda: zpe_select(_Z[0, 0], "high"), TypeError, "tau must be a number"),
    (lambda: zpe_select(_Z[0], 1.0), ValueError, r"scores must have shape \(P,\)"),
    (lambda: zpe_select([], 1.0), ValueError, "scores is an empty prompt pool"),
    # ensemble_prompt_logits
    (lambda: ensemble_prompt_logits(_Z, [0.5, -0.1, 0.6]), ValueError, "weights must be finite, non-negative"),
    (lambda: ensemble_prompt_logits(_Z, [0.0, 0.0, 0.0]), ValueError, r"weights .* sum > 0, got \[0.0, 0.0"),
    (lambda: ensemble_prompt_logits(_Z, [0.5, float("nan"), 0.6]), ValueError, "weights must be finite"),
    (
        lambda: ensemble_prompt_logits(_Z, [0.5, 0.5]),
        ValueError,
        r"weights must have shape \(3,\), one entry per "
        r"prompt, got shape \(2,\)",
    ),
    (lambda: ensemble_prompt_logits(_Z, ["a", "b", "c"]), TypeError, "weights must be a sequence of 3 real numbers"),
    (lambda: ensemble_prompt_logits(_Z, "abc"), TypeError, "weights must be a sequence or tensor"),
    (lambda: ensemble_prompt_logits(_Z[:, :0], []), ValueError, "logits has an empty prompt pool"),
    (lambda: ensemble_prompt_logits(_Z[0], [1.0]), ValueError, r"logits must have shape \(N, P, C\)"),
    # average_text_embeddings
    (lambda: average_text_embeddings(_T[0]), ValueError, r"text_embeddings must have shape \(P, C, D\)"),
    (lambda: average_text_embeddings(_T, [1.0, -1.0, 1.0]), ValueError, "weights must be finite, non-negative"),
    (lambda: average_text_embeddings(_T, [1.0]), ValueError, r"weights must have shape \(3,\)"),
    (
        lambda: average_text_embeddings(torch.stack([_T[0], -_T[0]])),
        ValueError,
        "text_embeddings: the weighted mean .* zero vector",
    ),
    (lambda: average_text_embeddings(_T * 0), ValueError, "text_embeddings must have no all-zero"),
    # zero_shot_logits
    (lambda: zero_shot_logits(_X, _T, 10.0), ValueError, r"class_embeddings must have shape \(C, D\)"),
    (
        lambda: zero_shot_logits(_X, _T[0, :, :4], 10.0),
        ValueError,
        r"image_embeddings .* and class_embeddings .* got shapes \(4, 5\) and \(2, 4\)",
    ),
    (lambda: zero_shot_logits(_X, _T[0, :1], 10.0), ValueError, "class_embeddings .* C >= 2"),
    (lambda: zero_shot_logits(_X, _T[0], -3.0), ValueError, "logit_scale"),
    (lambda: zero_shot_logits(_X[0], _T[0], 10.0), ValueError, r"image_embeddings must have shape \(N, D\)"),
]


@pytest.mark.parametrize(("call", "exc", "match"), _BAD, ids=[f"bad{i}" for i in range(len(_BAD))])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_public_names():
    assert DEBIAS_MODES == ("both", "pretrain", "test", "none")
    assert set(prompts.__all__) >= {
        "zpe_scores",
        "zpe_weights",
        "zpe_select",
        "prompt_logits",
        "ensemble_prompt_logits",
        "average_text_embeddings",
        "zero_shot_logits",
        "check_template",
        "fill_template",
        "fill_templates",
        "DEBIAS_MODES",
    }
    assert all(hasattr(prompts, name) for name in prompts.__all__)


# ----------------------------------------------------------------------------------------------------------
# devices
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu_and_stays_on_the_device():
    x, y, x_pre, text, _ = _biased_world(n_test=64, n_pre=32)
    dev = torch.device("cuda")
    z = prompt_logits(x.to(dev).float(), text.to(dev).float(), 100.0)
    z_pre = prompt_logits(x_pre.to(dev).float(), text.to(dev).float(), 100.0)
    assert z.device.type == "cuda"
    assert z.dtype == torch.float32
    scores = zpe_scores(z, z_pre)
    w, sel = zpe_weights(scores), zpe_select(scores, 0.5)
    ens = ensemble_prompt_logits(z, w)
    emb = average_text_embeddings(text.to(dev), w.double())
    zs = zero_shot_logits(x.to(dev), emb, 100.0)
    for t in (scores, w, sel, ens, emb, zs):
        assert t.device.type == "cuda"
    z_cpu = prompt_logits(x.float(), text.float(), 100.0)
    pre_cpu = prompt_logits(x_pre.float(), text.float(), 100.0)
    torch.testing.assert_close(scores.cpu(), zpe_scores(z_cpu, pre_cpu), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ens.cpu(), ensemble_prompt_logits(z_cpu, w.cpu()), rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(zpe_select(scores.cpu(), 0.5).numpy(), sel.cpu().numpy())
    with pytest.raises(ValueError, match="weights must be on the same device"):
        ensemble_prompt_logits(z, w.cpu())
    with pytest.raises(ValueError, match="pretrain_logits must be on the same device as logits"):
        zpe_scores(z, pre_cpu)
    with pytest.raises(ValueError, match="text_embeddings must be on the same device as image_embeddings"):
        prompt_logits(x.to(dev), text, 100.0)


@pytest.mark.parametrize("with_weights", [False, True])
def test_equal_average_logits_is_the_embedding_average_classifier(with_weights):
    g = torch.Generator().manual_seed(7)
    x, t = torch.randn(40, 6, generator=g, dtype=torch.float64), torch.randn(5, 3, 6, generator=g, dtype=torch.float64)
    w = torch.tensor([0.5, 0.0, 1.0, 2.0, 0.25], dtype=torch.float64) if with_weights else None
    want = zero_shot_logits(x, average_text_embeddings(t, w), 30.0)
    got = equal_average_logits(prompt_logits(x, t, 30.0), t, w)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="text_embeddings"):
        equal_average_logits(prompt_logits(x, t, 30.0), t[:, :2], w)


# ----------------------------------------------------------------------------------------------------------
# bad-input regressions
# ----------------------------------------------------------------------------------------------------------


def test_logit_scale_overflow_is_refused_by_name():
    x, t = _randn(4, 5, seed=1).float(), _randn(3, 2, 5, seed=2).float()
    with pytest.raises(ValueError, match="logit_scale"):
        prompt_logits(x, t, 1e308)
    with pytest.raises(ValueError, match="logit_scale"):
        zero_shot_logits(x, t[0], 1e308)
    assert torch.isfinite(prompt_logits(x.double(), t.double(), 1e308)).all()  # float64 holds it


def test_tensors_on_another_device_are_refused_by_name_not_moved():
    x, t = _randn(4, 5, seed=1), _randn(3, 2, 5, seed=2)
    z = prompt_logits(x, t, 10.0)
    with pytest.raises(ValueError, match="text_embeddings must be on the same device as image_embeddings"):
        prompt_logits(x, t.to("meta"), 10.0)
    with pytest.raises(ValueError, match="class_embeddings must be on the same device"):
        zero_shot_logits(x, t[0].to("meta"), 10.0)
    with pytest.raises(ValueError, match="pretrain_logits must be on the same device as logits"):
        zpe_scores(z, z.to("meta"))
    with pytest.raises(ValueError, match="text_embeddings must be on the same device as logits"):
        equal_average_logits(z, t.to("meta"))


@pytest.mark.parametrize("flag", ["no", None, 2, 0.5, []])
def test_validate_must_be_a_bool(flag):
    z, t = prompt_logits(_randn(4, 5, seed=1), _randn(3, 2, 5, seed=2), 10.0), _randn(3, 2, 5, seed=2)
    with pytest.raises(TypeError, match="validate must be True or False"):
        ensemble_prompt_logits(z, [1.0, 1.0, 1.0], validate=flag)
    with pytest.raises(TypeError, match="validate must be True or False"):
        equal_average_logits(z, t, validate=flag)


def test_overflowing_scores_and_temperatures():
    z = _randn(6, 3, 4, seed=3).double()
    with pytest.raises(ValueError, match="logits"):
        zpe_scores(z / z.abs().max() * 1e308, debias="test")
    w = zpe_weights(torch.tensor([0.5, 2.0, 2.0, -1.0]), temperature=1e-320)  # scores / T overflows
    assert w.tolist() == [0.0, 0.5, 0.5, 0.0]  # the limit: the best prompts, equally


class _TinyClip:
    """The interface ZeroShotData needs: images are already embeddings, words have fixed embeddings."""

    logit_scale = 10.0
    vocab = ("a", "photo", "of", "zero", "one")

    def encode_image(self, images):
        return torch.as_tensor(images, dtype=torch.float32)

    def unknown_words(self, text):
        return [w for w in text.split() if w not in self.vocab]

    def encode_text(self, texts):
        return torch.stack(
            [sum(torch.eye(5)[self.vocab.index(w)] for w in t.split() if w in self.vocab) for t in texts]
        )


def _zero_shot_data(**change):
    from types import SimpleNamespace

    from ensemble_lab.artefacts.zeroshot import ZeroShotData

    domain = SimpleNamespace(images=_randn(6, 5, seed=4), labels=torch.tensor([0, 1, 0, 1, 1, 0]))
    kwargs = dict(model=_TinyClip(), domains={"clean": domain}, pretrain_images=_randn(4, 5, seed=5))
    return ZeroShotData(**{**kwargs, "class_names": ["zero", "one"], "progress": False, **change})


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        (dict(class_names="one"), TypeError, "class_names must be a list of strings, got the single string 'one'"),
        (dict(class_names=(c for c in ["zero", "one"])), TypeError, "class_names must be a list or tuple"),
        (dict(class_names=["zero", "qqq"]), ValueError, r"class_names\[1\] = 'qqq' has words the model does not know"),
        (dict(model=None), TypeError, "model must be a text-image model"),
        (dict(domains=["clean"]), TypeError, "domains must be a dict"),
        (dict(domains={"clean": "digits"}), TypeError, r"domains\['clean'\] must be a dataset"),
        (dict(pretrain_images=None), TypeError, "pretrain_images cannot be encoded"),
        (dict(progress="no"), TypeError, "progress must be True or False"),
    ],
)
def test_zero_shot_data_refuses_bad_input_by_name(change, exc, match):
    with pytest.raises(exc, match=match):
        _zero_shot_data(**change)


def test_zero_shot_data_templates_and_domain_are_checked():
    data = _zero_shot_data()
    assert data.class_names == ("zero", "one")
    assert data.logits("clean", ("a photo of {}",)).shape == (6, 1, 2)
    with pytest.raises(TypeError, match="templates must be a list or tuple"):
        data.text_embeddings(t for t in ["a photo of {}"])
    with pytest.raises(TypeError, match="templates must be a list or tuple"):
        data.pretrain_logits(None)
    with pytest.raises(ValueError, match=r"templates\[1\]"):
        data.text_embeddings(["a photo of {}", "a photo"])
    with pytest.raises(TypeError, match="domain must be a str"):
        data.logits(["clean"], ["a photo of {}"])
