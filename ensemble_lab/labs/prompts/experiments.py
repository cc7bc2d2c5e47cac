"""The guided experiments of notebook 03 (zero-shot prompt ensembling, ZPE): every comparison paired, clustered by
source digit, and the headline over seeds.

The caption world's zero-shot domains (``zero_shot_domains()``) hold 1,700 images each, one per test source digit:
the seven domains draw the *same* 1,700 sources in seven styles.  Inside a domain every image is its own cluster;
across domains a source digit appears seven times, so a comparison averaged over the domains resamples whole source
digits, each with its seven images (the cluster bootstrap of :func:`ensemble_lab.stats.paired_bootstrap` with
``clusters=sources``).  All domains have the same size, so an accuracy or NLL "averaged over the domains" is the
same number as the accuracy or NLL of the pooled 11,900 images.

The classifiers compared (:data:`METHODS`), all on the per-prompt logits ``l[n, p, c]`` (``(N, P, C)``) of one
pool of templates:

======================  =========================================================================================
``"equal-embeddings"``  CLIP's prompt ensemble: average the normalised text embeddings of each class, re-normalise
                        (:func:`ensemble_lab.prompts.equal_average_logits`)
``"equal-logits"``      the average of the prompts' logits, ``mean_p l[n, p, c]``: the equal baseline of the ZPE
                        authors' code (``agg_logits`` without weights)
``"max-logit"``         ``softmax(score / T)`` weights of the naive, un-debiased max-logit score
``"zpe-pretrain"``      ZPE weights, pre-training means subtracted
``"zpe-test"``          ZPE weights, test means subtracted
``"zpe-both"``          ZPE weights, the average of both subtracted (the paper's score)
``"zpe-select"``        ZPE's prompt selection: equal weights on the prompts whose robust z-score exceeds ``tau``
======================  =========================================================================================

What is random here, and what the seeds of :func:`headline_over_seeds` redraw: the sample of pre-training images
whose mean logits ZPE subtracts (:func:`pretrain_logits`, a fresh draw of ``n`` of the 40,000 pre-training images
per seed) and the unlabelled test images that score the prompts (:func:`scoring_index`, a random subset per seed).
MiniCLIP itself is one training run: its weights ship with the package, and no seed here retrains it.

:class:`PairedResampler` (a :class:`~ensemble_lab.stats.ClusterResampler`) draws the resamples of
``stats.paired_bootstrap`` once per evaluation set and computes each resampled accuracy or NLL from per-cluster sums
(one matrix product per comparison instead of 2,000 metric calls); the tests check its intervals against
``stats.paired_bootstrap`` on the same draws.

Units: accuracy as a fraction (``scale=100`` prints points), NLL in nats, scores in logit units (MiniCLIP's
logit scale is about 18, CLIP's 100).

>>> import torch
>>> y = torch.arange(40) % 2
>>> good, bad = torch.nn.functional.one_hot(y, 2).double(), torch.full((40, 2), 0.5, dtype=torch.float64)
>>> r = PairedResampler(torch.arange(40) // 2, n_resamples=200).compare("accuracy", good, bad, y)
>>> r.difference, r.resolved, r.n_units
(0.5, True, 20)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ... import metrics, prompts
from ..._validation import (
    MAX_COUNT,
    as_tensor,
    check_choice,
    check_int,
    check_positive,
    check_probs,
    check_seed,
    check_strings,
)
from ...stats import ClusterResampler, OverSeeds, PairedDifference, over_seeds

__all__ = [
    "SEEDS",
    "METHODS",
    "METHOD_NAMES",
    "BASELINES",
    "DEBIAS",
    "PairedResampler",
    "PromptWorld",
    "prompt_world",
    "pretrain_logits",
    "scoring_index",
    "method_weights",
    "weights_from_scores",
    "Evaluation",
    "evaluate",
    "Comparator",
    "DomainTable",
    "domain_table",
    "SeedsHeadline",
    "headline_over_seeds",
    "SpuriousReport",
    "spurious_report",
    "ScoreAnatomy",
    "score_anatomy",
    "ANATOMY_GROUPS",
    "ANATOMY_FIELDS",
    "anatomy_by_group",
    "DebiasTable",
    "debias_table",
    "ScoringCurve",
    "scoring_curve",
    "effective_prompts",
]

#: what the headline is repeated over: pre-training sample and scoring images (MiniCLIP is one training run)
SEEDS = (0, 1, 2)
METHODS = (
    "equal-embeddings",
    "equal-logits",
    "max-logit",
    "zpe-pretrain",
    "zpe-test",
    "zpe-both",
    "zpe-select",
)
METHOD_NAMES = {
    "equal-embeddings": "equal (embeddings)",
    "equal-logits": "equal (logits)",
    "max-logit": "max-logit",
    "zpe-pretrain": "ZPE (pre-train)",
    "zpe-test": "ZPE (test)",
    "zpe-both": "ZPE",
    "zpe-select": "ZPE select",
}
#: the two equal-weight baselines ZPE is compared with
BASELINES = ("equal-embeddings", "equal-logits")
#: the debiasing of the ZPE score each weighted method uses
DEBIAS = {
    "max-logit": "none",
    "zpe-pretrain": "pretrain",
    "zpe-test": "test",
    "zpe-both": "both",
    "zpe-select": "both",
}
_COMPARED = ("accuracy", "nll")


# ----------------------------------------------------------------------------------------------------------
# the cluster bootstrap, drawn once per evaluation set
# ----------------------------------------------------------------------------------------------------------


class PairedResampler(ClusterResampler):
    """Paired cluster-bootstrap resamples of one evaluation set, drawn once and shared by many comparisons: a
    :class:`~ensemble_lab.stats.ClusterResampler` (the draws of ``stats.paired_bootstrap(metric, a, b, labels,
    clusters=clusters, n_resamples=n_resamples, seed=seed)``) that compares accuracy and NLL.

    Args:
        clusters: ``(N,)`` integer group ids (the source digit of each image).
        n_resamples: an int in ``[2, 10**7]``.  level: the intervals' coverage in (0, 1).  seed: the draws' seed.
    """

    def compare(self, metric: str, probs_a, probs_b, labels) -> PairedDifference:
        """``metric(probs_a) - metric(probs_b)`` (``"accuracy"`` or ``"nll"``) with its paired interval.

        ``probs_a``, ``probs_b``: ``(N, C)`` probabilities of the N samples the clusters were given for;
        ``labels`` ``(N,)``.  The difference is computed by ``ensemble_lab.metrics`` on the full data.
        """
        check_choice(metric, "metric", _COMPARED)
        a, b = check_probs(probs_a, "probs_a"), check_probs(probs_b, "probs_b")
        for name, p in (("probs_a", a), ("probs_b", b)):
            if p.ndim != 2 or p.shape[0] != self.n or p.shape != a.shape:
                raise ValueError(
                    f"{name} must have shape ({self.n}, C) like probs_a, one row per clustered sample, "
                    f"got shape {tuple(p.shape)}"
                )
        return super().compare(metric, a, b, labels)


# ----------------------------------------------------------------------------------------------------------
# the world: per-prompt logits of every domain, computed once
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptWorld:
    """Per-prompt logits of every zero-shot domain for one pool of templates.

    Attributes:
        templates: the P templates.  groups: P group names (``"generic"``, ``"style:<s>"``, ``"spurious:<w>"``,
            ``"rare"``, or ``""`` when unknown).  domains: the domain names, in order.
        logits: domain -> ``(N, P, C)`` float32 per-prompt logits (a prompt-major view of a contiguous
            ``(P, N, C)``, as the Lab keeps them).
        embedding_logits: domain -> ``(N, C)`` logits of CLIP's equal embedding average of the pool.
        labels, sources: domain -> ``(N,)`` int64 labels and source-digit ids.
        pretrain: ``(M, P, C)`` logits of the pre-training sample the Lab uses.
        class_names: the C class names.
    """

    templates: tuple[str, ...]
    groups: tuple[str, ...]
    domains: tuple[str, ...]
    logits: Mapping[str, torch.Tensor]
    embedding_logits: Mapping[str, torch.Tensor]
    labels: Mapping[str, torch.Tensor]
    sources: Mapping[str, torch.Tensor]
    pretrain: torch.Tensor
    class_names: tuple[str, ...]

    def prompt_accuracy(self, domain: str) -> torch.Tensor:
        """``(P,)`` float64 accuracy of each prompt alone on ``domain`` (fractions)."""
        return metrics.top1_accuracy(self.logits[domain].transpose(0, 1), self.labels[domain])

    def pooled(self, per_domain: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The domains' rows stacked in domain order (the pooled evaluation set)."""
        return torch.cat([per_domain[d] for d in self.domains])


