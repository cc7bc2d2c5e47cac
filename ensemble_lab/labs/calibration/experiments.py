"""The guided experiments of notebook 02 (calibration), as functions the notebook only calls and prints.

- :func:`bias_sweep`: both biases of a binned calibration-error estimator, on a
  :class:`~ensemble_lab.calibration_simulation.CalibrationWorld` whose true error is known: the estimates of many
  independent samples over bin counts and sample sizes, l1 (binned ECE) and l2 (binned plug-in and debiased).
- :func:`load_seeds`: the notebook's ensemble (:data:`ENSEMBLE`) for each zoo seed.
- :func:`estimator_table`: l1 and l2 side by side on real predictions, each with its own estimator.
- :func:`calibrated_ensembles`: the ensemble as trained, calibrate -> pool and pool -> calibrate, fitted on one
  split and applied to another; :func:`member_scaling`: one member and its own temperature (Guo et al.'s setting).
- :func:`paired_intervals`: paired, clustered bootstrap intervals of several metric differences at once (the
  same resamples as :func:`ensemble_lab.stats.paired_bootstrap`, and the same intervals, computed from
  per-cluster sums instead of one metric call per resample); :func:`argmax_changes`: the share of predictions
  whose class changes, with its interval.
- :func:`shift_rows`: a temperature fitted on clean validation data, evaluated on shifted test sets.
- :func:`pooling_comparison` and :func:`pooling_over_seeds`: member-first against pool-first calibration, per seed
  with intervals, summarised over seeds.

Units: accuracy, confidence, ECE and the confidence gap are fractions in [0, 1] (the notebook prints them in
percent or points); NLL in nats.  Everything returned is a python float, a tensor or a
:class:`~ensemble_lab.stats.PairedDifference`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ... import calibration, calibration_error, metrics, stats
from ..._numerics import top_label, uniform_bins
from ..._validation import (
    MAX_COUNT,
    MAX_SEED,
    check_in_range,
    check_int,
    check_labels_for,
    check_probs,
    check_seed,
    check_strings,
)
from ...artefacts import zoo
from ...calibration_simulation import CalibrationWorld, binned_errors
from ..base import lab_work

__all__ = [
    "ENSEMBLE",
    "load_seeds",
    "BiasSweep",
    "bias_sweep",
    "estimator_table",
    "confidence_gap",
    "METRICS",
    "paired_intervals",
    "argmax_changes",
    "Calibrated",
    "calibrated_ensembles",
    "member_scaling",
    "ShiftRow",
    "shift_rows",
    "pooling_comparison",
    "pooling_over_seeds",
    "summary_row",
    "SWEEP_ESTIMATORS",
    "ORDER_NAMES",
]

#: estimators of :func:`bias_sweep`: binned l1 (metrics.ece), binned plug-in l2 (metrics.ece(norm="l2")), the
#: rooted debiased l2 (calibration_error.debiased_ece, uniform bins, sqrt(max(d, 0))) and its square d itself
SWEEP_ESTIMATORS = ("l1", "l2", "l2_debiased", "l2_debiased_squared")
ORDER_NAMES = ("as trained", "calibrate-then-pool", "pool-then-calibrate")


def _ints(values, name: str, low: int, high: int = MAX_COUNT) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple, range)):
        raise TypeError(f"{name} must be a list or tuple of ints, got {type(values).__name__}")
    out = tuple(check_int(v, f"{name}[{i}]", minimum=low, maximum=high) for i, v in enumerate(values))
    if not out:
        raise ValueError(f"{name} must hold at least one value, got none")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat a value, got {list(out)}")
    return out


#: the ensemble of notebook 02: 8 mlp-m members trained long (40 epochs), so that each is over-confident
ENSEMBLE = {"dataset": "distorted", "arch": "mlp-m", "k": 8, "epochs": 40}


def load_seeds(seeds=(0, 1, 2), progress: bool = True, **config) -> dict[int, object]:
    """``{seed: zoo.ensemble_predictions(**ENSEMBLE, seed=seed)}`` (``config`` overrides :data:`ENSEMBLE`):
    trained once per seed with a progress bar, then read from the cache."""
    chosen = {**ENSEMBLE, **config}
    return {
        s: zoo.ensemble_predictions(**chosen, seed=s, progress=progress) for s in _ints(seeds, "seeds", 0, MAX_SEED)
    }


# ----------------------------------------------------------------------------------------------------------
# the simulation: both biases of binning
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BiasSweep:
    """Calibration-error estimates of ``repeats`` independent samples of one world.

    Attributes:
        n_bins: the bin counts B (uniform bins), in the order given.
        sizes: the sample sizes N; the sample of size N is the first N draws of a repeat's largest sample, so
            the sizes are nested within a repeat.
        repeats: independent samples per size.
        estimates: estimator name (:data:`SWEEP_ESTIMATORS`) -> ``(len(sizes), len(n_bins), repeats)`` float64.
        true_l1, true_l2: the world's true errors (:meth:`CalibrationWorld.true_error`).
        binned_l1, binned_l2: ``(len(n_bins),)`` what the binned estimators converge to as N grows
            (:meth:`CalibrationWorld.binned_error`), at most the true values.
    """

    n_bins: tuple[int, ...]
    sizes: tuple[int, ...]
    repeats: int
    estimates: dict[str, torch.Tensor]
    true_l1: float
    true_l2: float
    binned_l1: torch.Tensor
    binned_l2: torch.Tensor

    def mean(self, estimator: str = "l1") -> torch.Tensor:
        """``(len(sizes), len(n_bins))`` mean estimate over the repeats."""
        return self._get(estimator).mean(dim=-1)

    def band(self, estimator: str = "l1", level: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles over the repeats, each
        ``(len(sizes), len(n_bins))``: where one sample's estimate falls."""
        lv = check_in_range(level, "level", 0.0, 1.0, lo_open=True, hi_open=True)
        q = torch.tensor([(1 - lv) / 2, (1 + lv) / 2], dtype=torch.float64)
        lo, hi = torch.quantile(self._get(estimator), q, dim=-1)
        return lo, hi

    def at(self, n: int, n_bins: int, estimator: str = "l1") -> float:
        """The mean estimate at sample size ``n`` and ``n_bins`` bins."""
        if n not in self.sizes or n_bins not in self.n_bins:
            raise ValueError(f"n must be one of {list(self.sizes)} and n_bins one of {list(self.n_bins)}")
        return float(self.mean(estimator)[self.sizes.index(n), self.n_bins.index(n_bins)])

    def _get(self, estimator: str) -> torch.Tensor:
        if estimator not in self.estimates:
            raise ValueError(f"estimator must be one of {', '.join(self.estimates)}; got {estimator!r}")
        return self.estimates[estimator]


