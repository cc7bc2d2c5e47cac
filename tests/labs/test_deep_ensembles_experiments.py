"""Notebook 01's experiments: the fast cluster bootstrap against ``stats.paired_bootstrap`` on the same draws and
against brute force, the identities the notebook teaches, and each experiment against the routines it wires."""

import functools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from ensemble_lab import metrics, stats
from ensemble_lab.combine import best_member, combine
from ensemble_lab.labs.deep_ensembles import experiments as ex
from ensemble_lab.labs.deep_ensembles import figures
from ensemble_lab.plots import StaticFigure
from ensemble_lab.selective import ood_auroc

KINDS = ("noise", "blur")


def clustered_predictions(k=4, n=240, c=5, seed=0):
    """Members of graded quality; images come in sources of 3, shifted splits are noisier copies of ``test``."""
    g = torch.Generator().manual_seed(seed)
    logits, labels, sources = {}, {}, {}
    strength = torch.linspace(0.8, 2.5, k).view(k, 1, 1)

    def draw(y, noise, shared):
        own = torch.randn(k, y.shape[0], c, generator=g)
        return strength * torch.nn.functional.one_hot(y, c).float() + noise * (0.6 * shared + 0.8 * own)

    for split in ("val", "test"):
        src = torch.arange(n) // 3 + (10_000 if split == "val" else 0)  # ids need not start at 0
        y = torch.randint(0, c, (n // 3,), generator=g).repeat_interleave(3)
        shared = torch.randn(1, n // 3, c, generator=g).repeat_interleave(3, dim=1)  # sources make images alike
        logits[split], labels[split], sources[split] = draw(y, 1.0, shared), y, src
        if split == "test":
            test_shared = shared
    for kind in KINDS:
        for sev in (1, 2, 3):
            name = f"{kind}-{sev}"
            logits[name] = draw(labels["test"], 1.0 + 0.5 * sev, test_shared)
            labels[name], sources[name] = labels["test"], sources["test"]
    return SimpleNamespace(logits=logits, labels=labels, sources=sources, config={"synthetic": True})


@pytest.fixture(scope="module")
def runs():
    return {s: clustered_predictions(seed=s) for s in (0, 1, 2)}


@pytest.fixture(scope="module")
def test_split():
    p = clustered_predictions()
    return p.logits["test"], p.labels["test"], p.sources["test"]


def _avg_member(fn):
    """A metric ``(pred, labels)`` that is ``fn`` for ``(N, C)`` and the members' mean of ``fn`` for ``(N, K, C)``:
    the average member, in the ``(N, ...)`` layout ``paired_bootstrap`` resamples."""

    def metric(pred, labels, validate=True):
        if pred.ndim == 2:
            return fn(pred, labels, validate=False)
        return sum(fn(pred[:, j], labels, validate=False) for j in range(pred.shape[1])) / pred.shape[1]

    return metric


REFERENCE = {
    "accuracy": metrics.accuracy,
    "nll": metrics.nll,
    "brier": metrics.brier,
    "ece": functools.partial(metrics.ece, n_bins=15),
}


def _same(a: stats.PairedDifference, b: stats.PairedDifference, tol=1e-9):
    assert a.difference == pytest.approx(b.difference, abs=tol)
    assert a.low == pytest.approx(b.low, abs=tol)
    assert a.high == pytest.approx(b.high, abs=tol)
    assert (a.resolved, a.n_units, a.n_resamples, a.level) == (b.resolved, b.n_units, b.n_resamples, b.level)


# -- the Resampler against stats.paired_bootstrap (same draws) ------------------------------------------------


@pytest.mark.parametrize("metric", ex.METRICS)
def test_compare_equals_paired_bootstrap_on_the_same_draws(metric, test_split):
    z, y, src = test_split
    ens, members = combine(z), torch.softmax(z, dim=-1)
    r = ex.Resampler(src, n_resamples=60, seed=3)
    ref = REFERENCE[metric]
    # metrics.brier sums p^2 from float32 norms (~1e-8 off on a resample); the Resampler sums in float64
    tol = 1e-7 if metric == "brier" else 1e-9
    got = r.compare(metric, ens, members[0], y)
    want = stats.paired_bootstrap(ref, ens, members[0], y, clusters=src, n_resamples=60, seed=3)
    _same(got, want, tol)
    # the average member: (K, N, C) here, (N, K, C) for paired_bootstrap
    got = r.compare(metric, ens, members, y)
    want = stats.paired_bootstrap(
        _avg_member(ref), ens, members.permute(1, 0, 2).contiguous(), y, clusters=src, n_resamples=60, seed=3
    )
    _same(got, want, tol)


def test_one_sample_per_cluster_is_the_plain_paired_bootstrap(test_split):
    z, y, _ = test_split
    r = ex.Resampler(torch.arange(y.shape[0]), n_resamples=100)
    got = r.compare("nll", combine(z), combine(z[:1]), y)
    want = stats.paired_bootstrap(metrics.nll, combine(z), combine(z[:1]), y, n_resamples=100)
    _same(got, want)
    assert got.n_units == y.shape[0]


def test_compare_values_is_the_bootstrap_of_a_mean(test_split):
    _, y, src = test_split
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(y.shape[0], generator=g, dtype=torch.float64), torch.rand(y.shape[0], generator=g)
    got = ex.Resampler(src, n_resamples=60).compare_values(a, b)
    want = stats.paired_bootstrap(
        lambda v, _y: float(v.double().mean()), a, b.double(), torch.zeros_like(y), clusters=src, n_resamples=60
    )
    _same(got, want)


@pytest.mark.parametrize("ties", [False, True])
def test_compare_auroc_equals_paired_bootstrap_on_pooled_samples(ties, test_split):
    z, _, src = test_split
    z_out = clustered_predictions().logits["noise-3"]
    s_in, s_out = ex.ood_scores(z), ex.ood_scores(z_out)
    a_in, a_out, b_in, b_out = s_in["entropy"], s_out["entropy"], s_in["max probability"], s_out["max probability"]
    if ties:  # coarse scores: many ties within and across the two sets
        a_in, a_out, b_in, b_out = (torch.round(v * 8) / 8 for v in (a_in, a_out, b_in, b_out))
    got = ex.Resampler(src, n_resamples=120, seed=5).compare_auroc(a_in, a_out, b_in, b_out, out_clusters=src)
    flag = torch.cat([torch.zeros_like(src), torch.ones_like(src)])

    def auroc(s, is_out):
        return ood_auroc(s[is_out == 0], s[is_out == 1])

    want = stats.paired_bootstrap(
        auroc,
        torch.cat([a_in, a_out]),
        torch.cat([b_in, b_out]),
        flag,
        clusters=torch.cat([src, src]),
        n_resamples=120,
        seed=5,
    )
    _same(got, want)


def test_auroc_draws_against_brute_force_weighted_pairs(test_split):
    """Each resampled AUROC is the pair count with every sample weighted by its cluster's draw count."""
    z, _, src = test_split
    r = ex.Resampler(src, n_resamples=20, seed=2)
    s_in = torch.round(ex.ood_scores(z)["entropy"] * 20) / 20
    out_idx = torch.arange(0, src.shape[0], 2)  # a smaller OOD set, of some of the clusters
    s_out = torch.round(ex.ood_scores(clustered_predictions().logits["blur-3"])["entropy"][out_idx] * 20) / 20
    full, draws = r.auroc_draws(s_in, s_out, out_clusters=src[out_idx])
    assert full == pytest.approx(ood_auroc(s_in, s_out))
    for row in range(5):
        w_in = r.counts[row, r.ids].numpy()
        w_out = r.counts[row, r.ids[out_idx]].numpy()
        si, so = s_in.numpy()[:, None], s_out.numpy()[None, :]
        h = (si > so) + 0.5 * (si == so)
        want = (w_in[:, None] * w_out[None, :] * h).sum() / (w_in.sum() * w_out.sum())
        assert float(draws[row]) == pytest.approx(want, abs=1e-12)


def test_the_cluster_interval_is_wider_than_the_naive_one(test_split):
    """Images of one source share a component, so resampling whole sources widens the interval."""
    z, y, src = test_split
    a, b = combine(z), combine(z[:1])
    clustered = ex.Resampler(src, n_resamples=400).compare("nll", a, b, y)
    naive = ex.Resampler(torch.arange(y.shape[0]), n_resamples=400).compare("nll", a, b, y)
    assert clustered.high - clustered.low > naive.high - naive.low


def test_resampler_refuses_bad_input(test_split):
    z, y, src = test_split
    with pytest.raises(ValueError, match="clusters must hold integer group ids"):
        ex.Resampler(src.double())
    with pytest.raises(ValueError, match=r"clusters must have shape \(N,\)"):
        ex.Resampler(src.view(-1, 3))
    with pytest.raises(ValueError, match="n_resamples"):
        ex.Resampler(src, n_resamples=1)
    with pytest.raises(ValueError, match="level"):
        ex.Resampler(src, level=1.0)
    r = ex.Resampler(src, n_resamples=10)
    with pytest.raises(ValueError, match="metric must be one of"):
        r.compare("auroc", combine(z), combine(z), y)
    with pytest.raises(ValueError, match="pred_b must hold the 240 samples"):
        r.compare("nll", combine(z), combine(z)[:10], y)
    with pytest.raises(ValueError, match="pred_a must lie in"):
        r.compare("nll", z[0], combine(z), y)
    with pytest.raises(ValueError, match="labels"):
        r.compare("nll", combine(z), combine(z), y[:5])
    s = ex.ood_scores(z)["entropy"]
    with pytest.raises(ValueError, match="out_clusters must name clusters of the in-distribution set"):
        r.compare_auroc(s, s, s, s, out_clusters=src + 5000)
    with pytest.raises(ValueError, match="out_clusters must be given"):
        r.compare_auroc(s, s[:10], s, s[:10])
    with pytest.raises(ValueError, match="resampled must have shape"):
        r.interval(0.0, torch.zeros(3))


# -- the identities of experiment 4 ----------------------------------------------------------------------------


def test_geo_is_the_logit_average_for_any_weights_and_temperatures():
    g = torch.Generator().manual_seed(0)
    z = 3 * torch.randn(5, 50, 7, generator=g, dtype=torch.float64)
    for _ in range(5):
        w = torch.rand(5, generator=g, dtype=torch.float64)
        t = 0.2 + 5 * torch.rand(5, generator=g, dtype=torch.float64)
        assert ex.geo_minus_logit(z, w, t) < 1e-12
    # but not against the logit average of the UNscaled logits, when the temperatures differ
    zt = z / t.view(-1, 1, 1)
    assert float((combine(zt, w, "geo") - combine(z, w, "logit")).abs().max()) > 1e-2
    with pytest.raises(ValueError, match="temperatures must be > 0"):
        ex.geo_minus_logit(z, temperatures=[1.0, 1.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"temperatures must have shape \(5,\)"):
        ex.geo_minus_logit(z, temperatures=[1.0, 2.0])


def test_geometric_pool_matches_combine_geo_and_a_loop():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 20, 4, generator=g, dtype=torch.float64)
    p = torch.softmax(z, dim=-1)
    w = torch.tensor([0.5, 0.2, 0.3], dtype=torch.float64)
    torch.testing.assert_close(ex.geometric_pool(p, w), combine(z, w, rule="geo"))
    # an obviously-correct reference: the weighted product, row by row, renormalised
    for i in range(3):
        prod = np.prod([p[k, i].numpy() ** float(w[k]) for k in range(3)], axis=0)
        np.testing.assert_allclose(ex.geometric_pool(p, w)[i].numpy(), prod / prod.sum(), rtol=1e-12)
    zero = p.clone()
    zero[0, 0] = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)  # member 0 rules out classes 0, 2, 3
    out = ex.geometric_pool(zero)
    assert out[0, 1] == pytest.approx(1.0)
    assert float(out[0, [0, 2, 3]].max()) < 1e-100
    dead = zero.clone()
    dead[1, 0] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)  # member 1 rules out class 1
    with pytest.raises(ValueError, match="1 row\\(s\\) give every class probability 0"):
        ex.geometric_pool(dead)


def test_histogram_binning_breaks_the_identity():
    p = clustered_predictions(n=600)
    q = ex.binned_member_probs(p.logits["val"], p.labels["val"], p.logits["test"], n_bins=8)
    assert q.shape == p.logits["test"].shape
    torch.testing.assert_close(q.sum(-1), torch.ones(q.shape[:2], dtype=q.dtype))
    assert bool((q == 0).any())  # bins without a positive: exact zeros
    out = ex.binned_rules(p, n_bins=8, n_resamples=50)
    assert out.raw_gap < 1e-12
    assert out.binned_gap > 0.05
    torch.testing.assert_close(out.geo_binned, ex.geometric_pool(q))
    assert set(out.differences) == {"accuracy", "nll", "ece"}
    want = metrics.nll(out.geo_binned, p.labels["test"]) - metrics.nll(out.logit_raw, p.labels["test"])
    assert out.differences["nll"].difference == pytest.approx(want)


# -- disagreement and OOD scores -------------------------------------------------------------------------------


def test_per_sample_mutual_information_and_ood_scores():
    z = clustered_predictions().logits["noise-3"]
    mp = torch.softmax(z.double(), dim=-1)
    mi = ex.per_sample_mutual_information(mp)
    assert float(mi.mean()) == pytest.approx(metrics.mutual_information(mp), abs=1e-12)
    scores = ex.ood_scores(z)
    assert set(scores) == set(ex.OOD_SCORES)
    torch.testing.assert_close(scores["mutual information"], -mi)
    torch.testing.assert_close(scores["entropy"], -metrics.entropy(mp.mean(0)))
    torch.testing.assert_close(scores["max probability"], mp.mean(0).max(-1).values)
    same = ex.ood_scores(z[:1].expand(3, -1, -1))  # identical members never disagree
    assert float(same["mutual information"].abs().max()) < 1e-12


# -- the experiments against the routines they wire -------------------------------------------------------------


def test_ensemble_vs_members_values_and_differences(runs):
    cmp, values = ex.ensemble_vs_members(runs, n_resamples=50)
    assert cmp.seeds == (0, 1, 2)
    assert set(cmp.keys) == {(ref, m) for ref in ("best member", "average member") for m in ex.METRICS}
    for s, p in runs.items():
        z, y = p.logits["test"], p.labels["test"]
        best = best_member(p.logits["val"], p.labels["val"])
        member = torch.softmax(z, -1)
        assert values[s]["ensemble"]["nll"] == pytest.approx(metrics.nll(combine(z), y))
        assert values[s]["best member"]["accuracy"] == pytest.approx(metrics.accuracy(member[best], y))
        avg = np.mean([metrics.ece(m, y) for m in member])
        assert values[s]["average member"]["ece"] == pytest.approx(avg)
        d = cmp.results[s]["average member", "brier"].difference
        assert d == pytest.approx(values[s]["ensemble"]["brier"] - values[s]["average member"]["brier"])
    summary = cmp.summary(("best member", "nll"))
    assert summary.values == tuple(cmp.results[s]["best member", "nll"].difference for s in (0, 1, 2))
    line = cmp.line(("best member", "accuracy"), "acc", scale=100, digits=1, unit=" points")
    assert line.startswith("acc: ")
    assert "over 3 seeds" in line
    assert "seed 2 " in line
    assert line.endswith(f"resolved in {cmp.resolved(('best member', 'accuracy'))} of 3")
    table = ex.metric_table(values)
    assert len(table) == 4
    assert "average member" in table[3]


def test_size_curves_and_comparisons(runs):
    splits = ["test", "noise-3"]
    curves = ex.size_curves(runs, splits, metric_names=("nll", "ece", "confidence"))
    assert curves.sizes == (1, 2, 3, 4)
    assert curves.values["nll"].shape == (3, 2, 4)
    for i, p in enumerate(runs.values()):
        z, y = p.logits["noise-3"], p.labels["noise-3"]
        assert float(curves.values["nll"][i, 1, -1]) == pytest.approx(metrics.nll(combine(z), y))
        assert float(curves.values["ece"][i, 1, 0]) == pytest.approx(metrics.ece(torch.softmax(z[0], -1), y))
        conf = float(combine(z[:2]).max(-1).values.double().mean())
        assert float(curves.values["confidence"][i, 1, 1]) == pytest.approx(conf)
    torch.testing.assert_close(curves.curve("nll", splits), curves.values["nll"].mean(dim=1))
    cmp = ex.size_comparisons(runs, splits, small=1, n_resamples=50)
    p = runs[1]
    want = metrics.nll(combine(p.logits["test"]), p.labels["test"]) - metrics.nll(
        torch.softmax(p.logits["test"][0], -1), p.labels["test"]
    )
    assert cmp.results[1]["test", "nll"].difference == pytest.approx(want)
    with pytest.raises(ValueError, match="sizes must be in"):
        ex.size_curves(runs, splits, sizes=[1, 9])
    with pytest.raises(ValueError, match="metric_names\\[0\\] must be one of"):
        ex.size_curves(runs, splits, metric_names=("auroc",))


def test_learned_vs_uniform(runs):
    uniform = {s: [1.0] * 4 for s in runs}
    same, used = ex.learned_vs_uniform(runs, ["test"], weights=uniform, n_resamples=50)
    for s in runs:
        r = same.results[s]["test"]
        assert (r.difference, r.low, r.high, r.resolved) == (0.0, 0.0, 0.0, False)
        torch.testing.assert_close(used[s], torch.full((4,), 0.25))
    fitted, used = ex.learned_vs_uniform({0: runs[0]}, ["test", "noise-3"], n_resamples=50)
    p = runs[0]
    want = metrics.nll(combine(p.logits["noise-3"], used[0]), p.labels["noise-3"]) - metrics.nll(
        combine(p.logits["noise-3"]), p.labels["noise-3"]
    )
    assert fitted.results[0]["noise-3"].difference == pytest.approx(want)
    with pytest.raises(ValueError, match="weights"):
        ex.learned_vs_uniform(runs, ["test"], weights={0: [1.0, -1.0, 1.0, 1.0]})


def test_rule_comparisons(runs):
    out = ex.rule_comparisons(runs[0], ["test"], n_resamples=50)
    z, y = runs[0].logits["test"], runs[0].labels["test"]
    want = metrics.nll(combine(z), y) - metrics.nll(combine(z, rule="logit"), y)
    assert out["test", "nll"].difference == pytest.approx(want)
    same = ex.rule_comparisons(runs[0], ["test"], a="geo", b="logit", n_resamples=50)
    assert abs(same["test", "nll"].difference) < 1e-6
    assert not same["test", "ece"].resolved


def test_mutual_information_growth(runs):
    cmp, values = ex.mutual_information_growth(runs, KINDS, n_resamples=50)
    assert set(cmp.keys) == {(k, s) for k in KINDS for s in (1, 2, 3)}
    p = runs[2]
    mi = {s: metrics.mutual_information(torch.softmax(p.logits[s].double(), -1)) for s in ("test", "blur-3")}
    assert values[2]["test"] == pytest.approx(mi["test"])
    assert cmp.results[2]["blur", 3].difference == pytest.approx(mi["blur-3"] - mi["test"])
    assert cmp.results[2]["blur", 3].resolved  # much noisier copies: members disagree more
    bad = clustered_predictions()
    bad.sources["noise-1"] = bad.sources["noise-1"].flip(0)
    with pytest.raises(ValueError, match="sources\\['noise-1'\\] must be those of 'test'"):
        ex.mutual_information_growth({0: bad}, ["noise"])


def test_ood_detection(runs):
    res = ex.ood_detection(runs, ["noise-3", "blur-1"], n_resamples=50)
    p = runs[0]
    s_in, s_out = ex.ood_scores(p.logits["test"]), ex.ood_scores(p.logits["noise-3"])
    for score in ex.OOD_SCORES:
        assert res.auroc[0]["noise-3", score] == pytest.approx(ood_auroc(s_in[score], s_out[score]))
    key = ("noise-3", "mutual information", "entropy")
    d = res.differences.results[0][key].difference
    assert d == pytest.approx(res.auroc[0]["noise-3", "mutual information"] - res.auroc[0]["noise-3", "entropy"])
    assert res.summary("noise-3", "entropy").values == tuple(res.auroc[s]["noise-3", "entropy"] for s in runs)
    assert res.line("blur-1").startswith("blur-1: AUROC mutual information ")
    with pytest.raises(ValueError, match="scores must be one of"):
        ex.ood_detection(runs, ["noise-3"], scores=["energy"])


def test_inputs_the_experiments_refuse(runs):
    with pytest.raises(TypeError, match="predictions_by_seed must be a non-empty dict"):
        ex.ensemble_vs_members([runs[0]])
    with pytest.raises(ValueError, match="split must be one of"):
        ex.ensemble_vs_members(runs, split="nope")
    no_sources = SimpleNamespace(logits=runs[0].logits, labels=runs[0].labels)
    with pytest.raises(ValueError, match="predictions must carry sources"):
        ex.ensemble_vs_members({0: no_sources})
    with pytest.raises(ValueError, match="seeds must not repeat"):
        ex.load_seeds((0, 0), load=lambda seed: None)
    assert ex.load_seeds((4, 5), load=lambda seed, tag: (seed, tag), tag="x") == {4: (4, "x"), 5: (5, "x")}
    assert ex.severe_splits(runs[0]) == ["noise-3", "blur-3"]


# -- the figures ------------------------------------------------------------------------------------------------


def test_every_figure_builds_and_renders(runs):
    members, _ = ex.ensemble_vs_members(runs, n_resamples=20)
    curves = ex.size_curves(runs, ["test", "noise-3", "blur-3"])
    learned, _ = ex.learned_vs_uniform(
        runs, ["test", "noise-3"], weights={s: [1, 2, 3, 4] for s in runs}, n_resamples=20
    )
    binned = ex.binned_rules(runs[0], n_bins=2, n_resamples=20)
    _, mi = ex.mutual_information_growth(runs, KINDS, n_resamples=20)
    ood = ex.ood_detection(runs, ["noise-3", "blur-3"], n_resamples=20)
    built = [
        figures.members_figure(members),
        figures.size_figure(curves),
        figures.learned_figure(learned),
        figures.rules_figure(binned, runs[0].labels["test"]),
        figures.ood_figure(mi, KINDS, [ood]),
    ]
    for fig in built:
        assert isinstance(fig, Figure)
        assert StaticFigure(fig)._repr_png_()[:4] == b"\x89PNG"
    # one dot per seed and key in the forest plot, filled when resolved
    ax = built[2].axes[0]
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(dots) == 3 * 2
