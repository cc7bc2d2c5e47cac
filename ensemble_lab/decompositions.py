"""Exact decompositions of an ensemble's loss: ensemble loss = (weighted) mean member loss - diversity.

An ensemble of ``K`` members with probabilities ``p_k`` ``(N, C)`` and weights ``w_k`` (non-negative, normalised
to sum to one; uniform by default) predicts ``pbar = sum_k w_k p_k`` (the ``prob`` rule of
:mod:`ensemble_lab.combine`).  For two losses the gain of the ensemble over its members is *exactly* a diversity
term that is never negative, sample by sample:

Brier (squared loss) -- the ambiguity decomposition (Krogh & Vedelsby, "Neural network ensembles, cross
validation, and active learning", NIPS 1995)::

    ||pbar_i - e_y||^2 = sum_k w_k ||p_ki - e_y||^2 - sum_k w_k ||p_ki - pbar_i||^2      (an identity)

with ``e_y`` the one-hot label and ``||.||^2`` the sum over classes: the package's Brier convention
(:func:`ensemble_lab.metrics.brier`, not halved, not averaged over classes).  The ambiguity
``a_i = sum_k w_k ||p_ki - pbar_i||^2`` is the weighted spread of the members around the ensemble.

NLL of a probability average::

    -log pbar_iy = sum_k w_k (-log p_kiy) - d_i,    d_i = sum_k w_k log(pbar_iy / p_kiy) >= 0   (Jensen)

``d_i`` is exact by definition; what the routine adds is its reading (below) and a check that the three numbers
it reports agree.

Reported numbers
----------------
:class:`Decomposition` holds ``mean_member_loss = sum_k w_k loss(p_k)``, ``diversity = mean_i d_i`` (or
``mean_i a_i``) and ``ensemble_loss``, python floats, with ``ensemble_loss == mean_member_loss - diversity`` up to
float rounding (~1e-15 relative in float64).  The three are computed separately: the member losses and the
ensemble loss by :func:`ensemble_lab.metrics.brier` / :func:`ensemble_lab.metrics.nll` (so ``per_member[k]`` is
exactly ``metrics.nll(member_probs[k].double(), labels)``), the diversity from its own formula, so the identity is
a check, not a definition; :attr:`Decomposition.residual` shows what rounding left.

Precision and the floor at zero
-------------------------------
Everything is computed in the accumulation dtype: float64 (float32 on MPS, which has no float64); float32
input is upcast first.  A probability of exactly 0 on the label gets the floor that :func:`metrics.nll` uses,
``p`` replaced by ``max(p, tiny)`` with ``tiny = torch.finfo(float64).tiny`` (2.2e-308), so it costs
``-log(tiny) = 708.4`` nats, for the members and for the ensemble alike, and the identity still holds.  (For float32
input, ``metrics.nll`` of the float32 tensor floors at float32's tiny, 87.3 nats: pass float64 probabilities to
compare the numbers with it exactly.)  The floor makes the loss flat below ``tiny``, so Jensen's inequality can fail
there: ``d_i`` can be negative only when the ensemble's own label probability is below ``e * tiny`` (6e-308),
which finite probabilities from a softmax essentially never are.  Without floors in play ``d_i >= 0`` up to
rounding (identical members give ``d_i = 0`` up to ~1e-16; exactly 0 when ``K = 1``).  The geometric combiner
renormalises, so its ``d_i = -log Z_i >= 0`` needs rows summing to at most 1: rows accepted within the simplex
check's 1e-4 can give ``d_i`` down to about -1e-4 (the identity itself holds regardless).

What the NLL "diversity" is -- and is not
-----------------------------------------
- It depends on the label.  Averaged over a label drawn from the ensemble itself (``y ~ pbar``) it becomes
  ``sum_k w_k KL(pbar || p_k)``.  It is *not* the mutual information (:func:`metrics.mutual_information`, BALD),
  which is ``sum_k w_k KL(p_k || pbar)``: the same members and the same ensemble, the KL the other way round and
  no label.  Both vanish when the members agree.
- Wood, Mu, Webb, Reeve, Lujan & Brown, "A Unified Theory of Diversity in Ensemble Learning" (JMLR 24, 2023)
  decompose any Bregman-divergence loss around the loss's *centroid* combiner.  For the cross-entropy (the KL to
  the one-hot label) that centroid is the normalised geometric mean ``g = softmax(sum_k w_k log p_k)`` and their
  diversity is ``sum_k w_k KL(g || p_k) = -log Z_i`` with ``Z_i = sum_c exp(sum_k w_k log p_kic) <= 1``: it does
  not depend on the label.  ``combiner="geometric"`` reports exactly that decomposition (the ensemble is then
  ``combine(..., rule="geo")`` of the members' log-probabilities).  With the arithmetic mean, a non-centroid
  combiner, their decomposition splits our ``d_i`` into a label-free "diversity-like" term
  ``sum_k w_k KL(pbar || p_k)`` plus a label-dependent term ``<log pbar - sum_k w_k log p_k, e_y - pbar>`` (which
  can be negative).  Our ``d_i`` is their sum: together the two are what the ensemble gains, and the sum is never
  negative although the label term alone can be (tests/test_decompositions.py checks the split, and numbers from
  their code).
- Their code (``EchoStatements/Decompose``, ``decompose/bregman_losses.py``, class ``CrossEntropy``) takes
  equal weights, an extra leading axis of training-set resamples (a bias-variance-diversity decomposition over
  trials; with one trained ensemble the bias and variance terms collapse to the mean member loss) and refuses
  probabilities within 1e-12 of 0 or 1.  Here: one ensemble, optional weights, and exact zeros accepted with
  :func:`metrics.nll`'s floor (with ``combiner="geometric"`` the floor is applied to every probability before its
  log, since every class enters ``Z``).
- For the Brier score the centroid combiner is the arithmetic mean and their diversity is the ambiguity above;
  :func:`brier_decomposition` has no ``combiner`` option.

Weights may be counts (the ``counts`` of Caruana's forward selection): they are normalised here.

>>> import torch
>>> members = torch.tensor([[[0.9, 0.1], [0.6, 0.4]], [[0.5, 0.5], [0.2, 0.8]]], dtype=torch.float64)
>>> d = nll_decomposition(members, torch.tensor([0, 1]))
>>> round(d.mean_member_loss, 4), round(d.diversity, 4), round(d.ensemble_loss, 4)
(0.4845, 0.0507, 0.4338)
>>> abs(d.residual) < 1e-15
True
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import metrics
from ._numerics import acc_dtype
from ._validation import check_choice, check_labels_for, check_member_probs, check_weights

__all__ = ["COMBINERS", "Decomposition", "brier_decomposition", "nll_decomposition"]

#: how :func:`nll_decomposition` combines the members: the average of probabilities, or the normalised
#: geometric mean (the cross-entropy's centroid in Wood et al. 2023)
COMBINERS = ("arithmetic", "geometric")


@dataclass(frozen=True)
class Decomposition:
    """``ensemble_loss = mean_member_loss - diversity``, with the parts it is made of.

    Attributes:
        loss: ``"brier"`` or ``"nll"``.
        combiner: ``"arithmetic"`` (the average of probabilities) or ``"geometric"`` (normalised geometric mean).
        mean_member_loss: ``sum_k w_k per_member[k]`` (python float; Brier units, or nats for the NLL).
        diversity: ``mean_i per_sample_diversity[i]`` (python float, same units): the ambiguity for the Brier
            score, ``mean_i sum_k w_k log(pbar_iy / p_kiy)`` for the NLL (see the module docstring).
        ensemble_loss: the loss of the combined prediction, computed by ``metrics.brier``/``metrics.nll``
            (python float).
        per_member: ``(K,)`` each member's loss (``metrics.brier``/``metrics.nll`` of ``member_probs[k]``).
        per_sample_diversity: ``(N,)`` the diversity of each sample (its mean is ``diversity``).
        weights: ``(K,)`` the normalised member weights used.

    Tensors are in float64 (float32 on MPS) on the input's device.
    """

    loss: str
    combiner: str
    mean_member_loss: float
    diversity: float
    ensemble_loss: float
    per_member: torch.Tensor
    per_sample_diversity: torch.Tensor
    weights: torch.Tensor

    @property
    def residual(self) -> float:
        """``ensemble_loss - (mean_member_loss - diversity)``: 0 up to float rounding."""
        return self.ensemble_loss - (self.mean_member_loss - self.diversity)


def _prepare(member_probs, labels, weights, validate: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked member probabilities in the accumulation dtype ``(K, N, C)``, int64 labels ``(N,)`` and
    normalised weights ``(K,)`` (uniform for ``None``), all on the input's device; ``validate=False`` skips the
    check of the probabilities' values (shapes, labels and weights are always checked)."""
    t = check_member_probs(member_probs, "member_probs", validate=validate).detach()
    y = check_labels_for(labels, t)
    acc = acc_dtype(t.device)
    k = t.shape[0]
    if weights is None:
        w = torch.full((k,), 1.0 / k, dtype=acc, device=t.device)
    else:
        w = check_weights(weights, k, "weights", like=t, dtype=acc)
    return t.to(acc), y, w


