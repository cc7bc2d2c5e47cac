"""The guided experiments of notebook 01 (deep ensembles): over seeds, every comparison paired and clustered.

Each image of the distorted digits is drawn from one of ~1,700 independent source digits (about three images
per source), and the shifted test sets are corrupted copies of the test images, so they share the test split's
sources.  Every comparison here is therefore *paired* (both predictions on the same images) and *clustered*
(whole source digits are resampled, each with all its images): the cluster bootstrap of
:func:`ensemble_lab.stats.paired_bootstrap`.

A notebook makes hundreds of such comparisons, and :func:`~ensemble_lab.stats.paired_bootstrap` calls the metric
twice per resample (about 2.5 s for 1,000 resamples of 5,000 images).  :class:`Resampler`, a
:class:`~ensemble_lab.stats.ClusterResampler`, draws the same resamples once per evaluation set, and computes each
resampled metric from per-cluster sums instead: accuracy, NLL and Brier are means of per-image
terms, and top-label ECE with uniform bins is a sum over bins of ``|sum of (correct - confidence)|``, the bin of an
image being fixed by its confidence.  One comparison is then one matrix product over the (resamples x clusters)
count matrix.  The OOD AUROC is resampled from one sort of the OOD scores, each sample weighted by how often its
source is drawn.  The tests check that every interval equals ``paired_bootstrap``'s on the same draws, and the
resampled AUROCs a brute-force pair count.

Units: metrics as the package reports them (fractions for accuracy and ECE, nats for NLL); ``scale=100`` in the
line helpers prints points.  Shapes: member logits ``(K, N, C)``, ensemble probabilities ``(N, C)``, labels and
clusters ``(N,)``.

>>> import torch
>>> y = torch.arange(40) % 2
>>> good, bad = torch.nn.functional.one_hot(y, 2).double(), torch.full((40, 2), 0.5, dtype=torch.float64)
>>> r = Resampler(torch.arange(40) // 2, n_resamples=200).compare("accuracy", good, bad, y)
>>> r.difference, r.resolved, r.n_units
(0.5, True, 20)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ... import metrics
from ..._numerics import bin_index, top_label, uniform_edges
from ..._validation import (
    MAX_COUNT,
    as_tensor,
    check_choice,
    check_finite_tensor,
    check_int,
    check_labels,
    check_member_logits,
    check_member_probs,
    check_probs,
    check_seed,
    check_sequence,
    check_strings,
    check_vector,
    check_weights,
)
from ...calibration import fit_histogram_binning
from ...combine import best_member, combine, learn_weights
from ...selective import ood_auroc
from ...stats import ClusterResampler, OverSeeds, PairedDifference, over_seeds, per_sample_terms
from ..base import lab_work

__all__ = [
    "METRICS",
    "CURVE_METRICS",
    "OOD_SCORES",
    "SEEDS",
    "Resampler",
    "Comparisons",
    "load_seeds",
    "metric_table",
    "severe_splits",
    "member_probs",
    "ensemble_vs_members",
    "SizeCurves",
    "size_curves",
    "size_comparisons",
    "learned_vs_uniform",
    "rule_comparisons",
    "geo_minus_logit",
    "binned_member_probs",
    "geometric_pool",
    "BinnedRules",
    "binned_rules",
    "ood_scores",
    "per_sample_mutual_information",
    "mutual_information_growth",
    "OODResult",
    "ood_detection",
]

#: the metrics a :class:`Resampler` can compare (top-label ECE with uniform bins)
METRICS = ("accuracy", "nll", "brier", "ece")
#: what :func:`size_curves` can track: the metrics and the mean top-label confidence (a fraction)
CURVE_METRICS = (*METRICS, "confidence")
#: OOD scores, each oriented so that a HIGHER score means "more in-distribution" (the convention of
#: ``selective.ood_auroc``): minus the members' mutual information, minus the predictive entropy, the max probability
OOD_SCORES = ("mutual information", "entropy", "max probability")
#: the zoo seeds the headline experiments run over
SEEDS = (0, 1, 2)

_NAMES = {"accuracy": "accuracy", "nll": "NLL", "brier": "Brier", "ece": "ECE"}


# ----------------------------------------------------------------------------------------------------------
# the cluster bootstrap, drawn once per evaluation set
# ----------------------------------------------------------------------------------------------------------


class Resampler(ClusterResampler):
    """Cluster-bootstrap resamples of one evaluation set (a :class:`~ensemble_lab.stats.ClusterResampler`, the
    draws of ``stats.paired_bootstrap(..., clusters=clusters, n_resamples=n_resamples, seed=seed)``), with the
    comparisons of notebook 01: the average member of ``(K, N, C)`` member probabilities, top-label ECE with
    uniform bins from per-bin sums, and OOD AUROCs.

    Args:
        clusters: ``(N,)`` integer group ids (the source digit of each image); whole groups are resampled.
        n_resamples: bootstrap resamples, an int in ``[2, 10**7]``.
        level: the intervals' coverage, in (0, 1).
        seed: the draws' seed.

    Attributes: those of :class:`~ensemble_lab.stats.ClusterResampler` (``ids``, ``n_units``, ``counts``, ...).
    """

    def __init__(self, clusters, n_resamples: int = 1000, level: float = 0.9, seed: int = 0):
        super().__init__(clusters, n_resamples, level, seed)
        self._weights32 = None  # float32 counts and per-sample weights, made by the first auroc_draws

    # -- helpers ---------------------------------------------------------------------------------------------
    def _check_pred(self, pred, name: str) -> torch.Tensor:
        t = as_tensor(pred, name).detach()
        t = check_member_probs(t, name) if t.ndim == 3 else check_probs(t, name)
        if t.shape[-2] != self.n:
            raise ValueError(
                f"{name} must hold the {self.n} samples the clusters were given for, got shape {tuple(t.shape)}"
            )
        return t

    def _resampled(self, metric: str, p: torch.Tensor, y: torch.Tensor, n_bins: int) -> torch.Tensor:
        """``(n_resamples,)`` values of ``metric`` on every resample (the average member's for ``(K, N, C)``)."""
        members = p if p.ndim == 3 else p.unsqueeze(0)  # (K, N, C)
        k = members.shape[0]
        if metric == "ece":
            edges = uniform_edges(n_bins, members)
            terms = torch.zeros(self.n, k * n_bins, dtype=torch.float64, device=members.device)
            for j in range(k):
                conf, correct = top_label(members[j].contiguous(), y)
                cols = bin_index(conf.to(edges.dtype), edges) + j * n_bins
                terms[torch.arange(self.n, device=members.device), cols] = correct.to(torch.float64) - conf.double()
            gaps = self.resampled_sums(terms).view(self.n_resamples, k, n_bins)
            return gaps.abs().sum(dim=2).mean(dim=1) / self.totals
        terms = [per_sample_terms(metric, members[j], y, validate=False) for j in range(k)]
        per_sample = torch.stack(terms, dim=1)  # (N, K)
        return self.resampled_sums(per_sample).mean(dim=1) / self.totals

    # -- comparisons -----------------------------------------------------------------------------------------
    def compare(self, metric: str, pred_a, pred_b, labels, *, n_bins: int = 15) -> PairedDifference:
        """``metric(pred_a) - metric(pred_b)`` with its paired cluster-bootstrap interval.

        Args:
            metric: one of :data:`METRICS` (``"ece"``: top-label, ``n_bins`` uniform bins, l1).
            pred_a, pred_b: ``(N, C)`` probabilities, or ``(K, N, C)`` member probabilities, whose metric is then
                the *average member's* (the mean over members of each member's metric).
            labels: ``(N,)`` int labels.
            n_bins: ECE bins, an int in ``[1, 10**7]``.

        Returns:
            A :class:`~ensemble_lab.stats.PairedDifference`; ``difference`` is computed by ``ensemble_lab.metrics``
            on the full data, the interval from the resamples.
        """
        check_choice(metric, "metric", METRICS)
        b = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_COUNT)
        a, bb = self._check_pred(pred_a, "pred_a"), self._check_pred(pred_b, "pred_b")
        if a.shape[-1] != bb.shape[-1]:
            raise ValueError(f"pred_b must have {a.shape[-1]} classes like pred_a, got shape {tuple(bb.shape)}")
        y = check_labels(labels, self.n, a.shape[-1], "labels")
        estimate = _full_metric(metric, a, y, b) - _full_metric(metric, bb, y, b)
        return self.interval(estimate, self._resampled(metric, a, y, b) - self._resampled(metric, bb, y, b))

    def compare_values(self, values_a, values_b) -> PairedDifference:
        """``mean(values_a) - mean(values_b)`` of per-sample values ``(N,)`` (e.g. each image's mutual information
        on a shifted copy against the clean one): ``ClusterResampler.compare_means``."""
        return self.compare_means(values_a, values_b)

    def compare_auroc(self, in_a, out_a, in_b, out_b, *, out_clusters=None) -> PairedDifference:
        """``ood_auroc(in_a, out_a) - ood_auroc(in_b, out_b)``: two OOD scores (higher = in-distribution) on the
        same in-distribution samples (this Resampler's) and the same OOD samples, with a paired interval.

        The OOD samples belong to clusters of the in-distribution set (``out_clusters``, ``(N_out,)``; default: the
        Resampler's own, for a shifted copy of the same images), and a resample draws a source digit with its clean
        *and* its shifted images: the intervals are those of ``stats.paired_bootstrap`` on the pooled
        ``N + N_out`` samples with the pooled clusters.
        """
        auc_a, draws_a = self.auroc_draws(in_a, out_a, out_clusters=out_clusters)
        auc_b, draws_b = self.auroc_draws(in_b, out_b, out_clusters=out_clusters)
        return self.interval(auc_a - auc_b, draws_a - draws_b)

    def auroc_draws(self, scores_in, scores_out, *, out_clusters=None) -> tuple[float, torch.Tensor]:
        """``(ood_auroc(scores_in, scores_out), (n_resamples,) AUROCs on the resamples)``.

        ``scores_in`` ``(N,)`` are this Resampler's samples, ``scores_out`` ``(N_out,)`` OOD samples of clusters
        ``out_clusters`` (see :meth:`compare_auroc`).  On a resample every sample counts as often as its cluster is
        drawn: ``sum_ij w_i w_j [s_i > s_j] + [s_i == s_j] / 2`` over ``(sum_i w_i)(sum_j w_j)``, computed from one
        sort of the OOD scores (cumulative drawn OOD weight below each in-distribution score).
        """
        s_in = check_vector(scores_in, "scores_in")
        s_out = check_vector(scores_out, "scores_out", like=s_in, like_name="scores_in")
        if s_in.shape[0] != self.n:
            raise ValueError(f"scores_in must have shape ({self.n},), one score per sample, got {tuple(s_in.shape)}")
        if out_clusters is None and s_out.shape[0] != self.n:
            raise ValueError(
                f"out_clusters must be given when the OOD set has another size ({s_out.shape[0]}) than the "
                f"in-distribution set ({self.n})"
            )
        ids_out = self.ids if out_clusters is None else self.units_of(out_clusters, "out_clusters", s_out.shape[0])
        dt = torch.promote_types(torch.promote_types(s_in.dtype, s_out.dtype), torch.float64)
        values, order = s_out.to(dt).sort()
        lo = torch.searchsorted(values, s_in.to(dt), right=False)  # OOD scores strictly below each s_i
        hi = torch.searchsorted(values, s_in.to(dt), right=True)  # ... and up to s_i (ties)
        ids_sorted = ids_out.index_select(0, order)
        if self._weights32 is None:  # small integers: float32 sums of them stay exact below 2**24
            counts = self.counts.to(torch.float32)
            self._weights32 = (counts, counts.index_select(1, self.ids))  # per cluster, per in-distribution sample
        counts, w_in = self._weights32
        draws = torch.empty(self.n_resamples, dtype=torch.float64, device=s_in.device)
        for a in range(0, self.n_resamples, 256):  # chunks keep the (chunk, N_out) arrays small
            c = counts[a : a + 256]
            cum = torch.nn.functional.pad(torch.cumsum(c.index_select(1, ids_sorted), dim=1), (1, 0))
            pairs = w_in[a : a + 256] * (cum.index_select(1, lo) + cum.index_select(1, hi))
            draws[a : a + 256] = pairs.sum(dim=1, dtype=torch.float64) / 2
        n_in = self.totals
        n_out = self.counts @ torch.bincount(ids_out, minlength=self.n_units).to(torch.float64)
        return ood_auroc(s_in, s_out), draws / (n_in * n_out)


