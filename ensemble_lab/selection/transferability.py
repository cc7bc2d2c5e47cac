"""Transferability: which pre-trained SOURCE models (and which team of them) will transfer well to a new target
task, estimated without fine-tuning.

Public names (``ensemble_lab.selection`` re-exports them): ``leep``, ``ms_leep``, ``e_leep``, ``osborn``,
``OsbornTerms``, ``select_team``, ``TeamSelection``.

Shapes and conventions
----------------------
- ``source_probs``: ``(N, Z)``, the source model's predicted distribution over ITS OWN label set ``Z`` (the
  "dummy labels") on the ``N`` target images; rows on the simplex (checked within ``atol = 1e-4``).
- ``source_probs_list``: a list or tuple of ``K`` such tensors, one per source model; the ``Z_k`` may differ, the
  ``N`` may not.  A ``(K, N, Z)`` tensor is accepted too.
- ``target_labels``: ``(N,)`` integer target classes ``>= 0``.  The target's classes are the labels seen: a
  target class that no image carries changes no score here.
- Logarithms are natural; LEEP, MS-LEEP and E-LEEP are mean log-likelihoods (nats, ``<= 0``, higher is better).
  Sums are accumulated in float64 (float32 on MPS) on the inputs' device; scores come back as python floats.

The formulas
------------
LEEP (Nguyen et al., "LEEP: A New Measure to Evaluate Transferability of Learned Representations", ICML 2020),
for a source ``theta`` and target pairs ``(x_i, y_i)``::

    P(y, z) = (1/N) sum_i theta(x_i)_z [y_i = y]        P(z) = sum_y P(y, z)        P(y | z) = P(y, z) / P(z)
    EEP(y | x) = sum_z P(y | z) theta(x)_z              LEEP = (1/N) sum_i log EEP(y_i | x_i)

A source class ``z`` that no image gets any mass on has ``P(z) = 0``; its ``P(y | z)`` is never used (every
``theta(x_i)_z`` is 0) and is taken as 0, so no NaN arises.  ``EEP(y_i | x_i) > 0`` for every valid input (some
``z`` has ``theta(x_i)_z > 0``, and then ``P(y_i, z) >= theta(x_i)_z / N > 0``).

For an ensemble of ``K`` sources (Agostinelli, Uijlings, Mensink and Ferrari, "Transferability Metrics for
Selecting Source Model Ensembles", CVPR 2022), as we read the paper:

- **E-LEEP** averages the members' expected empirical predictors and scores the average:
  ``E-LEEP = (1/N) sum_i log( (1/K) sum_k EEP_k(y_i | x_i) )``.  This is exactly LEEP of one model whose output
  is the members' outputs concatenated and divided by ``K`` (a distribution over the disjoint union of the label
  sets): the ``1/K`` cancels in each ``P(y | z)``.
- **MS-LEEP** (multi-source LEEP) treats the ensemble as ONE source whose dummy label is the tuple
  ``(z_1, ..., z_K)`` in the Cartesian product of the label sets, with ``theta(x)_{(z_1..z_K)} = prod_k
  theta_k(x)_{z_k}`` (members independent given the image), and takes LEEP of that.  It sees how the members'
  labels co-occur, at a cost of ``N * prod_k Z_k``; this module refuses a product above ``10**7`` entries.

Both reduce to LEEP for ``K = 1``.

OSBORN (Vimal K B, Bachu, Garg, Narasimhan, Konuru and Balasubramanian, "Building a Winning Team: Selecting Source
Model Ensembles using a Submodular Transferability Estimation Approach", ICCV 2023) scores a team by three factors:
image-domain difference, task difference and the cohesiveness of the team's models.  See :func:`osborn` for the
exact terms computed here and where they depart from the paper (the authors' code was not available to us), and
:func:`select_team` for the greedy submodular selection.

Optimal transport: exact, by scipy (which scikit-learn, a runtime dependency, already requires; declared in
pyproject.toml): :func:`scipy.optimize.linear_sum_assignment` when the two sets have the same size (for uniform
weights an optimal plan is then a permutation, Birkhoff-von Neumann), :func:`scipy.optimize.linprog` (HiGHS) on
the transport polytope otherwise.  No entropic regularisation, so the term has no tuning knob and equals the
brute-force optimum on small sets; we chose this over adding POT because the problems here are small (a few
hundred features per model) and exactness makes the term checkable.  The cost matrix is computed on the
features' device and copied to the CPU for scipy (a derived ``(N_s, N_t)`` matrix, never the caller's tensors).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .._numerics import acc_dtype, xlogx
from .._validation import (
    MAX_COUNT,
    as_tensor,
    check_finite,
    check_finite_result,
    check_finite_tensor,
    check_int,
    check_labels,
    check_probs,
    check_sequence,
    check_weights,
    on_device_of,
)

__all__ = [
    "leep",
    "ms_leep",
    "e_leep",
    "osborn",
    "osborn_pool",
    "OsbornPool",
    "OsbornTerms",
    "select_team",
    "TeamSelection",
]

_ATOL = 1e-4
#: the largest ``N * prod_k Z_k`` MS-LEEP materialises (80 MB in float64)
MAX_MS_LEEP_ENTRIES = 10**7
#: the largest ``N_s * N_t`` cost matrix for the exact transport (an assignment when the sizes are equal, a linear
#: programme with that many variables otherwise)
MAX_ASSIGNMENT_ENTRIES = 4 * 10**6
MAX_LINPROG_ENTRIES = 250_000


# ----------------------------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------------------------


def _source_probs(x, name: str) -> torch.Tensor:
    t = as_tensor(x, name).detach()
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 2:
        raise ValueError(
            f"{name} must have shape (N, Z): N target images by the source's Z >= 2 classes, got shape {tuple(t.shape)}"
        )
    return check_probs(t, name, _ATOL)


def _target_labels(x, like: torch.Tensor, like_name: str, name: str = "target_labels") -> torch.Tensor:
    """Target classes ``(N,)`` as int64 on ``like``'s device: integers >= 0 (the classes are the labels seen)."""
    n = like.shape[0]
    x = on_device_of(x, name, like, like_name)
    t = as_tensor(x, name, floating=False)
    whole = t.dtype != torch.bool and (not torch.is_floating_point(t) or torch.equal(t, t.round()))
    if t.numel() and whole and float(t.min()) < 0:  # before the range check, whose upper end is only a ceiling
        raise ValueError(f"{name} must be target class indices >= 0, got {float(t.min()):g}")
    return check_labels(t, n, MAX_COUNT, name)


