"""The exact decompositions of ensemble_lab.decompositions: ensemble loss = mean member loss - diversity.

Oracles: the package's own metrics (``metrics.brier``/``metrics.nll`` of each member and of an ensemble built here
with ``einsum``/``combine``), plain-python loops for the per-sample diversity, the paper's rules (Wood et al. 2023:
``KL(pbar || p_k)`` plus the label-dependent term; ``KL(g || p_k)`` for the geometric centroid) and numbers from the
authors' code (EchoStatements/Decompose at 8903ca8, ``CrossEntropy`` and ``MultivariateSquaredLoss`` run on the
fixed input below, equal weights).  Property tests use hypothesis.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ensemble_lab import metrics
from ensemble_lab.combine import combine
from ensemble_lab.decompositions import COMBINERS, Decomposition, brier_decomposition, nll_decomposition

TINY = torch.finfo(torch.float64).tiny


def _members(k, n, c, seed, scale=2.0, zeros=False, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(k, n, c, generator=g, dtype=torch.float64) * scale, dim=-1)
    if zeros:  # exact zeros, the row maximum kept
        drop = (torch.rand(k, n, c, generator=g) < 0.4) & (p < p.amax(-1, keepdim=True))
        p = torch.where(drop, 0.0, p)
        p = p / p.sum(-1, keepdim=True)
    labels = torch.randint(0, c, (n,), generator=g)
    return p.to(dtype), labels


@st.composite
def _ensembles(draw):
    k, n, c = draw(st.integers(1, 6)), draw(st.integers(1, 50)), draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    p, y = _members(k, n, c, seed, scale=draw(st.sampled_from([0.3, 2.0, 8.0])), zeros=draw(st.booleans()))
    weights = None
    if draw(st.booleans()):
        weights = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 7.0]), min_size=k, max_size=k))
        if sum(weights) == 0:
            weights[0] = 1.0
    return p, y, weights


def _normalised(weights, k):
    if weights is None:
        return torch.full((k,), 1.0 / k, dtype=torch.float64)
    w = torch.tensor(weights, dtype=torch.float64)
    return w / w.sum()


def _close(a, b, tol=1e-12):
    return abs(a - b) <= tol * (1 + abs(a) + abs(b))


def _check_identity(d: Decomposition, p, y, w, ensemble):
    """The three numbers against independent computations, and the identity between them."""
    loss = metrics.brier if d.loss == "brier" else metrics.nll
    member = [loss(p[k], y) for k in range(p.shape[0])]
    assert d.per_member.tolist() == member  # exactly metrics.<loss> of each member
    assert _close(d.mean_member_loss, sum(wk * m for wk, m in zip(w.tolist(), member, strict=True)))
    assert _close(d.ensemble_loss, loss(ensemble, y))
    assert _close(d.ensemble_loss, d.mean_member_loss - d.diversity)
    assert abs(d.residual) <= 1e-12 * (1 + abs(d.mean_member_loss))
    assert _close(d.diversity, float(d.per_sample_diversity.mean()))
    assert torch.allclose(d.weights, w, rtol=0, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(_ensembles())
def test_brier_identity_on_random_ensembles(data):
    p, y, weights = data
    w = _normalised(weights, p.shape[0])
    d = brier_decomposition(p, y, weights)
    _check_identity(d, p, y, w, torch.einsum("k,knc->nc", w, p))
    assert d.loss == "brier"
    assert d.combiner == "arithmetic"
    assert bool((d.per_sample_diversity >= 0).all())  # a sum of squares


@settings(max_examples=60, deadline=None)
@given(_ensembles(), st.sampled_from(COMBINERS))
def test_nll_identity_on_random_ensembles(data, combiner):
    p, y, weights = data
    w = _normalised(weights, p.shape[0])
    d = nll_decomposition(p, y, weights, combiner=combiner)
    if combiner == "arithmetic":
        ensemble = torch.einsum("k,knc->nc", w, p)
    else:  # the package's geometric rule on the floored log-probabilities
        ensemble = combine(torch.log(p.clamp(min=TINY)), w, rule="geo")
    _check_identity(d, p, y, w, ensemble)
    assert d.loss == "nll"
    assert d.combiner == combiner
    assert float(d.per_sample_diversity.min()) >= -1e-13  # Jensen / AM-GM, up to rounding
    assert d.diversity >= -1e-13


def _loop_reference(p, y, w, what):
    """Per-sample diversity with plain python loops and math.log."""
    k, n, c = p.shape
    pl, yl, wl = p.tolist(), y.tolist(), w.tolist()
    out = []
    for i in range(n):
        bar = [sum(wl[j] * pl[j][i][m] for j in range(k)) for m in range(c)]
        if what == "brier":
            out.append(sum(wl[j] * sum((pl[j][i][m] - bar[m]) ** 2 for m in range(c)) for j in range(k)))
        elif what == "arithmetic":
            lb = math.log(max(bar[yl[i]], TINY))
            out.append(sum(wl[j] * (lb - math.log(max(pl[j][i][yl[i]], TINY))) for j in range(k)))
        else:
            z = sum(math.exp(sum(wl[j] * math.log(max(pl[j][i][m], TINY)) for j in range(k))) for m in range(c))
            out.append(-math.log(z))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("what", ["brier", "arithmetic", "geometric"])
@pytest.mark.parametrize(("k", "n", "c", "zeros", "weights"), [(4, 30, 5, False, None), (3, 20, 3, True, [2, 0, 1])])
def test_per_sample_diversity_matches_a_loop(what, k, n, c, zeros, weights):
    p, y = _members(k, n, c, seed=11, zeros=zeros)
    w = _normalised(weights, k)
    d = brier_decomposition(p, y, weights) if what == "brier" else nll_decomposition(p, y, weights, combiner=what)
    ref = _loop_reference(p, y, w, what)
    assert d.per_sample_diversity.shape == (n,)
    assert torch.allclose(d.per_sample_diversity, ref, rtol=1e-12, atol=1e-12)


def test_the_papers_rules():
    """Wood et al. (2023): with the arithmetic mean (a non-centroid combiner) our d_i is their diversity-like term
    sum_k w_k KL(pbar || p_k) plus the label-dependent term <log pbar - sum_k w_k log p_k, e_y - pbar>; with the
    normalised geometric mean g (the cross-entropy's centroid) it is sum_k w_k KL(g || p_k)."""
    p, y = _members(5, 40, 4, seed=3)
    w = _normalised([1, 2, 0.5, 3, 1], 5)
    e_y = torch.nn.functional.one_hot(y, 4).double()
    bar = torch.einsum("k,knc->nc", w, p)
    kl = lambda a, b: (a * (a.log() - b.log())).sum(-1)  # noqa: E731
    div_like = sum(w[k] * kl(bar, p[k]) for k in range(5))
    mean_log = torch.einsum("k,knc->nc", w, p.log())
    target_term = ((bar.log() - mean_log) * (e_y - bar)).sum(-1)
    d = nll_decomposition(p, y, [1, 2, 0.5, 3, 1])
    assert torch.allclose(d.per_sample_diversity, div_like + target_term, rtol=1e-12, atol=1e-13)
    assert float(target_term.min()) < 0 < float(target_term.max())  # the label-dependent part has either sign
    g = torch.softmax(mean_log, dim=-1)
    geo = nll_decomposition(p, y, [1, 2, 0.5, 3, 1], combiner="geometric")
    assert torch.allclose(geo.per_sample_diversity, sum(w[k] * kl(g, p[k]) for k in range(5)), rtol=1e-12, atol=1e-13)


# the authors' code (EchoStatements/Decompose, commit 8903ca8) on this input, one trial, equal weights:
# CrossEntropy: expected_ensemble_loss, expected_member_loss, diversity (geometric centroid); with the arithmetic
# mean: non_centroid_expected_ensemble_risk and diversity_like + target_dependent_term;
# MultivariateSquaredLoss against the one-hot labels: expected_ensemble_loss, expected_member_loss, diversity
_WOOD_P = [
    [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.25, 0.5, 0.25], [0.05, 0.05, 0.9]],
    [[0.4, 0.4, 0.2], [0.2, 0.2, 0.6], [0.6, 0.3, 0.1], [0.3, 0.3, 0.4]],
    [[0.5, 0.1, 0.4], [0.02, 0.9, 0.08], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8]],
]
_WOOD_Y = [0, 2, 1, 2]
_WOOD = {
    ("nll", "geometric"): (0.683036593210302, 0.8216150280225899, 0.13857843481228788),
    ("nll", "arithmetic"): (0.7100844807403688, 0.8216150280225899, 0.11153054728222102),
    ("brier", "arithmetic"): (0.4075222222222222, 0.4889, 0.08137777777777778),
}