def _full_metric(metric: str, p: torch.Tensor, y: torch.Tensor, n_bins: int) -> float:
    """The metric on the full data; for ``(K, N, C)`` the mean over members of each member's metric."""
    fn = {
        "accuracy": metrics.accuracy,
        "nll": metrics.nll,
        "brier": metrics.brier,
        "ece": lambda q, t, validate: metrics.ece(q, t, n_bins=n_bins, validate=validate),
        "confidence": lambda q, t, validate: float(top_label(q.contiguous(), t)[0].double().mean()),
    }[metric]
    if p.ndim == 3:
        return sum(fn(q, y, validate=False) for q in p) / p.shape[0]
    return fn(p, y, validate=False)


# ----------------------------------------------------------------------------------------------------------
# results over seeds
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparisons:
    """Paired differences by seed: ``results[seed][key]`` is a :class:`~ensemble_lab.stats.PairedDifference`.

    ``key`` is whatever the experiment compares, e.g. ``("best member", "nll")`` or ``"noise-3"``; every seed has
    the same keys.
    """

    seeds: tuple[int, ...]
    results: dict[int, dict]

    @property
    def keys(self) -> list:
        return list(self.results[self.seeds[0]])

    def summary(self, key) -> OverSeeds:
        """The difference for ``key`` over the seeds (mean, sample std, range): ``stats.over_seeds``."""
        return over_seeds(lambda s: self.results[s][key].difference, self.seeds)

    def resolved(self, key) -> int:
        """In how many seeds the interval for ``key`` excludes 0."""
        return sum(self.results[s][key].resolved for s in self.seeds)

    def line(self, key, label: str, *, scale: float = 1.0, digits: int = 3, unit: str = "") -> str:
        """One stable line: ``label: mean +- sd unit over seeds; seed s: x [lo, hi] ...; resolved in r of S``."""
        digits = check_int(digits, "digits", minimum=0, maximum=12)
        f = lambda v: f"{v * scale + 0.0:+.{digits}f}"  # noqa: E731  (+ 0.0: no "-0.0")
        g = lambda v: f"{v * scale + 0.0:.{digits}f}"  # noqa: E731
        s = self.summary(key)
        per_seed = "; ".join(
            f"seed {seed} {f(r.difference)} [{g(r.low)}, {g(r.high)}]"
            for seed in self.seeds
            for r in (self.results[seed][key],)
        )
        return (
            f"{label}: {f(s.mean)} ± {abs(s.std * scale):.{digits}f}{unit} over {len(self.seeds)} seeds "
            f"({per_seed}); resolved in {self.resolved(key)} of {len(self.seeds)}"
        )