def prompt_world(data, sources: Mapping, templates: Sequence[str], groups: Mapping[str, str] | None = None):
    """A :class:`PromptWorld` from a :class:`~ensemble_lab.artefacts.zeroshot.ZeroShotData`.

    Args:
        data: the cached embeddings (``data.logits``, ``data.pretrain_logits``, ``data.text_embeddings``).
        sources: domain -> ``(N,)`` source-digit ids of its images (``{d: ds.sources for d, ds in
            zero_shot_domains().items()}``), one entry per domain of ``data``.
        templates: the pool (P >= 1 templates).
        groups: template -> group (e.g. :data:`~ensemble_lab.data.captions.PROMPT_GROUPS`); optional.
    """
    templates = tuple(check_strings(templates, "templates"))
    if not isinstance(sources, Mapping):
        raise TypeError(f"sources must be a dict of domain -> (N,) source ids, got {type(sources).__name__}")
    missing = [d for d in data.domains if d not in sources]
    if missing:
        raise ValueError(f"sources must name every domain of data; missing: {', '.join(missing)}")
    if groups is not None and not isinstance(groups, Mapping):
        raise TypeError(f"groups must be a dict of template -> group name or None, got {type(groups).__name__}")
    text = data.text_embeddings(templates)
    logits, embedding, labels, src = {}, {}, {}, {}
    for d in data.domains:
        z = data.logits(d, templates)
        y = data.labels[d]
        s = as_tensor(sources[d], f"sources[{d!r}]", floating=False)
        if s.shape != y.shape or torch.is_floating_point(s):
            raise ValueError(
                f"sources[{d!r}] must hold {y.shape[0]} integer source ids, one per image, got "
                f"shape {tuple(s.shape)} and dtype {s.dtype}"
            )
        embedding[d] = prompts.equal_average_logits(z, text)
        # stored prompt-major (a view of a contiguous (P, N, C)): re-weighting the prompts is one GEMV, no copy
        logits[d], labels[d], src[d] = z.transpose(0, 1).contiguous().transpose(0, 1), y, s.to(torch.int64)
    return PromptWorld(
        templates=templates,
        groups=tuple((groups or {}).get(t, "") for t in templates),
        domains=tuple(data.domains),
        logits=logits,
        embedding_logits=embedding,
        labels=labels,
        sources=src,
        pretrain=data.pretrain_logits(templates),
        class_names=tuple(data.class_names),
    )


