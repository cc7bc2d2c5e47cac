"""The guided experiments of notebook 05 (model soups, WiSE-FT, BANG): every comparison paired and clustered.

The evaluation sets of a :class:`~ensemble_lab.artefacts.soup_world.SoupWorld` (:data:`EVALUATION`):

* ``"val"``: the held-out split the greedy and learned soups are chosen on (1,700 images, one per val source);
* ``"id"``: the in-distribution test split, stickered clean digits (1,700 images, one per test source);
* ``"shift"``: the six shifted styles pooled (6 x 500 images; each style draws its own 500 of the test sources, so
  one source can appear in several styles and its images are not independent).

Every comparison is *paired* (both models on the same images) and *clustered* (whole source digits are resampled,
each with all its images; ``world.sources``): the cluster bootstrap of :func:`ensemble_lab.stats.paired_bootstrap`.
Every number compared here is a mean of per-image terms -- accuracy (``correct``), confidence minus accuracy
(``confidence - correct``), a share of images (an indicator), the cross-entropy -- so a resampled difference is one
ratio of per-cluster sums.  :class:`ClusterMeans` draws the resamples once per evaluation set (the draws of
``paired_bootstrap`` with the same clusters and seed) and computes every resampled mean as one matrix product; the
tests check that its intervals are ``paired_bootstrap``'s.

Units: fractions (accuracy, shares of images, confidence minus accuracy; ``verdict(..., scale=100)`` prints
points) and nats (loss).  Shapes: logits ``(N, C)`` or ``(A, N, C)`` over the alphas of the cached WiSE-FT curves
(:data:`~ensemble_lab.artefacts.soup_world.ALPHAS`), labels and clusters ``(N,)``.

>>> import torch
>>> means = ClusterMeans(torch.arange(40) // 2, n_resamples=200)
>>> r = means.estimate(torch.ones(40))
>>> r.difference, r.low, r.high, r.n_units
(1.0, 1.0, 1.0, 20)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ... import combine as combine_module
from ... import metrics, soups
from ..._numerics import top_label, uniform_bins
from ..._validation import (
    MAX_COUNT,
    as_tensor,
    check_bool,
    check_finite_tensor,
    check_in_range,
    check_int,
    check_labels,
    check_labels_for,
    check_logits,
    check_probs,
    check_seed,
    check_strings,
)
from ...artefacts.soup_world import ALPHAS, SHIFTED, ZERO_SHOT, SoupWorld, endpoint_name
from ...stats import ClusterResampler, OverSeeds, PairedDifference, over_seeds, two_sample_bootstrap
from ..base import FIT_SPLIT
from .lab import ID_SPLIT, SoupMix, mix_soups

__all__ = [
    "EVALUATION",
    "SEEDS",
    "HEADLINE_ALPHA",
    "HEADLINE_LR",
    "SOUP_ROWS",
    "SOUP_PAIRS",
    "ClusterMeans",
    "interval_text",
    "Evaluation",
    "interpolation_fixes",
    "WiseCurve",
    "wise_curve",
    "Fixes",
    "fixes",
    "fixes_over_endpoints",
    "HeadScale",
    "head_scale_effect",
    "LossLine",
    "loss_line",
    "ConfidenceGaps",
    "confidence_minus_accuracy",
    "smoothed_ingredients",
    "confidence_gaps",
    "GreedyRun",
    "greedy_run",
    "SoupComparison",
    "Overlap",
    "seen_sources_effect",
    "soup_comparison",
    "SeedRun",
    "run_seed",
    "Headline",
    "headline",
]

#: evaluation set -> the world's splits it pools
EVALUATION: dict[str, tuple[str, ...]] = {"val": (FIT_SPLIT,), "id": (ID_SPLIT,), "shift": SHIFTED}
#: the data seeds of the soup worlds the headline runs over
SEEDS = (0, 1, 2)
#: the mixing coefficient of the headline, fixed in advance (the WiSE-FT paper's own fixed choice is 0.5)
HEADLINE_ALPHA = 0.5
#: the learning rate of the headline's fine-tuned endpoint (the soups Lab's default, fixed before the worlds were built)
HEADLINE_LR = 1e-3
#: the rows of a soups comparison, and the differences it reports (a - b)
SOUP_ROWS = ("best ingredient", "uniform soup", "greedy soup", "learned soup", "output ensemble")
SOUP_PAIRS = (
    ("greedy soup", "best ingredient"),
    ("uniform soup", "best ingredient"),
    ("learned soup", "best ingredient"),
    ("output ensemble", "best ingredient"),
    ("output ensemble", "greedy soup"),
)


# ----------------------------------------------------------------------------------------------------------
# the cluster bootstrap of means, drawn once per evaluation set
# ----------------------------------------------------------------------------------------------------------


class ClusterMeans(ClusterResampler):
    """Cluster-bootstrap resamples of one evaluation set, drawn once, for the mean of any per-image term: a
    :class:`~ensemble_lab.stats.ClusterResampler` on the cpu whose :meth:`estimate` and :meth:`compare` take
    per-image terms ``(N,)`` or ``(K, N)`` (rather than a metric's name and predictions), with ECE's interval.

    Args:
        clusters: ``(N,)`` integer group ids (the source digit of each image); whole groups are resampled.
        n_resamples: bootstrap resamples, an int in ``[2, 10**7]``.
        level: the intervals' coverage, in (0, 1).
        seed: the draws' seed: they are those of ``stats.paired_bootstrap(..., clusters=clusters,
            n_resamples=n_resamples, seed=seed)`` (``stats.resample_units`` over the distinct ids in sorted order).

    The mean of a per-image term ``v`` on a resample is ``sum_u c_u S_u / sum_u c_u n_u`` (``c_u``: how often
    cluster ``u`` is drawn, ``S_u`` the sum of ``v`` over its images, ``n_u`` their number): exactly the metric
    ``paired_bootstrap`` computes on the expanded resample when the metric is a mean (accuracy, for instance).

    Attributes: those of :class:`~ensemble_lab.stats.ClusterResampler` (``ids``, ``n_units``, ``counts``, ...).
    """

    def __init__(self, clusters, n_resamples: int = 1000, level: float = 0.9, seed: int = 0):
        super().__init__(as_tensor(clusters, "clusters", floating=False).cpu(), n_resamples, level, seed)

    def _values(self, values, name: str) -> torch.Tensor:
        v = as_tensor(values, name).detach().cpu().to(torch.float64)
        if v.ndim < 1 or v.shape[-1] != self.n:
            raise ValueError(f"{name} must have shape (..., {self.n}), one value per image, got {tuple(v.shape)}")
        check_finite_tensor(v, name)
        return v

    def resampled(self, values) -> torch.Tensor:
        """``(n_resamples, ...)`` float64: the mean over each resample's images of ``values`` ``(..., N)``."""
        v = self._values(values, "values")
        sums = self.unit_sums(v.reshape(-1, self.n).T)  # (U, K)
        # counts @ a column-major (U, K), the layout of the module's first version: BLAS rounds by layout
        out = (self.counts @ sums.T.contiguous().T) / self.totals[:, None]  # (m, K)
        return out.reshape(self.n_resamples, *v.shape[:-1])

    def estimate(self, values):
        """The mean of ``values`` over the images with its interval: a
        :class:`~ensemble_lab.stats.PairedDifference` for ``(N,)`` values (``difference`` is the mean; ``resolved``:
        the interval excludes 0), or a tuple of them along the leading axis for ``(K, N)``."""
        v = self._values(values, "values")
        if v.ndim > 2:
            raise ValueError(f"values must have shape (N,) or (K, N), got {tuple(v.shape)}")
        res = self.resampled(v)
        full = v.mean(-1)
        if v.ndim == 1:
            return self.interval(float(full), res)
        return tuple(self.interval(float(full[k]), res[:, k]) for k in range(v.shape[0]))

    def compare(self, a, b):
        """The mean of ``a`` minus that of ``b`` (both ``(N,)`` or ``(K, N)``, per-image terms of two models on the
        same images) with its paired interval, as :meth:`estimate` of ``a - b``."""
        va, vb = self._values(a, "a"), self._values(b, "b")
        if va.shape != vb.shape:
            raise ValueError(f"a and b must have the same shape, got {tuple(va.shape)} and {tuple(vb.shape)}")
        return self.estimate(va - vb)

    def _ece_terms(self, probs, labels, n_bins: int, name: str) -> tuple[float, torch.Tensor]:
        """ECE on the full data and ``(n_resamples,)`` on each resample (top-label, uniform bins, as
        :func:`~ensemble_lab.metrics.ece`): an image's bin is fixed by its confidence, so a resample's ECE is
        ``sum_b |sum_u c_u G_ub| / sum_u c_u n_u`` with ``G_ub`` the sum of ``correct - confidence`` over the
        images of cluster ``u`` in bin ``b``."""
        p = check_probs(as_tensor(probs, name).detach().cpu(), name)
        if p.ndim != 2 or p.shape[0] != self.n:
            raise ValueError(f"{name} must have shape ({self.n}, C), one row per image, got {tuple(p.shape)}")
        y = check_labels(as_tensor(labels, "labels", floating=False).cpu(), self.n, p.shape[1], "labels")
        conf, correct = top_label(p, y)
        bins = uniform_bins(conf, n_bins)[0].to(torch.int64)
        gap = correct.to(torch.float64) - conf.to(torch.float64)
        sums = torch.zeros(self.n_units, n_bins, dtype=torch.float64).index_put_((self.ids, bins), gap, accumulate=True)
        return metrics.ece(p, y, n_bins=n_bins), (self.counts @ sums).abs_().sum(1) / self.totals

    def compare_ece(self, probs_a, probs_b, labels, n_bins: int = 15) -> PairedDifference:
        """``ece(probs_a) - ece(probs_b)`` (top-label, ``n_bins`` uniform bins; ``(N, C)`` probabilities of two
        models on the same images) with its paired cluster-bootstrap interval: the interval of
        ``stats.paired_bootstrap(metrics.ece, ...)`` on the same draws, computed from per-cluster, per-bin sums."""
        n_bins = check_int(n_bins, "n_bins", minimum=1, maximum=MAX_COUNT)
        full_a, res_a = self._ece_terms(probs_a, labels, n_bins, "probs_a")
        full_b, res_b = self._ece_terms(probs_b, labels, n_bins, "probs_b")
        return self.interval(full_a - full_b, res_a - res_b)