def _probs_list(x, name: str = "source_probs_list") -> list[torch.Tensor]:
    """A list of ``K >= 1`` source probability tensors ``(N, Z_k)`` with one ``N`` on one device."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        t = as_tensor(x, name)
        if t.ndim != 3:
            raise ValueError(
                f"{name} must be a list of (N, Z_k) tensors or a (K, N, Z) tensor, got shape {tuple(t.shape)}"
            )
        items = list(t.unbind(0))
        if not items:
            raise ValueError(f"{name} must hold at least one source model, got shape {tuple(t.shape)}")
    else:
        items = check_sequence(x, name, what="(N, Z_k) probability tensors")
    out = [_source_probs(p, f"{name}[{k}]") for k, p in enumerate(items)]
    for k, p in enumerate(out[1:], start=1):
        if p.shape[0] != out[0].shape[0]:
            raise ValueError(
                f"{name}[{k}] must have the same number of target images as {name}[0] ({out[0].shape[0]}), "
                f"got {p.shape[0]}"
            )
        if p.device != out[0].device:
            raise ValueError(f"{name}[{k}] must be on the same device as {name}[0] ({out[0].device}), got {p.device}")
    return out


# ----------------------------------------------------------------------------------------------------------
# LEEP and its ensemble forms
# ----------------------------------------------------------------------------------------------------------


def _sum_by_class(labels: torch.Tensor, n_classes: int, rows: torch.Tensor) -> torch.Tensor:
    """``out[c] = sum_{i: labels_i = c} rows[i]``, ``(n_classes, ...)``, as a one-hot matrix product (on CPU
    ``index_add_`` is tens of times slower for these small shapes)."""
    return torch.nn.functional.one_hot(labels, n_classes).to(rows.dtype).T @ rows


def _eep_all(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``EEP(c | x_i)`` ``(N, Y)`` for every image and target class ``c < Y = max(y) + 1``, in the accumulation dtype,
    for checked ``p`` ``(N, Z)`` and labels ``y``; a source class with ``P(z) = 0`` contributes nothing."""
    acc = acc_dtype(p.device)
    p = p.to(acc)
    joint = _sum_by_class(y, int(y.max()) + 1, p)  # N P(y, z)
    pz = joint.sum(0)  # N P(z)
    cond = torch.where(pz > 0, joint / torch.where(pz > 0, pz, torch.ones_like(pz)), torch.zeros_like(joint))
    return p @ cond.T  # sum_z P(c | z) theta(x_i)_z


