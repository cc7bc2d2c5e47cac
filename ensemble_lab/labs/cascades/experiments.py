"""The guided experiments of notebook 04 (early-exit cascades): every comparison paired, clustered and over seeds.

Xia & Bouganis, "Window-Based Early-Exit Cascades for Uncertainty Estimation: When Deep Ensembles are More
Efficient than Single Models" (ICCV 2023), run the authors' way (https://github.com/Guoxoug/window-early-exit,
``cascade_results.py``): the operating threshold tau is fitted on the FIRST stage's val scores and correctness
(here for a target val coverage, :data:`COVERAGE`), the window is ``half_width`` either side of tau in quantile
space of those scores (:data:`HALF_WIDTH`, the authors' 1/10), and the "adjusted" window re-estimates the edges on
unlabelled deployment scores (tau kept).  The quality of a cascade is its selective risk at a fixed coverage
(:data:`COVERAGE`, the authors' ``risk@80`` task) read off its own risk-coverage curve on the evaluated split.

Evidence
--------
Each image of the distorted digits comes from one of ~1,700 independent source digits per split (about three
images per source) and the shifted test sets are corrupted copies of the test images, so every comparison is
*paired* (both cascades on the same images) and *clustered* (whole sources are resampled, each with all its
images: ``EnsemblePredictions.sources[split]``), the cluster bootstrap of
:func:`ensemble_lab.stats.paired_bootstrap`.  :class:`ClusterResamples` (an
:class:`ensemble_lab.stats.ClusterResampler`) draws the same resamples once per split and computes every resampled
mean (cost per image) as one matrix product and every resampled risk at a coverage from one sort of the scores (the
resampled data repeat each image as often as its source is drawn, so the risk of the ``i`` most confident is read
off cumulative sums of those counts, ties averaged as in :func:`ensemble_lab.selective.risk_at_coverage`); the
tests check its intervals against ``paired_bootstrap``'s.

Window against threshold at equal cost: for a window that passes on the share ``s`` of the first stage's val
images (``lo < score < hi``), the threshold policy that passes on the same share is the exit threshold at val
coverage ``1 - s`` (:meth:`Cascade.matched_threshold`): both cost the same on val, and about the same on any split
drawn like val.

Units: risks, coverages and shares are fractions (``verdict(..., scale=100)`` prints points), costs are
multiply-accumulates (MACs) per image.  Shapes: member logits ``(K, N, C)``, scores, labels and clusters ``(N,)``.

>>> import torch
>>> r = ClusterResamples(torch.arange(40) // 2, n_resamples=200)
>>> e = r.estimate_mean(torch.ones(40))
>>> e.difference, e.low, e.high, e.n_units
(1.0, 1.0, 1.0, 20)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ... import cascades, selective
from ..._validation import (
    MAX_COUNT,
    as_tensor,
    check_bool,
    check_choice,
    check_confidence_correct,
    check_in_range,
    check_int,
    check_seed,
    check_sequence,
    check_strings,
    check_vector,
)
from ...stats import ClusterResampler, OverSeeds, PairedDifference, over_seeds
from ..base import FIT_SPLIT, lab_work, split_predictions

__all__ = [
    "SEEDS",
    "COVERAGE",
    "HALF_WIDTH",
    "HALF_WIDTHS",
    "SHIFTS",
    "MEDIUM",
    "LARGE",
    "ClusterResamples",
    "Outcome",
    "Cascade",
    "single_outcome",
    "Point",
    "PolicySweep",
    "policy_sweep",
    "ShiftRow",
    "ShiftComparison",
    "shift_comparison",
    "HEADLINE_ROWS",
    "HEADLINE_PAIRS",
    "WIDE",
    "HeadlineRun",
    "headline_run",
    "Headline",
    "HEADLINE_ZOO",
    "headline_predictions",
    "headline",
    "window_by_hand",
]

#: the zoo seeds of the members the headline runs over
SEEDS = (0, 1, 2)
#: tau for this val coverage of the first stage (the Lab's default target), and the coverage at which every
#: cascade's risk is read on the evaluated split (the authors' ``risk@80``)
COVERAGE = 0.8
#: the window's half-width in quantile space of the first stage's val scores (``cascade_results.py``: 1/10)
HALF_WIDTH = 0.1
#: the half-widths of the policy sweep (``plot_policy_comparison.py`` steps by 1/40), 0 .. 0.3: with tau at val
#: level ~0.2, a window wider than ~0.2 reaches the bottom of the scores and is a threshold at its upper edge
HALF_WIDTHS = tuple(i / 40 for i in range(13))
#: the shifted splits of the adjusted-window experiment: each corruption at severity 2
SHIFTS = ("noise-2", "blur-2", "contrast-2", "rotation-2", "occlusion-2", "salt_pepper-2")
#: the architectures of the headline: the cascade's members, and the one larger single model
MEDIUM, LARGE = "mlp-m", "mlp-l"


def _split_sources(predictions, split: str) -> torch.Tensor:
    """The source id of every image of ``split`` (``predictions.sources``); each image its own source when the
    predictions carry none."""
    n = int(predictions.labels[split].shape[0])
    sources = getattr(predictions, "sources", None)
    if sources is None or split not in sources:
        return torch.arange(n)
    s = as_tensor(sources[split], f"predictions.sources[{split!r}]", floating=False)
    if s.shape != (n,):
        raise ValueError(
            f"predictions.sources[{split!r}] must have shape ({n},), one id per image, got {tuple(s.shape)}"
        )
    return s


# ----------------------------------------------------------------------------------------------------------
# the cluster bootstrap of means and of risks at a coverage, drawn once per split
# ----------------------------------------------------------------------------------------------------------


class ClusterResamples(ClusterResampler):
    """:class:`ensemble_lab.stats.ClusterResampler` (the draws of ``paired_bootstrap`` as a count matrix, resampled
    means as one matrix product) with the risk at a coverage resampled too.

    Args:
        clusters: ``(N,)`` integer group ids (the source digit of each image); whole groups are resampled.
        n_resamples, level, seed: those of ``stats.paired_bootstrap(..., clusters=clusters, ...)``.
        chunk: resamples handled at once by :meth:`risks_at_coverage` (memory ``~ 3 * 8 * chunk * N`` bytes).

    A resample repeats each image as often as its cluster is drawn (:attr:`counts` ``(m, U)``); the risk of the
    ``i`` most confident images of the resample is read off the cumulative counts and errors at the ends of the
    tied blocks of one sort, with the tie rule and the arithmetic (one division of exact counts) of
    :func:`ensemble_lab.selective.risk_at_coverage`.
    """

    def __init__(self, clusters, n_resamples: int = 1000, level: float = 0.9, seed: int = 0, *, chunk: int = 100):
        super().__init__(clusters, n_resamples, level, seed)
        self.chunk = check_int(chunk, "chunk", minimum=1, maximum=MAX_COUNT)
        self._copies_t = None

    def estimate_mean(self, values) -> PairedDifference:
        """The mean of ``values`` ``(N,)`` with its interval (``difference`` holds the mean itself)."""
        v = check_vector(values, "values")
        if v.shape[0] != self.n:
            raise ValueError(f"values must have shape ({self.n},), one value per image, got {tuple(v.shape)}")
        v = v.to(torch.float64)
        return self.interval(float(v.mean()), self.resampled_means(v))

    def _checked(self, confidence, correct, coverage):
        conf, ok = check_confidence_correct(confidence, correct)
        if conf.shape[0] != self.n:
            raise ValueError(f"confidence must have shape ({self.n},), one score per image, got {tuple(conf.shape)}")
        device = self.counts.device
        return conf.detach().to(device), ok.to(device), check_in_range(coverage, "coverage", 0.0, 1.0, lo_open=True)

    def risks_at_coverage(self, confidence, correct, coverage: float) -> torch.Tensor:
        """``selective.risk_at_coverage(confidence, correct, coverage)`` on every resample, ``(m,)`` float64.

        confidence ``(N,)`` finite scores, correct ``(N,)`` bool or 0/1, coverage in ``(0, 1]``.
        """
        conf, ok, cov = self._checked(confidence, correct, coverage)
        srt, perm = torch.sort(conf, descending=True, stable=True)
        _, block = torch.unique_consecutive(srt, return_counts=True)
        ends = torch.cumsum(block, 0) - 1  # the last sorted image of each tied block
        ids = self.ids[perm]
        copies = self._copies()
        err = (~ok)[perm].to(copies.dtype)[:, None]
        out = []
        for start in range(0, self.n_resamples, self.chunk):
            w = copies[ids, start : start + self.chunk]  # (N, c): copies of each sorted image in each resample
            cw = torch.cumsum(w, 0)[ends]  # (B, c) images up to each block end (exact integers)
            ce = torch.cumsum(w * err, 0)[ends]  # (B, c) errors among them
            cw, ce = cw.to(torch.float64), ce.to(torch.float64)
            n = cw[-1]
            # i: the smallest integer with i / n >= coverage (as selective's _first_index_reaching), 1 <= i <= n
            i = torch.ceil(cov * n)
            i = torch.where((i - 1) / n >= cov, i - 1, i)
            i = torch.where(i / n < cov, i + 1, i)
            i = torch.minimum(torch.clamp(i, min=1.0), n)
            k = (cw < i).sum(0)  # the block holding the i-th image: the first whose end reaches i
            cols = torch.arange(cw.shape[1], device=cw.device)
            w_end, e_end = cw[k, cols], ce[k, cols]
            before = (k - 1).clamp(min=0)
            w_before = torch.where(k > 0, cw[before, cols], 0.0)
            e_before = torch.where(k > 0, ce[before, cols], 0.0)
            b, j = w_end - w_before, i - w_before
            out.append((e_before * b + j * (e_end - e_before)) / (b * i))
        return torch.cat(out)

    def _copies(self) -> torch.Tensor:
        """``(U, m)``: how often each resample drew each cluster, clusters first (one row gathered per image);
        float32 while every cumulative count stays an exact integer in it (below 2**24), else float64."""
        if self._copies_t is None:
            exact32 = float(self.totals.max()) < 2**24
            self._copies_t = self.counts.T.contiguous().to(torch.float32 if exact32 else torch.float64)
        return self._copies_t

    def estimate_risk(self, confidence, correct, coverage: float) -> PairedDifference:
        """The risk at ``coverage`` (of :func:`~ensemble_lab.selective.risk_at_coverage`) with its interval."""
        full = selective.risk_at_coverage(confidence, correct, coverage)
        return self.interval(full, self.risks_at_coverage(confidence, correct, coverage))

    def compare_risks(self, a: Outcome, b: Outcome, coverage: float) -> PairedDifference:
        """risk(a) - risk(b) at ``coverage``, each read off its own risk-coverage curve, with the paired interval."""
        return self.risks({"a": a, "b": b}, coverage, pairs=(("a", "b"),))[1][("a", "b")]

    def risks(
        self, outcomes: Mapping[str, Outcome], coverage: float, pairs: Sequence[tuple[str, str]] = ()
    ) -> tuple[dict[str, PairedDifference], dict[tuple[str, str], PairedDifference]]:
        """Each outcome's risk at ``coverage`` with its interval, and risk(a) - risk(b) for each pair of names with
        the paired interval: every outcome resampled once (the same draws for all)."""
        if not isinstance(outcomes, Mapping):
            raise TypeError(f"outcomes must be a mapping of names to Outcome, got {type(outcomes).__name__}")
        full, resampled = {}, {}
        for name, o in outcomes.items():
            if not isinstance(o, Outcome):
                raise TypeError(f"outcomes[{name!r}] must be an Outcome, got {type(o).__name__}")
            full[name] = selective.risk_at_coverage(o.confidence, o.correct, coverage)
            resampled[name] = self.risks_at_coverage(o.confidence, o.correct, coverage)
        diffs = {}
        for pair in pairs:
            a, b = pair
            for name in (a, b):
                if name not in outcomes:
                    raise ValueError(f"pairs must name outcomes ({', '.join(outcomes)}), got {name!r}")
            diffs[(a, b)] = self.interval(full[a] - full[b], resampled[a] - resampled[b])
        return {name: self.interval(full[name], resampled[name]) for name in outcomes}, diffs


# ----------------------------------------------------------------------------------------------------------
# a cascade fitted on val, run on any split
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one policy did on one split, per image: ``cost`` ``(N,)`` MACs, ``confidence`` ``(N,)`` the exit score,
    ``correct`` ``(N,)`` bool, ``passed`` ``(N,)`` bool (ran more than the first stage)."""

    cost: torch.Tensor
    confidence: torch.Tensor
    correct: torch.Tensor
    passed: torch.Tensor

    @property
    def macs(self) -> float:
        """Mean MACs per image."""
        return float(self.cost.double().mean())

    @property
    def share_passed(self) -> float:
        """The share of images passed on beyond the first stage."""
        return float(self.passed.double().mean())