@pytest.mark.parametrize(("loss", "combiner"), list(_WOOD))
def test_numbers_from_the_authors_code(loss, combiner):
    p, y = torch.tensor(_WOOD_P, dtype=torch.float64), torch.tensor(_WOOD_Y)
    d = brier_decomposition(p, y) if loss == "brier" else nll_decomposition(p, y, combiner=combiner)
    ensemble, member, diversity = _WOOD[(loss, combiner)]
    assert d.ensemble_loss == pytest.approx(ensemble, abs=1e-14)
    assert d.mean_member_loss == pytest.approx(member, abs=1e-14)
    assert d.diversity == pytest.approx(diversity, abs=1e-14)


def test_the_label_averaged_nll_diversity_is_the_reverse_kl_not_the_mutual_information():
    p, y = _members(3, 25, 4, seed=5, scale=3.0)
    bar = p.mean(0)
    averaged = torch.zeros(25, dtype=torch.float64)
    for c in range(4):  # E_{y ~ pbar} d_i(y)
        d_c = nll_decomposition(p, torch.full((25,), c))
        averaged += bar[:, c] * d_c.per_sample_diversity
    reverse_kl = (bar * (bar.log() - p.log())).sum(-1).mean(0)  # mean_k KL(pbar || p_k)
    assert torch.allclose(averaged, reverse_kl, rtol=1e-12, atol=1e-14)
    mi = metrics.mutual_information(p)  # mean_k KL(p_k || pbar)
    assert abs(float(averaged.mean()) - mi) > 1e-3