def interval_text(result: PairedDifference, *, scale: float = 100.0, digits: int = 1, unit: str = " points") -> str:
    """``"x [lo, hi] unit, resolved"`` (or ``"not resolved"``): :meth:`~ensemble_lab.stats.PairedDifference.verdict`
    without its ``"A - B = "``, for a table whose row already names what is compared.

    >>> interval_text(PairedDifference(-0.1234, -0.15, -0.1, 0.9, True, 1700, 1000))
    '-12.3 [-15.0, -10.0] points, resolved'
    """
    if not isinstance(result, PairedDifference):
        raise TypeError(f"result must be a PairedDifference, got {type(result).__name__}")
    return result.verdict("A", "B", scale=scale, digits=digits, unit=unit).split(" = ", 1)[1]


def _clusters(world: SoupWorld, splits: Sequence[str]) -> torch.Tensor:
    """The source of every image of ``splits`` pooled; each image its own unit when the world has no sources."""
    if all(s in world.sources and world.sources[s].numel() for s in splits):
        return torch.cat([world.sources[s] for s in splits])
    return torch.arange(sum(world.labels[s].shape[0] for s in splits))


def _check_tag(tag: str) -> None:
    if tag not in EVALUATION:
        raise ValueError(f"tag must be one of {tuple(EVALUATION)}, got {tag!r}")