def _eep(p: torch.Tensor, y: torch.Tensor, name: str) -> torch.Tensor:
    """``EEP(y_i | x_i)`` ``(N,)``, refused where it is not positive (only entries below 0, allowed within the
    simplex tolerance, can make it so)."""
    eep = _eep_all(p, y).gather(1, y[:, None]).squeeze(1)
    if not bool((eep > 0).all()):
        i = int((eep <= 0).nonzero()[0])
        raise ValueError(
            f"{name} gives target image {i} an expected empirical prediction of {float(eep[i]):.3g} <= 0 for its "
            "label (entries below 0, within the simplex tolerance, can): LEEP is undefined; pass probabilities >= 0"
        )
    return eep


def leep(source_probs, target_labels) -> float:
    """LEEP of one source model on a target task (Nguyen et al., ICML 2020); higher is better, at most 0.

    ``source_probs`` ``(N, Z)``: the source model's predictions over its own ``Z`` classes on the ``N`` target
    images; ``target_labels`` ``(N,)``: their target classes (integers >= 0).  The formula and the ``P(z) = 0``
    convention are in the module docstring.  Two anchors: a source whose prediction determines the target label
    (e.g. one-hot on it) scores 0, the maximum; a source that predicts the same distribution for every image
    learns nothing and scores ``sum_y q_y log q_y = -H(q)``, with ``q`` the empirical target label frequencies.

    >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    >>> round(leep(probs, torch.tensor([0, 0, 1, 1])), 4)
    -0.2955
    >>> round(leep(torch.full((4, 3), 1 / 3), torch.tensor([0, 0, 0, 1])), 4)  # -H(3/4, 1/4)
    -0.5623
    """
    p = _source_probs(source_probs, "source_probs")
    y = _target_labels(target_labels, p, "source_probs")
    return float(torch.log(_eep(p, y, "source_probs")).mean())


def e_leep(source_probs_list, target_labels) -> float:
    """E-LEEP of an ensemble of source models (Agostinelli et al., CVPR 2022): the mean log of the members'
    averaged expected empirical predictions, ``(1/N) sum_i log((1/K) sum_k EEP_k(y_i | x_i))``; higher is better.

    ``source_probs_list``: ``K`` tensors ``(N, Z_k)`` (each member's predictions over its own classes on the same
    ``N`` target images, in the same order); ``target_labels`` ``(N,)``.  Equals :func:`leep` for one member, and
    LEEP of the members' outputs concatenated and divided by ``K``.

    >>> a = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    >>> b = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> round(e_leep([a], y), 4), round(e_leep([a, b], y), 4)
    (-0.2955, -0.4744)
    """
    members = _probs_list(source_probs_list)
    y = _target_labels(target_labels, members[0], "source_probs_list[0]")
    eeps = torch.stack([_eep(p, y, f"source_probs_list[{k}]") for k, p in enumerate(members)])
    return float(torch.log(eeps.mean(0)).mean())


