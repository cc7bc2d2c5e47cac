"""Ensemble selection from a library of models (Caruana, Niculescu-Mizil, Crew and Ksikes, ICML 2004), and the
two baselines it is measured against: the top-k single models and the uniform average of the whole library.

Shapes and units
----------------
- ``member_probs``: ``(K, N, C)`` probabilities of the K library models on the hill-climbing set (member axis
  first); ``labels``: ``(N,)`` class indices.  ``held_out=(member_probs_ho, labels_ho)``: the same K models on
  other data, ``(K, M, C)`` and ``(M,)``, scored along the way but never used to choose.
- The ensemble is the COUNT-weighted average of the members' probabilities: a model chosen three times counts
  three times (selection WITH replacement, the paper's first fix against overfitting).
- ``metric``: ``"nll"``, ``"brier"``, ``"ece"`` (top-label, 15 uniform bins, l1) or ``"error"`` (1 - accuracy),
  exactly as :mod:`ensemble_lab.metrics` defines them; lower is better for all four.  Scores are python floats.

The procedure (the paper's forward selection and its three refinements)
-----------------------------------------------------------------------
1. Sorted initialisation: the ``init`` best single models by the metric are added once each (ties: lower index
   first).  The paper chooses that number on the hill-climbing set; here the caller gives it.
2. ``steps`` times: add the model (any of the library, again and again if it helps) whose addition gives the
   ensemble with the lowest hill-climbing score.  Ties go to the LOWEST model index (auto-sklearn's "fast" mode
   breaks ties at random; a fixed rule keeps a path reproducible without a seed).
3. The paper's step 4, "return the ensemble from the nested set of ensembles that has maximum performance on the
   hillclimb set": with ``prune_to_best=True`` (the default) the counts are those of the ensemble at
   ``best_step``, the step with the lowest hill-climbing score (the earliest of equal ones, never before the
   initialisation is complete); ``prune_to_best=False`` keeps every addition, as auto-sklearn does.
4. Bagged selection (``bags > 1``): ``bags`` runs, each on a random subset of ``max(1, int(bag_fraction * K))``
   models (the paper uses half the library, p = 0.5), drawn without replacement by ``torch.randperm`` on a cpu
   ``torch.Generator`` seeded with ``seed`` (bag b is the sorted first m entries of the b-th permutation); the
   counts of the bags are added.  The final ensemble is their count-weighted average, so a bag that kept more
   additions weighs more (as we read the paper, it averages the bags' ensembles; with ``prune_to_best=False``
   every bag has the same size and the two agree).  With ``bags=1`` the whole library is used and
   ``bag_fraction`` is unused.

Efficiency: the running SUM of the selected members' probabilities is kept (in float64; float32 on MPS), and at
each step all candidates are scored at once from it: NLL from the label column only, ``(K, N)`` work; Brier from
``sum E^2 = (|S|^2 + 2 <S, P_k> + |P_k|^2) / (n + 1)^2``, one matrix-vector product; error and ECE from the
``(K, N, C)`` candidate ensembles ``(S + P_k) / (n + 1)``, built in chunks of candidates.  Everything runs on the
inputs' device.  Candidates are scored in the accumulation dtype, so for float32 input the scores are those of
:mod:`ensemble_lab.metrics` on the float64 ensemble.

>>> import torch
>>> from ensemble_lab.selection import forward_select
>>> p = torch.tensor([[[0.8, 0.2], [0.4, 0.6]], [[0.6, 0.4], [0.1, 0.9]], [[0.3, 0.7], [0.5, 0.5]]])
>>> r = forward_select(p, torch.tensor([0, 1]), metric="brier", steps=3)
>>> [s.model for s in r.path], r.counts.tolist(), r.best_step
([1, 0, 1], [1, 2, 0], 3)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import metrics
from .._numerics import acc_dtype, order_view, uniform_bins
from .._validation import (
    MAX_COUNT,
    as_tensor,
    check_bool,
    check_choice,
    check_in_range,
    check_int,
    check_labels_for,
    check_member_probs,
    check_seed,
)

__all__ = ["SelectionStep", "SelectionResult", "forward_select", "top_k", "uniform", "METRICS"]

#: the metrics selection can climb on (lower is better for each)
METRICS = ("nll", "brier", "ece", "error")
_N_BINS = 15  # metrics.ece's default: top-label, uniform bins, l1
_CHUNK = 1 << 22  # entries of one (k, N, C) block of candidate ensembles


@dataclass(frozen=True)
class SelectionStep:
    """One addition: ``bag`` (0 without bagging), ``step`` (ensemble size after it, from 1), ``model`` (library
    index added), ``init`` (True for a sorted-initialisation addition), ``score`` (hill-climbing score of the
    ensemble after it) and ``held_out`` (its held-out score, or None without ``held_out``)."""

    bag: int
    step: int
    model: int
    init: bool
    score: float
    held_out: float | None


@dataclass(frozen=True)
class SelectionResult:
    """What a selection returns.

    - ``counts``: ``(K,)`` int64, how many times each library model is in the ensemble (summed over bags);
    - ``weights``: ``(K,)`` float64, ``counts / counts.sum()``: the ensemble is ``sum_k weights[k] * probs[k]``;
    - ``path``: every addition of every bag in order (:class:`SelectionStep`), the pruned ones included; empty
      for the baselines;
    - ``best_steps``: per bag, the step with the best hill-climbing score (empty for the baselines);
    - ``bags``: per bag, the library indices it could choose from;
    - ``score``: the hill-climbing score of the returned ensemble (None for :func:`uniform` without labels);
    - ``held_out_score``: its held-out score (None without ``held_out``);
    - ``metric``: the metric's name.
    """

    counts: torch.Tensor
    weights: torch.Tensor
    path: tuple[SelectionStep, ...]
    best_steps: tuple[int, ...]
    bags: tuple[tuple[int, ...], ...]
    score: float | None
    held_out_score: float | None
    metric: str

    @property
    def best_step(self) -> int | None:
        """The best step of a single (unbagged) selection; None for the baselines and for bagged selection."""
        return self.best_steps[0] if len(self.best_steps) == 1 else None

    def ensemble(self, member_probs, *, validate: bool = True) -> torch.Tensor:
        """The selected ensemble's probabilities ``(N, C)`` for ``member_probs`` ``(K, N, C)`` of the same K
        (``validate=False``: the values are not checked again, as in :mod:`ensemble_lab.metrics`)."""
        p = check_member_probs(member_probs, "member_probs", validate=validate)
        if p.shape[0] != self.counts.shape[0]:
            raise ValueError(
                f"member_probs must hold the K={self.counts.shape[0]} library models, got shape {tuple(p.shape)}"
            )
        return _weighted(p, self.counts)

    def prefix(self, steps: int, member_probs, labels, *, held_out=None, validate: bool = True) -> SelectionResult:
        """The selection ``forward_select`` returns with ``steps`` additions instead of this result's (same
        library, metric, ``init``, bags and seed; ``prune_to_best=True``), read off this result's path: the greedy
        path of a shorter run is the first ``init + steps`` additions of each bag of a longer one.  A Lab computes
        one long path and slides along it.  ``member_probs``/``labels``/``held_out``: those of the original call
        (the prefix's ensemble is scored on them); ``validate=False`` skips checking their values again.

        >>> import torch
        >>> p = torch.tensor([[[0.8, 0.2], [0.4, 0.6]], [[0.6, 0.4], [0.1, 0.9]], [[0.3, 0.7], [0.5, 0.5]]])
        >>> y = torch.tensor([0, 1])
        >>> long = forward_select(p, y, metric="brier", steps=3)
        >>> long.prefix(2, p, y).counts.tolist() == forward_select(p, y, metric="brier", steps=2).counts.tolist()
        True
        """
        if not self.path:
            raise ValueError("prefix needs a forward selection's path; top_k and uniform have none")
        p, y = _inputs(member_probs, labels, self.metric, validate)
        if p.shape[0] != self.counts.shape[0]:
            raise ValueError(
                f"member_probs must hold the K={self.counts.shape[0]} library models, got shape {tuple(p.shape)}"
            )
        ho = _held_out(held_out, p, validate)
        by_bag: dict[int, list[SelectionStep]] = {}
        for st in self.path:
            by_bag.setdefault(st.bag, []).append(st)
        inits = {b: sum(st.init for st in bag) for b, bag in by_bag.items()}
        available = min(len(bag) - inits[b] for b, bag in by_bag.items())
        steps = check_int(steps, "steps", minimum=1, maximum=available)
        counts = torch.zeros(p.shape[0], dtype=torch.int64)
        path, best_steps = [], []
        for b, bag in by_bag.items():
            kept = bag[: inits[b] + steps]
            first = max(inits[b], 1)
            scores = [st.score for st in kept[first - 1 :]]
            best = first + min(range(len(scores)), key=lambda i: (scores[i], i))
            for st in kept[:best]:
                counts[st.model] += 1
            path.extend(kept)
            best_steps.append(best)
        return _result(p, y, self.metric, counts, tuple(path), tuple(best_steps), [list(m) for m in self.bags], ho)


# ----------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------


def _inputs(member_probs, labels, metric, validate: bool = True):
    p = check_member_probs(member_probs, "member_probs", validate=validate).detach()
    y = check_labels_for(labels, p, "labels")
    check_choice(metric, "metric", METRICS)
    return p, y


def _held_out(held_out, p, validate: bool = True):
    if held_out is None:
        return None
    if not isinstance(held_out, (tuple, list)) or len(held_out) != 2:
        raise TypeError(
            f"held_out must be a pair (member_probs_ho, labels_ho), got {type(held_out).__name__}"
            + (f" of length {len(held_out)}" if isinstance(held_out, (tuple, list)) else "")
        )
    ph = as_tensor(held_out[0], "held_out[0]")
    if ph.device != p.device:  # before the values are read: a tensor on another device cannot be checked here
        raise ValueError(f"held_out[0] must be on member_probs' device ({p.device}), got {ph.device}")
    ph = check_member_probs(ph, "held_out[0]", validate=validate).detach()
    if ph.shape[0] != p.shape[0] or ph.shape[2] != p.shape[2]:
        raise ValueError(
            f"held_out[0] must hold the same K={p.shape[0]} models and C={p.shape[2]} classes as member_probs, "
            f"got shape {tuple(ph.shape)}"
        )
    if ph.device != p.device:
        raise ValueError(f"held_out[0] must be on member_probs' device ({p.device}), got {ph.device}")
    yh = check_labels_for(held_out[1], ph, "held_out[1]")
    return ph, yh


# ----------------------------------------------------------------------------------------------------------
# scoring
# ----------------------------------------------------------------------------------------------------------


def _weighted(p: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Count-weighted average ``(N, C)`` of ``p`` ``(K, N, C)``, summed in the accumulation dtype."""
    acc = acc_dtype(p.device)
    c = counts.to(device=p.device, dtype=acc)
    return torch.tensordot(c, p.to(acc), dims=1) / c.sum()


def _score(metric: str, probs: torch.Tensor, labels: torch.Tensor) -> float:
    """One ensemble's score by :mod:`ensemble_lab.metrics` (inputs already checked)."""
    if metric == "nll":
        return metrics.nll(probs, labels, validate=False)
    if metric == "brier":
        return metrics.brier(probs, labels, validate=False)
    if metric == "ece":
        return metrics.ece(probs, labels, n_bins=_N_BINS, validate=False)
    return 1.0 - metrics.accuracy(probs, labels, validate=False)


class _Scorer:
    """Scores of ``(S + P_k) / (n + 1)`` for every candidate k at once, from the running sum S ``(N, C)``."""

    def __init__(self, p: torch.Tensor, y: torch.Tensor, metric: str):
        acc = acc_dtype(p.device)
        self.metric, self.y = metric, y
        self.p = p.to(acc).contiguous()  # (K, N, C) in the accumulation dtype, made once
        self.n_samples, self.n_classes = p.shape[1], p.shape[2]
        idx = y.view(1, -1, 1).expand(p.shape[0], -1, 1)
        self.p_y = self.p.gather(2, idx).squeeze(2)  # (K, N): each candidate's true-class column
        self.sq = None
        if metric == "brier":
            flat = self.p.view(p.shape[0], -1)
            self.sq = (flat * flat).sum(1)  # |P_k|^2
        self.tiny = torch.finfo(acc).tiny
        self._gathered = None
        self._buffer = None

    def scores(self, s: torch.Tensor, n: int, cand: torch.Tensor) -> torch.Tensor:
        """``(len(cand),)`` scores in the accumulation dtype; ``s`` is the sum of the ``n`` selected members."""
        m = n + 1
        lib, lib_y, lib_sq = self._library(cand)
        if self.metric == "nll":
            p_y = (lib_y + s.gather(1, self.y[:, None]).squeeze(1)) / m
            return -torch.log(p_y.clamp(min=self.tiny)).sum(1) / self.n_samples
        if self.metric == "brier":
            sv = s.reshape(-1)
            sum_sq = (sv @ sv + 2 * (lib.view(lib.shape[0], -1) @ sv) + lib_sq) / (m * m)
            s_y = lib_y.sum(1) + s.gather(1, self.y[:, None]).sum()
            return (sum_sq - 2 * s_y / m + self.n_samples) / self.n_samples
        rows = max(1, _CHUNK // (self.n_samples * self.n_classes))
        return torch.cat([self._block(s, m, lib[i : i + rows]) for i in range(0, lib.shape[0], rows)])

    def _library(self, cand: torch.Tensor):
        """``p[cand]``, ``p_y[cand]`` and ``|p[cand]|^2`` (or None): the library's own tensors for all candidates
        in order, else gathered once per ``cand`` tensor (a selection passes the same one at every step)."""
        k = self.p.shape[0]
        if cand.shape[0] == k and bool((cand == torch.arange(k, device=cand.device)).all()):
            return self.p, self.p_y, self.sq
        if self._gathered is None or self._gathered[0] is not cand:
            sq = None if self.sq is None else self.sq.index_select(0, cand)
            self._gathered = (cand, (self.p.index_select(0, cand), self.p_y.index_select(0, cand), sq))
        return self._gathered[1]

    def _block(self, s: torch.Tensor, m: int, lib: torch.Tensor) -> torch.Tensor:
        if self._buffer is None or self._buffer.shape[0] < lib.shape[0]:
            self._buffer = torch.empty_like(lib)  # reused at every step: no fresh (k, N, C) allocation
        e = torch.add(lib, s, out=self._buffer[: lib.shape[0]]).div_(m)  # candidate ensembles (S + P_k) / (n + 1)
        # argmax on the IEEE bit patterns, as metrics.top_label does (ties -> lowest class; exact because each
        # row's maximum is positive), then the confidence gathered at it
        pred = order_view(e).argmax(dim=2)
        correct = pred == self.y
        k, n = correct.shape
        if self.metric == "error":
            return 1.0 - correct.sum(1).to(e.dtype) / n
        conf = e.gather(2, pred[..., None]).squeeze(2)
        b = _N_BINS
        bins, scaled = uniform_bins(conf, b)  # the bins of metrics.ece, exactly
        offset = torch.arange(k, device=e.device)[:, None] * (2 * b)  # int64: exact for any chunk
        key = (bins.to(torch.int64) + correct.to(torch.int64) * b + offset).reshape(-1)
        s_w = torch.zeros(k * 2 * b, dtype=e.dtype, device=e.device).index_add_(0, key, scaled.reshape(-1))
        cnt = torch.zeros(k * 2 * b, dtype=e.dtype, device=e.device).index_add_(
            0, key, torch.ones(1, dtype=e.dtype, device=e.device).expand(key.shape[0])
        )
        s_w, cnt = s_w.view(k, 2, b), cnt.view(k, 2, b)
        s_conf = (s_w[:, 0] + s_w[:, 1]) / b
        return (cnt[:, 1] - s_conf).abs().sum(1) / n


def _single_scores(scorer: _Scorer, k: int) -> torch.Tensor:
    zero = torch.zeros(scorer.n_samples, scorer.n_classes, dtype=scorer.p.dtype, device=scorer.p.device)
    return scorer.scores(zero, 0, torch.arange(k, device=scorer.p.device))


def _ranking(scores: torch.Tensor) -> list[int]:
    """Indices by increasing score, ties by increasing index."""
    return torch.sort(scores.cpu(), stable=True).indices.tolist()


# ----------------------------------------------------------------------------------------------------------
# forward selection
# ----------------------------------------------------------------------------------------------------------


def _climb(scorer, single, members, init, steps, metric, ho, bag):
    """One selection over the library indices ``members``: (the models added in order, the path, the best step)."""
    dev = scorer.p.device
    cand = torch.tensor(members, device=dev)
    s = torch.zeros(scorer.n_samples, scorer.n_classes, dtype=scorer.p.dtype, device=dev)
    s_ho = None if ho is None else torch.zeros(ho[0].shape[1:], dtype=scorer.p.dtype, device=dev)
    sub = single.index_select(0, cand)
    order = [members[i] for i in _ranking(sub)[:init]]
    chosen, path = [], []
    for step in range(1, init + steps + 1):
        if step <= init:
            model = order[step - 1]
            score = float(scorer.scores(s, step - 1, torch.tensor([model], device=dev))[0])
        else:
            sc = scorer.scores(s, step - 1, cand)
            j = int(torch.argmin(sc))  # the first minimum: the lowest index among ties (members are sorted)
            model, score = members[j], float(sc[j])
        s += scorer.p[model]
        chosen.append(model)
        held = None
        if ho is not None:
            s_ho += ho[0][model].to(s_ho.dtype)
            held = _score(metric, s_ho / step, ho[1])
        path.append(SelectionStep(bag, step, model, step <= init, score, held))
    first = max(init, 1)
    scores = [st.score for st in path[first - 1 :]]
    best = first + min(range(len(scores)), key=lambda i: (scores[i], i))
    return chosen, path, best


def _bags(k: int, bags: int, bag_fraction: float, seed: int) -> list[list[int]]:
    if bags == 1:
        return [list(range(k))]
    m = max(1, int(bag_fraction * k))
    g = torch.Generator().manual_seed(seed)
    return [sorted(torch.randperm(k, generator=g)[:m].tolist()) for _ in range(bags)]


def forward_select(
    member_probs,
    labels,
    metric: str = "nll",
    steps: int = 50,
    init: int = 0,
    bags: int = 1,
    seed: int = 0,
    *,
    bag_fraction: float = 0.5,
    held_out=None,
    prune_to_best: bool = True,
) -> SelectionResult:
    """Caruana et al.'s forward selection with replacement from a library of models (see the module docstring).

    ``member_probs`` ``(K, N, C)`` and ``labels`` ``(N,)``: the hill-climbing set.  ``metric``: one of
    :data:`METRICS`.  ``steps`` >= 1 additions after ``init`` (0 .. K; the bag size with bagging) sorted-
    initialisation additions.  ``bags`` >= 1 runs on random subsets of ``bag_fraction`` (in (0, 1]) of the
    library, seeded by ``seed``.  ``held_out=(member_probs_ho, labels_ho)``: scored along the path, never used to
    choose.  ``prune_to_best``: return the ensemble at each bag's best step (the paper) or after every addition.

    Returns a :class:`SelectionResult`.  Ties between candidates go to the lowest model index; ties in the path's
    score to the earliest step.

    Example (model 1 is best alone, then model 0 helps, then model 1 AGAIN: with replacement):

    >>> import torch
    >>> p = torch.tensor([[[0.8, 0.2], [0.4, 0.6]], [[0.6, 0.4], [0.1, 0.9]], [[0.3, 0.7], [0.5, 0.5]]])
    >>> r = forward_select(p.double(), torch.tensor([0, 1]), metric="brier", steps=3)
    >>> [(s.model, round(s.score, 4)) for s in r.path]
    [(1, 0.17), (0, 0.1525), (1, 0.1511)]
    >>> r.best_step, r.counts.tolist(), [round(w, 4) for w in r.weights.tolist()]
    (3, [1, 2, 0], [0.3333, 0.6667, 0.0])
    """
    p, y = _inputs(member_probs, labels, metric)
    k = p.shape[0]
    steps = check_int(steps, "steps", minimum=1, maximum=MAX_COUNT)
    init = check_int(init, "init", minimum=0, maximum=k)
    bags = check_int(bags, "bags", minimum=1, maximum=MAX_COUNT)
    seed = check_seed(seed)
    bag_fraction = check_in_range(bag_fraction, "bag_fraction", 0.0, 1.0, lo_open=True)
    prune_to_best = check_bool(prune_to_best, "prune_to_best")
    ho = _held_out(held_out, p)
    members = _bags(k, bags, bag_fraction, seed)
    if init > len(members[0]):
        raise ValueError(
            f"init must be at most the bag size int(bag_fraction * K) = {len(members[0])} "
            f"(bag_fraction={bag_fraction!r}, K={k}), got {init}"
        )
    scorer = _Scorer(p, y, metric)
    single = _single_scores(scorer, k)
    counts = torch.zeros(k, dtype=torch.int64)
    path, best_steps = [], []
    for b, bag in enumerate(members):
        chosen, bag_path, best = _climb(scorer, single, bag, init, steps, metric, ho, b)
        for model in chosen[: best if prune_to_best else len(chosen)]:
            counts[model] += 1
        path.extend(bag_path)
        best_steps.append(best)
    return _result(p, y, metric, counts, tuple(path), tuple(best_steps), members, ho)


def _result(p, y, metric, counts, path, best_steps, members, ho) -> SelectionResult:
    counts = counts.to(p.device)
    weights = counts.to(acc_dtype(p.device)) / counts.sum()
    score = None if y is None else _score(metric, _weighted(p, counts), y)
    held = None if ho is None else _score(metric, _weighted(ho[0], counts), ho[1])
    bags = tuple(tuple(m) for m in members)
    return SelectionResult(counts, weights, path, best_steps, bags, score, held, metric)


# ----------------------------------------------------------------------------------------------------------
# baselines
# ----------------------------------------------------------------------------------------------------------


def top_k(
    member_probs, labels, k: int, metric: str = "nll", *, held_out=None, validate: bool = True
) -> SelectionResult:
    """The ``k`` best single models by ``metric`` on ``(member_probs, labels)``, averaged with equal weights
    (ties: lower index first).  Returns a :class:`SelectionResult` with an empty path.  ``validate=False`` skips
    checking the probabilities' values (a caller that checked them once).

    >>> import torch
    >>> p = torch.tensor([[[0.8, 0.2], [0.4, 0.6]], [[0.6, 0.4], [0.1, 0.9]], [[0.3, 0.7], [0.5, 0.5]]])
    >>> top_k(p, torch.tensor([0, 1]), 2).counts.tolist()
    [1, 1, 0]
    """
    p, y = _inputs(member_probs, labels, metric, validate)
    k = check_int(k, "k", minimum=1, maximum=p.shape[0])
    ho = _held_out(held_out, p, validate)
    single = _single_scores(_Scorer(p, y, metric), p.shape[0])
    counts = torch.zeros(p.shape[0], dtype=torch.int64)
    counts[_ranking(single)[:k]] = 1
    return _result(p, y, metric, counts, (), (), [list(range(p.shape[0]))], ho)


def uniform(member_probs, labels=None, metric: str = "nll", *, held_out=None, validate: bool = True) -> SelectionResult:
    """Every library model once: the uniform average.  With ``labels`` (and ``held_out``) its scores are filled
    in.  Returns a :class:`SelectionResult` with an empty path; ``validate`` as in :func:`top_k`.

    >>> import torch
    >>> p = torch.tensor([[[0.8, 0.2]], [[0.6, 0.4]]])
    >>> r = uniform(p, torch.tensor([0]))
    >>> r.weights.tolist(), round(r.score, 4)
    ([0.5, 0.5], 0.3567)
    """
    if labels is None:
        p = check_member_probs(member_probs, "member_probs", validate=validate).detach()
        check_choice(metric, "metric", METRICS)
        y = None
    else:
        p, y = _inputs(member_probs, labels, metric, validate)
    ho = _held_out(held_out, p, validate)
    counts = torch.ones(p.shape[0], dtype=torch.int64)
    return _result(p, y, metric, counts, (), (), [list(range(p.shape[0]))], ho)