@lab_work()
def bias_sweep(
    world: CalibrationWorld,
    n_bins: Sequence[int] = (3, 5, 10, 15, 30, 100),
    sizes: Sequence[int] = (100, 300, 1000, 3000, 10000),
    repeats: int = 100,
    seed: int = 0,
) -> BiasSweep:
    """Estimate the calibration error of ``repeats`` independent samples of ``world`` with every bin count and
    sample size: the binned l1 ECE, the binned plug-in l2 and the rooted debiased l2 (uniform bins), the numbers
    ``metrics.ece`` and ``calibration_error.debiased_ece`` give on the same predictions
    (:func:`~ensemble_lab.calibration_simulation.binned_errors`, all repeats in one pass).

    The repeats are ``world.sample_top_label(max(sizes), repeats, seed)``; the sample of size N is the first N
    predictions of each repeat, so every estimate of a repeat sees the same data (same seed, same estimates).

    >>> from ensemble_lab.calibration_simulation import linear_world
    >>> s = bias_sweep(linear_world(slope=1.0), n_bins=(5, 50), sizes=(200,), repeats=20)
    >>> s.true_l1, bool(s.at(200, 50) > s.at(200, 5) > 0)
    (0.0, True)
    """
    if not isinstance(world, CalibrationWorld):
        raise TypeError(f"world must be a CalibrationWorld, got {type(world).__name__}")
    bins = _ints(n_bins, "n_bins", 1, 10_000)
    ns = _ints(sizes, "sizes", 2, MAX_COUNT)
    r = check_int(repeats, "repeats", minimum=2, maximum=100_000)
    conf, correct = world.sample_top_label(max(ns), r, check_seed(seed))
    out = {name: torch.zeros(len(ns), len(bins), r, dtype=torch.float64) for name in SWEEP_ESTIMATORS}
    for i, n in enumerate(ns):
        c, k = conf[:, :n], correct[:, :n]
        for j, b in enumerate(bins):
            errors = binned_errors(c, k, b)
            for name in SWEEP_ESTIMATORS:
                out[name][i, j] = errors[name]
    return BiasSweep(
        n_bins=bins,
        sizes=ns,
        repeats=r,
        estimates=out,
        true_l1=world.true_error("l1"),
        true_l2=world.true_error("l2"),
        binned_l1=torch.tensor([world.binned_error(b, "l1") for b in bins], dtype=torch.float64),
        binned_l2=torch.tensor([world.binned_error(b, "l2") for b in bins], dtype=torch.float64),
    )