class Cascade:
    """The members' cascade, fitted the authors' way on the val split and run on any split.

    Args:
        predictions: ``logits`` (split -> ``(K, N, C)``), ``labels`` (split -> ``(N,)``), optionally ``sources``
            (split -> ``(N,)``), with a ``"val"`` split, e.g. ``zoo.ensemble_predictions(...)``.
        costs: ``(K,)`` MACs per image of each member.
        order: the members run one after another (two or more; default the first two).
        score: the exit score (one of :data:`ensemble_lab.cascades.SCORES`).
        target_coverage: tau of each stage for this val coverage (:func:`ensemble_lab.cascades.fit_windows`).
    """

    def __init__(self, predictions, costs, order=(0, 1), score: str = "msp", target_coverage: float = COVERAGE):
        self._data = split_predictions(predictions, FIT_SPLIT)
        self.predictions = predictions
        self.costs = torch.as_tensor(costs, dtype=torch.float64)
        if (
            self.costs.shape != (self._data.k,)
            or not bool(torch.isfinite(self.costs).all())
            or bool((self.costs < 0).any())
        ):
            raise ValueError(f"costs must be {self._data.k} finite non-negative numbers, got {self.costs.tolist()}")
        order = check_sequence(order, "order", what="member indices")
        if (
            len(order) < 2
            or len(set(order)) != len(order)
            or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self._data.k for i in order)
        ):
            raise ValueError(f"order must list two or more distinct members in 0..{self._data.k - 1}, got {order}")
        self.order = tuple(order)
        self.score = check_choice(score, "score", cascades.SCORES)
        self.target_coverage = check_in_range(target_coverage, "target_coverage", 0.0, 1.0, lo_open=True)
        self._scores: dict[str, torch.Tensor] = {}

    def splits(self) -> tuple[str, ...]:
        """Every split of the predictions, in their order."""
        return tuple(self._data.logits)

    def labels(self, split: str) -> torch.Tensor:
        """``(N,)`` the labels of ``split``."""
        return self._data.split(split)[1]

    def sources(self, split: str) -> torch.Tensor:
        """``(N,)`` the source of every image of ``split`` (each image its own when the predictions carry none)."""
        self._data.split(split)
        return _split_sources(self.predictions, split)

    def stage_scores(self, split: str) -> torch.Tensor:
        """``(K', N)`` every stage's score on ``split`` (cached)."""
        if split not in self._scores:
            z = self._data.split(split)[0]
            self._scores[split] = cascades.stage_scores(z, self.score, order=list(self.order))
        return self._scores[split]

    def windowed_scores(self, split: str) -> torch.Tensor:
        """``(K' - 1, N)`` the scores of the stages that get a window (all but the last)."""
        return self.stage_scores(split)[:-1]

    def windows(self, half_width: float = HALF_WIDTH) -> cascades.CascadeWindows:
        """Each stage's tau (its val scores and correctness, for ``target_coverage``) and window."""
        z, y = self._data.split(FIT_SPLIT)
        correct = (cascades.stage_probs(z, order=list(self.order)).argmax(-1) == y)[:-1]
        return cascades.fit_windows(
            self.windowed_scores(FIT_SPLIT), correct, half_width, target_coverage=self.target_coverage
        )

    def adjusted(self, windows: cascades.CascadeWindows, split: str) -> cascades.CascadeWindows:
        """``windows`` with their edges re-estimated on ``split``'s unlabelled scores (tau kept)."""
        return cascades.adjust_windows(windows, self.windowed_scores(split))

    def val_share(self, windows: cascades.CascadeWindows) -> tuple[float, ...]:
        """The share of val images inside each stage's window (passed on there, if they reach it)."""
        val = self.windowed_scores(FIT_SPLIT).double()
        return tuple(
            float(((windows.lo[j] < val[j]) & (val[j] < windows.hi[j])).double().mean()) for j in range(val.shape[0])
        )

    def matched_threshold(self, windows: cascades.CascadeWindows) -> cascades.CascadeWindows:
        """The threshold policy passing on the same val share at each stage as ``windows``: exit thresholds at val
        coverage ``1 - share`` (at least one val image exits, so coverage ``>= 1 / M``); run it with
        ``policy="threshold"``."""
        val = self.windowed_scores(FIT_SPLIT)
        m = val.shape[1]
        rows = []
        for j, share in enumerate(self.val_share(windows)):
            cov = max(1.0 - share, 1.0 / m)
            rows.append(cascades.fit_windows(val[j], None, 0.0, target_coverage=cov))
        return cascades.CascadeWindows(
            tau=[r.tau[0] for r in rows],
            lo=[r.lo[0] for r in rows],
            hi=[r.hi[0] for r in rows],
            half_width=[0.0] * len(rows),
            level=[r.level[0] for r in rows],
        )

    def run(self, split: str, windows: cascades.CascadeWindows, policy: str = "window") -> Outcome:
        """The cascade on ``split`` with ``windows`` (``policy="threshold"``: pass on while below each tau)."""
        z, y = self._data.split(split)
        r = cascades.fitted_cascade(
            z, windows, score=self.score, costs=self.costs, order=list(self.order), policy=policy
        )
        return Outcome(r.cost.double(), r.confidence, r.predictions == y, r.exit_stage > 0)

    def _stage(self, split: str, j: int) -> Outcome:
        z, y = self._data.split(split)
        probs = cascades.stage_probs(z, order=list(self.order))[j]
        n = y.shape[0]
        cost = float(self.costs[list(self.order[: j + 1])].sum())
        return Outcome(
            torch.full((n,), cost, dtype=torch.float64),
            self.stage_scores(split)[j],
            probs.argmax(-1) == y,
            torch.full((n,), j > 0),
        )

    def first(self, split: str) -> Outcome:
        """The first member alone (every image exits at stage 1)."""
        return self._stage(split, 0)

    def full(self, split: str) -> Outcome:
        """The full ensemble of the members in ``order`` (every image runs every stage)."""
        return self._stage(split, len(self.order) - 1)


