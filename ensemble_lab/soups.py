"""Weight-space ensembles: operations on state dicts of one architecture.

- :func:`interpolate` (WiSE-FT, Wortsman et al. CVPR 2022): ``(1 - alpha) a + alpha b``.
- :func:`uniform_soup` (model soups, Wortsman et al. ICML 2022): the mean of the ingredients' weights.
- :func:`greedy_soup`: ingredients sorted by their held-out score, best first; each is added to the soup only if
  the held-out score of the soup *strictly* improves (the reference code's rule).
- :func:`task_arithmetic`: the general form ``theta0 + sum_t lambda_t (theta_t - theta0)``; the three above are
  special cases.
- :func:`interpolation_logits`: the outputs of the interpolated models for many alphas straight from the two
  state dicts (``functional_call`` with the interpolated tensors; a loop over alphas, or ``torch.func.vmap`` with
  ``vectorise=True``), so a WiSE-FT curve needs no model built or loaded per alpha.
- :func:`scale_head`, :func:`interpolation_head_terms`, :func:`combine_head_terms`: BANG's balance knob (scale
  the fine-tuned head before averaging) and a WiSE-FT curve split into its two linear head terms, so that
  the knob costs no forward pass.
- :func:`learned_soup` (model soups, the "learned soup" recipe): mixing coefficients, one set per layer or one
  for the whole model, fitted by gradient descent on the held-out loss; returned with the fit's loss curve.

A state dict is a mapping ``name -> tensor`` (``model.state_dict()``).  Every operation checks that all state
dicts have the same keys, shapes and dtypes (the message names the first key that differs) and that every
floating tensor is finite.  Floating tensors are combined; non-floating ones (integer buffers such as batch-norm's
``num_batches_tracked``) cannot be averaged and are taken from the first state dict, which is documented per
function.  Floating buffers (batch-norm running means and variances) are averaged like parameters: that is what
the papers do, and it is only an approximation of the statistics the souped weights would produce (recompute them
on data if it matters).  Results are new tensors on the inputs' devices; inputs are never modified.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._validation import (
    MAX_COUNT,
    as_tensor,
    check_bool,
    check_finite,
    check_finite_result,
    check_finite_tensor,
    check_int,
    check_labels_for,
    check_module,
    check_positive,
    check_sequence,
    on_device_of,
)

__all__ = [
    "interpolate",
    "uniform_soup",
    "greedy_soup",
    "task_arithmetic",
    "GreedySoup",
    "interpolation_logits",
    "scale_head",
    "interpolation_head_terms",
    "combine_head_terms",
    "learned_soup",
    "LearnedSoup",
]


def _state_list(states, name: str = "states") -> list:
    """``states`` as a list: a list or tuple (any sequence but a str) of at least one item; a single state dict, a
    generator (used up by the first pass) or a str is refused."""
    if isinstance(states, (Mapping, str, bytes)) or not isinstance(states, Sequence):
        raise TypeError(f"{name} must be a list of state dicts, got {type(states).__name__}")
    states = list(states)
    if not states:
        raise ValueError(f"{name} must hold at least one state dict, got an empty list")
    return states


def _check_states(states, name: str = "states", *, names: Sequence[str] | None = None) -> list:
    """State dicts with the same keys (in any order: tensors are matched by name, as the model-soups authors do),
    shapes and dtypes, every floating tensor finite.  ``names`` are how messages call each state dict (default
    ``states[i]``)."""
    states = _state_list(states, name)
    label = list(names) if names is not None else [f"{name}[{i}]" for i in range(len(states))]
    first = states[0]
    for i, sd in enumerate(states):
        if not isinstance(sd, Mapping):
            raise TypeError(f"{label[i]} must be a state dict (a mapping name -> tensor), got {type(sd).__name__}")
        if i and set(sd.keys()) != set(first.keys()):
            missing = [k for k in first if k not in sd]
            extra = [k for k in sd if k not in first]
            key, how = (missing[0], f"missing from {label[i]}") if missing else (extra[0], f"not in {label[0]}")
            raise ValueError(f"{label[i]} has different keys from {label[0]}: first difference at {key!r} ({how})")
        for key, t in sd.items():
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{label[i]}[{key!r}] must be a tensor, got {type(t).__name__}")
            ref = first[key]
            if t.shape != ref.shape or t.dtype != ref.dtype:
                raise ValueError(
                    f"{label[i]}[{key!r}] has shape {tuple(t.shape)} and dtype {t.dtype}, but "
                    f"{label[0]}[{key!r}] has shape {tuple(ref.shape)} and dtype {ref.dtype}"
                )
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(
                    f"{label[i]}[{key!r}] must be finite, got {int((~torch.isfinite(t)).sum())} NaN/inf value(s)"
                )
    return states


def _reals(x, name: str, *, allow_scalar: bool = False) -> list[float]:
    """Finite real numbers as python floats, from a list, tuple, 1-D numpy array or 1-D tensor (and, with
    ``allow_scalar``, one number).  Strings, generators, dicts, nested lists, bools and complex numbers are
    refused, naming the entry (``alphas[1]``)."""
    if allow_scalar and (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)):
        return [check_finite(x, name)]
    if isinstance(x, (torch.Tensor, np.ndarray)):
        real = (
            not (x.dtype == torch.bool or torch.is_complex(x)) if isinstance(x, torch.Tensor) else x.dtype.kind in "iuf"
        )
        if not real:
            raise TypeError(f"{name} must hold real numbers, got a {type(x).__name__} of dtype {x.dtype}")
        if x.ndim == 0 and allow_scalar:
            return [check_finite(x, name)]
        if x.ndim != 1:
            raise ValueError(f"{name} must be a 1-D sequence of numbers, got shape {tuple(x.shape)}")
        x = x.detach().cpu().tolist() if isinstance(x, torch.Tensor) else x.tolist()
    items = check_sequence(x, name, what="numbers", allow_empty=True)
    return [check_finite(v, f"{name}[{i}]") for i, v in enumerate(items)]


def _check_inputs(inputs, state: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """A batch ``(N, ...)``, N >= 1, for a model with the weights ``state``: numpy placed on the weights' device (a
    tensor on another device refused), complex refused, floating values finite and cast to the weights' floating
    dtype (float64 inputs for a float32 model)."""
    ref = next((v for v in state.values() if v.is_floating_point()), next(iter(state.values())))
    x = as_tensor(on_device_of(inputs, "inputs", ref, "the state dicts"), "inputs", floating=False)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"inputs must be a tensor (N, ...) with N >= 1, got shape {tuple(x.shape)}")
    if torch.is_floating_point(x):
        check_finite_tensor(x, "inputs")
        if ref.is_floating_point() and x.dtype != ref.dtype:
            x = x.to(ref.dtype)
    return x


def _combine(states: list[Mapping[str, torch.Tensor]], coefficients: Sequence[float]) -> dict[str, torch.Tensor]:
    """``sum_i c_i states[i]`` for floating tensors (accumulated in float64, returned in the input dtype);
    non-floating tensors copied from ``states[0]``."""
    out = {}
    for key, ref in states[0].items():
        if not ref.is_floating_point():
            out[key] = ref.clone()
            continue
        acc = torch.zeros(ref.shape, dtype=torch.float64, device=ref.device)
        for c, sd in zip(coefficients, states, strict=False):
            if c != 0.0:
                acc.add_(sd[key].to(device=ref.device, dtype=torch.float64), alpha=float(c))
        out[key] = acc.to(ref.dtype)
    return out


def _check_result(out: Mapping[str, torch.Tensor], what: str) -> None:
    """Refuse a combination whose floating tensors overflowed, naming the key."""
    for key, v in out.items():
        if v.is_floating_point():
            check_finite_result(v, f"{what} at {key!r}")


def interpolate(
    a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor], alpha: float, extrapolate: bool = False
) -> dict[str, torch.Tensor]:
    """WiSE-FT: ``(1 - alpha) * a + alpha * b`` for every floating tensor (``alpha = 0`` returns ``a``'s values,
    ``alpha = 1`` ``b``'s, exactly).  Non-floating tensors come from ``a``.

    ``alpha`` must lie in [0, 1] unless ``extrapolate=True`` (then any finite number).

    Example:
        >>> a, b = {"w": torch.zeros(2)}, {"w": torch.ones(2)}
        >>> interpolate(a, b, 0.25)["w"].tolist()
        [0.25, 0.25]
    """
    states = _check_states([a, b], names=("a", "b"))
    t = check_finite(alpha, "alpha")
    extrapolate = check_bool(extrapolate, "extrapolate")
    if not extrapolate and not 0.0 <= t <= 1.0:
        raise ValueError(f"alpha must be in [0, 1] (pass extrapolate=True to go beyond), got {alpha!r}")
    if t == 0.0:
        return {k: v.clone() for k, v in a.items()}
    if t == 1.0:
        return {k: (b[k].clone() if v.is_floating_point() else v.clone()) for k, v in a.items()}
    out = _combine(states, [1.0 - t, t])
    if extrapolate and not 0.0 <= t <= 1.0:  # a convex combination cannot overflow; an extrapolation can
        _check_result(out, f"(1 - alpha) * a + alpha * b (alpha={alpha!r})")
    return out


def uniform_soup(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform soup: the mean of the ingredients' floating tensors; non-floating ones from ``states[0]``.

    Example:
        >>> uniform_soup([{"w": torch.zeros(2)}, {"w": torch.tensor([1.0, 3.0])}])["w"].tolist()
        [0.5, 1.5]
    """
    states = _check_states(states)
    return _combine(states, [1.0 / len(states)] * len(states))


def task_arithmetic(
    base: Mapping[str, torch.Tensor], states: Sequence[Mapping[str, torch.Tensor]], lambdas: Sequence[float]
) -> dict[str, torch.Tensor]:
    """``base + sum_t lambdas[t] * (states[t] - base)`` (task vectors, Ilharco et al. 2023).

    With one state and ``lambdas=[alpha]`` this is :func:`interpolate`; with ``lambdas = [1/T] * T`` it is the
    uniform soup of ``states``.  Non-floating tensors come from ``base``.
    """
    states = _state_list(states)
    all_states = _check_states([base, *states], names=("base", *(f"states[{i}]" for i in range(len(states)))))
    lam = _reals(lambdas, "lambdas")
    if len(lam) != len(states):
        raise ValueError(f"lambdas must have one entry per state ({len(states)}), got {len(lam)}")
    first = 1.0 - sum(lam)
    if not math.isfinite(first):
        raise ValueError(f"lambdas must have a finite sum (1 - sum(lambdas) weighs base), got {lam}")
    out = _combine(all_states, [first, *lam])
    _check_result(out, "base + sum_t lambdas[t] * (states[t] - base)")
    return out


class GreedySoup(dict):
    """The greedy soup's state dict, with ``.kept`` (indices of the ingredients in it, in the order they were
    added) and ``.scores`` (the held-out score after each accepted step)."""

    kept: list[int]
    scores: list[float]


def _score(evaluate, state: Mapping, what: str) -> float:
    """``evaluate(state)`` as a finite python float, or an error naming ``evaluate`` and what it was given."""
    value = evaluate(state)
    try:
        return check_finite(value, "evaluate")
    except (TypeError, ValueError) as exc:
        shown = repr(value) if len(repr(value)) <= 60 else f"a {type(value).__name__}"
        raise type(exc)(
            f"evaluate must return a finite number (the held-out score, higher is better), got {shown} for {what}"
        ) from exc


def greedy_soup(
    states: Sequence[Mapping[str, torch.Tensor]],
    evaluate: Callable[[Mapping], float],
    scores: Sequence[float] | None = None,
) -> GreedySoup:
    """Greedy soup (Wortsman et al. 2022, Recipe 1): sort the ingredients by held-out score, best first; start the
    soup with the best; try each next one and keep it only if the uniform soup of the kept ingredients plus it
    scores *strictly* higher on held-out data than the soup without it.

    Args:
        states: the ingredients' state dicts.
        evaluate: ``state_dict -> float``, the held-out score (higher is better, e.g. val accuracy).
        scores: the ingredients' own held-out scores if already known (else ``evaluate`` is called on each).

    Returns:
        A :class:`GreedySoup` (a state dict) with ``kept`` and ``scores``.  Ties in the sort keep the input order.

    Example:
        >>> states = [{"w": torch.tensor([1.0])}, {"w": torch.tensor([3.0])}, {"w": torch.tensor([9.0])}]
        >>> soup = greedy_soup(states, lambda s: -abs(float(s["w"]) - 2.0))  # higher is better
        >>> soup.kept
        [0, 1]
    """
    states = _check_states(states)
    if not callable(evaluate):
        raise TypeError(f"evaluate must be a callable state_dict -> float, got {type(evaluate).__name__}")
    if scores is None:
        own = [_score(evaluate, sd, f"states[{i}]") for i, sd in enumerate(states)]
    else:
        own = _reals(scores, "scores")
    if len(own) != len(states):
        raise ValueError(f"scores must have one entry per state ({len(states)}), got {len(own)}")
    order = sorted(range(len(states)), key=lambda i: -own[i])
    kept = [order[0]]
    best = own[order[0]]
    history = [best]
    for i in order[1:]:
        candidate = uniform_soup([states[j] for j in (*kept, i)])
        score = _score(evaluate, candidate, f"the soup of states {[*kept, i]}")
        if score > best:
            kept.append(i)
            best = score
            history.append(score)
    soup = GreedySoup(uniform_soup([states[j] for j in kept]))
    soup.kept, soup.scores = kept, history
    return soup


def _check_alphas(alphas, extrapolate: bool) -> torch.Tensor:
    """``(A,)`` float64 CPU coefficients: a sequence, array or tensor of finite numbers (or one number)."""
    values = _reals(alphas, "alphas", allow_scalar=True)
    if not values:
        raise ValueError("alphas must hold at least one coefficient, got an empty sequence")
    if not check_bool(extrapolate, "extrapolate") and any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"alphas must be in [0, 1] (pass extrapolate=True to go beyond), got {values}")
    return torch.tensor(values, dtype=torch.float64)