def ms_leep(source_probs_list, target_labels) -> float:
    """MS-LEEP of an ensemble of source models (Agostinelli et al., CVPR 2022): LEEP of the ensemble seen as one
    source whose dummy label is the tuple of the members' labels, ``theta(x)_{(z_1..z_K)} = prod_k
    theta_k(x)_{z_k}``; higher is better.

    Shapes as in :func:`e_leep`.  Equals :func:`leep` for one member; does not depend on the members' order.  The
    joint has ``N * prod_k Z_k`` entries: above ``10**7`` it is refused (use :func:`e_leep`, fewer members or
    fewer images).

    >>> a = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    >>> b = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    >>> y = torch.tensor([0, 0, 1, 1])
    >>> round(ms_leep([a], y), 4), round(ms_leep([a, b], y), 4)  # an uninformative member changes nothing
    (-0.2955, -0.2955)
    """
    members = _probs_list(source_probs_list)
    y = _target_labels(target_labels, members[0], "source_probs_list[0]")
    n = members[0].shape[0]
    size = n * math.prod(p.shape[1] for p in members)
    if size > MAX_MS_LEEP_ENTRIES:
        sizes = " x ".join(str(p.shape[1]) for p in members)
        raise ValueError(
            f"source_probs_list is too large for MS-LEEP: N x prod(Z_k) = {n} x {sizes} = {size} joint entries, "
            f"more than {MAX_MS_LEEP_ENTRIES}; use e_leep, fewer members or fewer target images"
        )
    acc = acc_dtype(members[0].device)
    joint = members[0].to(acc)
    for p in members[1:]:
        joint = (joint[:, :, None] * p.to(acc)[:, None, :]).reshape(n, -1)
    return float(torch.log(_eep(joint, y, "source_probs_list")).mean())


# ----------------------------------------------------------------------------------------------------------
# OSBORN
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OsbornTerms:
    """The OSBORN estimate of one team (see :func:`osborn`).

    ``domain``: the sum over the team of each member's domain difference (exact optimal-transport cost between its
    features of source and target images, in feature units); ``task``: the sum of each member's task difference
    (a conditional entropy ``H(Y | Z)``, nats); ``cohesion``: the sum over pairs of members of their disagreement on
    the target (mean total variation between their expected empirical predictions, in [0, 1] per pair; 0 for a
    perfectly cohesive team); ``score = -(w_D domain + w_T task + w_C cohesion)``, higher is better.
    ``member_domain`` and ``member_task`` hold the per-member values in the order of ``team``; ``weights`` is
    ``(w_D, w_T, w_C)``.  All python floats.
    """

    domain: float
    task: float
    cohesion: float
    score: float
    team: tuple[int, ...]
    member_domain: tuple[float, ...]
    member_task: tuple[float, ...]
    weights: tuple[float, float, float]


def _features(x, name: str) -> torch.Tensor:
    t = as_tensor(x, name).detach()
    if t.ndim != 2 or t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, D) with N >= 1 images and D >= 1 features, got {tuple(t.shape)}")
    check_finite_tensor(t, name)
    return t


def _feature_list(x, name: str, m: int | None) -> list:
    if isinstance(x, (torch.Tensor, np.ndarray)) and getattr(x, "ndim", 0) == 3:
        items = list(as_tensor(x, name).unbind(0))
    else:
        items = check_sequence(x, name, what="(N, D) feature tensors, one per source model")
    if m is not None and len(items) != m:
        raise ValueError(f"{name} must hold one entry per source model (source_probs_list holds {m}), got {len(items)}")
    return items


def _team(team, m: int, name: str = "team") -> tuple[int, ...]:
    """Distinct source model indices in ``[0, m)``: a list, tuple, range, or 1-D integer array or tensor."""
    if isinstance(team, range):
        team = list(team)
    elif (
        isinstance(team, torch.Tensor) and team.ndim == 1 and not team.is_floating_point() and team.dtype != torch.bool
    ):
        team = team.cpu().tolist()
    items = check_sequence(team, name, what="source model indices")
    out = tuple(check_int(i, f"{name}[{j}]", minimum=0, maximum=m - 1) for j, i in enumerate(items))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must name each source model at most once, got {list(out)}")
    return out