# ----------------------------------------------------------------------------------------------------------
# l1 and l2 on real predictions
# ----------------------------------------------------------------------------------------------------------


@lab_work()
def estimator_table(probs, labels, n_bins: Sequence[int] = (5, 10, 15, 30, 50, 100)) -> dict[str, tuple[float, ...]]:
    """l1 and l2 calibration error of ``probs`` ``(N, C)`` against ``labels`` ``(N,)``, each with its own
    estimators, one value per bin count (uniform bins):

    - ``"l1 binned"``: ``metrics.ece`` (Guo et al.'s ECE); ``"l1 smooth"``: ``calibration_error.smooth_ece``
      (Blasiok & Nakkiran, no bins: the same value for every entry);
    - ``"l2 binned"``: ``metrics.ece(norm="l2")``, the plug-in; ``"l2 debiased"``: the rooted
      ``calibration_error.debiased_ece`` with the same uniform bins (Kumar et al.).

    For the same bins the binned l2 is never below the binned l1 (the root mean square of the bins' gaps is at
    least their mean absolute value): the two norms are different quantities, not two estimates of one.
    """
    p = check_probs(probs)
    bins = _ints(n_bins, "n_bins", 1, 10_000)
    smooth = calibration_error.smooth_ece(p, labels)
    return {
        "l1 binned": tuple(metrics.ece(p, labels, n_bins=b) for b in bins),
        "l1 smooth": (smooth,) * len(bins),
        "l2 binned": tuple(metrics.ece(p, labels, n_bins=b, norm="l2") for b in bins),
        "l2 debiased": tuple(
            calibration_error.debiased_ece(p, labels, n_bins=b, strategy="uniform", squared=False) for b in bins
        ),
    }


# ----------------------------------------------------------------------------------------------------------
# paired, clustered intervals of several metrics at once
# ----------------------------------------------------------------------------------------------------------


def confidence_gap(probs, labels, *, validate: bool = True) -> float:
    """Mean top-label confidence minus accuracy: > 0 over-confident, < 0 under-confident (a fraction).

    >>> round(confidence_gap(torch.tensor([[0.9, 0.1], [0.7, 0.3]]), torch.tensor([0, 1])), 6)
    0.3
    """
    p = check_probs(probs) if validate else probs
    acc = metrics.accuracy(p, labels, validate=validate)
    return float(p.max(dim=1).values.double().mean()) - acc


#: the metrics :func:`paired_intervals` computes from per-cluster sums, and the package function each one equals
METRICS: dict[str, Callable] = {
    "accuracy": metrics.accuracy,
    "nll": metrics.nll,
    "ece": metrics.ece,  # uniform bins, n_bins as passed
    "confidence_gap": confidence_gap,
}