def _checked_names(names: Sequence[str], known: Mapping, what: str) -> tuple[str, ...]:
    """``names`` as a tuple of strings, each a key of ``known`` (the world's ``what``: models, ingredients)."""
    names = tuple(check_strings(names, "names"))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"names must be {what} of the world, got {unknown}")
    return names


class _LazyMeans(dict):
    """evaluation set -> its :class:`ClusterMeans`, drawn on first use (13 MB of counts per set and 1,000 draws)."""

    def __init__(self, world, n_resamples, level, seed):
        super().__init__()
        self._args = (world, n_resamples, level, seed)

    def __missing__(self, tag):
        if tag not in EVALUATION:
            raise KeyError(f"no evaluation set {tag!r}; the sets are {tuple(EVALUATION)}")
        world, n_resamples, level, seed = self._args
        self[tag] = ClusterMeans(_clusters(world, EVALUATION[tag]), n_resamples, level, seed)
        return self[tag]


class Evaluation:
    """A world's evaluation sets (:data:`EVALUATION`), each with its labels and its :class:`ClusterMeans`.

    Args:
        world: the soup world.
        n_resamples, level, seed: those of every interval (as in :func:`~ensemble_lab.stats.paired_bootstrap`).

    ``labels[tag]`` holds each set's pooled labels; ``means[tag]`` its :class:`ClusterMeans`, drawn on first use.
    """

    def __init__(self, world: SoupWorld, n_resamples: int = 1000, level: float = 0.9, seed: int = 0):
        if not isinstance(world, SoupWorld):
            raise TypeError(f"world must be a SoupWorld, got {type(world).__name__}")
        self.world = world
        self.labels = {tag: torch.cat([world.labels[s] for s in splits]) for tag, splits in EVALUATION.items()}
        n_resamples = check_int(n_resamples, "n_resamples", minimum=2, maximum=MAX_COUNT)
        level = check_in_range(level, "level", 0.0, 1.0, lo_open=True, hi_open=True)
        self.means = _LazyMeans(world, n_resamples, level, check_seed(seed))

    def pooled(self, per_split: Mapping[str, torch.Tensor], tag: str) -> torch.Tensor:
        """The tensors of ``per_split`` (split -> ``(..., N_s, C)``) for evaluation set ``tag``, pooled."""
        return torch.cat([per_split[s] for s in EVALUATION[tag]], dim=-2)

    def correct(self, logits: torch.Tensor, tag: str) -> torch.Tensor:
        """``(..., N)`` float64: 1 where the top class of ``logits`` ``(..., N, C)`` is the label of set ``tag``."""
        return (logits.argmax(-1) == self.labels[tag]).to(torch.float64)

    def model_correct(self, name: str, tag: str) -> torch.Tensor:
        """``(N,)`` float64 correctness of the cached model ``name`` (an ingredient or the zero-shot model)."""
        return self.correct(self.pooled(self.world.logits[name], tag), tag)


# ----------------------------------------------------------------------------------------------------------
# WiSE-FT: the curve with intervals, and BANG's count of the images the interpolation fixes
# ----------------------------------------------------------------------------------------------------------


def interpolation_fixes(logits_a, logits_b, logits_mix, labels) -> dict[str, torch.Tensor]:
    """Which images an interpolated model fixes or breaks, against its two endpoints (BANG's "FalseFalseTrue").

    Args:
        logits_a, logits_b: ``(N, C)`` logits of the two endpoints (zero-shot and fine-tuned for WiSE-FT).
        logits_mix: ``(N, C)`` or ``(A, N, C)`` logits of the interpolated model(s).
        labels: ``(N,)`` class indices.

    Returns:
        ``"both_wrong"``, ``"both_right"``: ``(N,)`` bool, whether both endpoints get the image wrong (right);
        ``"fixed"``: ``(..., N)`` bool, both endpoints wrong and the interpolated model right;
        ``"broken"``: ``(..., N)`` bool, both endpoints right and the interpolated model wrong.
        Top classes with ties going to the lowest index (``argmax``).

    Example:
        >>> y = torch.tensor([0, 0, 0])
        >>> a = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
        >>> b = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
        >>> mix = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
        >>> {k: v.tolist() for k, v in interpolation_fixes(a, b, mix, y).items()}
        {'both_wrong': [True, False, False], 'both_right': [False, False, True], 'fixed': [True, False, False], \
'broken': [False, False, True]}
    """
    a, b = check_logits(logits_a, "logits_a"), check_logits(logits_b, "logits_b")
    if b.shape != a.shape:
        raise ValueError(f"logits_b must have the shape of logits_a {tuple(a.shape)}, got {tuple(b.shape)}")
    mix = as_tensor(logits_mix, "logits_mix")
    if mix.ndim not in (2, 3) or tuple(mix.shape[-2:]) != tuple(a.shape):
        raise ValueError(
            f"logits_mix must have shape {tuple(a.shape)} or (A, {a.shape[0]}, {a.shape[1]}), got {tuple(mix.shape)}"
        )
    check_finite_tensor(mix, "logits_mix")
    y = check_labels_for(labels, a, "labels")
    right_a, right_b, right_mix = a.argmax(-1) == y, b.argmax(-1) == y, mix.argmax(-1) == y
    both_wrong, both_right = ~right_a & ~right_b, right_a & right_b
    return {
        "both_wrong": both_wrong,
        "both_right": both_right,
        "fixed": both_wrong & right_mix,
        "broken": both_right & ~right_mix,
    }