def pretrain_logits(data, templates: Sequence[str], seed: int, n: int = 1000, n_pairs: int = 40_000):
    """``(n, P, C)`` logits of a fresh sample of ``n`` pre-training images of the caption world, drawn with
    ``seed``: ``torch.randperm(n_pairs)[:n]`` (sorted) of ``pretraining_pairs(0, n_pairs).images``, the pairs
    MiniCLIP was trained on (world seed 0).  Encoded by ``data.model`` as ``ZeroShotData`` encodes images
    (L2-normalised float32)."""
    from ...data.captions import pretraining_pairs

    seed = check_seed(seed)
    n_pairs = check_int(n_pairs, "n_pairs", minimum=1, maximum=1_000_000)
    n = check_int(n, "n", minimum=1, maximum=n_pairs)
    images = pretraining_pairs(0, n_pairs).images
    index = torch.randperm(n_pairs, generator=torch.Generator().manual_seed(seed))[:n].sort().values
    with torch.no_grad():
        emb = F.normalize(data.model.encode_image(images[index]).float(), dim=-1).cpu()
    return prompts.prompt_logits(emb, data.text_embeddings(templates), data.logit_scale)


def scoring_index(n: int, n_scored: int, seed: int) -> torch.Tensor:
    """Indices of the unlabelled images that score the prompts: the first ``n_scored`` of a permutation of
    ``range(n)`` seeded with ``seed`` (all ``n`` when ``n_scored`` is 0 or at least ``n``); the Lab's rule.

    >>> scoring_index(5, 2, seed=0).tolist()
    [4, 0]
    """
    n = check_int(n, "n", minimum=1, maximum=MAX_COUNT)
    n_scored = check_int(n_scored, "n_scored", minimum=0, maximum=MAX_COUNT)
    seed = check_seed(seed)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n_scored if 0 < n_scored < n else n]


# ----------------------------------------------------------------------------------------------------------
# weights and evaluation
# ----------------------------------------------------------------------------------------------------------


