"""Combining the members of an ensemble into one prediction.

Member outputs are logits shaped ``(K, N, C)`` (members, samples, classes); every rule returns ensemble
probabilities shaped ``(N, C)``.  With weights ``w`` (non-negative, normalised to sum to one) and a temperature
``T`` applied to every member's logits first:

========  ==========================================================  =====================================
rule      ensemble probability                                        also called
========  ==========================================================  =====================================
``prob``  ``sum_k w_k softmax(z_k / T)``                              average of probabilities (Deep Ensembles)
``logit`` ``softmax(sum_k w_k z_k / T)``                              average of logits
``geo``   ``softmax(sum_k w_k log softmax(z_k / T))``                 normalised geometric mean (product of experts)
``vote``  ``sum_k w_k onehot(argmax_c z_k)``                          (weighted) majority vote; vote shares
========  ==========================================================  =====================================

Vote shares are not calibrated probabilities: a class no member votes for gets probability exactly 0, so its
NLL is huge.  That is the point the course makes with it.
"""

from __future__ import annotations

import torch

from ._validation import (
    check_choice,
    check_int,
    check_labels_for,
    check_member_logits,
    check_positive,
    check_weights,
    divide_by_temperature,
)

__all__ = ["RULES", "Combiner", "combine", "learn_weights", "best_member"]

RULES = ("prob", "logit", "geo", "vote")
_DIFFERENTIABLE = ("prob", "logit", "geo")


def _combine_log(z: torch.Tensor, w: torch.Tensor, rule: str) -> torch.Tensor:
    """Log ensemble probabilities (N, C) from scaled logits ``z`` (K, N, C) and weights ``w`` (K,) on the simplex.

    Differentiable in ``w`` for the rules in ``_DIFFERENTIABLE``.
    """
    wk = w.view(-1, 1, 1)
    if rule == "prob":
        # log sum_k w_k p_k, computed stably as logsumexp_k(log w_k + log p_k); w_k = 0 gives -inf terms.
        return torch.logsumexp(torch.log(wk) + torch.log_softmax(z, dim=-1), dim=0)
    if rule == "logit":
        return torch.log_softmax((wk * z).sum(dim=0), dim=-1)
    if rule == "geo":
        return torch.log_softmax((wk * torch.log_softmax(z, dim=-1)).sum(dim=0), dim=-1)
    raise AssertionError(rule)  # unreachable: callers validate the rule


class Combiner:
    """Member outputs prepared once, for combining them again and again with new weights.

    Interactive use (a slider moving weights) re-weights the same members hundreds of times; the per-member
    work (validation, softmax, log-softmax, votes) is done here once per rule, so that each call is a single
    weighted sum over the member axis plus, for ``logit``/``geo``, one softmax of ``(N, C)``.

    Args:
        member_logits: ``(K, N, C)`` logits, finite.
        temperature: ``T > 0`` dividing every member's logits; a ``T`` so small that ``member_logits / T``
            overflows their dtype is refused.
    """

    def __init__(self, member_logits, temperature: float = 1.0):
        self.temperature = check_positive(temperature, "temperature")
        self.logits = divide_by_temperature(
            check_member_logits(member_logits), self.temperature, "member_logits", temperature
        )  # (K, N, C)
        self.k, self.n, self.n_classes = self.logits.shape
        self._prepared: dict[str, torch.Tensor] = {}

    def prepared(self, rule: str) -> torch.Tensor:
        """The ``(K, N, C)`` per-member quantity that ``rule`` averages (computed on first use)."""
        check_choice(rule, "rule", RULES)
        if rule not in self._prepared:
            z = self.logits
            if rule == "prob":
                out = torch.softmax(z, dim=-1)
            elif rule == "geo":
                out = torch.log_softmax(z, dim=-1)
                if not bool(torch.isfinite(out).all()):  # once per Combiner: -inf would make 0 * -inf = NaN
                    raise ValueError(
                        "member_logits: log_softmax of the members' logits (over temperature "
                        f"{self.temperature!r}) is not finite in {z.dtype}: the logits of a row span more than "
                        "the dtype can hold, so rule='geo' cannot weight them; rescale the logits"
                    )
            elif rule == "logit":
                out = z
            else:
                out = torch.nn.functional.one_hot(z.argmax(dim=-1), self.n_classes).to(z.dtype)
            self._prepared[rule] = out
        return self._prepared[rule]

    @property
    def member_probs(self) -> torch.Tensor:
        """``(K, N, C)`` member probabilities at this temperature."""
        return self.prepared("prob")

    def __call__(self, weights=None, rule: str = "prob") -> torch.Tensor:
        """Ensemble probabilities ``(N, C)`` for ``weights`` (``None``: uniform) and ``rule``."""
        x = self.prepared(rule)
        w = (
            torch.full((self.k,), 1.0 / self.k, dtype=x.dtype, device=x.device)
            if weights is None
            else check_weights(weights, self.k, like=x)
        )
        mixed = torch.tensordot(w, x, dims=1)  # (N, C): sum_k w_k x_k
        if rule in ("logit", "geo"):
            return torch.softmax(mixed, dim=-1)
        return mixed