def _curve_logits(evaluation: Evaluation, endpoint: str, tag: str, head_scale: float) -> torch.Tensor:
    terms = evaluation.world.curve_terms
    if endpoint not in terms:
        raise ValueError(f"endpoint must be one of the world's WiSE-FT endpoints {sorted(terms)}, got {endpoint!r}")
    if tag not in ("id", "shift"):
        raise ValueError(f"tag must be 'id' or 'shift' (the curves are cached on the test splits), got {tag!r}")
    pooled = evaluation.pooled(terms[endpoint], tag)  # (A, 2, N, C)
    return soups.combine_head_terms(pooled, ALPHAS, head_scale).double()  # (A, N, C)


@dataclass(frozen=True)
class WiseCurve:
    """A WiSE-FT curve from the zero-shot model (``alpha = 0``) to ``endpoint`` (``alpha = 1``), with intervals.

    ``accuracy[tag]``: per alpha, the accuracy on evaluation set ``tag`` (``"id"``, ``"shift"``) with its interval;
    ``minus_zero_shot[tag]`` and ``minus_fine_tuned[tag]``: per alpha, that accuracy minus the zero-shot model's
    (the ``alpha = 0`` end) and minus the fine-tuned endpoint's (``alpha = 1``), paired.  Fractions.
    """

    endpoint: str
    alphas: tuple[float, ...]
    head_scale: float
    accuracy: dict[str, tuple[PairedDifference, ...]]
    minus_zero_shot: dict[str, tuple[PairedDifference, ...]]
    minus_fine_tuned: dict[str, tuple[PairedDifference, ...]]

    def index(self, alpha: float) -> int:
        """The index of the cached alpha nearest ``alpha``."""
        return min(range(len(self.alphas)), key=lambda i: abs(self.alphas[i] - float(alpha)))

    def best(self, tag: str) -> int:
        """The index of the alpha with the highest accuracy on ``tag`` (the first of ties)."""
        acc = [r.difference for r in self.accuracy[tag]]
        return acc.index(max(acc))

    def minus_better_endpoint(self, tag: str, i: int) -> PairedDifference:
        """The accuracy at alpha index ``i`` minus that of the better endpoint on ``tag`` (the harder of the two
        paired comparisons)."""
        zero, fine = self.accuracy[tag][0].difference, self.accuracy[tag][-1].difference
        return self.minus_zero_shot[tag][i] if zero >= fine else self.minus_fine_tuned[tag][i]

    def dip(self, tag: str) -> tuple[int, PairedDifference]:
        """The alpha index of the lowest accuracy on the curve and that accuracy minus the worse endpoint's."""
        acc = [r.difference for r in self.accuracy[tag]]
        i = acc.index(min(acc))
        worse = self.minus_zero_shot if acc[0] <= acc[-1] else self.minus_fine_tuned
        return i, worse[tag][i]


def wise_curve(evaluation: Evaluation, endpoint: str, head_scale: float = 1.0) -> WiseCurve:
    """The WiSE-FT curve to ``endpoint`` (a name of :func:`~ensemble_lab.artefacts.soup_world.endpoint_name`) at
    every cached alpha, its fine-tuned head scaled by ``head_scale`` (1 = plain WiSE-FT), on ``"id"`` and
    ``"shift"``, with intervals (see :class:`WiseCurve`)."""
    accuracy, zero, fine = {}, {}, {}
    for tag in ("id", "shift"):
        correct = evaluation.correct(_curve_logits(evaluation, endpoint, tag, head_scale), tag)  # (A, N)
        means = evaluation.means[tag]
        accuracy[tag] = means.estimate(correct)
        zero[tag] = means.compare(correct, correct[:1].expand_as(correct))
        fine[tag] = means.compare(correct, correct[-1:].expand_as(correct))
    return WiseCurve(endpoint, tuple(ALPHAS), float(head_scale), accuracy, zero, fine)


@dataclass(frozen=True)
class Fixes:
    """BANG's count along a WiSE-FT curve: images both endpoints get wrong that the interpolated model gets right.

    Per evaluation set ``tag`` (``"id"``, ``"shift"``): ``n_images``; ``both_wrong``: how many images both
    endpoints get wrong; per alpha, ``fixed`` (both endpoints wrong, interpolated right) and ``broken`` (both right,
    interpolated wrong) as counts, ``fixed_share`` and ``net_share`` (``fixed - broken``) as fractions of all the
    set's images with intervals.  At ``alpha = 0`` and ``1`` both are 0 by construction.
    """

    endpoint: str
    alphas: tuple[float, ...]
    head_scale: float
    n_images: dict[str, int]
    both_wrong: dict[str, int]
    fixed: dict[str, tuple[int, ...]]
    broken: dict[str, tuple[int, ...]]
    fixed_share: dict[str, tuple[PairedDifference, ...]]
    net_share: dict[str, tuple[PairedDifference, ...]]