def method_weights(method: str, logits, pretrain=None, *, temperature: float = 1.0, tau: float = 0.5):
    """``(weights (P,), scores (P,))`` of one weighted method (every method but ``"equal-embeddings"``).

    Args:
        method: one of :data:`METHODS` except ``"equal-embeddings"``.
        logits: ``(N, P, C)`` per-prompt logits of the unlabelled images that score the prompts.
        pretrain: ``(M, P, C)`` pre-training logits (needed for ``"zpe-both"``, ``"zpe-pretrain"``,
            ``"zpe-select"``).
        temperature: the softmax temperature of the weights (logit units).  tau: ``zpe-select``'s threshold.

    Returns:
        float64 weights summing to one, and the scores they came from (the ``"both"`` scores for
        ``"equal-logits"``, shown for reference).
    """
    check_choice(method, "method", tuple(m for m in METHODS if m != "equal-embeddings"))
    debias = DEBIAS.get(method, "both")
    scores = prompts.zpe_scores(logits, pretrain if debias in ("both", "pretrain") else None, debias=debias)
    return weights_from_scores(method, scores, temperature=temperature, tau=tau), scores.to(torch.float64)


def weights_from_scores(method: str, scores, *, temperature: float = 1.0, tau: float = 0.5) -> torch.Tensor:
    """``(P,)`` float64 weights of ``method`` from its scores (:func:`method_weights` without the scoring)."""
    check_choice(method, "method", tuple(m for m in METHODS if m != "equal-embeddings"))
    s = as_tensor(scores, "scores").to(torch.float64)
    if method == "equal-logits":
        return torch.full(s.shape, 1.0 / s.shape[0], dtype=torch.float64)
    if method == "zpe-select":
        return prompts.zpe_select(s, tau).to(torch.float64)
    return prompts.zpe_weights(s, temperature).to(torch.float64)


@dataclass(frozen=True)
class Evaluation:
    """Every method on every domain, for one pre-training sample and one set of scoring images.

    Attributes:
        methods: the methods evaluated.  domains: the domains, in order.
        probs: ``(method, domain)`` -> ``(N, C)`` float64 probabilities (softmax of the ensemble logits).
        weights, scores: ``(method, domain)`` -> ``(P,)`` float64 (absent for ``"equal-embeddings"``).
        labels: domain -> ``(N,)``.
    """

    methods: tuple[str, ...]
    domains: tuple[str, ...]
    probs: Mapping[tuple[str, str], torch.Tensor]
    weights: Mapping[tuple[str, str], torch.Tensor]
    scores: Mapping[tuple[str, str], torch.Tensor]
    labels: Mapping[str, torch.Tensor]

    def metric(self, name: str, method: str, domain: str | None = None) -> float:
        """``"accuracy"``, ``"nll"`` or ``"ece"`` of ``method`` on ``domain``, or the mean over the domains
        (``domain=None``; for accuracy and NLL the pooled value, the domains being equally large)."""
        check_choice(name, "name", ("accuracy", "nll", "ece"))
        check_choice(method, "method", self.methods)
        fn = {"accuracy": metrics.accuracy, "nll": metrics.nll, "ece": metrics.ece}[name]
        if domain is not None:
            check_choice(domain, "domain", self.domains)
            return float(fn(self.probs[method, domain], self.labels[domain], validate=False))
        return sum(self.metric(name, method, d) for d in self.domains) / len(self.domains)

    def pooled_probs(self, method: str) -> torch.Tensor:
        return torch.cat([self.probs[method, d] for d in self.domains])