def _check_model_keys(model: torch.nn.Module, keys) -> None:
    if set(model.state_dict()) != set(keys):
        raise ValueError("model must have the architecture of the state dicts: its state_dict keys differ")


def _over_alphas(
    run, alphas: torch.Tensor, inputs: torch.Tensor, batch_size: int, vectorise: bool, dim: int = 0
) -> torch.Tensor:
    """``run(alpha, chunk)`` for every alpha and every ``batch_size`` chunk of ``inputs``, stacked along a new
    first axis (A); chunks are concatenated along ``dim``, the sample axis of ``run``'s output.

    ``vectorise=False``: a python loop over alphas, each a plain forward pass over the inputs' chunks.
    ``vectorise=True``: ``torch.func.vmap`` over the alphas, chunk by chunk (A times one chunk's activations in
    memory).  Both do the same A forward passes; on 2 cpu cores the loop was faster (BENCHMARKS.md), because
    vmap turns each convolution into a grouped one.
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if not isinstance(vectorise, bool):
        raise TypeError(f"vectorise must be a bool, got {type(vectorise).__name__}")
    chunks = [inputs[i : i + batch_size] for i in range(0, inputs.shape[0], batch_size)]
    try:
        with torch.no_grad():
            if vectorise:
                parts = [torch.func.vmap(lambda a, chunk=chunk: run(a, chunk))(alphas) for chunk in chunks]
                out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=dim + 1)
            else:
                out = torch.stack([torch.cat([run(a, chunk) for chunk in chunks], dim=dim) for a in alphas])
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, TypeError, ValueError) as exc:  # inputs the architecture cannot take, however it says so
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(
            f"model cannot run on inputs of shape {tuple(inputs.shape)} and dtype {inputs.dtype}: {exc}"
        ) from exc
    if not bool(torch.isfinite(out).all()):  # inputs and weights are finite: the forward pass overflowed
        raise ValueError(
            f"model's outputs are not finite for alphas {alphas.tolist()} on these inputs (the forward pass overflows)"
        )
    return out


def interpolation_logits(
    model: torch.nn.Module,
    a: Mapping[str, torch.Tensor],
    b: Mapping[str, torch.Tensor],
    alphas,
    inputs: torch.Tensor,
    extrapolate: bool = False,
    batch_size: int = 4096,
    vectorise: bool = False,
) -> torch.Tensor:
    """Outputs of ``model`` with the weights ``interpolate(a, b, alpha)`` for every alpha, from the two state dicts.

    Args:
        model: the architecture of ``a`` and ``b`` (its own weights are not used); run in its current mode, so
            put it in eval mode for batch-norm to use the (interpolated) running statistics.
        a, b: state dicts of that architecture (checked as in :func:`interpolate`).
        alphas: ``(A,)`` interpolation coefficients, each in [0, 1] unless ``extrapolate``.
        inputs: ``(N, ...)`` a batch for the model, run ``batch_size`` images at a time; finite, a tensor on the
            states' device or a numpy array (placed there); floating inputs are cast to the states' floating
            dtype (float64 inputs for a float32 model).
        vectorise: run the alphas through ``torch.func.vmap`` instead of a loop (see :func:`_over_alphas`).

    Returns:
        ``(A, N, ...)`` the model's outputs, one slice per alpha; equal (to float rounding) to loading
        ``interpolate(a, b, alpha)`` into the model and calling it, alpha by alpha.  The work is the same A
        forward passes; what is saved is building and loading A state dicts, which for a small model is
        little (see BENCHMARKS.md).
    """
    model = check_module(model, "model")
    states = _check_states([a, b], names=("a", "b"))
    al = _check_alphas(alphas, extrapolate)
    _check_model_keys(model, a)
    inputs = _check_inputs(inputs, a)
    floating = {k: (states[0][k], states[1][k]) for k in a if a[k].is_floating_point()}
    fixed = {k: v for k, v in a.items() if not v.is_floating_point()}

    def run(alpha: torch.Tensor, chunk: torch.Tensor) -> torch.Tensor:
        params = {k: torch.lerp(va, vb, alpha.to(va.dtype)) for k, (va, vb) in floating.items()}
        return torch.func.functional_call(model, {**params, **fixed}, (chunk,))

    return _over_alphas(run, al.to(next(iter(a.values())).device), inputs, batch_size, vectorise)


def _head_keys(state: Mapping[str, torch.Tensor], head: str) -> tuple[str, str | None]:
    if not isinstance(head, str) or not head:
        raise TypeError(f"head must be the name of a linear module (e.g. 'head'), got {head!r}")
    weight, bias = f"{head}.weight", f"{head}.bias"
    if weight not in state or state[weight].ndim != 2:
        raise ValueError(f"head must name a linear module of the state dict: no 2-d {weight!r} among its keys")
    return weight, (bias if bias in state else None)


def scale_head(state: Mapping[str, torch.Tensor], head: str, scale: float) -> dict[str, torch.Tensor]:
    """A copy of ``state`` with the linear layer ``head`` (its ``weight`` and ``bias``) multiplied by ``scale``,
    which multiplies that model's logits by ``scale``: a temperature ``1 / scale`` built into the weights.

    BANG's point (Lin et al., ICLR 2024) is that an over-confident fine-tuned model dominates a weight average;
    scaling its head down before averaging (``scale < 1``) balances the two endpoints' confidences.
    """
    _check_states([state], "state")
    weight, bias = _head_keys(state, head)
    s = check_finite(scale, "scale")
    if s <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    out = {k: v.clone() for k, v in state.items()}
    for key in (weight, bias):
        if key is not None:
            out[key] = check_finite_result(out[key] * s, f"state[{key!r}] * scale (scale={scale!r})")
    return out


def interpolation_head_terms(
    model: torch.nn.Module,
    a: Mapping[str, torch.Tensor],
    b: Mapping[str, torch.Tensor],
    alphas,
    inputs: torch.Tensor,
    head: str = "head",
    extrapolate: bool = False,
    batch_size: int = 4096,
    vectorise: bool = False,
) -> torch.Tensor:
    """The two linear terms of a WiSE-FT curve whose last layer is the linear module ``head``.

    With every layer but ``head`` interpolated at ``alpha``, giving features ``f_alpha(x)``:
    ``terms[i, 0] = head_a(f_alpha(x))`` and ``terms[i, 1] = head_b(f_alpha(x))``.  Because the head is linear,
    the interpolated model's logits are ``(1 - alpha) terms[i, 0] + alpha terms[i, 1]``, and with ``b``'s head
    scaled by ``s`` (:func:`scale_head`) they are ``(1 - alpha) terms[i, 0] + alpha s terms[i, 1]``
    (:func:`combine_head_terms`): a balance knob that costs no further forward pass.

    Both heads run in one call: their weights are stacked into one ``(2C, D)`` linear layer.  ``inputs``,
    ``batch_size`` and ``vectorise`` as in :func:`interpolation_logits`.

    Returns:
        ``(A, 2, N, C)`` float tensor on the inputs' device.
    """
    model = check_module(model, "model")
    states = _check_states([a, b], names=("a", "b"))
    al = _check_alphas(alphas, extrapolate)
    _check_model_keys(model, a)
    weight, bias = _head_keys(a, head)
    inputs = _check_inputs(inputs, a)
    c = a[weight].shape[0]
    both = {weight: torch.cat([a[weight], b[weight]])}
    if bias is not None:
        both[bias] = torch.cat([a[bias], b[bias]])
    floating = {k: (states[0][k], states[1][k]) for k in a if a[k].is_floating_point() and k not in both}
    fixed = {k: v for k, v in a.items() if not v.is_floating_point()}

    def run(alpha: torch.Tensor, chunk: torch.Tensor) -> torch.Tensor:
        params = {k: torch.lerp(va, vb, alpha.to(va.dtype)) for k, (va, vb) in floating.items()}
        out = torch.func.functional_call(model, {**params, **fixed, **both}, (chunk,))  # (n, 2C)
        return torch.stack([out[:, :c], out[:, c:]], dim=-3)  # (2, n, C)

    return _over_alphas(run, al.to(a[weight].device), inputs, batch_size, vectorise, dim=1)  # (A, 2, N, C)


def combine_head_terms(terms: torch.Tensor, alphas, scale: float = 1.0) -> torch.Tensor:
    """WiSE-FT logits ``(A, N, C)`` from :func:`interpolation_head_terms`'s ``(A, 2, N, C)`` terms:
    ``(1 - alpha) terms[:, 0] + alpha * scale * terms[:, 1]``, ``scale`` being the fine-tuned head's scale."""
    terms = as_tensor(terms, "terms")
    if terms.ndim != 4 or terms.shape[1] != 2:
        raise ValueError(f"terms must be an (A, 2, N, C) tensor, got shape {tuple(terms.shape)}")
    values = _reals(alphas, "alphas", allow_scalar=True)
    if len(values) != terms.shape[0]:
        raise ValueError(f"alphas must have one entry per row of terms ({terms.shape[0]}), got {len(values)}")
    s = check_finite(scale, "scale")
    if s <= 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    al = torch.tensor(values, dtype=terms.dtype, device=terms.device).view(-1, 1, 1)
    out = (1 - al) * terms[:, 0] + (al * s) * terms[:, 1]
    # one scan, of the result: a NaN/inf in terms always reaches it (0 * inf and 0 * NaN are NaN)
    if not bool(torch.isfinite(out).all()):
        check_finite_tensor(terms, "terms")
        check_finite_result(out, f"(1 - alphas) * terms[:, 0] + alphas * scale * terms[:, 1] (scale={scale!r})")
    return out