def metric_table(values: Mapping, metric_names: Sequence[str] = METRICS) -> list[str]:
    """Lines of a table, one per row of ``values[seed][row][metric]`` (as :func:`ensemble_vs_members` returns):
    each metric's mean +- sample sd over the seeds (accuracy and ECE in %, 1 decimal; NLL and Brier, 3)."""
    seeds = list(values)
    names = _metric_names(metric_names)
    rows = list(values[seeds[0]])
    head = f"{'':>15}  " + "  ".join(f"{_NAMES[m] + (' (%)' if m in ('accuracy', 'ece') else ''):>15}" for m in names)
    lines = [head]
    for row in rows:
        cells = []
        for m in names:
            s = over_seeds(lambda seed, row=row, m=m: values[seed][row][m], seeds)
            scale, d = (100, 1) if m in ("accuracy", "ece") else (1, 3)
            cells.append(f"{s.mean * scale:.{d}f} ± {s.std * scale:.{d}f}".rjust(15))
        lines.append(f"{row:>15}  " + "  ".join(cells))
    return lines


def load_seeds(seeds: Sequence[int] = SEEDS, load: Callable | None = None, **kwargs) -> dict:
    """``{seed: predictions}`` for each seed: ``load(seed=s, **kwargs)``, by default
    ``ensemble_lab.artefacts.zoo.ensemble_predictions`` (k = 8 ``mlp-m`` members on distorted digits; trained
    once per seed, then loaded from the cache)."""
    seeds = [check_seed(s, f"seeds[{i}]") for i, s in enumerate(check_sequence(seeds, "seeds", what="seeds"))]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat a seed, got {seeds}")
    if load is None:
        from ...artefacts import zoo

        load = zoo.ensemble_predictions
    return {s: load(seed=s, **kwargs) for s in seeds}