def evaluate(
    world: PromptWorld,
    methods: Sequence[str] = METHODS,
    *,
    pretrain=None,
    n_scored: int = 0,
    seed: int = 0,
    temperature: float = 1.0,
    tau: float = 0.5,
) -> Evaluation:
    """Evaluate ``methods`` on every domain of ``world``.

    Args:
        pretrain: ``(M, P, C)`` pre-training logits (default: the world's, the Lab's sample).
        n_scored: how many unlabelled images of each domain score the prompts (0: all), drawn by
            :func:`scoring_index` with ``seed``.  Accuracy and NLL always use all the domain's images.
        temperature, tau: as in :func:`method_weights`.
    """
    methods = tuple(check_choice(m, "methods", METHODS) for m in check_strings(methods, "methods"))
    pre = world.pretrain if pretrain is None else as_tensor(pretrain, "pretrain")
    check_positive(temperature, "temperature")
    if pre.ndim != 3 or pre.shape[1:] != world.pretrain.shape[1:]:
        raise ValueError(
            f"pretrain must have shape (M, {len(world.templates)}, {len(world.class_names)}), got {tuple(pre.shape)}"
        )
    # ZPE needs only the pre-training MEAN logits: one row of means is the same debiasing for every domain
    pre_mean = pre.to(torch.float64).mean(dim=0, keepdim=True)
    probs, weights, scores = {}, {}, {}
    for d in world.domains:
        z = world.logits[d]
        sub = z[scoring_index(z.shape[0], n_scored, seed)]
        by_debias = {}  # each debiasing scored once per domain
        for m in methods:
            if m == "equal-embeddings":
                ens = world.embedding_logits[d]
            else:
                debias = DEBIAS.get(m, "both")
                if debias not in by_debias:
                    needs = debias in ("both", "pretrain")
                    by_debias[debias] = prompts.zpe_scores(sub, pre_mean if needs else None, debias=debias)
                s = by_debias[debias].to(torch.float64)
                w = weights_from_scores(m, s, temperature=temperature, tau=tau)
                ens = prompts.ensemble_prompt_logits(z, w.to(z.dtype), validate=False)
                weights[m, d], scores[m, d] = w, s
            probs[m, d] = torch.softmax(ens.double(), dim=-1)
    return Evaluation(methods, world.domains, probs, weights, scores, dict(world.labels))


def effective_prompts(weights) -> float:
    """``1 / sum_p w_p^2``: how many prompts the weights effectively average (P for equal weights, 1 for one).

    >>> effective_prompts(torch.tensor([0.5, 0.5, 0.0]))
    2.0
    """
    w = as_tensor(weights, "weights").to(torch.float64)
    if w.ndim != 1 or w.shape[0] < 1 or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError(f"weights must be (P,) non-negative with a positive sum, got shape {tuple(w.shape)}")
    w = w / w.sum()
    return float(1.0 / (w * w).sum())


# ----------------------------------------------------------------------------------------------------------
# paired comparisons per domain and pooled
# ----------------------------------------------------------------------------------------------------------


class Comparator:
    """Paired resamplers for every domain of a world (clusters = the domain's sources) and for the pooled set
    (all domains; clusters = sources, so a source digit is drawn with its image in every domain)."""

    def __init__(self, world: PromptWorld, n_resamples: int = 1000, level: float = 0.9, seed: int = 0):
        self.world = world
        self.resamplers = {d: PairedResampler(world.sources[d], n_resamples, level, seed) for d in world.domains}
        self.pooled = PairedResampler(world.pooled(world.sources), n_resamples, level, seed)
        self._pooled_labels = world.pooled(world.labels)

    def compare(
        self, ev_a: Evaluation, a: str, ev_b: Evaluation, b: str, domain: str | None = None, metric="accuracy"
    ) -> PairedDifference:
        """``metric`` of method ``a`` (in evaluation ``ev_a``) minus method ``b`` (in ``ev_b``), on ``domain``
        or pooled over the domains (``None``), paired and clustered by source."""
        if domain is None:
            return self.pooled.compare(metric, ev_a.pooled_probs(a), ev_b.pooled_probs(b), self._pooled_labels)
        check_choice(domain, "domain", self.world.domains)
        return self.resamplers[domain].compare(
            metric, ev_a.probs[a, domain], ev_b.probs[b, domain], self.world.labels[domain]
        )


@dataclass(frozen=True)
class DomainTable:
    """Experiment 1: accuracy of every method per domain, and ``method - baseline`` per domain and pooled.

    ``accuracy[domain][method]`` (fractions); ``differences[baseline][domain]`` a PairedDifference, with the key
    ``"mean"`` for the pooled comparison over all domains.
    """

    method: str
    domains: tuple[str, ...]
    accuracy: Mapping[str, Mapping[str, float]]
    differences: Mapping[str, Mapping[str, PairedDifference]]

    def resolved(self, baseline: str, sign: int = 1) -> int:
        """How many domains have a resolved difference of that sign (+1: the method wins, -1: it loses)."""
        return sum(
            r.resolved and (r.difference > 0) == (sign > 0)
            for d, r in self.differences[baseline].items()
            if d != "mean"
        )