def _per_unit(probs: torch.Tensor, labels: torch.Tensor, resampler: stats.ClusterResampler, n_bins: int):
    """Per-unit sums ``(U, 4 + 2B)``: samples, hits, confidence, NLL, then per-bin confidence and hits."""
    conf, correct = top_label(probs, labels)
    conf64, hit = conf.double(), correct.double()
    tiny = torch.finfo(probs.dtype).tiny
    nll = -torch.log(probs.gather(1, labels[:, None]).squeeze(1).clamp(min=tiny)).double()
    bins = uniform_bins(conf, n_bins)[0].to(torch.int64)
    n = probs.shape[0]
    rows = torch.zeros(n, 4 + 2 * n_bins, dtype=torch.float64)
    rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3] = 1.0, hit, conf64, nll
    idx = torch.arange(n)
    rows[idx, 4 + bins] = conf64
    rows[idx, 4 + n_bins + bins] = hit
    return resampler.unit_sums(rows)


def _values(sums: torch.Tensor, n_bins: int) -> dict[str, torch.Tensor]:
    """Each metric from summed rows ``(..., 4 + 2B)``."""
    n = sums[..., 0]
    bin_conf, bin_hit = sums[..., 4 : 4 + n_bins], sums[..., 4 + n_bins :]
    return {
        "accuracy": sums[..., 1] / n,
        "nll": sums[..., 3] / n,
        "ece": (bin_hit - bin_conf).abs().sum(dim=-1) / n,
        "confidence_gap": (sums[..., 2] - sums[..., 1]) / n,
    }