def combine(member_logits, weights=None, rule: str = "prob", temperature: float = 1.0) -> torch.Tensor:
    """Ensemble probabilities ``(N, C)`` from member logits ``(K, N, C)``.

    Args:
        member_logits: ``(K, N, C)`` logits (tensor or array), finite.
        weights: ``K`` non-negative numbers with a positive sum (normalised here); ``None`` means uniform.
        rule: one of :data:`RULES` (see the module docstring for the formulas).
        temperature: ``T > 0`` dividing every member's logits before combining (for ``vote`` it changes nothing).

    Returns:
        ``(N, C)`` probabilities on the device and in the dtype of ``member_logits``.  To combine the same
        members with many different weights, build a :class:`Combiner` once instead.

    Example:
        >>> z = torch.tensor([[[2.0, 0.0]], [[0.0, 1.0]]])  # (K=2, N=1, C=2)
        >>> [round(v, 4) for v in combine(z)[0].tolist()], combine(z, rule="vote").tolist()
        ([0.5749, 0.4251], [[0.5, 0.5]])
    """
    check_choice(rule, "rule", RULES)
    return Combiner(member_logits, temperature)(weights, rule)


def learn_weights(
    member_logits,
    labels,
    rule: str = "prob",
    temperature: float = 1.0,
    max_iter: int = 200,
) -> torch.Tensor:
    """Member weights on the simplex that minimise the NLL of ``combine(member_logits, w, rule)``.

    The weights are parametrised as ``w = softmax(theta)`` and fitted with L-BFGS (strong-Wolfe line search)
    on the tensors' device, starting from uniform weights.  For ``rule="prob"`` the NLL is convex in ``w``,
    so this finds the global optimum over the simplex (up to weights the softmax can only approach, which
    end up at ~1e-8 rather than exactly 0).  Fit on a validation split, evaluate on another.

    Args:
        member_logits: ``(K, N, C)`` logits of the split the weights are fitted on.
        labels: ``(N,)`` int labels.
        rule: ``"prob"``, ``"logit"`` or ``"geo"`` (a vote is not differentiable).
        temperature: as in :func:`combine`, held fixed.
        max_iter: L-BFGS iterations.

    Returns:
        ``(K,)`` weights, non-negative, summing to one, on the device of ``member_logits``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.randint(0, 3, (200,), generator=g)
        >>> good = 3 * torch.nn.functional.one_hot(y, 3).float()
        >>> z = torch.stack([good, torch.randn(200, 3, generator=g)])  # member 0 knows the labels
        >>> w = learn_weights(z, y)
        >>> bool(w[0] > w[1]), round(float(w.sum()), 4)
        (True, 1.0)
    """
    z = check_member_logits(member_logits)
    k, n, c = z.shape
    y = check_labels_for(labels, z)
    if rule == "vote":
        raise ValueError(
            "rule='vote' has no gradient with respect to the weights; learn weights with rule 'prob', 'logit' or 'geo'"
        )
    check_choice(rule, "rule", _DIFFERENTIABLE)
    t = check_positive(temperature, "temperature")
    check_int(max_iter, "max_iter", minimum=1)
    zt = divide_by_temperature(z, t, "member_logits", temperature).detach()
    if k == 1:
        return torch.ones(1, dtype=z.dtype, device=z.device)
    theta = torch.zeros(k, dtype=z.dtype, device=z.device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [theta], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12
    )

    def closure():
        opt.zero_grad()
        log_p = _combine_log(zt, torch.softmax(theta, dim=0), rule)
        loss = torch.nn.functional.nll_loss(log_p, y)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w = torch.softmax(theta.detach(), dim=0)
    if not bool(torch.isfinite(w).all()):
        raise ValueError(
            f"member_logits: the weight fit diverged (non-finite weights) with rule={rule!r}; the NLL of the "
            "combined logits overflows (rescale the logits)"
        )
    return w


def best_member(member_logits, labels, by: str = "accuracy") -> int:
    """Index of the best single member on the given split.

    ``by="accuracy"`` ranks by accuracy and breaks ties by NLL; ``by="nll"`` ranks by NLL alone.
    """
    z = check_member_logits(member_logits)
    k, n, c = z.shape
    y = check_labels_for(labels, z)
    check_choice(by, "by", ("accuracy", "nll"))
    log_p = torch.log_softmax(z, dim=-1)  # (K, N, C)
    nll = -log_p.gather(-1, y.view(1, n, 1).expand(k, n, 1)).squeeze(-1).mean(dim=1)  # (K,)
    if by == "nll":
        return int(nll.argmin())
    acc = (z.argmax(dim=-1) == y).to(z.dtype).mean(dim=1)  # (K,)
    best = acc == acc.max()
    return int(torch.where(best, nll, torch.full_like(nll, float("inf"))).argmin())