def domain_table(
    world: PromptWorld,
    evaluation: Evaluation,
    comparator: Comparator,
    method: str = "zpe-both",
    baselines: Sequence[str] = BASELINES,
) -> DomainTable:
    """``method`` against each baseline on every domain and pooled, with paired intervals."""
    accuracy = {d: {m: evaluation.metric("accuracy", m, d) for m in evaluation.methods} for d in world.domains}
    accuracy["mean"] = {m: evaluation.metric("accuracy", m) for m in evaluation.methods}
    diffs = {}
    for b in baselines:
        diffs[b] = {d: comparator.compare(evaluation, method, evaluation, b, d) for d in world.domains}
        diffs[b]["mean"] = comparator.compare(evaluation, method, evaluation, b)
    return DomainTable(method, world.domains, accuracy, diffs)


@dataclass(frozen=True)
class SeedsHeadline:
    """The headline over seeds: pooled accuracy of each method, and ``method - baseline`` with its interval.

    ``accuracy[method]`` and ``difference[baseline]``: :class:`~ensemble_lab.stats.OverSeeds` (fractions);
    ``intervals[seed][baseline]``: that seed's PairedDifference; ``n_scored``, ``n_pretrain``: what each seed drew.
    """

    seeds: tuple[int, ...]
    method: str
    n_scored: int
    n_pretrain: int
    accuracy: Mapping[str, OverSeeds]
    difference: Mapping[str, OverSeeds]
    intervals: Mapping[int, Mapping[str, PairedDifference]]


def headline_over_seeds(
    world: PromptWorld,
    comparator: Comparator,
    pretrain: Mapping[int, torch.Tensor],
    *,
    method: str = "zpe-both",
    baselines: Sequence[str] = BASELINES,
    others: Sequence[str] = ("max-logit",),
    n_scored: int = 850,
    temperature: float = 1.0,
) -> SeedsHeadline:
    """``method`` against each baseline, pooled over the domains, for each seed of ``pretrain``.

    Seed ``s`` uses the pre-training logits ``pretrain[s]`` (:func:`pretrain_logits` with seed ``s``) and scores
    the prompts on ``n_scored`` unlabelled images per domain drawn by :func:`scoring_index` with seed ``s``;
    accuracy is measured on all the images.
    """
    if not isinstance(pretrain, Mapping) or not pretrain:
        raise TypeError("pretrain must be a non-empty dict of seed -> (M, P, C) pre-training logits")
    seeds = tuple(check_seed(s, "pretrain seed") for s in pretrain)
    methods = tuple(dict.fromkeys((method, *baselines, *others)))
    intervals, pre_n = {}, set()

    def experiment(seed: int) -> dict[str, float]:
        ev = evaluate(world, methods, pretrain=pretrain[seed], n_scored=n_scored, seed=seed, temperature=temperature)
        pre_n.add(int(pretrain[seed].shape[0]))
        intervals[seed] = {b: comparator.compare(ev, method, ev, b) for b in baselines}
        out = {f"acc:{m}": ev.metric("accuracy", m) for m in methods}
        out.update({f"diff:{b}": intervals[seed][b].difference for b in baselines})
        return out

    summary = over_seeds(experiment, seeds=seeds)
    return SeedsHeadline(
        seeds=seeds,
        method=method,
        n_scored=n_scored,
        n_pretrain=min(pre_n),
        accuracy={m: summary[f"acc:{m}"] for m in methods},
        difference={b: summary[f"diff:{b}"] for b in baselines},
        intervals=intervals,
    )


# ----------------------------------------------------------------------------------------------------------
# experiment 2: the pre-training bias and the naive score
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpuriousReport:
    """Where the spuriously correlated prompts rank (1 = highest score) under one scoring, and their weight.

    ``ranks``: sorted ranks among the P prompts; ``weight``: their total weight (fraction); ``top``: the
    highest-scoring template.
    """

    domain: str
    method: str
    ranks: tuple[int, ...]
    weight: float
    top: str
    n_prompts: int


def spurious_report(world: PromptWorld, evaluation: Evaluation, domain: str, method: str) -> SpuriousReport:
    """The ranks and total weight of the prompts whose group starts with ``"spurious"`` under ``method``."""
    check_choice(domain, "domain", world.domains)
    if (method, domain) not in evaluation.scores:
        raise ValueError(f"method must be a weighted method of the evaluation, got {method!r}")
    scores, weights = evaluation.scores[method, domain], evaluation.weights[method, domain]
    order = torch.argsort(scores, descending=True, stable=True).tolist()
    spurious = [i for i, g in enumerate(world.groups) if g.startswith("spurious")]
    ranks = tuple(sorted(order.index(i) + 1 for i in spurious))
    return SpuriousReport(
        domain, method, ranks, float(weights[spurious].sum()), world.templates[order[0]], len(world.templates)
    )