class LearnedSoup(dict):
    """The learned soup's state dict (loadable into the architecture), with the fit that produced it:

    - ``coefficients``: ``(n, G)`` float64, column ``g`` the weights of the n ingredients in group ``groups[g]``
      (non-negative, summing to 1);
    - ``groups``: the ``G`` group names, in state-dict order (module names, or ``("*",)`` for one global group);
    - ``temperature``: the learned temperature of the logits (a float; it is *not* part of the weights);
    - ``losses``: ``steps + 1`` floats, the held-out loss before the first step and after each step.
    """

    coefficients: torch.Tensor
    groups: tuple[str, ...]
    temperature: float
    losses: list[float]


def learned_soup(
    model: torch.nn.Module,
    states: Sequence[Mapping[str, torch.Tensor]],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    by_layer: bool = True,
    steps: int = 100,
    lr: float = 0.1,
) -> LearnedSoup:
    """Learned soup (Wortsman et al. ICML 2022): mixing coefficients fitted by gradient descent on held-out data.

    The soup is ``sum_i w[i, g] * states[i][key]`` for every floating tensor ``key`` of group ``g``.  A group is a
    module: the keys sharing the prefix before the last ``"."`` (``"features.0.weight"`` and
    ``"features.0.bias"`` are group ``"features.0"``; the root module's own tensors are group ``""``), so floating
    buffers such as batch-norm running statistics are mixed with their module's weights.  With
    ``by_layer=False`` there is one group, ``"*"``, for the whole model.  Non-floating tensors come from
    ``states[0]``.

    Our parametrisation: ``w = softmax(raw, dim=0)`` with ``raw`` of shape ``(n, G)`` starting at zeros, so the
    fit starts from the uniform soup and every group's weights stay a convex combination (non-negative, sum 1):
    the soup stays inside the region spanned by the ingredients, where averaging weights is known to work.  As in
    the paper, a scalar temperature ``T = exp(log_t)`` (starting at 1) is learned with them; it only rescales the
    logits in the loss (``cross_entropy(logits / T, labels)``) so that the coefficients are not pushed around to
    fix calibration, and it is reported, not baked into the weights.

    Optimisation: full-batch Adam with learning rate ``lr`` for ``steps`` steps, gradients flowing only into
    ``raw`` and ``log_t`` (the ingredients are stacked once into fixed ``(n, ...)`` tensors; the model's own
    parameters are not used or touched).  Floating buffers are mixed with their group's current weights at every
    step, so each loss is exactly that of the current soup, but the gradient treats them as constants (torch's
    batch norm cannot differentiate through its running statistics): a group's coefficients are moved by its
    parameters' gradient.  Nothing is random (full batch, zero start), so there is no ``seed``: the same call
    gives the same soup.

    Args:
        model: the architecture of ``states`` (its own weights are not used), in eval mode: the loss is that of
            the deployed soup, so batch-norm must use the (mixed) running statistics and dropout must be off.
        states: ``n >= 1`` state dicts of that architecture (checked as in :func:`uniform_soup`), on one device.
        inputs: ``(N, ...)`` held-out batch for ``model``, ``N >= 1``, finite, on the states' device (numpy is
            placed there); floating inputs are cast to the states' floating dtype.
        labels: ``(N,)`` integer class indices in ``[0, C)``, where ``C`` is the width of the model's ``(N, C)``
            output.
        by_layer: one set of coefficients per module (True) or one for the whole model (False).
        steps: number of Adam steps, >= 1.
        lr: Adam's learning rate, > 0.

    Returns:
        A :class:`LearnedSoup`: the souped state dict (each floating tensor in its input dtype, computed in
        float64 from the final coefficients; non-floating tensors copied from ``states[0]``), with
        ``coefficients``, ``groups``, ``temperature`` and ``losses``.
    """
    states = _check_states(states)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module (the architecture of the states), got {type(model).__name__}")
    if not isinstance(by_layer, bool):
        raise TypeError(f"by_layer must be a bool, got {type(by_layer).__name__}")
    steps = check_int(steps, "steps", minimum=1, maximum=MAX_COUNT)
    lr = check_positive(lr, "lr")
    first = states[0]
    own = model.state_dict()
    if set(own) != set(first):
        key = next(k for k in [*own, *first] if k not in own or k not in first)
        raise ValueError(
            "model must have the architecture of the state dicts: its state_dict keys differ "
            f"(first difference at {key!r})"
        )
    for key, t in own.items():
        if t.shape != first[key].shape:
            raise ValueError(
                f"model must have the architecture of the state dicts: its {key!r} has shape "
                f"{tuple(t.shape)}, states[0][{key!r}] has shape {tuple(first[key].shape)}"
            )
    training = [name or "(root)" for name, m in model.named_modules() if m.training]
    if training:
        raise ValueError(
            f"model must be in eval mode (call model.eval()), got modules in training mode: {training[:3]}"
        )
    # keys in the model's own order (not states[0]'s), so coefficients and groups do not depend on dict order
    floating = [k for k in own if first[k].is_floating_point()]
    if not floating:
        raise ValueError("states must hold at least one floating tensor to mix, got only non-floating tensors")
    device = first[floating[0]].device
    for i, sd in enumerate(states):
        for key, t in sd.items():
            if t.device != device:
                raise ValueError(
                    f"states[{i}][{key!r}] is on {t.device}, but states[0][{floating[0]!r}] is on "
                    f"{device}: all ingredients must be on one device; move them explicitly"
                )

    x = as_tensor(on_device_of(inputs, "inputs", first[floating[0]], "the states"), "inputs", floating=False)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(f"inputs must have shape (N, ...) with N >= 1 samples, got shape {tuple(x.shape)}")
    if torch.is_floating_point(x):
        check_finite_tensor(x, "inputs")
        x = x.to(first[floating[0]].dtype)  # float64 inputs for a float32 model: cast to the weights' dtype
    n_rows = x.shape[0]
    if not isinstance(labels, torch.Tensor):
        labels = as_tensor(labels, "labels", floating=False).to(device)
    if labels.ndim != 1 or labels.shape[0] != n_rows:
        raise ValueError(
            f"labels must have shape ({n_rows},), one class index per row of inputs, got shape {tuple(labels.shape)}"
        )

    group_index: dict[str, int] = {}
    group_of = {
        k: group_index.setdefault(k.rpartition(".")[0] if by_layer else "*", len(group_index)) for k in floating
    }
    n, n_groups = len(states), len(group_index)
    with torch.no_grad():
        stacked = {k: torch.stack([sd[k] for sd in states]).detach() for k in floating}  # (n, *shape), fixed
    fixed = {k: v.clone() for k, v in first.items() if not v.is_floating_point()}  # a forward cannot touch states
    parameters = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    buffers = {k for k in floating if k not in parameters}

    raw = torch.zeros(n, n_groups, dtype=torch.float32, device=device, requires_grad=True)
    log_t = torch.zeros((), dtype=torch.float32, device=device, requires_grad=True)
    optimiser = torch.optim.Adam([raw, log_t], lr=lr)
    history = []
    target = None
    with torch.enable_grad():
        for step in range(steps + 1):
            weights = torch.softmax(raw, dim=0)  # (n, G), each column on the simplex
            frozen = weights.detach()  # buffers follow their group's weights but carry no gradient (see above)
            params = {
                k: torch.tensordot((frozen if k in buffers else weights)[:, group_of[k]].to(v.dtype), v, dims=1)
                for k, v in stacked.items()
            }
            logits = torch.func.functional_call(model, {**params, **fixed}, (x,))
            if target is None:
                if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != n_rows:
                    got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                    raise ValueError(
                        f"model must return logits shaped (N, C) = ({n_rows}, C) for inputs of N = "
                        f"{n_rows} rows, got {got}"
                    )
                if not bool(torch.isfinite(logits).all()):
                    raise ValueError("model's outputs with the uniform soup of states must be finite, got NaN/inf")
                target = check_labels_for(labels, logits.detach(), "labels")
            scaled = logits.to(torch.promote_types(logits.dtype, torch.float32)) / log_t.exp()
            loss = F.cross_entropy(scaled, target)
            history.append(loss.detach())
            if step == steps:
                break
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    if not (bool(torch.isfinite(raw).all()) and bool(torch.isfinite(log_t))):
        raise ValueError(f"the fit diverged (non-finite coefficients or temperature); try a smaller lr, got lr={lr}")

    with torch.no_grad():
        coefficients = torch.softmax(raw.detach().to(torch.float64), dim=0)
        soup = LearnedSoup()
        for key in own:
            ref = first[key]
            if ref.is_floating_point():
                mixed = torch.tensordot(coefficients[:, group_of[key]], stacked[key].to(torch.float64), dims=1)
                soup[key] = mixed.to(ref.dtype)
            else:
                soup[key] = ref.clone()
    soup.coefficients = coefficients
    soup.groups = tuple(group_index)
    soup.temperature = float(log_t.detach().exp())
    soup.losses = [float(v) for v in torch.stack(history).tolist()]
    return soup