def severe_splits(predictions, severity: int = 3) -> list[str]:
    """The shifted splits of ``predictions`` at ``severity`` (names ending in ``-{severity}``), in their order."""
    check_int(severity, "severity", minimum=1)
    return [s for s in predictions.logits if s.endswith(f"-{severity}")]


def _metric_names(x, allowed: Sequence[str] = METRICS) -> list[str]:
    items = check_sequence(x, "metric_names", what="metrics")
    return [check_choice(m, f"metric_names[{i}]", allowed) for i, m in enumerate(items)]


def _by_seed(predictions_by_seed) -> dict:
    if not isinstance(predictions_by_seed, Mapping) or not predictions_by_seed:
        raise TypeError(
            "predictions_by_seed must be a non-empty dict {seed: predictions}, e.g. load_seeds(), got "
            f"{type(predictions_by_seed).__name__}"
        )
    for s in predictions_by_seed:
        check_seed(s, "a seed of predictions_by_seed")
    return dict(predictions_by_seed)


def _split(predictions, split: str):
    """``(logits, labels, sources)`` of one split, with a ValueError naming ``split`` if it is missing."""
    if split not in predictions.logits:
        raise ValueError(f"split must be one of {', '.join(predictions.logits)}; got {split!r}")
    sources = getattr(predictions, "sources", None)
    if sources is None or split not in sources:
        raise ValueError(
            f"predictions must carry sources[{split!r}] (the source digit of each image) for clustered intervals"
        )
    z = check_member_logits(predictions.logits[split], f"logits[{split!r}]")
    return z, predictions.labels[split], sources[split]


class _Resamplers:
    """One :class:`Resampler` per distinct cluster vector (the shifted splits reuse the test split's draws)."""

    def __init__(self, n_resamples: int, level: float, seed: int):
        self.args = (n_resamples, level, seed)
        self.made: list[Resampler] = []

    def __call__(self, clusters) -> Resampler:
        for r in self.made:
            if r.same_clusters(clusters):
                return r
        self.made.append(Resampler(clusters, *self.args))
        return self.made[-1]


def member_probs(member_logits) -> torch.Tensor:
    """``(K, N, C)`` member probabilities ``softmax(member_logits)`` (in the logits' dtype)."""
    return torch.softmax(check_member_logits(member_logits), dim=-1)