@dataclass(frozen=True)
class ScoreAnatomy:
    """Per prompt on one domain (all ``(P,)`` float64 tensors): what the naive score is made of.

    ``accuracy``: the prompt alone.  ``naive``: ``mean_n max_c l``.  ``debiased``: ZPE's score (``"both"``).
    ``level``: ``mean_c mu_test[p, c]``, the part of every logit that is the same for every class and image.
    ``lean``: ``max_c mu_test - mean_c mu_test``, how far the prompt's mean logits favour one class.
    ``spread``: ``mean_n max_c (l - mu_test)``, the image-dependent part (the test-debiased score).
    ``shift``: ``mean_c (mu_test - mu_pre)``, how much higher the prompt's logits are on this domain's images
    than on pre-training images (large for a prompt that describes the domain, e.g. its style word).
    ``favourite``: the fraction of images predicted as the prompt's most predicted class.

    Since ``max_c (mu + r) <= max_c mu + max_c r``, ``naive <= level + lean + spread``; and ZPE's score, with
    ``l - (mu_pre + mu_test) / 2 = (l - mu_test) + (mu_test - mu_pre) / 2``, is the spread plus (inside the max)
    half the shift.
    """

    domain: str
    templates: tuple[str, ...]
    groups: tuple[str, ...]
    accuracy: torch.Tensor
    naive: torch.Tensor
    debiased: torch.Tensor
    level: torch.Tensor
    lean: torch.Tensor
    spread: torch.Tensor
    shift: torch.Tensor
    favourite: torch.Tensor

    def group(self, template_group: str) -> str:
        """The plot group of a template group on this domain: ``"own style"``, ``"other style"``,
        ``"generic"``, ``"spurious"`` or ``"rare"``."""
        if template_group.startswith("style:"):
            return "own style" if template_group == f"style:{self.domain}" else "other style"
        if template_group.startswith("spurious"):
            return "spurious"
        return template_group if template_group in ANATOMY_GROUPS else "generic"


def score_anatomy(world: PromptWorld, domain: str, pretrain=None) -> ScoreAnatomy:
    """The naive score of every prompt on ``domain`` taken apart (see :class:`ScoreAnatomy`)."""
    check_choice(domain, "domain", world.domains)
    z = world.logits[domain].double()
    pre = world.pretrain if pretrain is None else as_tensor(pretrain, "pretrain")
    mu = z.mean(dim=0)  # (P, C)
    pred = z.argmax(dim=2)  # (N, P)
    counts = F.one_hot(pred, z.shape[2]).sum(dim=0).double()  # (P, C)
    return ScoreAnatomy(
        domain=domain,
        templates=world.templates,
        groups=world.groups,
        accuracy=world.prompt_accuracy(domain),
        naive=prompts.zpe_scores(z, debias="none"),
        debiased=prompts.zpe_scores(z, pre.double(), debias="both"),
        level=mu.mean(dim=1),
        lean=mu.max(dim=1).values - mu.mean(dim=1),
        spread=prompts.zpe_scores(z, debias="test"),
        shift=(mu - pre.to(torch.float64).mean(dim=0)).mean(dim=1),
        favourite=counts.max(dim=1).values / z.shape[0],
    )


ANATOMY_GROUPS = ("own style", "other style", "generic", "spurious", "rare")
ANATOMY_FIELDS = ("accuracy", "naive", "debiased", "level", "lean", "spread", "shift", "favourite")


def anatomy_by_group(anatomies: Sequence[ScoreAnatomy]) -> dict[str, dict[str, float]]:
    """Each field of :class:`ScoreAnatomy` averaged over the prompts of each group and over the domains
    (``anatomies``, one per domain): group -> field -> mean (accuracy and favourite as fractions, the rest in
    logit units).  Groups with no prompt are left out."""
    if not anatomies:
        raise ValueError("anatomies must hold at least one ScoreAnatomy")
    out = {}
    for g in ANATOMY_GROUPS:
        per_domain = []
        for a in anatomies:
            idx = [i for i, tg in enumerate(a.groups) if a.group(tg) == g]
            if idx:
                per_domain.append({f: float(getattr(a, f)[idx].mean()) for f in ANATOMY_FIELDS})
        if per_domain:
            out[g] = {f: sum(r[f] for r in per_domain) / len(per_domain) for f in ANATOMY_FIELDS}
    return out