def _result(loss, combiner, w, per_member, per_sample, ensemble_loss: float) -> Decomposition:
    mean_member, diversity = torch.stack([w @ per_member, per_sample.mean()]).tolist()
    return Decomposition(
        loss=loss,
        combiner=combiner,
        mean_member_loss=mean_member,
        diversity=diversity,
        ensemble_loss=ensemble_loss,
        per_member=per_member,
        per_sample_diversity=per_sample,
        weights=w,
    )


def brier_decomposition(member_probs, labels, weights=None, *, validate: bool = True) -> Decomposition:
    """Krogh & Vedelsby's ambiguity decomposition of the ensemble's Brier score.

    ``brier(pbar) = sum_k w_k brier(p_k) - mean_i sum_k w_k ||p_ki - pbar_i||^2`` with ``pbar = sum_k w_k p_k``,
    an identity for any weights on the simplex; see the module docstring.

    Args:
        member_probs: ``(K, N, C)`` member probabilities, rows on the simplex (within 1e-4).
        labels: ``(N,)`` integer class indices in ``[0, C)``.
        weights: ``K`` non-negative numbers with a positive sum (counts are fine; normalised here); ``None``:
            uniform.
        validate: ``False`` skips checking the probabilities' values (a caller that checked them once).

    Returns:
        a :class:`Decomposition` with ``loss="brier"``; ``diversity`` is the ambiguity (>= 0, 0 iff the members
        agree where they have weight), ``per_sample_diversity`` its per-sample values.

    Example:
        >>> members = torch.tensor([[[0.9, 0.1], [0.6, 0.4]], [[0.5, 0.5], [0.2, 0.8]]])
        >>> d = brier_decomposition(members, torch.tensor([0, 1]))
        >>> round(d.mean_member_loss, 4), round(d.diversity, 4), round(d.ensemble_loss, 4)
        (0.33, 0.08, 0.25)
    """
    p, y, w = _prepare(member_probs, labels, weights, validate)
    pbar = torch.tensordot(w, p, dims=1)  # (N, C)
    per_member = torch.tensor(
        [metrics.brier(p[k], y, validate=False) for k in range(p.shape[0])], dtype=p.dtype, device=p.device
    )
    per_sample = w @ (p - pbar).square().sum(dim=-1)  # (N,): sum_k w_k ||p_k - pbar||^2
    return _result("brier", "arithmetic", w, per_member, per_sample, metrics.brier(pbar, y, validate=False))