@pytest.mark.parametrize("fn", ["brier", "arithmetic", "geometric"])
def test_identical_members_have_no_diversity(fn):
    one, y = _members(1, 30, 5, seed=2)
    p = one.expand(4, 30, 5).clone()
    d = brier_decomposition(p, y) if fn == "brier" else nll_decomposition(p, y, combiner=fn)
    assert float(d.per_sample_diversity.abs().max()) <= 1e-15
    single = brier_decomposition(one, y) if fn == "brier" else nll_decomposition(one, y, combiner=fn)
    assert d.ensemble_loss == pytest.approx(single.ensemble_loss, abs=1e-14)
    loss = metrics.brier if fn == "brier" else metrics.nll
    if fn == "geometric":  # the geometric mean renormalises: K = 1 gives -log(sum_c p_c), 0 up to rounding
        assert abs(single.diversity) <= 1e-15
        assert single.ensemble_loss == pytest.approx(loss(one[0], y), abs=1e-14)
        return
    # K = 1: exactly no diversity and the ensemble is the member
    assert single.diversity == 0.0
    assert bool((single.per_sample_diversity == 0).all())
    assert single.ensemble_loss == single.mean_member_loss == single.per_member.item() == loss(one[0], y)


def test_integer_weights_are_repeated_members():
    """Caruana's counts: weights (2, 0, 1) give the ensemble of members (0, 0, 2) with equal weights."""
    p, y = _members(3, 40, 4, seed=8)
    for fn in (brier_decomposition, nll_decomposition):
        a, b = fn(p, y, weights=[2, 0, 1]), fn(p[[0, 0, 2]], y)
        for field in ("mean_member_loss", "diversity", "ensemble_loss"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-14)


def test_float32_input_is_computed_in_float64_and_zero_probabilities_use_the_nll_floor():
    p, y = _members(3, 20, 4, seed=4)
    p[:, 0] = torch.nn.functional.one_hot((y[0] + 1) % 4, 4).double()  # every member puts 0 on sample 0's label
    p[0, 1] = torch.nn.functional.one_hot((y[1] + 1) % 4, 4).double()  # one member does on sample 1
    d32 = nll_decomposition(p.float(), y)
    assert d32.per_member.dtype == torch.float64
    assert d32.per_sample_diversity.dtype == torch.float64
    assert d32.ensemble_loss == pytest.approx(metrics.nll(p.float().double().mean(0), y), rel=1e-14)
    assert abs(d32.residual) <= 1e-12
    d = nll_decomposition(p, y)
    assert d.per_sample_diversity[0] == 0  # all floored alike: no diversity
    assert d.per_sample_diversity[1] > 1  # one member's 708.4 nats, the ensemble's finite loss
    assert d.ensemble_loss == pytest.approx(metrics.nll(p.mean(0), y), rel=1e-14)
    assert d.ensemble_loss > -math.log(TINY) / 20  # sample 0 costs 708.4 nats, as in metrics.nll
    geo = nll_decomposition(p, y, combiner="geometric")  # zeros floored before the log: finite, exact
    assert math.isfinite(geo.diversity)
    assert abs(geo.residual) <= 1e-12 * geo.mean_member_loss