def fixes(evaluation: Evaluation, endpoint: str, head_scale: float = 1.0) -> Fixes:
    """Count, at every cached alpha, the images the WiSE-FT model to ``endpoint`` fixes and breaks (see
    :class:`Fixes` and :func:`interpolation_fixes`), on ``"id"`` and ``"shift"``."""
    out: dict[str, dict] = {k: {} for k in ("n", "both_wrong", "fixed", "broken", "fixed_share", "net_share")}
    for tag in ("id", "shift"):
        curve = _curve_logits(evaluation, endpoint, tag, head_scale)
        f = interpolation_fixes(curve[0], curve[-1], curve, evaluation.labels[tag])
        fixed, broken = f["fixed"].to(torch.float64), f["broken"].to(torch.float64)
        out["n"][tag] = int(curve.shape[1])
        out["both_wrong"][tag] = int(f["both_wrong"].sum())
        out["fixed"][tag] = tuple(int(v) for v in fixed.sum(-1).tolist())
        out["broken"][tag] = tuple(int(v) for v in broken.sum(-1).tolist())
        out["fixed_share"][tag] = evaluation.means[tag].estimate(fixed)
        out["net_share"][tag] = evaluation.means[tag].compare(fixed, broken)
    return Fixes(
        endpoint,
        tuple(ALPHAS),
        float(head_scale),
        out["n"],
        out["both_wrong"],
        out["fixed"],
        out["broken"],
        out["fixed_share"],
        out["net_share"],
    )


def fixes_over_endpoints(evaluation: Evaluation, alpha: float = HEADLINE_ALPHA, tag: str = "shift") -> dict:
    """For every WiSE-FT endpoint of the world: ``(both_wrong, fixed, broken)`` image counts at the cached alpha
    nearest ``alpha`` on evaluation set ``tag`` (the count over ingredients rather than over resamples)."""
    out = {}
    for endpoint in evaluation.world.curve_terms:
        f = fixes(evaluation, endpoint)
        i = min(range(len(ALPHAS)), key=lambda j: abs(ALPHAS[j] - float(alpha)))
        out[endpoint] = (f.both_wrong[tag], f.fixed[tag][i], f.broken[tag][i])
    return out


@dataclass(frozen=True)
class HeadScale:
    """Our balance knob at one alpha: WiSE-FT to ``endpoint`` with the fine-tuned head scaled by ``scale`` against
    the same model unscaled (``scale = 1``), on ``"id"`` and ``"shift"``: ``accuracy[tag]`` and ``ece[tag]`` (top-label
    ECE, 15 uniform bins) differences, scaled minus unscaled, paired and clustered by source (the ECE's interval by
    :meth:`ClusterMeans.compare_ece`)."""

    endpoint: str
    alpha: float
    scale: float
    accuracy: dict[str, PairedDifference]
    ece: dict[str, PairedDifference]


def head_scale_effect(
    evaluation: Evaluation,
    endpoint: str,
    scale: float,
    alpha: float = HEADLINE_ALPHA,
    tags: Sequence[str] = ("id", "shift"),
) -> HeadScale:
    """What scaling the fine-tuned head by ``scale`` before averaging changes at ``alpha`` (nearest cached one), on
    the evaluation sets ``tags``; see :class:`HeadScale`."""
    i = min(range(len(ALPHAS)), key=lambda j: abs(ALPHAS[j] - float(alpha)))
    tags = tuple(check_strings(tags, "tags"))
    accuracy, ece = {}, {}
    for tag in tags:
        scaled = _curve_logits(evaluation, endpoint, tag, scale)[i]
        plain = _curve_logits(evaluation, endpoint, tag, 1.0)[i]
        y = evaluation.labels[tag]
        accuracy[tag] = evaluation.means[tag].compare(evaluation.correct(scaled, tag), evaluation.correct(plain, tag))
        ece[tag] = evaluation.means[tag].compare_ece(scaled.softmax(-1), plain.softmax(-1), y)
    return HeadScale(endpoint, ALPHAS[i], float(scale), accuracy, ece)


# ----------------------------------------------------------------------------------------------------------
# the loss along a straight line between two models (the barrier)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossLine:
    """The val loss (nats) and accuracy of the models on the straight line from ``a`` (0) to ``b`` (1).

    ``loss`` and ``accuracy``: per alpha, the mean over the val images with its interval; ``barrier``: the loss at
    the highest point of the line minus the larger of the two endpoint losses, paired (0 when an endpoint is the
    highest point); ``peak``: the alpha index of the highest point.
    """

    a: str
    b: str
    alphas: tuple[float, ...]
    loss: tuple[PairedDifference, ...]
    accuracy: tuple[PairedDifference, ...]
    barrier: PairedDifference
    peak: int


def loss_line(evaluation: Evaluation, a: str, b: str) -> LossLine:
    """The val loss along the line between the models ``a`` and ``b`` (ingredients or the zero-shot model) at the
    cached alphas (:func:`~ensemble_lab.soups.interpolation_logits`: real forward passes, a fraction of a second)."""
    w = evaluation.world
    for name, value in (("a", a), ("b", b)):
        if value not in w.states:
            raise ValueError(f"{name} must be a model of the world {sorted(w.states)}, got {value!r}")
    y = evaluation.labels["val"]
    logits = soups.interpolation_logits(w.model, w.states[a], w.states[b], ALPHAS, w.images[FIT_SPLIT]).double()
    ce = F.cross_entropy(logits.transpose(1, 2), y.expand(logits.shape[0], -1), reduction="none")  # (A, N)
    means = evaluation.means["val"]
    per_alpha = ce.mean(-1)
    peak = int(per_alpha.argmax())
    top_end = 0 if float(per_alpha[0]) >= float(per_alpha[-1]) else len(ALPHAS) - 1
    return LossLine(
        a,
        b,
        tuple(ALPHAS),
        means.estimate(ce),
        means.estimate(evaluation.correct(logits, "val")),
        means.compare(ce[peak], ce[top_end]),
        peak,
    )