def nll_decomposition(
    member_probs, labels, weights=None, combiner: str = "arithmetic", *, validate: bool = True
) -> Decomposition:
    """The ensemble's NLL as the (weighted) mean member NLL minus a non-negative diversity.

    ``combiner="arithmetic"`` (default): the ensemble is ``pbar = sum_k w_k p_k`` and the diversity of sample i is
    ``d_i = sum_k w_k log(pbar_iy / p_kiy)`` (>= 0 by Jensen; it depends on the label and is not the mutual
    information).  ``combiner="geometric"``: the ensemble is the normalised geometric mean
    ``g_i = softmax(sum_k w_k log p_ki)`` and ``d_i = sum_k w_k KL(g_i || p_ki) = -log sum_c exp(sum_k w_k
    log p_kic)`` (>= 0, label-free): Wood et al. (2023)'s decomposition for the cross-entropy.  Probabilities
    are floored at ``tiny`` before a log, as :func:`metrics.nll` does; see the module docstring for the
    precision, the floor and how this relates to Wood et al.'s conventions.

    Args:
        member_probs: ``(K, N, C)`` member probabilities, rows on the simplex (within 1e-4).
        labels: ``(N,)`` integer class indices in ``[0, C)``.
        weights: ``K`` non-negative numbers with a positive sum (normalised here); ``None``: uniform.
        combiner: one of :data:`COMBINERS`.
        validate: ``False`` skips checking the probabilities' values (a caller that checked them once).

    Returns:
        a :class:`Decomposition` with ``loss="nll"``, values in nats.

    Example:
        >>> members = torch.tensor([[[0.9, 0.1], [0.6, 0.4]], [[0.5, 0.5], [0.2, 0.8]]], dtype=torch.float64)
        >>> y = torch.tensor([0, 1])
        >>> d = nll_decomposition(members, y, weights=[3, 1])
        >>> round(d.mean_member_loss, 4), round(d.diversity, 4), round(d.ensemble_loss, 4)
        (0.4977, 0.0395, 0.4581)
        >>> g = nll_decomposition(members, y, combiner="geometric")
        >>> round(g.diversity, 4), abs(g.residual) < 1e-15
        (0.1018, True)
    """
    check_choice(combiner, "combiner", COMBINERS)
    p, y, w = _prepare(member_probs, labels, weights, validate)
    k, n, _ = p.shape
    tiny = torch.finfo(p.dtype).tiny
    per_member = torch.tensor([metrics.nll(p[j], y, validate=False) for j in range(k)], dtype=p.dtype, device=p.device)
    if combiner == "arithmetic":
        pbar = torch.tensordot(w, p, dims=1)  # (N, C)
        log_py = torch.log(p.gather(2, y.view(1, n, 1).expand(k, n, 1)).squeeze(2).clamp(min=tiny))  # (K, N)
        log_bar_y = torch.log(pbar.gather(1, y[:, None]).squeeze(1).clamp(min=tiny))  # (N,)
        per_sample = w @ (log_bar_y - log_py)  # sum_k w_k log(pbar_y / p_ky)
        ensemble = pbar
    else:
        mixed = torch.tensordot(w, torch.log(p.clamp(min=tiny)), dims=1)  # (N, C): sum_k w_k log p_k
        per_sample = -torch.logsumexp(mixed, dim=-1)  # -log Z = sum_k w_k KL(g || p_k)
        ensemble = torch.softmax(mixed, dim=-1)
    return _result("nll", combiner, w, per_member, per_sample, metrics.nll(ensemble, y, validate=False))