# ----------------------------------------------------------------------------------------------------------
# experiment 1: the ensemble against its members
# ----------------------------------------------------------------------------------------------------------


@lab_work()
def ensemble_vs_members(
    predictions_by_seed,
    split: str = "test",
    metric_names: Sequence[str] = METRICS,
    *,
    n_bins: int = 15,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> tuple[Comparisons, dict]:
    """The uniform deep ensemble (average of probabilities) against its best member and its average member.

    The best member is chosen on ``val`` by accuracy (``combine.best_member``, as the Lab does); the average
    member's metric is the mean of the K members' metrics.

    Returns:
        ``(comparisons, values)``: comparisons keyed ``(reference, metric)`` with reference ``"best member"`` or
        ``"average member"``, each ``ensemble - reference``; ``values[seed][row][metric]`` the metric values of the
        rows ``"ensemble"``, ``"best member"`` and ``"average member"`` (floats).
    """
    by_seed = _by_seed(predictions_by_seed)
    names = _metric_names(metric_names)
    resamplers = _Resamplers(n_resamples, level, seed)
    results, values = {}, {}
    for s, preds in by_seed.items():
        z, y, src = _split(preds, split)
        best = best_member(*_split(preds, "val")[:2])
        probs = member_probs(z)
        ens = combine(z)
        r = resamplers(src)
        rows = {"ensemble": ens, "best member": probs[best], "average member": probs}
        values[s] = {row: {m: _full_metric(m, p, y, n_bins) for m in names} for row, p in rows.items()}
        results[s] = {
            (ref, m): r.compare(m, ens, rows[ref], y, n_bins=n_bins)
            for ref in ("best member", "average member")
            for m in names
        }
    return Comparisons(tuple(by_seed), results), values


# ----------------------------------------------------------------------------------------------------------
# experiment 2: how many members
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeCurves:
    """Metrics of the uniform ensemble of the first ``k`` members, for each ``k`` in ``sizes``.

    ``values[metric]``: ``(S, P, len(sizes))`` float64 over seeds ``seeds``, splits ``splits`` and sizes.
    """

    seeds: tuple[int, ...]
    splits: tuple[str, ...]
    sizes: tuple[int, ...]
    values: dict[str, torch.Tensor]

    def curve(self, metric: str, split: str | Sequence[str]) -> torch.Tensor:
        """``(S, len(sizes))``: one split's curve per seed, or the mean over several splits' curves."""
        names = [split] if isinstance(split, str) else list(split)
        idx = [self.splits.index(check_choice(s, "split", self.splits)) for s in names]
        return self.values[check_choice(metric, "metric", tuple(self.values))][:, idx].mean(dim=1)


@lab_work()
def size_curves(
    predictions_by_seed,
    splits: Sequence[str],
    sizes: Sequence[int] | None = None,
    metric_names: Sequence[str] = ("nll", "ece"),
    *,
    n_bins: int = 15,
) -> SizeCurves:
    """NLL, ECE, ... (any of :data:`CURVE_METRICS`) of the uniform probability average of the first ``k``
    members, per seed, split and ``k`` (default ``k = 1 .. K``)."""
    by_seed = _by_seed(predictions_by_seed)
    splits = check_sequence(splits, "splits", what="split names")
    names = _metric_names(metric_names, CURVE_METRICS)
    first = next(iter(by_seed.values()))
    k_max = _split(first, splits[0])[0].shape[0]
    sizes = list(range(1, k_max + 1)) if sizes is None else check_sequence(sizes, "sizes", what="sizes")
    sizes = [check_int(k, "sizes", minimum=1, maximum=k_max) for k in sizes]
    out = {m: torch.zeros(len(by_seed), len(splits), len(sizes), dtype=torch.float64) for m in names}
    for i, preds in enumerate(by_seed.values()):
        for j, split in enumerate(splits):
            z, y, _ = _split(preds, split)
            probs = member_probs(z)
            for t, k in enumerate(sizes):
                p = probs[:k].mean(dim=0)
                for m in names:
                    out[m][i, j, t] = _full_metric(m, p, y, n_bins)
    return SizeCurves(tuple(by_seed), tuple(splits), tuple(sizes), out)


@lab_work()
def size_comparisons(
    predictions_by_seed,
    splits: Sequence[str],
    small: int = 1,
    large: int | None = None,
    metric_names: Sequence[str] = ("nll", "ece"),
    *,
    n_bins: int = 15,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> Comparisons:
    """The ensemble of the first ``large`` members (default all) minus that of the first ``small``, keyed
    ``(split, metric)``, paired and clustered by source."""
    by_seed = _by_seed(predictions_by_seed)
    names = _metric_names(metric_names)
    resamplers = _Resamplers(n_resamples, level, seed)
    results = {}
    for s, preds in by_seed.items():
        results[s] = {}
        for split in check_sequence(splits, "splits", what="split names"):
            z, y, src = _split(preds, split)
            k = z.shape[0] if large is None else check_int(large, "large", minimum=1, maximum=z.shape[0])
            j = check_int(small, "small", minimum=1, maximum=z.shape[0])
            probs = member_probs(z)
            r = resamplers(src)
            for m in names:
                results[s][split, m] = r.compare(m, probs[:k].mean(0), probs[:j].mean(0), y, n_bins=n_bins)
    return Comparisons(tuple(by_seed), results)


# ----------------------------------------------------------------------------------------------------------
# experiment 3: learned weights against uniform weights
# ----------------------------------------------------------------------------------------------------------


@lab_work()
def learned_vs_uniform(
    predictions_by_seed,
    splits: Sequence[str],
    metric: str = "nll",
    *,
    weights: Mapping | None = None,
    n_bins: int = 15,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> tuple[Comparisons, dict]:
    """Weights fitted on ``val`` (``combine.learn_weights``, NLL, rule ``prob``) minus uniform weights, keyed by
    split.

    ``weights``: ``{seed: (K,) weights}`` to use instead of fitting (e.g. the Lab's learned weights).  Returns
    ``(comparisons, weights_by_seed)``.
    """
    by_seed = _by_seed(predictions_by_seed)
    check_choice(metric, "metric", METRICS)
    resamplers = _Resamplers(n_resamples, level, seed)
    results, used = {}, {}
    for s, preds in by_seed.items():
        zv, yv, _ = _split(preds, "val")
        if weights is not None and s in weights:
            w = check_weights(weights[s], zv.shape[0], like=zv)
        else:
            w = learn_weights(zv, yv)
        used[s] = w
        results[s] = {}
        for split in check_sequence(splits, "splits", what="split names"):
            z, y, src = _split(preds, split)
            results[s][split] = resamplers(src).compare(metric, combine(z, w), combine(z), y, n_bins=n_bins)
    return Comparisons(tuple(by_seed), results), used


# ----------------------------------------------------------------------------------------------------------
# experiment 4: combination rules; the geometric mean against the logit average
# ----------------------------------------------------------------------------------------------------------


@lab_work()
def rule_comparisons(
    predictions,
    splits: Sequence[str],
    a: str = "prob",
    b: str = "logit",
    metric_names: Sequence[str] = ("nll", "ece"),
    *,
    n_bins: int = 15,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> dict:
    """``metric(combine(z, rule=a)) - metric(combine(z, rule=b))`` per ``(split, metric)`` for one ensemble."""
    resamplers = _Resamplers(n_resamples, level, seed)
    out = {}
    for split in check_sequence(splits, "splits", what="split names"):
        z, y, src = _split(predictions, split)
        pa, pb = combine(z, rule=a), combine(z, rule=b)
        for m in _metric_names(metric_names):
            out[split, m] = resamplers(src).compare(m, pa, pb, y, n_bins=n_bins)
    return out


def geo_minus_logit(member_logits, weights=None, temperatures=None) -> float:
    """``max |combine(z', w, "geo") - combine(z', w, "logit")|`` over all entries, with ``z'_k = z_k / T_k``.

    ``log softmax(z'_k) = z'_k - logsumexp(z'_k)``: the subtracted normaliser is the same for every class, so the
    weighted sum of log-probabilities and the weighted sum of logits differ by a per-row constant, which the final
    softmax removes.  The two rules are therefore equal for any weights and any member temperatures ``T_k``; this
    returns the float rounding left (about 1e-7 in float32, 1e-16 in float64).

    >>> z = torch.randn(3, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> geo_minus_logit(z, weights=[0.2, 0.3, 0.5], temperatures=[0.5, 1.0, 4.0]) < 1e-12
    True
    """
    z = check_member_logits(member_logits)
    if temperatures is not None:
        t = as_tensor(temperatures, "temperatures").to(z.dtype)
        if t.shape != (z.shape[0],):
            raise ValueError(f"temperatures must have shape ({z.shape[0]},), one per member, got {tuple(t.shape)}")
        check_finite_tensor(t, "temperatures")
        if bool((t <= 0).any()):
            raise ValueError(f"temperatures must be > 0, got a minimum of {float(t.min()):.4g}")
        z = z / t.view(-1, 1, 1)
        check_finite_tensor(z, "member_logits / temperatures")
    return float((combine(z, weights, "geo") - combine(z, weights, "logit")).abs().max())


def binned_member_probs(fit_logits, fit_labels, member_logits, n_bins: int = 15) -> torch.Tensor:
    """Each member calibrated by histogram binning: ``(K, N, C)`` probabilities.

    Member k's binning is fitted on ``softmax(fit_logits[k])`` (the validation split; one-vs-rest,
    ``calibration.fit_histogram_binning``) and applied to ``softmax(member_logits[k])``.  The result is no longer
    the softmax of any affine function of the member's logits (it is piecewise constant, with exact zeros).
    """
    zf, z = check_member_logits(fit_logits, "fit_logits"), check_member_logits(member_logits)
    if zf.shape[0] != z.shape[0] or zf.shape[2] != z.shape[2]:
        raise ValueError(
            f"fit_logits must have the members and classes of member_logits {tuple(z.shape)}, got {tuple(zf.shape)}"
        )
    pf, p = torch.softmax(zf.double(), dim=-1), torch.softmax(z.double(), dim=-1)
    return torch.stack([fit_histogram_binning(pf[k], fit_labels, n_bins=n_bins).apply(p[k]) for k in range(z.shape[0])])


def geometric_pool(member_probs, weights=None) -> torch.Tensor:
    """The normalised weighted geometric mean of member probabilities: ``(N, C)`` ``prod_k p_k^w_k``, rows
    renormalised; what ``combine(..., rule="geo")`` computes from logits, here from probabilities.

    A probability of exactly 0 (histogram binning gives them) enters as ``log(tiny)`` (-708 in float64), so the
    class gets ~0; a row in which EVERY class has a zero from some member has no geometric mean and is refused.

    >>> p = torch.tensor([[[0.5, 0.5]], [[0.9, 0.1]]], dtype=torch.float64)  # two members, one sample
    >>> [round(v, 4) for v in geometric_pool(p)[0].tolist()]
    [0.75, 0.25]
    """
    mp = check_member_probs(member_probs)
    dead = (mp <= 0).any(dim=0).all(dim=-1)
    if bool(dead.any()):
        raise ValueError(
            f"member_probs: {int(dead.sum())} row(s) give every class probability 0 in some member; their geometric "
            "mean is undefined"
        )
    logs = torch.log(mp.clamp(min=torch.finfo(mp.dtype).tiny))
    return combine(logs, weights, rule="geo")


@dataclass(frozen=True)
class BinnedRules:
    """The geometric mean against the logit average, on raw members and on histogram-binned members.

    ``raw_gap``: max |geo - logit| on the raw logits (rounding).  ``binned_gap``: max |geometric mean of the binned
    members - logit average of the raw logits|.  ``differences``: ``(metric) -> PairedDifference`` of
    binned-geo minus raw-logit.  ``geo_binned``, ``logit_raw``: the ``(N, C)`` ensembles, for a figure.
    """

    raw_gap: float
    binned_gap: float
    differences: dict[str, PairedDifference]
    geo_binned: torch.Tensor
    logit_raw: torch.Tensor
    geo_raw: torch.Tensor


@lab_work()
def binned_rules(
    predictions,
    split: str = "test",
    metric_names: Sequence[str] = ("accuracy", "nll", "ece"),
    *,
    n_bins: int = 15,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> BinnedRules:
    """Experiment 4's check: the geometric mean equals the logit average on the members' own logits, and differs
    once the members are calibrated by histogram binning (fitted on ``val``)."""
    z, y, src = _split(predictions, split)
    zv, yv, _ = _split(predictions, "val")
    z64 = z.double()
    q = binned_member_probs(zv, yv, z64, n_bins=n_bins)
    geo_b, logit_raw, geo_raw = geometric_pool(q), combine(z64, rule="logit"), combine(z64, rule="geo")
    r = Resampler(src, n_resamples, level, seed)
    diffs = {m: r.compare(m, geo_b, logit_raw, y, n_bins=n_bins) for m in _metric_names(metric_names)}
    return BinnedRules(
        raw_gap=geo_minus_logit(z64),
        binned_gap=float((geo_b - logit_raw).abs().max()),
        differences=diffs,
        geo_binned=geo_b,
        logit_raw=logit_raw,
        geo_raw=geo_raw,
    )


# ----------------------------------------------------------------------------------------------------------
# experiment 5: disagreement under shift, and OOD detection
# ----------------------------------------------------------------------------------------------------------


def per_sample_mutual_information(member_probs) -> torch.Tensor:
    """``(N,)`` ``H(mean_k p_k) - mean_k H(p_k)`` per sample, in nats (its mean is
    ``metrics.mutual_information``).

    >>> mp = torch.tensor([[[0.9, 0.1], [0.5, 0.5]], [[0.1, 0.9], [0.5, 0.5]]])
    >>> [round(v, 4) for v in per_sample_mutual_information(mp).tolist()]
    [0.3681, 0.0]
    """
    mp = check_member_probs(member_probs)
    return metrics.entropy(mp.mean(dim=0), validate=False) - metrics.entropy(mp, validate=False).mean(dim=0)


def ood_scores(member_logits) -> dict[str, torch.Tensor]:
    """``{score: (N,)}`` for each of :data:`OOD_SCORES`, oriented so that higher means more in-distribution.

    From the members' probabilities ``p_k = softmax(z_k)`` (float64) and their average ``pbar``: ``"mutual
    information"`` is ``-(H(pbar) - mean_k H(p_k))`` (the members' disagreement), ``"entropy"`` is ``-H(pbar)``
    (the ensemble's total uncertainty, the score of the paper's Figure 3) and ``"max probability"`` is
    ``max_c pbar_c``.
    """
    mp = torch.softmax(check_member_logits(member_logits).double(), dim=-1)
    pbar = mp.mean(dim=0)
    h = metrics.entropy(pbar, validate=False)
    mi = h - metrics.entropy(mp, validate=False).mean(dim=0)
    return {"mutual information": -mi, "entropy": -h, "max probability": pbar.max(dim=-1).values}


@lab_work()
def mutual_information_growth(
    predictions_by_seed,
    kinds: Sequence[str],
    severities: Sequence[int] = (1, 2, 3),
    clean: str = "test",
    *,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> tuple[Comparisons, dict]:
    """Mean mutual information on ``{kind}-{severity}`` minus on the clean images they are copies of, keyed
    ``(kind, severity)``; and ``values[seed][split]``, the mean MI of each split (``clean`` included), in nats."""
    by_seed = _by_seed(predictions_by_seed)
    resamplers = _Resamplers(n_resamples, level, seed)
    results, values = {}, {}
    for s, preds in by_seed.items():
        z0, _, src = _split(preds, clean)
        mi0 = per_sample_mutual_information(member_probs(z0.double()))
        r = resamplers(src)
        results[s], values[s] = {}, {clean: float(mi0.mean())}
        for kind in check_strings(kinds, "kinds"):
            for sev in check_sequence(severities, "severities", what="severities"):
                split = f"{kind}-{sev}"
                z, _, src_s = _split(preds, split)
                if not torch.equal(src_s, src):
                    raise ValueError(f"sources[{split!r}] must be those of {clean!r}: a shifted copy of its images")
                mi = per_sample_mutual_information(member_probs(z.double()))
                values[s][split] = float(mi.mean())
                results[s][kind, sev] = r.compare_values(mi, mi0)
    return Comparisons(tuple(by_seed), results), values


@dataclass(frozen=True)
class OODResult:
    """OOD detection, clean test images (in) against each shifted split (out), per score and seed.

    ``auroc[seed][(split, score)]``: AUROC (float, 0.5 = chance).  ``differences``: :class:`Comparisons` keyed
    ``(split, score_a, score_b)`` of AUROC(score_a) - AUROC(score_b).
    """

    seeds: tuple[int, ...]
    splits: tuple[str, ...]
    scores: tuple[str, ...]
    auroc: dict[int, dict[tuple[str, str], float]]
    differences: Comparisons

    def summary(self, split: str, score: str) -> OverSeeds:
        """The AUROC of ``score`` on ``split`` over the seeds."""
        return over_seeds(lambda s: self.auroc[s][split, score], self.seeds)

    def line(self, split: str) -> str:
        """One stable line per split: each score's AUROC as mean +- sd over the seeds (3 decimals)."""
        parts = []
        for score in self.scores:
            s = self.summary(split, score)
            parts.append(f"{score} {s.mean:.3f} ± {s.std:.3f}")
        return f"{split}: AUROC " + ", ".join(parts)


@lab_work()
def ood_detection(
    predictions_by_seed,
    out_splits: Sequence[str],
    in_split: str = "test",
    scores: Sequence[str] = OOD_SCORES,
    pairs: Sequence[tuple[str, str]] = (("mutual information", "entropy"), ("mutual information", "max probability")),
    *,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> OODResult:
    """AUROC of telling ``in_split`` images from each of ``out_splits`` by each score (``selective.ood_auroc``),
    per seed, and paired, clustered differences between scores (a source digit is drawn with its clean and its
    shifted images)."""
    by_seed = _by_seed(predictions_by_seed)
    scores = [check_choice(s, "scores", OOD_SCORES) for s in check_sequence(scores, "scores", what="scores")]
    pairs = [(check_choice(a, "pairs", scores), check_choice(b, "pairs", scores)) for a, b in pairs]
    out_splits = check_strings(out_splits, "out_splits")
    resamplers = _Resamplers(n_resamples, level, seed)
    auroc, results = {}, {}
    for s, preds in by_seed.items():
        z_in, _, src_in = _split(preds, in_split)
        s_in = ood_scores(z_in)
        r = resamplers(src_in)
        auroc[s], results[s] = {}, {}
        for split in out_splits:
            z_out, _, src_out = _split(preds, split)
            s_out = ood_scores(z_out)
            draws = {name: r.auroc_draws(s_in[name], s_out[name], out_clusters=src_out) for name in scores}
            for name in scores:
                auroc[s][split, name] = draws[name][0]
            for a, b in pairs:
                results[s][split, a, b] = r.interval(draws[a][0] - draws[b][0], draws[a][1] - draws[b][1])
    return OODResult(tuple(by_seed), tuple(out_splits), tuple(scores), auroc, Comparisons(tuple(by_seed), results))