# ----------------------------------------------------------------------------------------------------------
# confidence minus accuracy: the ingredients' own, and their output ensembles'
# ----------------------------------------------------------------------------------------------------------


def confidence_minus_accuracy(evaluation: Evaluation, names: Sequence[str], tag: str = "id") -> dict:
    """name -> mean top-label confidence minus accuracy of the cached model ``name`` (an ingredient or the zero-shot
    model) on evaluation set ``tag``, with its interval (> 0: over-confident)."""
    w = evaluation.world
    names = _checked_names(names, w.logits, "models")
    _check_tag(tag)
    y = evaluation.labels[tag]
    out = {}
    for name in names:
        conf, top = evaluation.pooled(w.logits[name], tag).double().softmax(-1).max(-1)
        out[name] = evaluation.means[tag].estimate(conf - (top == y).to(torch.float64))
    return out


def smoothed_ingredients(world: SoupWorld, names: Sequence[str] | None = None) -> tuple[str, ...]:
    """The ingredients (of ``names``, default all) whose recipe uses label smoothing or mixup (``Recipe.bang``)."""
    names = world.ingredients if names is None else tuple(check_strings(names, "names"))
    return tuple(n for n in names if world.recipes[n].bang)


@dataclass(frozen=True)
class ConfidenceGaps:
    """Mean top-label confidence minus accuracy (> 0: over-confident, < 0: under-confident) on evaluation set
    ``tag``, with intervals.

    ``members``: ingredient name -> its own gap; ``ensembles``: ``"all"``, ``"plain"`` (no label smoothing or mixup)
    and ``"smoothed"`` (the others) -> the gap of that group's output ensemble (mean of probabilities);
    ``averaging``: group -> the ensemble's gap minus the mean gap of its members (what averaging the outputs adds,
    paired per image); ``accuracy``: group -> the ensemble's accuracy; ``plain_minus_all``: the plain ensemble's gap
    minus the full ensemble's, paired.  Fractions.
    """

    tag: str
    names: tuple[str, ...]
    smoothed: tuple[str, ...]
    members: dict[str, PairedDifference]
    ensembles: dict[str, PairedDifference]
    averaging: dict[str, PairedDifference]
    accuracy: dict[str, PairedDifference]
    plain_minus_all: PairedDifference


def confidence_gaps(evaluation: Evaluation, names: Sequence[str], tag: str = "id") -> ConfidenceGaps:
    """The confidence gaps of the ingredients ``names`` and of their output ensembles on ``tag`` (see
    :class:`ConfidenceGaps`); ``names`` must hold at least one plain and one smoothed ingredient."""
    w = evaluation.world
    names = _checked_names(names, w.recipes, "ingredients")
    _check_tag(tag)
    smoothed = smoothed_ingredients(w, names)
    plain = tuple(n for n in names if n not in smoothed)
    if not smoothed or not plain:
        raise ValueError(f"names must hold both plain and smoothed ingredients, got plain {plain}, smoothed {smoothed}")
    y = evaluation.labels[tag]
    logits = torch.stack([evaluation.pooled(w.logits[n], tag).double() for n in names])  # (K, N, C)
    probs = logits.softmax(-1)
    conf, top = probs.max(-1)
    gap = conf - (top == y).to(torch.float64)  # (K, N) per-image confidence minus correctness
    means = evaluation.means[tag]
    members = dict(zip(names, means.estimate(gap), strict=True))
    groups = {"all": names, "plain": plain, "smoothed": smoothed}
    ensembles, averaging, accuracy, per_image = {}, {}, {}, {}
    for label, group in groups.items():
        idx = [names.index(n) for n in group]
        p = combine_module.combine(logits[idx], rule="prob")
        c, t = p.max(-1)
        correct = (t == y).to(torch.float64)
        per_image[label] = c - correct
        ensembles[label] = means.estimate(per_image[label])
        averaging[label] = means.compare(per_image[label], gap[idx].mean(0))
        accuracy[label] = means.estimate(correct)
    return ConfidenceGaps(
        tag,
        names,
        smoothed,
        members,
        ensembles,
        averaging,
        accuracy,
        means.compare(per_image["plain"], per_image["all"]),
    )


# ----------------------------------------------------------------------------------------------------------
# soups: the greedy rule, and soups against the best ingredient and the output ensemble
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GreedyRun:
    """One greedy soup: ``order`` (the ingredients by val accuracy, best first), ``kept`` (in the order added),
    ``candidates`` (per tried ingredient: its name, the val accuracy of the soup with it, the best so far before
    it), and ``ties`` (the tried ingredients whose soup scored exactly the best so far) under rule ``strict``."""

    strict: bool
    order: tuple[str, ...]
    kept: tuple[str, ...]
    candidates: tuple[tuple[str, float, float], ...]
    ties: tuple[str, ...]