def test_the_result_is_a_frozen_dataclass_of_floats_and_tensors():
    p, y = _members(2, 6, 3, seed=0)
    d = nll_decomposition(p.numpy(), y.numpy(), weights=np.array([1.0, 3.0]))
    assert all(type(getattr(d, f)) is float for f in ("mean_member_loss", "diversity", "ensemble_loss"))
    assert d.per_member.shape == (2,)
    assert d.per_sample_diversity.shape == (6,)
    assert d.weights.tolist() == [0.25, 0.75]
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.diversity = 0.0
    grad = p.clone().requires_grad_(True)
    assert brier_decomposition(grad, y).per_sample_diversity.requires_grad is False


_P, _Y = _members(3, 8, 4, seed=1)


@pytest.mark.parametrize("fn", [brier_decomposition, nll_decomposition])
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(member_probs=_P[0]), ValueError, r"member_probs must have shape \(K, N, C\)"),
        (dict(member_probs=_P[..., :1] / _P[..., :1]), ValueError, r"member_probs must have shape \(K, N, C\)"),
        (dict(member_probs=_P[:, :0]), ValueError, r"member_probs must have shape"),
        (dict(member_probs=_P * 0.4), ValueError, "member_probs rows must sum to 1"),
        (dict(member_probs=torch.log(_P)), ValueError, r"member_probs must lie in \[0, 1\]"),
        (dict(member_probs=torch.where(_P > 0.5, float("nan"), _P)), ValueError, "member_probs must be finite"),
        (dict(member_probs="abc"), TypeError, "member_probs"),
        (dict(labels=torch.full((8,), 4)), ValueError, r"labels must lie in \[0, 3\]"),
        (dict(labels=torch.full((8,), -1)), ValueError, r"labels must lie in \[0, 3\]"),
        (dict(labels=_Y[:-1]), ValueError, r"labels must have shape \(8,\)"),
        (dict(labels=_Y.double() + 0.5), ValueError, "labels must be integer class indices"),
        (dict(labels=_Y.to("meta")), ValueError, "labels must be on the same device"),
        (dict(weights=[1.0, -0.5, 1.0]), ValueError, "weights must be finite, non-negative and sum > 0"),
        (dict(weights=[0.0, 0.0, 0.0]), ValueError, "weights must be finite, non-negative and sum > 0"),
        (dict(weights=[1.0, 1.0]), ValueError, r"weights must have shape \(3,\), one entry per member"),
        (dict(weights=[1.0, float("nan"), 1.0]), ValueError, "weights must be finite"),
        (dict(weights="abc"), TypeError, "weights"),
    ],
)
def test_bad_input_names_the_argument(fn, kwargs, error, match):
    args = dict(member_probs=_P, labels=_Y, weights=None) | kwargs
    with pytest.raises(error, match=match):
        fn(**args)


@pytest.mark.parametrize("combiner", ["geo", "Arithmetic", None, 1])
def test_bad_combiner(combiner):
    with pytest.raises(ValueError, match="combiner must be one of 'arithmetic', 'geometric'"):
        nll_decomposition(_P, _Y, combiner=combiner)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_numbers_match_cpu_and_stay_on_the_device():
    p, y = _members(4, 200, 5, seed=6, zeros=True)
    for fn, kw in ((brier_decomposition, {}), (nll_decomposition, {}), (nll_decomposition, {"combiner": "geometric"})):
        a, b = fn(p, y, [1, 2, 3, 4], **kw), fn(p.cuda(), y.cuda(), torch.tensor([1.0, 2, 3, 4]).cuda(), **kw)
        assert b.per_sample_diversity.device.type == "cuda"
        assert b.per_member.device.type == "cuda"
        for field in ("mean_member_loss", "diversity", "ensemble_loss"):
            assert getattr(b, field) == pytest.approx(getattr(a, field), rel=1e-12, abs=1e-12)