def single_outcome(logits, labels, macs: float, score: str = "msp") -> Outcome:
    """One model's outcome: logits ``(N, C)``, labels ``(N,)``, its MACs per image."""
    z = as_tensor(logits, "logits")
    if z.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {tuple(z.shape)}")
    y = as_tensor(labels, "labels", floating=False)
    if y.shape != (z.shape[0],):
        raise ValueError(f"labels must have shape ({z.shape[0]},), got {tuple(y.shape)}")
    n = z.shape[0]
    return Outcome(
        torch.full((n,), float(macs), dtype=torch.float64),
        cascades.confidence_score(z, score),
        z.argmax(-1) == y,
        torch.zeros(n, dtype=torch.bool),
    )


# ----------------------------------------------------------------------------------------------------------
# both policies swept over cost
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One model or policy on the evaluated split: mean ``macs`` per image, ``risk`` at the coverage (with its
    interval: ``risk.difference`` is the risk itself), ``share`` of images passed on beyond the first stage."""

    macs: float
    risk: PairedDifference
    share: float


@dataclass(frozen=True)
class PolicySweep:
    """Both exit policies over cost on one split.

    ``half_widths`` ``(W,)``; ``val_share`` ``(W,)`` the share of val images each window passes on (the threshold
    policy is matched to it); ``window`` / ``threshold``: a :class:`Point` per half-width; ``difference``: window -
    threshold risk at each half-width (paired interval); ``singles``: name -> :class:`Point` (the first member alone,
    the full ensemble and any single models given); ``coverage``: where risks are read.
    """

    split: str
    coverage: float
    half_widths: tuple[float, ...]
    val_share: tuple[float, ...]
    window: tuple[Point, ...]
    threshold: tuple[Point, ...]
    difference: tuple[PairedDifference, ...]
    singles: dict[str, Point]

    def resolved(self) -> tuple[float, ...]:
        """The half-widths at which the window's risk differs from the threshold's with the interval excluding 0."""
        return tuple(q for q, d in zip(self.half_widths, self.difference, strict=True) if d.resolved)


@lab_work()
def policy_sweep(
    cascade: Cascade,
    half_widths: Sequence[float] = HALF_WIDTHS,
    *,
    split: str = "test",
    coverage: float = COVERAGE,
    singles: Mapping[str, tuple] | None = None,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> PolicySweep:
    """The window policy at each half-width against the threshold policy passing on the same val share.

    cascade: a :class:`Cascade`; half_widths: in ``[0, 0.5]``; split: where both are evaluated; coverage: where
    their risks are read; singles: optional name -> ``(logits (N, C), macs)`` of single models on ``split``.
    """
    if not isinstance(cascade, Cascade):
        raise TypeError(f"cascade must be a Cascade, got {type(cascade).__name__}")
    hws = [
        check_in_range(q, f"half_widths[{i}]", 0.0, 0.5)
        for i, q in enumerate(check_sequence(half_widths, "half_widths", what="half-widths"))
    ]
    cov = check_in_range(coverage, "coverage", 0.0, 1.0, lo_open=True)
    y = cascade.labels(split)
    resamples = ClusterResamples(cascade.sources(split), n_resamples, level, seed)
    window, threshold, difference, shares = [], [], [], []
    for q in hws:
        w = cascade.windows(q)
        shares.append(cascade.val_share(w)[0])
        a, b = cascade.run(split, w), cascade.run(split, cascade.matched_threshold(w), policy="threshold")
        risks, diffs = resamples.risks({"window": a, "threshold": b}, cov, pairs=(("window", "threshold"),))
        window.append(Point(a.macs, risks["window"], a.share_passed))
        threshold.append(Point(b.macs, risks["threshold"], b.share_passed))
        difference.append(diffs[("window", "threshold")])
    points = {"first member alone": cascade.first(split), "full ensemble": cascade.full(split)}
    for name, (logits, macs) in (singles or {}).items():
        points[name] = single_outcome(logits, y, macs, cascade.score)
    risks, _ = resamples.risks(points, cov)
    return PolicySweep(
        split=split,
        coverage=cov,
        half_widths=tuple(hws),
        val_share=tuple(shares),
        window=tuple(window),
        threshold=tuple(threshold),
        difference=tuple(difference),
        singles={name: Point(o.macs, risks[name], o.share_passed) for name, o in points.items()},
    )


# ----------------------------------------------------------------------------------------------------------
# the adjusted window under shift
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftRow:
    """Plain (val quantiles) against adjusted (the split's own quantiles) windows on one split.

    ``coverage``: the deployed coverage, the share of the split's first-stage scores ``>= tau`` (no labels):
    risks are read there; ``window_plain`` / ``window_adjusted``: the first stage's ``(lo, hi)``; ``share_*``: the
    share of images passed on; ``macs_*``: mean MACs per image; ``macs_difference``: adjusted - plain;
    ``risk_plain``, ``risk_adjusted``, ``risk_full`` (the full ensemble): risks at ``coverage`` with intervals;
    ``risk_difference``: adjusted - plain (paired).
    """

    split: str
    coverage: float
    window_plain: tuple[float, float]
    window_adjusted: tuple[float, float]
    share_plain: float
    share_adjusted: float
    macs_plain: float
    macs_adjusted: float
    macs_difference: PairedDifference
    risk_plain: PairedDifference
    risk_adjusted: PairedDifference
    risk_full: PairedDifference
    risk_difference: PairedDifference


@dataclass(frozen=True)
class ShiftComparison:
    """:func:`shift_comparison`'s rows (split -> :class:`ShiftRow`), the windows' ``tau`` and ``half_width``, and the
    first stage's scores (split -> ``(N,)``, val included) for the figure."""

    tau: float
    half_width: float
    rows: dict[str, ShiftRow]
    scores: dict[str, torch.Tensor]


@lab_work()
def shift_comparison(
    cascade: Cascade,
    splits: Sequence[str] = ("test", *SHIFTS),
    *,
    half_width: float = HALF_WIDTH,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> ShiftComparison:
    """On each split, the window fitted on val against the same window with its edges re-estimated on that split's
    unlabelled first-stage scores (:func:`ensemble_lab.cascades.adjust_windows`, tau kept)."""
    if not isinstance(cascade, Cascade):
        raise TypeError(f"cascade must be a Cascade, got {type(cascade).__name__}")
    names = check_strings(splits, "splits")
    plain = cascade.windows(half_width)
    rows, scores = {}, {FIT_SPLIT: cascade.windowed_scores(FIT_SPLIT)[0]}
    for split in names:
        resamples = ClusterResamples(cascade.sources(split), n_resamples, level, seed)
        adjusted = cascade.adjusted(plain, split)
        a, b, full = cascade.run(split, plain), cascade.run(split, adjusted), cascade.full(split)
        first = cascade.windowed_scores(split)[0]
        cov = max(float((first.double() >= plain.tau[0]).double().mean()), 1.0 / first.shape[0])
        scores[split] = first
        risks, diffs = resamples.risks({"plain": a, "adjusted": b, "full": full}, cov, pairs=(("adjusted", "plain"),))
        rows[split] = ShiftRow(
            split=split,
            coverage=cov,
            window_plain=(plain.lo[0], plain.hi[0]),
            window_adjusted=(adjusted.lo[0], adjusted.hi[0]),
            share_plain=a.share_passed,
            share_adjusted=b.share_passed,
            macs_plain=a.macs,
            macs_adjusted=b.macs,
            macs_difference=resamples.compare_means(b.cost, a.cost),
            risk_plain=risks["plain"],
            risk_adjusted=risks["adjusted"],
            risk_full=risks["full"],
            risk_difference=diffs[("adjusted", "plain")],
        )
    return ShiftComparison(tau=plain.tau[0], half_width=float(half_width), rows=rows, scores=scores)


# ----------------------------------------------------------------------------------------------------------
# the headline: two cascaded medium members against one large model, over seeds
# ----------------------------------------------------------------------------------------------------------

#: the rows of the headline, in print order: the cascade's first member alone, the window cascade of two members,
#: the threshold cascade passing on the same val share, the full ensembles of two and of four members (four cost
#: about one ``mlp-l``), and one ``mlp-l``
HEADLINE_ROWS = (
    "one mlp-m",
    "window cascade",
    "threshold cascade",
    "2 x mlp-m ensemble",
    "4 x mlp-m ensemble",
    "one mlp-l",
)
#: the members of the wide ensemble (four ``mlp-m`` cost about one ``mlp-l``: 201,728 against 199,168 MACs)
WIDE = 4
#: the differences of risk it reports (a - b)
HEADLINE_PAIRS = (
    ("window cascade", "one mlp-l"),
    ("window cascade", "one mlp-m"),
    ("window cascade", "threshold cascade"),
    ("2 x mlp-m ensemble", "one mlp-l"),
    ("4 x mlp-m ensemble", "one mlp-l"),
)


@dataclass(frozen=True)
class HeadlineRun:
    """One seed of the headline on one split: ``rows`` name -> :class:`Point` (:data:`HEADLINE_ROWS`),
    ``differences`` (a, b) -> risk(a) - risk(b) (:data:`HEADLINE_PAIRS`), the first stage's ``tau`` and ``window``
    ``(lo, hi)``, and the share of ``val`` images the window passes on."""

    seed: int
    split: str
    coverage: float
    tau: float
    window: tuple[float, float]
    val_share: float
    rows: dict[str, Point]
    differences: dict[tuple[str, str], PairedDifference]


@lab_work()
def headline_run(
    medium,
    large,
    *,
    seed: int = 0,
    members: Sequence[int] = (0, 1),
    split: str = "test",
    half_width: float = HALF_WIDTH,
    coverage: float = COVERAGE,
    medium_macs: float | None = None,
    large_macs: float | None = None,
    n_resamples: int = 1000,
    level: float = 0.9,
    bootstrap_seed: int = 0,
) -> HeadlineRun:
    """The cascade of ``medium``'s ``members`` (window ``half_width``, tau for ``coverage`` of the first stage on
    val) against its first member alone, the threshold policy at the same val share, the full ensembles of those
    members and of ``medium``'s first :data:`WIDE` members, and ``large``'s first member, on ``split``; risks read at
    ``coverage`` (rows :data:`HEADLINE_ROWS`, differences :data:`HEADLINE_PAIRS`).

    medium, large: predictions as ``zoo.ensemble_predictions`` returns (``member_macs`` is read when the MACs are
    not given); ``seed`` only labels the run.
    """
    m_macs = float(medium.member_macs if medium_macs is None else medium_macs)
    l_macs = float(large.member_macs if large_macs is None else large_macs)
    k = int(next(iter(medium.logits.values())).shape[0])
    if k < WIDE:
        raise ValueError(f"medium must hold at least {WIDE} members (the wide ensemble), got {k}")
    cascade = Cascade(medium, [m_macs] * k, order=tuple(members), target_coverage=coverage)
    w = cascade.windows(half_width)
    resamples = ClusterResamples(cascade.sources(split), n_resamples, level, bootstrap_seed)
    y = cascade.labels(split)
    ly = as_tensor(large.labels[split], "large.labels", floating=False)
    if ly.shape != y.shape or not bool((ly == y).all()):
        raise ValueError(f"large and medium must hold the same {split!r} images (their labels differ)")
    outcomes = {
        "one mlp-m": cascade.first(split),
        "window cascade": cascade.run(split, w),
        "threshold cascade": cascade.run(split, cascade.matched_threshold(w), policy="threshold"),
        "2 x mlp-m ensemble": cascade.full(split),
        "4 x mlp-m ensemble": Cascade(medium, [m_macs] * k, order=tuple(range(WIDE))).full(split),
        "one mlp-l": single_outcome(large.logits[split][0], y, l_macs, cascade.score),
    }
    risks, diffs = resamples.risks(outcomes, coverage, pairs=HEADLINE_PAIRS)
    return HeadlineRun(
        seed=int(seed),
        split=split,
        coverage=float(coverage),
        tau=w.tau[0],
        window=(w.lo[0], w.hi[0]),
        val_share=cascade.val_share(w)[0],
        rows={name: Point(o.macs, risks[name], o.share_passed) for name, o in outcomes.items()},
        differences=diffs,
    )


@dataclass(frozen=True)
class Headline:
    """The headline over seeds: ``runs`` (one :class:`HeadlineRun` per seed), ``risk`` name -> :class:`OverSeeds`
    of each row's risk, ``macs`` name -> :class:`OverSeeds` of its mean MACs, ``differences`` (a, b) ->
    :class:`OverSeeds` of the risk differences, ``resolved`` (a, b) -> the number of seeds whose interval excludes 0
    with the sign of the mean difference."""

    runs: tuple[HeadlineRun, ...]
    risk: dict[str, OverSeeds]
    macs: dict[str, OverSeeds]
    differences: dict[tuple[str, str], OverSeeds]
    resolved: dict[tuple[str, str], int]


#: the zoo ensembles the headline loads per seed: architecture -> number of members
HEADLINE_ZOO = {MEDIUM: 8, LARGE: 2}


def headline_predictions(seeds: Sequence[int] = SEEDS, *, progress: bool = True) -> dict[tuple[str, int], object]:
    """``(arch, seed) -> zoo.ensemble_predictions("distorted", arch, k=HEADLINE_ZOO[arch], seed=seed)`` for the
    headline's seeds (trained with a progress bar where the cache lacks them; run it in a cell of its own)."""
    from ...artefacts import zoo

    seeds = [check_seed(s, f"seeds[{i}]") for i, s in enumerate(check_sequence(seeds, "seeds", what="seeds"))]
    return {
        (arch, s): zoo.ensemble_predictions("distorted", arch, k=k, seed=s, progress=check_bool(progress, "progress"))
        for s in seeds
        for arch, k in HEADLINE_ZOO.items()
    }


def headline(
    seeds: Sequence[int] = SEEDS,
    *,
    load: Callable[[str, int], object] | Mapping[tuple[str, int], object] | None = None,
    split: str = "test",
    half_width: float = HALF_WIDTH,
    coverage: float = COVERAGE,
    n_resamples: int = 1000,
    level: float = 0.9,
) -> Headline:
    """:func:`headline_run` for each seed: the members of ``zoo.ensemble_predictions("distorted", "mlp-m", k=8,
    seed=s)`` (the first two) and the first member of ``zoo.ensemble_predictions("distorted", "mlp-l", k=2,
    seed=s)`` (:data:`HEADLINE_ZOO`).  ``load``: the predictions of :func:`headline_predictions` (a mapping
    ``(arch, seed) -> predictions``), or a callable ``load(arch, seed)`` (tests); by default the zoo is read here.
    Loading (training, on a cold cache) runs on torch's usual threads, each seed's comparison on one
    (:func:`headline_run`)."""
    seeds = [check_seed(s, f"seeds[{i}]") for i, s in enumerate(check_sequence(seeds, "seeds", what="seeds"))]
    if load is None:
        load = lambda arch, s: headline_predictions((s,))[(arch, s)]  # noqa: E731
    elif isinstance(load, Mapping):
        given = load
        missing = [(arch, s) for s in seeds for arch in HEADLINE_ZOO if (arch, s) not in given]
        if missing:
            raise ValueError(f"load must hold the predictions of every (arch, seed) of the headline, missing {missing}")
        load = lambda arch, s: given[(arch, s)]  # noqa: E731
    elif not callable(load):
        raise TypeError(f"load must be a callable (arch, seed) -> predictions, got {type(load).__name__}")
    runs = {}

    def run(s: int):
        r = headline_run(
            load(MEDIUM, s),
            load(LARGE, s),
            seed=s,
            split=split,
            half_width=half_width,
            coverage=coverage,
            n_resamples=n_resamples,
            level=level,
        )
        runs[s] = r
        out = {f"risk {name}": p.risk.difference for name, p in r.rows.items()}
        out.update({f"macs {name}": p.macs for name, p in r.rows.items()})
        out.update({f"diff {a} | {b}": d.difference for (a, b), d in r.differences.items()})
        return out

    summary = over_seeds(run, seeds=tuple(seeds))
    ordered = tuple(runs[s] for s in seeds)
    resolved = {}
    for pair in HEADLINE_PAIRS:
        sign = math.copysign(1.0, summary[f"diff {pair[0]} | {pair[1]}"].mean)
        resolved[pair] = sum(
            1
            for r in ordered
            if r.differences[pair].resolved and math.copysign(1.0, r.differences[pair].difference) == sign
        )
    return Headline(
        runs=ordered,
        risk={name: summary[f"risk {name}"] for name in HEADLINE_ROWS},
        macs={name: summary[f"macs {name}"] for name in HEADLINE_ROWS},
        differences={pair: summary[f"diff {pair[0]} | {pair[1]}"] for pair in HEADLINE_PAIRS},
        resolved=resolved,
    )


# ----------------------------------------------------------------------------------------------------------
# the exercise's reference
# ----------------------------------------------------------------------------------------------------------


def window_by_hand(val_scores, tau: float, half_width: float, *, validate: bool = True) -> tuple[float, float]:
    """The authors' window written out slowly (the reference of the notebook's exercise): with ``u`` the fraction
    of ``val_scores`` ``(M,)`` that are ``<= tau``, ``lo`` is the smallest val score whose fraction ``<=`` it reaches
    ``u - half_width`` and ``hi`` the same for ``u + half_width``; a level ``<= 0`` gives ``-inf`` and ``>= 1``
    gives ``+inf``.  Python floats.

    >>> window_by_hand([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 0.5, 0.2)
    (0.3, 0.7)
    """
    v = sorted(float(x) for x in as_tensor(val_scores, "val_scores").reshape(-1).tolist())
    if check_bool(validate, "validate") and (not v or not all(math.isfinite(x) for x in v)):
        raise ValueError("val_scores must hold at least one finite score")
    m = len(v)
    u = sum(1 for x in v if x <= tau) / m

    def q(p: float) -> float:
        if p <= 0:
            return -math.inf
        if p >= 1:
            return math.inf
        for i, x in enumerate(v):  # the first order statistic whose level (i + 1) / m reaches p
            if (i + 1) / m >= p:
                return x
        return v[-1]

    return q(u - half_width), q(u + half_width)