def greedy_run(world: SoupWorld, names: Sequence[str], strict: bool = True) -> GreedyRun:
    """Greedy soup of ``names`` on the val split, keeping a candidate when the soup's val accuracy rises
    (``strict=True``: ``>``, the model-soups code and :func:`~ensemble_lab.soups.greedy_soup`) or does not drop
    (``strict=False``: ``>=``, the paper's Recipe 1 as written).  Sorted by the ingredients' own val accuracy
    (ties keep the order of ``names``).  Costs one val forward pass per candidate."""
    names = tuple(check_strings(names, "names"))
    strict = check_bool(strict, "strict")
    xv, yv = world.images[FIT_SPLIT], world.labels[FIT_SPLIT]
    own = {n: metrics.top1_accuracy(world.logits[n][FIT_SPLIT], yv) for n in names}
    order = tuple(sorted(names, key=lambda n: -own[n]))

    def score(members) -> float:
        world.model.load_state_dict(soups.uniform_soup([world.states[n] for n in members]))
        with torch.no_grad():
            acc = metrics.top1_accuracy(world.model(xv), yv)
        world.model.load_state_dict(world.states[ZERO_SHOT])
        return acc

    kept, best, candidates, ties = [order[0]], own[order[0]], [], []
    for name in order[1:]:
        s = score([*kept, name])
        candidates.append((name, s, best))
        if s == best:
            ties.append(name)
        if s > best or (not strict and s == best):
            kept.append(name)
            best = s
    return GreedyRun(strict, order, tuple(kept), tuple(candidates), tuple(ties))


@dataclass(frozen=True)
class SoupComparison:
    """Soups of the ingredients ``names`` against the best of them (by val accuracy) and their output ensemble.

    ``accuracy[row][tag]``: accuracy of each row of :data:`SOUP_ROWS` on ``"id"`` and ``"shift"`` with its
    interval; ``differences[(a, b)][tag]``: ``a - b`` for the pairs of :data:`SOUP_PAIRS`, paired.  ``best``: the
    best ingredient; ``kept``: the greedy soup's ingredients in the order added.  Rows absent from the mix (the
    learned soup with ``learned=False``) are absent here.
    """

    names: tuple[str, ...]
    best: str
    kept: tuple[str, ...]
    accuracy: dict[str, dict[str, PairedDifference]]
    differences: dict[tuple[str, str], dict[str, PairedDifference]]


def soup_comparison(
    evaluation: Evaluation, names: Sequence[str], *, learned: bool = True, mix: SoupMix | None = None
) -> SoupComparison:
    """Make the soups of ``names`` (:func:`~ensemble_lab.labs.soups.lab.mix_soups`, seconds; or pass its ``mix``)
    and compare them (see :class:`SoupComparison`)."""
    w = evaluation.world
    names = tuple(check_strings(names, "names"))
    if mix is None:
        mix = mix_soups(w, names, learned=learned)
    val = {n: metrics.top1_accuracy(w.logits[n][FIT_SPLIT], w.labels[FIT_SPLIT]) for n in names}
    best = max(names, key=lambda n: val[n])  # the first of ties, as the Lab
    rows = {"best ingredient": w.logits[best], **mix.logits}
    correct = {
        row: {tag: evaluation.correct(evaluation.pooled(rows[row], tag), tag) for tag in ("id", "shift")}
        for row in SOUP_ROWS
        if row in rows
    }
    accuracy = {row: {tag: evaluation.means[tag].estimate(c) for tag, c in by.items()} for row, by in correct.items()}
    differences = {
        (a, b): {tag: evaluation.means[tag].compare(correct[a][tag], correct[b][tag]) for tag in ("id", "shift")}
        for a, b in SOUP_PAIRS
        if a in correct and b in correct
    }
    return SoupComparison(names, best, mix.greedy_kept, accuracy, differences)


@dataclass(frozen=True)
class Overlap:
    """How much of evaluation set ``tag`` shares its source digits with a set of ``seen`` sources (e.g. those the
    pre-trained model was trained on): ``n_seen`` of ``n_images`` images; ``accuracy[name]``: the model's accuracy
    on the seen images minus on the others, a two-sample interval clustered by source
    (:func:`~ensemble_lab.stats.two_sample_bootstrap`); None when either part is empty."""

    tag: str
    n_images: int
    n_seen: int
    accuracy: dict[str, PairedDifference | None]


def seen_sources_effect(evaluation: Evaluation, seen, names: Sequence[str], tag: str = "id") -> Overlap:
    """Split evaluation set ``tag`` by whether an image's source digit is in ``seen`` (1-D integer source ids) and
    compare each cached model of ``names`` on the two parts (see :class:`Overlap`)."""
    w = evaluation.world
    _check_tag(tag)
    names = _checked_names(names, w.logits, "models")
    ids = as_tensor(seen, "seen", floating=False).cpu()
    if ids.ndim != 1 or torch.is_floating_point(ids) or ids.dtype == torch.bool:
        raise ValueError(
            f"seen must be a 1-D tensor of integer source ids, got dtype {ids.dtype}, shape {tuple(ids.shape)}"
        )
    clusters = _clusters(w, EVALUATION[tag])
    mask = torch.isin(clusters, ids)
    y = evaluation.labels[tag]
    means = evaluation.means[tag]
    out: dict[str, PairedDifference | None] = {}
    for name in names:
        probs = evaluation.pooled(w.logits[name], tag).double().softmax(-1)
        if bool(mask.all()) or not bool(mask.any()):
            out[name] = None
            continue
        out[name] = two_sample_bootstrap(
            metrics.accuracy,
            probs[mask],
            y[mask],
            probs[~mask],
            y[~mask],
            clusters_a=clusters[mask],
            clusters_b=clusters[~mask],
            n_resamples=means.n_resamples,
            level=means.level,
            seed=means.seed,
        )
    return Overlap(tag, int(mask.numel()), int(mask.sum()), out)