@lab_work()
def paired_intervals(
    pred_a,
    pred_b,
    labels,
    *,
    clusters=None,
    names: Sequence[str] = ("accuracy", "nll", "ece", "confidence_gap"),
    n_bins: int = 15,
    n_resamples: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> dict[str, stats.PairedDifference]:
    """``metric(pred_a) - metric(pred_b)`` with its paired (clustered) bootstrap interval, for several metrics.

    The same resamples and the same percentile interval as ``stats.paired_bootstrap(METRICS[name], pred_a,
    pred_b, labels, clusters=clusters, n_resamples=..., level=..., seed=...)`` (with ``n_bins`` bound for
    ``"ece"``, uniform bins), equal to float rounding, but every resample is a weighted sum of per-cluster sums
    (each of the metrics is a sum over samples, and uniform bins do not depend on the resample), so a thousand
    resamples of every metric cost about one metric call.

    Args:
        pred_a, pred_b: ``(N, C)`` probabilities of the two ensembles on the same samples.
        labels: ``(N,)`` int labels.
        clusters: ``(N,)`` integer group ids (the source of each image): whole groups are resampled.
        names: metrics among :data:`METRICS`.

    Returns:
        name -> :class:`~ensemble_lab.stats.PairedDifference`.

    >>> y = torch.arange(8) % 2
    >>> a = torch.nn.functional.one_hot(y, 2).double() * 0.8 + 0.1
    >>> flat = torch.full((8, 2), 0.5, dtype=torch.float64)  # ties go to class 0: right on half the samples
    >>> r = paired_intervals(a, flat, y, clusters=torch.arange(8) // 2, n_resamples=50)
    >>> round(r["accuracy"].difference, 3), r["accuracy"].n_units
    (0.5, 4)
    """
    a = check_probs(pred_a, "pred_a")
    b = check_probs(pred_b, "pred_b")
    if b.shape != a.shape:
        raise ValueError(f"pred_b must have the shape of pred_a {tuple(a.shape)}, got {tuple(b.shape)}")
    y = check_labels_for(labels, a)
    wanted = check_strings(names, "names")
    for name in wanted:
        if name not in METRICS:
            raise ValueError(f"names must be among {', '.join(METRICS)}; got {name!r}")
    bins = check_int(n_bins, "n_bins", minimum=1, maximum=10_000)
    m = check_int(n_resamples, "n_resamples", minimum=2, maximum=100_000)
    lv = check_in_range(level, "level", 0.0, 1.0, lo_open=True, hi_open=True)
    r = stats.ClusterResampler(clusters, m, lv, seed, n=a.shape[0])
    sums_a, sums_b = _per_unit(a, y, r, bins), _per_unit(b, y, r, bins)
    full_a, full_b = _values(sums_a.sum(0), bins), _values(sums_b.sum(0), bins)
    boot_a, boot_b = _values(r.counts @ sums_a, bins), _values(r.counts @ sums_b, bins)
    return {name: r.interval(full_a[name] - full_b[name], boot_a[name] - boot_b[name]) for name in wanted}


@lab_work()
def argmax_changes(
    pred_a, pred_b, *, clusters=None, n_resamples: int = 1000, level: float = 0.9, seed: int = 0
) -> stats.PairedDifference:
    """The share of samples whose predicted class (argmax, ties to the lowest index) differs between ``pred_a``
    and ``pred_b`` ``(N, C)``, with its (clustered) bootstrap interval.

    Equal to ``stats.paired_bootstrap(metrics.accuracy, pred_a, pred_b, labels=argmax(pred_a), ...)``: the
    accuracy of ``pred_a`` against its own argmax is 1, so the difference is the share that changed.

    >>> a = torch.tensor([[0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.1, 0.9]])
    >>> argmax_changes(a, a.flip(0), n_resamples=20).difference
    1.0
    """
    a = check_probs(pred_a, "pred_a")
    b = check_probs(pred_b, "pred_b")
    if b.shape != a.shape:
        raise ValueError(f"pred_b must have the shape of pred_a {tuple(a.shape)}, got {tuple(b.shape)}")
    own = a.argmax(dim=1)  # the first maximal index, the class every metric of the package predicts
    return paired_intervals(
        a, b, own, clusters=clusters, names=("accuracy",), n_resamples=n_resamples, level=level, seed=seed
    )["accuracy"]


# ----------------------------------------------------------------------------------------------------------
# calibrating an ensemble: the two orders
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibrated:
    """One ensemble calibrated both ways on ``fit_split`` and applied to ``split``.

    Attributes:
        split, fit_split: where it was applied and where the temperatures were fitted.
        temperature: the pool -> calibrate temperature (one, after pooling).
        member_temperatures: ``(K,)`` the calibrate -> pool temperatures (one per member).
        probs: name (:data:`ORDER_NAMES`) -> ``(N, C)`` probabilities on ``split``.
        labels, sources: ``(N,)`` labels and source ids of ``split``.
    """

    split: str
    fit_split: str
    temperature: float
    member_temperatures: torch.Tensor
    probs: dict[str, torch.Tensor]
    labels: torch.Tensor
    sources: torch.Tensor | None


@lab_work()
def calibrated_ensembles(predictions, split: str = "test", fit_split: str = "val", rule: str = "prob") -> Calibrated:
    """The ensemble of ``predictions`` (``logits``/``labels``/``sources`` by split, e.g.
    ``zoo.ensemble_predictions(...)``) as trained, calibrated member-first and pool-first, with the temperatures
    fitted by NLL on ``fit_split`` (``calibration.calibrate_then_pool`` / ``pool_then_calibrate``) and applied to
    ``split``.  Probabilities are float64."""
    for name, value in (("split", split), ("fit_split", fit_split)):
        if value not in predictions.logits:
            raise ValueError(f"{name} must be one of {', '.join(predictions.logits)}; got {value!r}")
    z_fit, y_fit = predictions.logits[fit_split].double(), predictions.labels[fit_split]
    z = predictions.logits[split].double()
    ptc = calibration.pool_then_calibrate(z_fit, y_fit, rule=rule)
    ctp = calibration.calibrate_then_pool(z_fit, y_fit, rule=rule)
    probs = {
        ORDER_NAMES[0]: calibration.pooled_logits(z, rule=rule).exp(),
        ORDER_NAMES[1]: ctp.apply(z),
        ORDER_NAMES[2]: ptc.apply(z),
    }
    sources = getattr(predictions, "sources", None)
    return Calibrated(
        split=split,
        fit_split=fit_split,
        temperature=float(ptc.temperature),
        member_temperatures=ctp.member_temperatures,
        probs=probs,
        labels=predictions.labels[split],
        sources=None if sources is None else sources[split],
    )


@lab_work()
def summary_row(probs, labels, n_bins: int = 15) -> dict[str, float]:
    """accuracy, confidence (mean top-label), the gap, NLL, ECE (l1) and the binned l2 error of one ensemble."""
    row = metrics.summary(probs, labels, n_bins=n_bins)
    row["confidence"] = float(check_probs(probs).max(dim=1).values.double().mean())
    row["confidence_gap"] = row["confidence"] - row["accuracy"]
    row["ece_l2"] = metrics.ece(probs, labels, n_bins=n_bins, norm="l2")
    return row


@lab_work()
def member_scaling(
    predictions,
    member: int = 0,
    split: str = "test",
    fit_split: str = "val",
    n_bins: int = 15,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """Guo et al.'s setting: one network, one temperature fitted by NLL on ``fit_split``
    (``calibration.fit_temperature``), applied to ``split``.

    Returns ``{"temperature", "before", "after"`` (``(N, C)`` probabilities), ``"rows"`` (``"before"``/``"after"``
    -> :func:`summary_row`), ``"change"`` (after - before, metric -> PairedDifference clustered by the split's
    sources) and ``"changed"``: how many predictions change class (0: a temperature keeps one network's argmax)}.
    """
    k = check_int(member, "member", minimum=0, maximum=predictions.logits[split].shape[0] - 1)
    t = calibration.fit_temperature(predictions.logits[fit_split][k].double(), predictions.labels[fit_split])
    z, y = predictions.logits[split][k].double(), predictions.labels[split]
    before, after = torch.softmax(z, dim=-1), calibration.apply_temperature(z, t)
    sources = predictions.sources[split]
    return {
        "temperature": t,
        "before": before,
        "after": after,
        "rows": {"before": summary_row(before, y, n_bins), "after": summary_row(after, y, n_bins)},
        "change": paired_intervals(
            after, before, y, clusters=sources, n_bins=n_bins, n_resamples=n_resamples, seed=seed
        ),
        "changed": int((before.argmax(dim=1) != after.argmax(dim=1)).sum()),
    }


# ----------------------------------------------------------------------------------------------------------
# a clean temperature under shift
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShiftRow:
    """One split of :func:`shift_rows`: ``before``/``after`` the clean temperature (summary rows), ``change``:
    after - before of each metric with its clustered interval, and ``needed``: the temperature fitted on the split
    itself (what it would have needed; an in-sample number, for comparison only)."""

    split: str
    before: dict[str, float]
    after: dict[str, float]
    change: dict[str, stats.PairedDifference]
    needed: float


@lab_work()
def shift_rows(
    predictions,
    splits: Sequence[str],
    fit_split: str = "val",
    n_bins: int = 15,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, list[ShiftRow]]:
    """Fit one temperature after pooling on ``fit_split``; for each of ``splits`` compare the ensemble before and
    after it (paired, clustered by ``predictions.sources[split]``) and fit the temperature the split needed.

    Returns ``(temperature, rows)``.
    """
    names = check_strings(list(splits), "splits")
    z_fit = predictions.logits[fit_split].double()
    ptc = calibration.pool_then_calibrate(z_fit, predictions.labels[fit_split])
    rows = []
    for split in names:
        if split not in predictions.logits:
            raise ValueError(f"splits must name splits of the predictions; got {split!r}")
        z, y = predictions.logits[split].double(), predictions.labels[split]
        before, after = calibration.pooled_logits(z).exp(), ptc.apply(z)
        change = paired_intervals(
            after, before, y, clusters=predictions.sources[split], n_bins=n_bins, n_resamples=n_resamples, seed=seed
        )
        needed = calibration.pool_then_calibrate(z, y).temperature
        rows.append(ShiftRow(split, summary_row(before, y, n_bins), summary_row(after, y, n_bins), change, needed))
    return float(ptc.temperature), rows


# ----------------------------------------------------------------------------------------------------------
# member-first against pool-first
# ----------------------------------------------------------------------------------------------------------


@lab_work()
def pooling_comparison(
    predictions, split: str = "test", fit_split: str = "val", n_bins: int = 15, n_resamples: int = 1000, seed: int = 0
) -> dict:
    """Calibrate-then-pool against pool-then-calibrate (and each against the ensemble as trained) on ``split``.

    Returns a dict with ``"calibrated"`` (:class:`Calibrated`), ``"rows"`` (name -> :func:`summary_row`),
    ``"ctp_minus_ptc"`` and ``"ctp_minus_trained"``, ``"ptc_minus_trained"`` (metric -> PairedDifference, clustered
    by the split's sources), and ``"changed"``: the share of predictions whose class calibrate-then-pool changes
    (:func:`argmax_changes` against the ensemble as trained), with ``"changed_ptc"``, the count pool-then-calibrate
    changes (0: one temperature after pooling keeps every argmax).
    """
    cal = calibrated_ensembles(predictions, split, fit_split)
    p, y, src = cal.probs, cal.labels, cal.sources
    trained, ctp, ptc = (p[name] for name in ORDER_NAMES)
    kw = {"clusters": src, "n_bins": n_bins, "n_resamples": n_resamples, "seed": seed}
    return {
        "calibrated": cal,
        "rows": {name: summary_row(p[name], y, n_bins) for name in ORDER_NAMES},
        "ctp_minus_ptc": paired_intervals(ctp, ptc, y, **kw),
        "ctp_minus_trained": paired_intervals(ctp, trained, y, **kw),
        "ptc_minus_trained": paired_intervals(ptc, trained, y, **kw),
        "changed": argmax_changes(trained, ctp, clusters=src, n_resamples=n_resamples, seed=seed),
        "changed_ptc": int((trained.argmax(dim=1) != ptc.argmax(dim=1)).sum()),
    }


@lab_work()
def pooling_over_seeds(runs: Mapping[int, object], **kwargs) -> tuple[dict, dict]:
    """:func:`pooling_comparison` for the ensemble of each seed in ``runs`` (seed -> predictions, e.g.
    :func:`load_seeds`), and the headline numbers summarised over the seeds (``kwargs`` go to
    :func:`pooling_comparison`).

    Returns ``(per_seed, summary)``: ``per_seed`` seed -> the comparison; ``summary`` name ->
    :class:`~ensemble_lab.stats.OverSeeds` for ``"ece ctp - ptc"``, ``"nll ctp - ptc"``, ``"gap ctp - ptc"``,
    ``"gap ctp"``, ``"gap ptc"``, ``"gap trained"`` (confidence minus accuracy), ``"changed ctp"`` (the share
    of predictions whose class calibrate -> pool changes), ``"ece ptc - trained"`` and ``"nll ptc - trained"``.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise TypeError(f"runs must be a non-empty mapping of seed -> predictions, got {type(runs).__name__}")
    per_seed = {}

    def experiment(seed: int) -> dict[str, float]:
        r = per_seed[seed] = pooling_comparison(runs[seed], **kwargs)
        d, rows = r["ctp_minus_ptc"], r["rows"]
        return {
            "ece ctp - ptc": d["ece"].difference,
            "nll ctp - ptc": d["nll"].difference,
            "gap ctp - ptc": d["confidence_gap"].difference,
            "gap ctp": rows[ORDER_NAMES[1]]["confidence_gap"],
            "gap ptc": rows[ORDER_NAMES[2]]["confidence_gap"],
            "gap trained": rows[ORDER_NAMES[0]]["confidence_gap"],
            "changed ctp": r["changed"].difference,
            "ece ptc - trained": r["ptc_minus_trained"]["ece"].difference,
            "nll ptc - trained": r["ptc_minus_trained"]["nll"].difference,
        }

    summary = stats.over_seeds(experiment, tuple(runs))
    return per_seed, summary