def _exact_transport(cost: torch.Tensor, name: str) -> tuple[float, np.ndarray]:
    """The exact optimal-transport cost between uniform weights on the rows and on the columns of ``cost``
    ``(n, m)``, and an optimal plan ``(n, m)`` (entries summing to 1) as float64 numpy."""
    from scipy.optimize import linear_sum_assignment, linprog
    from scipy.sparse import coo_matrix

    c = cost.detach().to("cpu", torch.float64).numpy()
    n, m = c.shape
    if n == m:
        if n * m > MAX_ASSIGNMENT_ENTRIES:
            raise ValueError(
                f"{name}: {n} x {m} images is too many for the exact transport (at most {MAX_ASSIGNMENT_ENTRIES} "
                "pairs); subsample the images"
            )
        rows, cols = linear_sum_assignment(c)
        plan = np.zeros((n, m))
        plan[rows, cols] = 1.0 / n
        return float(c[rows, cols].sum() / n), plan
    if n * m > MAX_LINPROG_ENTRIES:
        raise ValueError(
            f"{name}: {n} x {m} images is too many for the exact transport between sets of different sizes (at "
            f"most {MAX_LINPROG_ENTRIES} pairs); subsample the images, or use equal numbers of source and target "
            "images (an assignment, up to 2000 x 2000)"
        )
    idx = np.arange(n * m)
    a_eq = coo_matrix(
        (np.ones(2 * n * m), (np.concatenate([idx // m, n + idx % m]), np.concatenate([idx, idx]))),
        shape=(n + m, n * m),
    )
    b_eq = np.concatenate([np.full(n, 1.0 / n), np.full(m, 1.0 / m)])
    res = linprog(c.reshape(-1), A_eq=a_eq.tocsr(), b_eq=b_eq, bounds=(0, None), method="highs")
    if res.status != 0:  # pragma: no cover - the transport polytope is never empty and the cost is bounded
        raise ValueError(f"{name}: the transport problem was not solved ({res.message})")
    plan = np.clip(res.x.reshape(n, m), 0.0, None)
    return float((c * plan).sum()), plan


def _conditional_entropy(joint: torch.Tensor) -> float:
    """``H(Y | Z) = -sum_{y,z} P(y, z) log P(y | z)`` for a joint ``(Y, Z)`` summing to 1 (``0 log 0 = 0``)."""
    pz = joint.sum(0)
    return float(xlogx(pz).sum() - xlogx(joint).sum())


def osborn(
    features_source,
    features_target,
    source_probs_list,
    target_labels,
    team,
    *,
    weights=(1.0, 1.0, 1.0),
    source_labels=None,
) -> OsbornTerms:
    """An OSBORN estimate for a team of source models (Vimal K B et al., ICCV 2023): domain difference, task
    difference and (lack of) cohesiveness, combined into one score, higher is better.

    For a pool of ``M`` source models, index ``m``:

    - ``features_source[m]`` ``(N_s_m, D_m)``: model ``m``'s penultimate features of (a sample of) ITS source
      images; ``features_target[m]`` ``(N_t, D_m)``: its features of the ``N_t`` target images (same order for
      every model);
    - ``source_probs_list[m]`` ``(N_t, Z_m)``: its predictions over its own classes on the target images;
    - ``target_labels`` ``(N_t,)``; ``team``: distinct indices into the pool (only their terms are computed);
    - ``source_labels`` (optional): ``M`` label vectors ``(N_s_m,)``, the source images' own classes in ``[0,
      Z_m)``.

    The terms, per member ``m``, then for the team ``S``:

    - domain difference ``W_D(m)``: the exact optimal-transport cost between uniform weights on the source and on
      the target features, ground cost the Euclidean distance (``min_pi sum_ij pi_ij ||f_s_i - f_t_j||``);
    - task difference ``W_T(m) = H(Y | Z)``, the conditional entropy of the target label given the source label.
      With ``source_labels``, the joint of (source label, target label) is read off the optimal coupling ``pi`` of
      the domain term, ``P(z, y) = sum_ij pi_ij [z_i = z] [y_j = y]`` (as OTCE, Tan et al., CVPR 2021, on whose
      domain/task decomposition OSBORN builds); without them it is LEEP's joint from the source model's
      predictions on the target images, ``P(y, z) = (1/N) sum_i theta_m(x_i)_z [y_i = y]`` (a soft NCE);
    - cohesion ``C(S) = sum_{i<j in S} d_ij``, ``d_ij = (1/N) sum_n TV(EEP_i(. | x_n), EEP_j(. | x_n))``: how much
      two members' predictions of the TARGET label (LEEP's expected empirical predictors, comparable across
      members whatever their source classes) disagree on the target images;
    - ``score(S) = -(w_D sum_{m in S} W_D(m) + w_T sum_{m in S} W_T(m) + w_C C(S))``.

    As a set function, ``score`` is a modular part minus a sum of non-negative pairwise terms, hence submodular
    (each model's marginal gain can only shrink as the team grows), which is what makes :func:`select_team`'s
    greedy choice the paper's procedure.  It is not monotone and the terms are sums, so compare teams of one size.

    Where this departs from the paper: we could read only the paper's abstract and not the authors' code (not
    available to us), so the three terms follow its three factors with the definitions above, and the cohesion
    term (disagreement of the members' target predictions) and the default equal weights are our choices.  The
    domain term is in the units of the features: normalise features across models (e.g. to unit norm) before
    comparing models with different feature scales.

    >>> g = torch.Generator().manual_seed(0)
    >>> fs = [torch.randn(6, 3, generator=g) for _ in range(2)]
    >>> ft = [torch.randn(6, 3, generator=g) for _ in range(2)]
    >>> probs = [torch.softmax(torch.randn(6, 4, generator=g), 1) for _ in range(2)]
    >>> y = torch.tensor([0, 1, 2, 0, 1, 2])
    >>> t = osborn(fs, ft, probs, y, team=[0, 1])
    >>> t.team, len(t.member_domain), t.cohesion >= 0
    ((0, 1), 2, True)
    >>> abs(t.score + (t.domain + t.task + t.cohesion)) < 1e-12
    True
    """
    members = _team(team, len(_probs_list(source_probs_list)))  # named `team` in its messages
    pool = osborn_pool(
        features_source, features_target, source_probs_list, target_labels, source_labels=source_labels, members=members
    )
    return pool.terms(members, weights=weights)


@dataclass(frozen=True)
class OsbornPool:
    """OSBORN's per-model terms and pairwise disagreements for a pool of ``M`` source models on one target
    (see :func:`osborn_pool`), from which any team's :class:`OsbornTerms` follow without another transport.

    ``member_domain`` ``(M,)``, ``member_task`` ``(M,)`` and ``disagreement`` ``(M, M)`` (symmetric, zero
    diagonal) are float64 cpu tensors; entries of models left out by ``members=`` are NaN.
    """

    member_domain: torch.Tensor
    member_task: torch.Tensor
    disagreement: torch.Tensor

    @property
    def size(self) -> int:
        """``M``, the number of source models in the pool."""
        return int(self.member_domain.shape[0])

    def terms(self, team, *, weights=(1.0, 1.0, 1.0)) -> OsbornTerms:
        """The :class:`OsbornTerms` of ``team`` (distinct indices in ``[0, M)``, all computed by the pool)."""
        members = _team(team, self.size)
        missing = [m for m in members if math.isnan(float(self.member_domain[m]))]
        if missing:
            raise ValueError(f"team holds source model {missing[0]}, whose terms this pool did not compute (members=)")
        w = check_weights(
            weights,
            3,
            "weights",
            normalise=False,
            need_positive_sum=False,
            like=self.member_domain,
            dtype=torch.float64,
        ).tolist()
        dom = tuple(float(self.member_domain[m]) for m in members)
        task = tuple(float(self.member_task[m]) for m in members)
        pairs = [(a, b) for i, a in enumerate(members) for b in members[i + 1 :]]
        cohesion = math.fsum(float(self.disagreement[a, b]) for a, b in pairs)
        domain, task_sum = math.fsum(dom), math.fsum(task)
        score = -(w[0] * domain + w[1] * task_sum + w[2] * cohesion)
        if not math.isfinite(score):
            raise ValueError(
                f"weights={tuple(weights)!r} times the terms (domain {domain:.3g}, task {task_sum:.3g}, cohesion "
                f"{cohesion:.3g}) overflows: use smaller weights"
            )
        return OsbornTerms(
            domain=domain,
            task=task_sum,
            cohesion=cohesion,
            score=score,
            team=members,
            member_domain=dom,
            member_task=task,
            weights=(w[0], w[1], w[2]),
        )


def osborn_pool(
    features_source,
    features_target,
    source_probs_list,
    target_labels,
    *,
    source_labels=None,
    members=None,
) -> OsbornPool:
    """The terms of :func:`osborn` for every model of a pool at once (one transport per model, one disagreement per
    pair), so that many teams can be scored cheaply: ``osborn_pool(...).terms(team)`` equals ``osborn(...,
    team)``.  Arguments as in :func:`osborn`; ``members`` (default: all ``M``) limits the work to those models.

    >>> g = torch.Generator().manual_seed(0)
    >>> fs = [torch.randn(5, 2, generator=g) for _ in range(3)]
    >>> ft = [torch.randn(5, 2, generator=g) for _ in range(3)]
    >>> probs = [torch.softmax(torch.randn(5, 3, generator=g), 1) for _ in range(3)]
    >>> pool = osborn_pool(fs, ft, probs, torch.tensor([0, 1, 1, 0, 1]))
    >>> pool.size, tuple(pool.disagreement.shape), bool((pool.disagreement == pool.disagreement.T).all())
    (3, (3, 3), True)
    """
    probs = _probs_list(source_probs_list)
    m_pool = len(probs)
    f_src = _feature_list(features_source, "features_source", m_pool)
    f_tgt = _feature_list(features_target, "features_target", m_pool)
    y = _target_labels(target_labels, probs[0], "source_probs_list[0]")
    chosen = tuple(range(m_pool)) if members is None else _team(members, m_pool, "members")
    s_labels = None
    if source_labels is not None:
        s_labels = _feature_list(source_labels, "source_labels", m_pool)
    n_t = probs[0].shape[0]
    acc = acc_dtype(probs[0].device)

    nan = float("nan")
    dom = torch.full((m_pool,), nan, dtype=torch.float64)
    task = torch.full((m_pool,), nan, dtype=torch.float64)
    eeps = {}
    for m in chosen:
        fs = _features(
            on_device_of(f_src[m], f"features_source[{m}]", probs[0], "source_probs_list[0]"), f"features_source[{m}]"
        )
        ft = _features(
            on_device_of(f_tgt[m], f"features_target[{m}]", probs[0], "source_probs_list[0]"), f"features_target[{m}]"
        )
        if ft.shape[0] != n_t:
            raise ValueError(
                f"features_target[{m}] must have one row per target image ({n_t}), got shape {tuple(ft.shape)}"
            )
        if fs.shape[1] != ft.shape[1]:
            raise ValueError(
                f"features_source[{m}] and features_target[{m}] must have the same feature dimension, got "
                f"{fs.shape[1]} and {ft.shape[1]}"
            )
        cost = torch.cdist(fs.to(acc)[None], ft.to(acc)[None], compute_mode="donot_use_mm_for_euclid_dist")[0]
        check_finite_result(cost, f"the distances between features_source[{m}] and features_target[{m}]")
        cost_value, plan = _exact_transport(cost, f"features_source[{m}] and features_target[{m}]")
        dom[m] = cost_value
        p = probs[m].to(acc)
        if s_labels is not None:
            zs = on_device_of(s_labels[m], f"source_labels[{m}]", probs[0], "source_probs_list[0]")
            zs = check_labels(zs, fs.shape[0], p.shape[1], f"source_labels[{m}]")
            pi = torch.as_tensor(plan, dtype=acc, device=p.device)
            zy = _sum_by_class(zs, p.shape[1], pi)  # (Z, N_t): the plan summed over source images by their label
            joint = _sum_by_class(y, int(y.max()) + 1, zy.T)
        else:
            joint = _sum_by_class(y, int(y.max()) + 1, p) / n_t
        task[m] = _conditional_entropy(joint)
        eeps[m] = _eep_all(p, y)
    dis = torch.full((m_pool, m_pool), nan, dtype=torch.float64)
    for i, a in enumerate(chosen):
        dis[a, a] = 0.0
        for b in chosen[i + 1 :]:
            dis[a, b] = dis[b, a] = float(0.5 * (eeps[a] - eeps[b]).abs().sum(1).mean())
    return OsbornPool(member_domain=dom, member_task=task, disagreement=dis)


# ----------------------------------------------------------------------------------------------------------
# greedy team selection
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamSelection:
    """The greedy team (see :func:`select_team`): ``team`` in the order the models were added; ``scores[i]`` the
    objective of ``team[: i + 1]``; ``gains[i]`` the marginal gain of adding ``team[i]`` (``gains[0] =
    scores[0]``, the empty team counting as 0).  Python ints and floats."""

    team: tuple[int, ...]
    scores: tuple[float, ...]
    gains: tuple[float, ...]


def select_team(objective, pool_size: int, k: int) -> TeamSelection:
    """Greedy maximisation of a team objective: start empty and, ``k`` times, add the model whose addition gives
    the largest objective (ties go to the lowest index).

    ``objective``: a callable taking a team (a tuple of distinct indices in ``[0, pool_size)``) to a finite real
    number, higher better, e.g. ``lambda team: osborn(fs, ft, probs, y, team).score``; or ``pool_size`` per-model
    scores (a modular objective: a team scores the sum of its members').  For a monotone submodular objective the
    greedy team is within ``1 - 1/e`` of the best team of size ``k`` (Nemhauser, Wolsey and Fisher, 1978); for a
    modular one it IS the best (the ``k`` largest scores).  ``pool_size`` calls per step, ``O(k * pool_size)`` in
    all.

    >>> select_team([0.1, 0.9, 0.5, 0.7], pool_size=4, k=2).team
    (1, 3)
    >>> r = select_team(lambda team: len(set(team) & {0, 2}) - 0.1 * len(team), pool_size=3, k=2)
    >>> r.team, [round(g, 2) for g in r.gains]
    ((0, 2), [0.9, 0.9])
    """
    pool = check_int(pool_size, "pool_size", minimum=1, maximum=MAX_COUNT)
    size = check_int(k, "k", minimum=1)
    if size > pool:
        raise ValueError(f"k must be at most pool_size ({pool}): a team of distinct models, got k={size}")
    if callable(objective):
        fn: Callable = objective
    else:
        values = _score_vector(objective, pool).tolist()

        def fn(team):
            return math.fsum(values[i] for i in team)

    team: list[int] = []
    path, gains = [], []
    current = 0.0
    for _ in range(size):
        best, best_value = None, -math.inf
        for c in range(pool):
            if c in team:
                continue
            cand = tuple(team + [c])
            value = check_finite(fn(cand), f"objective{cand}")
            if value > best_value:
                best, best_value = c, value
        team.append(best)
        gains.append(best_value - current)
        path.append(best_value)
        current = best_value
    return TeamSelection(team=tuple(team), scores=tuple(path), gains=tuple(gains))


def _score_vector(x, pool: int) -> torch.Tensor:
    """Per-model scores for a modular objective: ``pool`` finite reals (any sign)."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"objective must be a callable or a sequence of {pool} scores, got {type(x).__name__}")
    if isinstance(x, (list, tuple, np.ndarray, torch.Tensor)):
        t = as_tensor(x, "objective").detach().to(torch.float64)
    else:
        raise TypeError(f"objective must be a callable or a sequence of {pool} scores, got {type(x).__name__}")
    if t.ndim != 1 or t.shape[0] != pool:
        raise ValueError(f"objective must hold one score per model, shape ({pool},), got shape {tuple(t.shape)}")
    check_finite_tensor(t, "objective")
    return t