# ----------------------------------------------------------------------------------------------------------
# experiment 3: which debiasing does the work
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DebiasTable:
    """Pooled accuracy, NLL and mean ECE of every method, each method minus ``reference`` (accuracy and NLL)
    with paired intervals, and how many prompts each weighting effectively averages (mean over domains).

    ``score_range[method]``: mean over domains of ``max_p score - min_p score`` (logit units).
    """

    methods: tuple[str, ...]
    reference: str
    accuracy: Mapping[str, float]
    nll: Mapping[str, float]
    ece: Mapping[str, float]
    vs_reference: Mapping[str, Mapping[str, PairedDifference]]
    effective: Mapping[str, float]
    score_range: Mapping[str, float]
    n_prompts: int


def debias_table(evaluation: Evaluation, comparator: Comparator, reference: str = "equal-logits") -> DebiasTable:
    """Every method of ``evaluation`` against ``reference`` (pooled over domains, paired, clustered)."""
    check_choice(reference, "reference", evaluation.methods)
    ms = evaluation.methods
    vs = {
        metric: {
            m: comparator.compare(evaluation, m, evaluation, reference, None, metric) for m in ms if m != reference
        }
        for metric in _COMPARED
    }
    eff, rng = {}, {}
    n_prompts = 0
    for m in ms:
        if (m, evaluation.domains[0]) not in evaluation.weights:
            continue
        ws = [evaluation.weights[m, d] for d in evaluation.domains]
        ss = [evaluation.scores[m, d] for d in evaluation.domains]
        n_prompts = ws[0].shape[0]
        eff[m] = sum(effective_prompts(w) for w in ws) / len(ws)
        rng[m] = sum(float(s.max() - s.min()) for s in ss) / len(ss)
    return DebiasTable(
        methods=ms,
        reference=reference,
        accuracy={m: evaluation.metric("accuracy", m) for m in ms},
        nll={m: evaluation.metric("nll", m) for m in ms},
        ece={m: evaluation.metric("ece", m) for m in ms},
        vs_reference=vs,
        effective=eff,
        score_range=rng,
        n_prompts=n_prompts,
    )


# ----------------------------------------------------------------------------------------------------------
# experiment 4: how many unlabelled images
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringCurve:
    """Pooled ZPE accuracy when ``n`` unlabelled images per domain score the prompts.

    ``accuracy``: ``(S, len(sizes))`` float64, one row per seed (each seed its own scoring images and pre-training
    sample); ``baselines[name]``: the pooled accuracy of each equal baseline (no scoring, no seed);
    ``smallest_vs_all[seed]``: ZPE scored on ``sizes[0]`` images minus ZPE scored on all, paired.
    """

    seeds: tuple[int, ...]
    sizes: tuple[int, ...]
    accuracy: torch.Tensor
    baselines: Mapping[str, float]
    smallest_vs_all: Mapping[int, PairedDifference]


def scoring_curve(
    world: PromptWorld,
    comparator: Comparator,
    pretrain: Mapping[int, torch.Tensor],
    sizes: Sequence[int] = (1, 2, 5, 20, 100, 850),
    *,
    method: str = "zpe-both",
    temperature: float = 1.0,
) -> ScoringCurve:
    """Pooled accuracy of ``method`` scored on each number of images in ``sizes`` (per seed of ``pretrain``),
    and the smallest size against scoring on all images (same seed's pre-training sample)."""
    sizes = tuple(check_int(s, "sizes", minimum=1, maximum=MAX_COUNT) for s in sizes)
    if not sizes:
        raise ValueError("sizes must hold at least one number of images")
    if not isinstance(pretrain, Mapping) or not pretrain:
        raise TypeError("pretrain must be a non-empty dict of seed -> (M, P, C) pre-training logits")
    seeds = tuple(pretrain)
    acc = torch.zeros(len(seeds), len(sizes), dtype=torch.float64)
    small = {}
    for i, s in enumerate(seeds):
        evs = [
            evaluate(world, (method,), pretrain=pretrain[s], n_scored=n, seed=s, temperature=temperature) for n in sizes
        ]
        for j, ev in enumerate(evs):
            acc[i, j] = ev.metric("accuracy", method)
        full = evaluate(world, (method,), pretrain=pretrain[s], n_scored=0, seed=s, temperature=temperature)
        small[s] = comparator.compare(evs[0], method, full, method)
    base = evaluate(world, BASELINES)
    return ScoringCurve(seeds, sizes, acc, {b: base.metric("accuracy", b) for b in BASELINES}, small)
