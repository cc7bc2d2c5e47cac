"""Weight-space ensembles: operations on state dicts of one architecture.

- :func:`interpolate` (WiSE-FT, Wortsman et al. CVPR 2022): ``(1 - alpha) a + alpha b``.
- :func:`uniform_soup` (model soups, Wortsman et al. ICML 2022): the mean of the ingredients' weights.
- :func:`greedy_soup`: ingredients sorted by their held-out score, best first; each is added to the soup only if
  the held-out score of the soup *strictly* improves (the reference code's rule).
- :func:`task_arithmetic`: the general form ``theta0 + sum_t lambda_t (theta_t - theta0)``; the three above are
  special cases.
- :func:`interpolation_logits`: the outputs of the interpolated models for many alphas in one vectorised pass
  (``torch.func.vmap`` over ``functional_call``), so a WiSE-FT curve needs no model reloaded per alpha.

A state dict is a mapping ``name -> tensor`` (``model.state_dict()``).  Every operation checks that all state
dicts have the same keys, shapes and dtypes (the message names the first key that differs) and that every
floating tensor is finite.  Floating tensors are combined; non-floating ones (integer buffers such as batch-norm's
``num_batches_tracked``) cannot be averaged and are taken from the first state dict, which is documented per
function.  Floating buffers (batch-norm running means and variances) are averaged like parameters: that is what
the papers do, and it is only an approximation of the statistics the souped weights would produce (recompute them
on data if it matters).  Results are new tensors on the inputs' devices; inputs are never modified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from ._validation import check_finite

__all__ = ["interpolate", "uniform_soup", "greedy_soup", "task_arithmetic", "GreedySoup", "interpolation_logits"]


def _check_states(states, name: str = "states") -> list[Mapping[str, torch.Tensor]]:
    if isinstance(states, Mapping) or not isinstance(states, Sequence):
        raise TypeError(f"{name} must be a list of state dicts, got {type(states).__name__}")
    states = list(states)
    if not states:
        raise ValueError(f"{name} must hold at least one state dict, got an empty list")
    first = states[0]
    for i, sd in enumerate(states):
        if not isinstance(sd, Mapping):
            raise TypeError(f"{name}[{i}] must be a state dict (a mapping name -> tensor), got {type(sd).__name__}")
        if list(sd.keys()) != list(first.keys()):
            missing = [k for k in first if k not in sd] + [k for k in sd if k not in first]
            key = missing[0] if missing else next(k for k, j in zip(first, sd) if k != j)
            raise ValueError(f"{name}[{i}] has different keys from {name}[0]: first difference at {key!r}")
        for key, t in sd.items():
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name}[{i}][{key!r}] must be a tensor, got {type(t).__name__}")
            ref = first[key]
            if t.shape != ref.shape or t.dtype != ref.dtype:
                raise ValueError(f"{name}[{i}][{key!r}] has shape {tuple(t.shape)} and dtype {t.dtype}, but "
                                 f"{name}[0][{key!r}] has shape {tuple(ref.shape)} and dtype {ref.dtype}")
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name}[{i}][{key!r}] must be finite, got {int((~torch.isfinite(t)).sum())} "
                                 "NaN/inf value(s)")
    return states


def _combine(states: list[Mapping[str, torch.Tensor]], coefficients: Sequence[float]) -> dict[str, torch.Tensor]:
    """``sum_i c_i states[i]`` for floating tensors (accumulated in float64, returned in the input dtype);
    non-floating tensors copied from ``states[0]``."""
    out = {}
    for key, ref in states[0].items():
        if not ref.is_floating_point():
            out[key] = ref.clone()
            continue
        acc = torch.zeros(ref.shape, dtype=torch.float64, device=ref.device)
        for c, sd in zip(coefficients, states):
            if c != 0.0:
                acc.add_(sd[key].to(device=ref.device, dtype=torch.float64), alpha=float(c))
        out[key] = acc.to(ref.dtype)
    return out


def interpolate(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], alpha: float,
                extrapolate: bool = False) -> dict[str, torch.Tensor]:
    """WiSE-FT: ``(1 - alpha) * a + alpha * b`` for every floating tensor (``alpha = 0`` returns ``a``'s values,
    ``alpha = 1`` ``b``'s, exactly).  Non-floating tensors come from ``a``.

    ``alpha`` must lie in [0, 1] unless ``extrapolate=True`` (then any finite number).
    """
    states = _check_states([a, b], "states (a, b)")
    t = check_finite(alpha, "alpha")
    if not extrapolate and not 0.0 <= t <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (pass extrapolate=True to go beyond), got {alpha!r}")
    if t == 0.0:
        return {k: v.clone() for k, v in a.items()}
    if t == 1.0:
        return {k: (v.clone() if v.is_floating_point() else a[k].clone()) for k, v in b.items()}
    return _combine(states, [1.0 - t, t])


def uniform_soup(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform soup: the mean of the ingredients' floating tensors; non-floating ones from ``states[0]``."""
    states = _check_states(states)
    return _combine(states, [1.0 / len(states)] * len(states))


def task_arithmetic(base: Mapping[str, torch.Tensor], states: Sequence[Mapping[str, torch.Tensor]],
                    lambdas: Sequence[float]) -> dict[str, torch.Tensor]:
    """``base + sum_t lambdas[t] * (states[t] - base)`` (task vectors, Ilharco et al. 2023).

    With one state and ``lambdas=[alpha]`` this is :func:`interpolate`; with ``lambdas = [1/T] * T`` it is the
    uniform soup of ``states``.  Non-floating tensors come from ``base``.
    """
    all_states = _check_states([base, *states], "states (base, *states)")
    lam = [check_finite(v, f"lambdas[{i}]") for i, v in enumerate(lambdas)]
    if len(lam) != len(all_states) - 1:
        raise ValueError(f"lambdas must have one entry per state ({len(all_states) - 1}), got {len(lam)}")
    return _combine(all_states, [1.0 - sum(lam), *lam])


class GreedySoup(dict):
    """The greedy soup's state dict, with ``.kept`` (indices of the ingredients in it, in the order they were
    added) and ``.scores`` (the held-out score after each accepted step)."""

    kept: list[int]
    scores: list[float]


def greedy_soup(states: Sequence[Mapping[str, torch.Tensor]], evaluate: Callable[[Mapping], float],
                scores: Sequence[float] | None = None) -> GreedySoup:
    """Greedy soup (Wortsman et al. 2022, Recipe 1): sort the ingredients by held-out score, best first; start the
    soup with the best; try each next one and keep it only if the uniform soup of the kept ingredients plus it
    scores *strictly* higher on held-out data than the soup without it.

    Args:
        states: the ingredients' state dicts.
        evaluate: ``state_dict -> float``, the held-out score (higher is better, e.g. val accuracy).
        scores: the ingredients' own held-out scores if already known (else ``evaluate`` is called on each).

    Returns:
        A :class:`GreedySoup` (a state dict) with ``kept`` and ``scores``.  Ties in the sort keep the input order.
    """
    states = _check_states(states)
    if not callable(evaluate):
        raise TypeError(f"evaluate must be a callable state_dict -> float, got {type(evaluate).__name__}")
    own = [float(evaluate(sd)) for sd in states] if scores is None else [check_finite(v, "scores") for v in scores]
    if len(own) != len(states):
        raise ValueError(f"scores must have one entry per state ({len(states)}), got {len(own)}")
    order = sorted(range(len(states)), key=lambda i: -own[i])
    kept = [order[0]]
    best = own[order[0]]
    history = [best]
    for i in order[1:]:
        candidate = uniform_soup([states[j] for j in (*kept, i)])
        score = float(evaluate(candidate))
        if score > best:
            kept.append(i)
            best = score
            history.append(score)
    soup = GreedySoup(uniform_soup([states[j] for j in kept]))
    soup.kept, soup.scores = kept, history
    return soup


def interpolation_logits(model: torch.nn.Module, a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                         alphas, inputs: torch.Tensor, extrapolate: bool = False) -> torch.Tensor:
    """Outputs of ``model`` with the weights ``interpolate(a, b, alpha)`` for every alpha, in one vectorised pass.

    Args:
        model: the architecture of ``a`` and ``b`` (its own weights are not used); run in its current mode, so
            put it in eval mode for batch-norm to use the (interpolated) running statistics.
        a, b: state dicts of that architecture (checked as in :func:`interpolate`).
        alphas: ``(A,)`` interpolation coefficients, each in [0, 1] unless ``extrapolate``.
        inputs: ``(N, ...)`` a batch for the model.

    Returns:
        ``(A, N, ...)`` the model's outputs, one slice per alpha; equal (to float rounding) to loading
        ``interpolate(a, b, alpha)`` into the model and calling it, alpha by alpha.
    """
    states = _check_states([a, b], "states (a, b)")
    al = torch.as_tensor(alphas, dtype=torch.float64).reshape(-1)
    if al.numel() == 0:
        raise ValueError("alphas must hold at least one coefficient")
    values = [check_finite(v, "alphas") for v in al.tolist()]
    if not extrapolate and any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"alphas must be in [0, 1] (pass extrapolate=True to go beyond), got {values}")
    if set(model.state_dict()) != set(a):
        raise ValueError("model must have the architecture of the state dicts: its state_dict keys differ")
    floating = {k: (states[0][k], states[1][k]) for k in a if a[k].is_floating_point()}
    fixed = {k: v for k, v in a.items() if not v.is_floating_point()}

    def run(alpha: torch.Tensor) -> torch.Tensor:
        params = {k: torch.lerp(va, vb, alpha.to(va.dtype)) for k, (va, vb) in floating.items()}
        return torch.func.functional_call(model, {**params, **fixed}, (inputs,))

    with torch.no_grad():
        return torch.func.vmap(run)(al.to(next(iter(a.values())).device))
