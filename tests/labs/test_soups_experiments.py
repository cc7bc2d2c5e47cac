"""Notebook 05's experiments on the tiny soups world: every number against an independent computation (the
paired bootstrap of ``stats``, slow loops over images, the Lab and the soup routines)."""

import functools

import pytest
import torch
import torch.nn.functional as F
from soups_fixtures import tiny_world

from ensemble_lab import metrics, soups, stats
from ensemble_lab.artefacts.soup_world import ALPHAS, SHIFTED, ZERO_SHOT, endpoint_name
from ensemble_lab.labs.soups import SoupsLab, figures
from ensemble_lab.labs.soups import experiments as ex


def _with_sources(world):
    # two images per source, shared across the shifted styles as in the real world (a source in several styles)
    world.sources = {s: torch.arange(world.labels[s].shape[0]) // 2 for s in world.labels}
    return world


@pytest.fixture(scope="module")
def world():
    return _with_sources(tiny_world())


@pytest.fixture(scope="module")
def evaluation(world):
    return ex.Evaluation(world, n_resamples=300)


@pytest.fixture(scope="module")
def lab(world):
    return SoupsLab(world)


def _pooled(world, per_split, splits):
    return torch.cat([per_split[s] for s in splits], dim=-2)


# -- the cluster bootstrap of means ----------------------------------------------------------------------------


def test_cluster_means_equal_the_paired_bootstrap_of_accuracy():
    g = torch.Generator().manual_seed(3)
    n, c = 90, 4
    y = torch.randint(0, c, (n,), generator=g)
    a = torch.softmax(torch.randn(n, c, generator=g) + 2 * F.one_hot(y, c), -1).double()
    b = torch.softmax(torch.randn(n, c, generator=g) + 1 * F.one_hot(y, c), -1).double()
    clusters = torch.randint(0, 25, (n,), generator=g) * 7  # sparse ids, uneven sizes
    ref = stats.paired_bootstrap(metrics.accuracy, a, b, y, clusters=clusters, n_resamples=400, seed=5)
    means = ex.ClusterMeans(clusters, n_resamples=400, seed=5)
    ours = means.compare((a.argmax(-1) == y).double(), (b.argmax(-1) == y).double())
    assert ours.difference == pytest.approx(ref.difference, abs=1e-12)
    assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert (ours.resolved, ours.n_units, ours.n_resamples) == (ref.resolved, ref.n_units, ref.n_resamples)
    # a stats.ClusterResampler on the same draws: its counts, and its own comparison of accuracy, are these
    shared = stats.ClusterResampler(clusters, n_resamples=400, seed=5)
    assert isinstance(means, stats.ClusterResampler)
    assert torch.equal(means.counts, shared.counts)
    assert torch.equal(means.totals, shared.totals)
    theirs = shared.compare("accuracy", a, b, y)
    assert theirs.difference == pytest.approx(ours.difference, abs=1e-12)
    assert (theirs.low, theirs.high, theirs.resolved) == (ours.low, ours.high, ours.resolved)


def test_cluster_means_ece_equals_the_paired_bootstrap_of_ece():
    g = torch.Generator().manual_seed(7)
    n, c = 120, 5
    y = torch.randint(0, c, (n,), generator=g)
    a = torch.softmax(2 * torch.randn(n, c, generator=g) + 2 * F.one_hot(y, c), -1).double()
    b = torch.softmax(torch.randn(n, c, generator=g) + F.one_hot(y, c), -1).double()
    clusters = torch.randint(0, 40, (n,), generator=g)
    for n_bins in (15, 4):
        ece = functools.partial(metrics.ece, n_bins=n_bins)
        ref = stats.paired_bootstrap(ece, a, b, y, clusters=clusters, n_resamples=300, seed=2)
        ours = ex.ClusterMeans(clusters, n_resamples=300, seed=2).compare_ece(a, b, y, n_bins=n_bins)
        assert ours.difference == pytest.approx(ref.difference, abs=1e-12)
        assert (ours.low, ours.high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    with pytest.raises(ValueError, match="probs_b must have shape"):
        ex.ClusterMeans(clusters, n_resamples=10).compare_ece(a, b[:5], y)


def test_cluster_means_against_a_slow_loop_over_resamples():
    g = torch.Generator().manual_seed(4)
    n = 50
    values = torch.randn(2, n, generator=g, dtype=torch.float64)
    clusters = torch.randint(0, 12, (n,), generator=g)
    means = ex.ClusterMeans(clusters, n_resamples=200, level=0.8, seed=9)
    ids = torch.unique(clusters, return_inverse=True)[1]
    draws = stats.resample_units(int(ids.max()) + 1, 200, 9)
    rows = []
    for row in draws:  # each drawn cluster with all its images, concatenated, then the mean
        picked = torch.cat([values[:, ids == u] for u in row.tolist()], dim=1)
        rows.append(picked.mean(1))
    slow = torch.stack(rows)  # (m, 2)
    assert torch.allclose(means.resampled(values), slow, atol=1e-12)
    r = means.estimate(values)
    assert len(r) == 2
    assert r[0].difference == pytest.approx(float(values[0].mean()))
    low, high = stats.percentile_interval(slow[:, 1].numpy(), 0.8)
    assert (r[1].low, r[1].high) == pytest.approx((low, high), abs=1e-12)


@pytest.mark.parametrize(
    ("clusters", "values", "match"),
    [
        (torch.zeros(5), None, "clusters must hold integer group ids"),
        (torch.zeros(2, 3, dtype=torch.int64), None, "clusters must have shape"),
        (torch.arange(5), torch.zeros(4), r"values must have shape \(\.\.\., 5\)"),
        (torch.arange(5), torch.tensor([0.0, 1.0, float("nan"), 0.0, 0.0]), "values must be finite"),
    ],
)
def test_cluster_means_bad_input(clusters, values, match):
    with pytest.raises(ValueError, match=match):
        ex.ClusterMeans(clusters, n_resamples=10).estimate(values if values is not None else torch.zeros(5))


def test_interval_text_is_the_verdict_without_its_names():
    r = stats.PairedDifference(0.01234, 0.0051, 0.0199, 0.9, True, 1700, 1000)
    assert ex.interval_text(r) == "1.2 [0.5, 2.0] points, resolved"
    assert ex.interval_text(r, scale=1, digits=3, unit=" nats") == r.verdict("a", "b", digits=3, unit=" nats")[8:]
    with pytest.raises(TypeError, match="result must be a PairedDifference"):
        ex.interval_text(0.5)


def test_evaluation_sets_and_bad_settings(world, evaluation):
    assert evaluation.means["shift"].n == 6 * world.labels["noisy"].shape[0]
    assert evaluation.means["shift"].n_units == world.labels["noisy"].shape[0] // 2  # sources shared across styles
    with pytest.raises(KeyError, match="no evaluation set"):
        evaluation.means["train"]
    with pytest.raises(ValueError, match="level"):
        ex.Evaluation(world, level=1.5)
    with pytest.raises(TypeError, match="world must be a SoupWorld"):
        ex.Evaluation({})


# -- BANG's count -----------------------------------------------------------------------------------------------


def test_interpolation_fixes_against_a_loop_over_images():
    g = torch.Generator().manual_seed(0)
    n, c, a_count = 40, 3, 4
    y = torch.randint(0, c, (n,), generator=g)
    za, zb, zm = torch.randn(n, c, generator=g), torch.randn(n, c, generator=g), torch.randn(a_count, n, c, generator=g)
    out = ex.interpolation_fixes(za, zb, zm, y)
    for k in range(a_count):
        for i in range(n):
            ra, rb, rm = (int(z[i].argmax()) == int(y[i]) for z in (za, zb, zm[k]))
            assert bool(out["fixed"][k, i]) == (not ra and not rb and rm)
            assert bool(out["broken"][k, i]) == (ra and rb and not rm)
    assert out["both_wrong"].shape == (n,)


@pytest.mark.parametrize(
    ("shapes", "match"),
    [(((4, 3), (5, 3), (4, 3)), "logits_b must have the shape"), (((4, 3), (4, 3), (2, 5, 3)), "logits_mix must have")],
)
def test_interpolation_fixes_bad_input(shapes, match):
    a, b, m = (torch.zeros(s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        ex.interpolation_fixes(a, b, m, torch.zeros(4, dtype=torch.int64))


def test_fixes_count_the_images_along_the_curve(world, evaluation, lab):
    endpoint = endpoint_name(1e-3)
    f = ex.fixes(evaluation, endpoint)
    for tag, splits in (("id", ("test",)), ("shift", SHIFTED)):
        logits = soups.combine_head_terms(_pooled(world, world.curve_terms[endpoint], splits), ALPHAS)
        y = torch.cat([world.labels[s] for s in splits])
        right = logits.argmax(-1) == y  # (A, N)
        both_wrong = ~right[0] & ~right[-1]
        assert f.both_wrong[tag] == int(both_wrong.sum())
        for i in range(len(ALPHAS)):
            assert f.fixed[tag][i] == int((both_wrong & right[i]).sum())
            assert f.broken[tag][i] == int((right[0] & right[-1] & ~right[i]).sum())
            assert f.fixed_share[tag][i].difference == pytest.approx(f.fixed[tag][i] / y.shape[0])
            assert f.net_share[tag][i].difference == pytest.approx((f.fixed[tag][i] - f.broken[tag][i]) / y.shape[0])
        assert f.fixed[tag][0] == f.fixed[tag][-1] == 0
    over = ex.fixes_over_endpoints(evaluation, alpha=0.5)
    assert set(over) == set(world.curve_terms)
    assert over[endpoint] == (
        f.both_wrong["shift"],
        f.fixed["shift"][5],
        f.broken["shift"][5],
    )


# -- the WiSE-FT curve, the loss line --------------------------------------------------------------------------


def test_wise_curve_matches_the_lab(lab, evaluation):
    for bang in (False, True):
        assert lab.set(lr=1e-3, bang=bang, head_scale=0.5, split="all shifted")
        curve = ex.wise_curve(evaluation, endpoint_name(1e-3, bang), head_scale=0.5)
        for tag in ("id", "shift"):
            acc = [r.difference for r in curve.accuracy[tag]]
            assert acc == pytest.approx(lab.result.curve[f"{tag}_acc"].tolist(), abs=1e-12)
            for i in range(len(ALPHAS)):
                assert curve.minus_zero_shot[tag][i].difference == pytest.approx(acc[i] - acc[0], abs=1e-12)
                assert curve.minus_fine_tuned[tag][i].difference == pytest.approx(acc[i] - acc[-1], abs=1e-12)
                lo, hi = curve.accuracy[tag][i].low, curve.accuracy[tag][i].high
                assert lo <= acc[i] <= hi
            assert curve.minus_zero_shot[tag][0].low == curve.minus_zero_shot[tag][0].high == 0.0
            i, dip = curve.dip(tag)
            assert acc[i] == min(acc)
            assert dip.difference == pytest.approx(min(acc) - min(acc[0], acc[-1]), abs=1e-12)
            better = curve.minus_better_endpoint(tag, 4)
            assert better.difference == pytest.approx(acc[4] - max(acc[0], acc[-1]), abs=1e-12)
    assert curve.index(0.47) == 5
    assert curve.best("shift") == acc.index(max(acc))
    lab.set(head_scale=1.0, bang=False)


def test_wise_curve_at_the_ends_is_the_two_models(world, evaluation):
    curve = ex.wise_curve(evaluation, endpoint_name(3e-3))
    for tag in ("id", "shift"):
        assert curve.accuracy[tag][0].difference == pytest.approx(
            float(evaluation.model_correct(ZERO_SHOT, tag).mean())
        )
        fine = evaluation.model_correct(endpoint_name(3e-3), tag).mean()
        assert curve.accuracy[tag][-1].difference == pytest.approx(float(fine))
    with pytest.raises(ValueError, match="endpoint must be one of"):
        ex.wise_curve(evaluation, "LS 0.1")


def test_head_scale_effect_against_the_lab_and_the_paired_bootstrap(lab, world, evaluation):
    endpoint = endpoint_name(1e-3)
    effect = ex.head_scale_effect(evaluation, endpoint, 0.5, alpha=0.5)
    assert effect.alpha == 0.5
    rows = {}
    for scale in (0.5, 1.0):
        assert lab.set(lr=1e-3, bang=False, head_scale=scale, alpha=0.5, split="all shifted")
        rows[scale] = lab.result.point
    for tag in ("id", "shift"):
        diff = rows[0.5][f"{tag}_acc"] - rows[1.0][f"{tag}_acc"]
        assert effect.accuracy[tag].difference == pytest.approx(diff, abs=1e-12)
        assert effect.ece[tag].difference == pytest.approx(
            rows[0.5][f"{tag}_ece"] - rows[1.0][f"{tag}_ece"], abs=1e-6
        )  # the Lab keeps float32
    splits = SHIFTED
    scaled = soups.combine_head_terms(_pooled(world, world.curve_terms[endpoint], splits), ALPHAS, 0.5)[5].double()
    plain = soups.combine_head_terms(_pooled(world, world.curve_terms[endpoint], splits), ALPHAS, 1.0)[5].double()
    ref = stats.paired_bootstrap(
        metrics.ece,
        scaled.softmax(-1),
        plain.softmax(-1),
        torch.cat([world.labels[s] for s in splits]),
        clusters=torch.cat([world.sources[s] for s in splits]),
        n_resamples=300,
    )
    assert (effect.ece["shift"].low, effect.ece["shift"].high) == pytest.approx((ref.low, ref.high), abs=1e-12)
    lab.set(head_scale=1.0)


def test_loss_line_matches_the_lab_and_the_barrier(lab, world, evaluation):
    a, b = endpoint_name(3e-4), endpoint_name(1e-2)
    assert lab.set(line_a=a, line_b=b)
    line = ex.loss_line(evaluation, a, b)
    loss = [r.difference for r in line.loss]
    assert loss == pytest.approx(lab.result.line["loss"].tolist(), abs=1e-9)
    assert [r.difference for r in line.accuracy] == pytest.approx(lab.result.line["acc"].tolist(), abs=1e-12)
    assert line.peak == loss.index(max(loss))
    assert line.barrier.difference == pytest.approx(max(loss) - max(loss[0], loss[-1]), abs=1e-9)
    with pytest.raises(ValueError, match="b must be a model of the world"):
        ex.loss_line(evaluation, a, "nope")


# -- confidence minus accuracy ---------------------------------------------------------------------------------


def test_confidence_gaps_against_direct_computation(world, evaluation):
    names = world.ingredients
    gaps = ex.confidence_gaps(evaluation, names, "id")
    assert gaps.smoothed == tuple(
        n for n in names if world.recipes[n].label_smoothing > 0 or world.recipes[n].mixup > 0
    )
    y = world.labels["test"]
    member = {}
    for n in names:
        p = world.logits[n]["test"].double().softmax(-1)
        member[n] = float(p.max(-1).values.mean()) - metrics.accuracy(p, y)
        assert gaps.members[n].difference == pytest.approx(member[n], abs=1e-12)
    plain = [n for n in names if n not in gaps.smoothed]
    for label, group in (("all", names), ("plain", plain), ("smoothed", gaps.smoothed)):
        p = torch.stack([world.logits[n]["test"].double().softmax(-1) for n in group]).mean(0)
        gap = float(p.max(-1).values.mean()) - metrics.accuracy(p, y)
        assert gaps.ensembles[label].difference == pytest.approx(gap, abs=1e-12)
        assert gaps.accuracy[label].difference == pytest.approx(metrics.accuracy(p, y), abs=1e-12)
        mean_member = sum(member[n] for n in group) / len(group)
        assert gaps.averaging[label].difference == pytest.approx(gap - mean_member, abs=1e-12)
    single = ex.confidence_minus_accuracy(evaluation, [ZERO_SHOT, names[0]], "id")
    r, ref = single[names[0]], gaps.members[names[0]]
    assert (r.difference, r.low, r.high) == pytest.approx((ref.difference, ref.low, ref.high), abs=1e-12)
    p = world.logits[ZERO_SHOT]["test"].double().softmax(-1)
    gap = float(p.max(-1).values.mean()) - metrics.accuracy(p, y)
    assert single[ZERO_SHOT].difference == pytest.approx(gap, abs=1e-12)
    with pytest.raises(ValueError, match="names must be models of the world"):
        ex.confidence_minus_accuracy(evaluation, ["nope"], "id")
    d = gaps.plain_minus_all
    assert d.difference == pytest.approx(gaps.ensembles["plain"].difference - gaps.ensembles["all"].difference)
    with pytest.raises(ValueError, match="both plain and smoothed"):
        ex.confidence_gaps(evaluation, plain, "id")
    with pytest.raises(ValueError, match="names must be ingredients"):
        ex.confidence_gaps(evaluation, ["nope", *names], "id")


# -- soups -----------------------------------------------------------------------------------------------------


def test_greedy_run_follows_its_rule(world):
    names = world.ingredients
    strict = ex.greedy_run(world, names, strict=True)
    states = [world.states[n] for n in names]
    xv, yv = world.images["val"], world.labels["val"]

    def val_acc(sd):
        world.model.load_state_dict(sd)
        with torch.no_grad():
            acc = metrics.top1_accuracy(world.model(xv), yv)
        world.model.load_state_dict(world.states[ZERO_SHOT])
        return acc

    reference = soups.greedy_soup(states, val_acc)
    assert strict.kept == tuple(names[i] for i in reference.kept)
    for run in (strict, ex.greedy_run(world, names, strict=False)):
        kept = [run.order[0]]
        for name, score, best in run.candidates:
            assert score == pytest.approx(val_acc(soups.uniform_soup([world.states[n] for n in (*kept, name)])))
            if score > best or (not run.strict and score == best):
                kept.append(name)
            assert (name in run.ties) == (score == best)
        assert tuple(kept) == run.kept


def test_soup_comparison_matches_the_lab(lab, world, evaluation):
    names = [n for n in world.ingredients if "0.01" not in n]
    assert lab.set(ingredients=names, split="all shifted")
    comparison = ex.soup_comparison(evaluation, names)
    table = lab.result.table
    best = next(k for k in table if k.startswith("best ingredient"))
    assert best == f"best ingredient ({comparison.best})"
    assert comparison.kept == lab.result.greedy_kept
    for row in ex.SOUP_ROWS:
        key = best if row == "best ingredient" else row
        assert comparison.accuracy[row]["id"].difference == pytest.approx(table[key]["acc_id"], abs=1e-12)
        assert comparison.accuracy[row]["shift"].difference == pytest.approx(table[key]["acc_shift"], abs=1e-12)
    for (a, b), by in comparison.differences.items():
        for tag in ("id", "shift"):
            diff = comparison.accuracy[a][tag].difference - comparison.accuracy[b][tag].difference
            assert by[tag].difference == pytest.approx(diff, abs=1e-12)
    lab.set(ingredients=list(world.ingredients))


def test_seen_sources_effect_against_the_two_sample_bootstrap(world, evaluation):
    seen = torch.arange(0, 30, 3)  # sources 0, 3, ..., 27 of the tiny world's 30
    effect = ex.seen_sources_effect(evaluation, seen, [ZERO_SHOT], "id")
    clusters = world.sources["test"]
    mask = torch.isin(clusters, seen)
    assert (effect.n_images, effect.n_seen) == (60, int(mask.sum()))
    p = world.logits[ZERO_SHOT]["test"].double().softmax(-1)
    y = world.labels["test"]
    ref = stats.two_sample_bootstrap(
        metrics.accuracy,
        p[mask],
        y[mask],
        p[~mask],
        y[~mask],
        clusters_a=clusters[mask],
        clusters_b=clusters[~mask],
        n_resamples=300,
    )
    assert effect.accuracy[ZERO_SHOT] == ref
    assert ex.seen_sources_effect(evaluation, torch.arange(30), [ZERO_SHOT]).accuracy[ZERO_SHOT] is None
    with pytest.raises(ValueError, match="seen must be a 1-D tensor of integer source ids"):
        ex.seen_sources_effect(evaluation, torch.zeros(3), [ZERO_SHOT])


def test_headline_over_two_worlds_and_the_figures(world, evaluation):
    other = _with_sources(tiny_world(seed=1))
    runs = [ex.run_seed(world, 0, evaluation=evaluation), ex.run_seed(other, 1)]
    assert "learned soup" not in runs[0].soups.accuracy
    h = ex.headline(runs)
    assert h.seeds == (0, 1)
    assert h.alpha == 0.5
    for key, summary in h.summary.items():
        values = [h.per_seed[s][key].difference for s in (0, 1)]
        assert summary.values == pytest.approx(values)
        assert summary.mean == pytest.approx(sum(values) / 2)
        assert 0 <= h.resolved[key] <= 2
    curve = runs[0].curves[endpoint_name(ex.HEADLINE_LR)]
    assert h.per_seed[0]["WiSE-FT - fine-tuned, shift"] == curve.minus_fine_tuned["shift"][5]
    best = curve.best("shift")
    acc = [r.difference for r in curve.accuracy["shift"]]
    optimistic = h.per_seed[0]["WiSE-FT(best alpha) - better end, shift"].difference
    assert optimistic == pytest.approx(max(acc) - max(acc[0], acc[-1]), abs=1e-12)
    assert acc[best] == max(acc)
    bang = runs[0].curves[endpoint_name(ex.HEADLINE_LR, True)]
    diff = bang.accuracy["shift"][5].difference - curve.accuracy["shift"][5].difference
    assert h.per_seed[0]["BANG WiSE-FT - WiSE-FT, shift"].difference == pytest.approx(diff, abs=1e-12)
    with pytest.raises(TypeError, match="runs must be"):
        ex.headline([])
    with pytest.raises(ValueError, match="evaluation must be an Evaluation of world"):
        ex.run_seed(other, 1, evaluation=evaluation)
    # every figure builds from these results
    from matplotlib.figure import Figure

    f = {endpoint_name(1e-3): ex.fixes(evaluation, endpoint_name(1e-3))}
    lines = [ex.loss_line(evaluation, endpoint_name(3e-4), endpoint_name(1e-2))]
    built = [
        figures.wise_figure(runs, endpoint_name(ex.HEADLINE_LR), alpha=0.5),
        figures.barrier_figure({endpoint_name(1e-3): curve}, lines),
        figures.soups_figure(runs),
        figures.confidence_figure(ex.confidence_gaps(evaluation, world.ingredients)),
        figures.bang_figure(f, runs),
    ]
    assert all(isinstance(fig, Figure) and fig.axes for fig in built)