# ----------------------------------------------------------------------------------------------------------
# the headline, over data seeds
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedRun:
    """One soup world's headline numbers: ``curves`` (endpoint -> :class:`WiseCurve`: the standard and the BANG
    endpoint at ``HEADLINE_LR``), ``bang_minus_standard`` (tag -> per alpha, the BANG curve's accuracy minus the
    standard one's, paired) and ``soups`` (:class:`SoupComparison` of every ingredient)."""

    seed: int
    curves: dict[str, WiseCurve]
    bang_minus_standard: dict[str, tuple[PairedDifference, ...]]
    soups: SoupComparison


def run_seed(
    world: SoupWorld,
    seed: int,
    *,
    lr: float = HEADLINE_LR,
    learned: bool = False,
    evaluation: Evaluation | None = None,
    soups_mix: SoupMix | None = None,
) -> SeedRun:
    """The headline experiment on one world (``seed`` is its data seed, only recorded): WiSE-FT curves to the
    standard and the BANG endpoint at ``lr``, and the soups of every ingredient (``learned``: with the learned soup,
    seconds more).  ``evaluation`` and ``soups_mix`` reuse what the caller already has for this world."""
    ev = Evaluation(world) if evaluation is None else evaluation
    if ev.world is not world:
        raise ValueError("evaluation must be an Evaluation of world")
    standard, bang = endpoint_name(lr), endpoint_name(lr, True)
    curves = {standard: wise_curve(ev, standard), bang: wise_curve(ev, bang)}
    diff = {}
    for tag in ("id", "shift"):
        a = ev.correct(_curve_logits(ev, bang, tag, 1.0), tag)
        b = ev.correct(_curve_logits(ev, standard, tag, 1.0), tag)
        diff[tag] = ev.means[tag].compare(a, b)
    comparison = soup_comparison(ev, world.ingredients, learned=learned, mix=soups_mix)
    return SeedRun(check_seed(seed), curves, diff, comparison)


@dataclass(frozen=True)
class Headline:
    """The headline over seeds: ``per_seed[seed][key]`` the :class:`~ensemble_lab.stats.PairedDifference` of each
    key, ``summary[key]`` its :class:`~ensemble_lab.stats.OverSeeds` (mean, std, min, max of the differences), and
    ``resolved[key]``: on how many seeds the interval excludes 0 in the direction of the mean."""

    seeds: tuple[int, ...]
    alpha: float
    per_seed: dict[int, dict[str, PairedDifference]]
    summary: dict[str, OverSeeds]
    resolved: dict[str, int]


def headline(runs: Sequence[SeedRun], alpha: float = HEADLINE_ALPHA) -> Headline:
    """Summarise :func:`run_seed` over seeds at the mixing coefficient ``alpha`` (nearest cached one): WiSE-FT
    minus each endpoint (id, shift); WiSE-FT at the alpha with the best shifted test accuracy minus the better
    endpoint (shift; the alpha is chosen on the test data itself, so this one is optimistic); BANG's WiSE-FT minus
    the standard one (shift); greedy soup minus the best ingredient and the output ensemble minus the greedy soup
    (id, shift)."""
    runs = list(runs)
    if not runs or not all(isinstance(r, SeedRun) for r in runs):
        raise TypeError("runs must be a non-empty list of SeedRun (from run_seed)")
    per_seed: dict[int, dict[str, PairedDifference]] = {}
    for run in runs:
        standard = next(c for name, c in run.curves.items() if not name.startswith("BANG"))
        i = standard.index(alpha)
        d = run.soups.differences
        per_seed[run.seed] = {
            "WiSE-FT - zero-shot, id": standard.minus_zero_shot["id"][i],
            "WiSE-FT - fine-tuned, id": standard.minus_fine_tuned["id"][i],
            "WiSE-FT - zero-shot, shift": standard.minus_zero_shot["shift"][i],
            "WiSE-FT - fine-tuned, shift": standard.minus_fine_tuned["shift"][i],
            "WiSE-FT(best alpha) - better end, shift": standard.minus_better_endpoint("shift", standard.best("shift")),
            "BANG WiSE-FT - WiSE-FT, shift": run.bang_minus_standard["shift"][i],
            "greedy soup - best ingredient, id": d[("greedy soup", "best ingredient")]["id"],
            "greedy soup - best ingredient, shift": d[("greedy soup", "best ingredient")]["shift"],
            "output ensemble - greedy soup, id": d[("output ensemble", "greedy soup")]["id"],
            "output ensemble - greedy soup, shift": d[("output ensemble", "greedy soup")]["shift"],
        }
    seeds = tuple(per_seed)
    keys = list(per_seed[seeds[0]])
    summary = over_seeds(lambda s: {k: per_seed[s][k].difference for k in keys}, seeds=seeds)
    resolved = {}
    for k in keys:
        sign = 1.0 if summary[k].mean >= 0 else -1.0
        resolved[k] = sum(1 for s in seeds if (per_seed[s][k].low > 0 if sign > 0 else per_seed[s][k].high < 0))
    return Headline(
        seeds, ALPHAS[min(range(len(ALPHAS)), key=lambda j: abs(ALPHAS[j] - alpha))], per_seed, summary, resolved
    )
