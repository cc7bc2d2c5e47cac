"""Effective number of parameters of a smoother: how many training outcomes a prediction leans on.

For a smoother ``yhat(x) = s(x) @ y`` and a set ``I0`` of query inputs (Curth, Jeffares & van der Schaar, "A U-turn
on double descent", 2023; used for forests in "Why do Random Forests Work?", 2024):

    p_s = n_train / |I0| * sum_{j in I0} ||s(x_j)||^2.

At the training inputs ("train"), a smoother that copies each training outcome (``S = I``: a fully grown tree
without bootstrap on distinct inputs) has ``p = n_train``; one that averages ``k`` outcomes with equal weights
(leaves of ``k`` points, k-NN) has ``p = n_train / k``; the constant mean has ``p = 1``.  At new inputs ("test")
the same number says how much the predictions there average: for fixed weights, the outcome-noise variance of a
prediction is ``sigma^2 ||s(x)||^2``, so the mean over ``I0`` is ``sigma^2 p_s / n_train``.

Units: a number of (training) parameters, a python float (a tensor of them per tree).  The authors' code computes
``n_train * mean(||S[j]||^2)`` from the dense ``S`` of each forest (``compute_metrics_from_S`` in
``src/metric_utils.py``); ours is the same number, from the sparse weights (no dense ``(n_query, n_train)`` matrix
is formed), and from a weight matrix you already have with :func:`effective_parameters_of`.

>>> import numpy as np
>>> from sklearn.tree import DecisionTreeRegressor
>>> from ensemble_lab.forests import effective_parameters
>>> x = np.arange(8.0)[:, None]
>>> effective_parameters(DecisionTreeRegressor().fit(x, np.arange(8.0) // 2), x)  # leaves of 2 points
4.0
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import as_tensor, check_bool, check_finite_result, check_finite_tensor
from .smoother import ForestLeaves, forest_leaves, smoother_weights

__all__ = [
    "effective_parameters",
    "effective_parameters_of",
    "tree_effective_parameters",
    "pointwise_parameters",
    "tree_parameters_of_leaves",
]


def effective_parameters_of(weights) -> float:
    """``p = n_train * mean_j ||weights[j]||^2`` of a weight matrix ``(n_query, n_train)`` (any smoother's; rows
    need not sum to 1, e.g. boosting's), as a python float.

    >>> effective_parameters_of([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]])
    2.0
    """
    w = as_tensor(weights, "weights").detach()
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise ValueError(f"weights must have shape (n_query, n_train) with both >= 1, got shape {tuple(w.shape)}")
    check_finite_tensor(w, "weights")
    w = w.to(torch.float64)
    p = check_finite_result(w.square().sum(dim=1).mean() * w.shape[1], "weights' squared norms")
    return float(p)


def effective_parameters(forest, x_train, x_query=None, *, n_trees: int | None = None) -> float:
    """The effective number of parameters of a fitted tree ensemble at ``x_query`` ``(n_query, d)`` (None: at the
    training inputs ``x_train`` ``(n_train, d)``, the "train" number), as a python float.

    ``n_trees``: the first ``n_trees`` trees only (the curve of p against the forest's size).  Accepts what
    :func:`~ensemble_lab.forests.smoother.smoother_weights` accepts.

    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> x = np.arange(5.0)[:, None]
    >>> effective_parameters(DecisionTreeRegressor().fit(x, np.arange(5.0)), x)  # S = I on distinct inputs
    5.0
    """
    return float(pointwise_parameters(forest, x_train, x_query, n_trees=n_trees).mean())


def tree_effective_parameters(forest, x_train, x_query=None, *, n_trees: int | None = None) -> torch.Tensor:
    """The effective number of parameters of EACH tree of a fitted ensemble ``(T,)`` float64, at ``x_query`` (None:
    the training inputs), each tree with its own bootstrap counts.

    A forest's weights are the mean of its trees', so (Jensen) its ``p`` is at most the mean of its trees' ``p``:
    averaging smooths.  A tree's weight on training point ``i`` in leaf ``l`` is ``c_i / W(l)``, so
    ``||s(x)||^2 = sum_{i in l} c_i^2 / W(l)^2`` and no weight matrix is formed.

    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.uniform(size=(30, 1)), rng.normal(size=30)
    >>> forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(x, y)
    >>> bool(effective_parameters(forest, x) < tree_effective_parameters(forest, x).mean())
    True
    """
    return pointwise_parameters(forest, x_train, x_query, per_tree=True, n_trees=n_trees).mean(dim=1)


def pointwise_parameters(
    forest, x_train, x_query=None, *, per_tree: bool = False, n_trees: int | None = None
) -> torch.Tensor:
    """``n_train * ||s(x_j)||^2`` at every query ``j``: the effective parameters point by point, ``(n_query,)``
    float64 for the ensemble (their mean is :func:`effective_parameters`), or ``(T, n_query)`` for each tree with
    ``per_tree=True`` (their mean over queries is :func:`tree_effective_parameters`).  Paired comparisons (the
    forest against its trees at the same inputs, or one input against itself moved) resample these.

    A tree's weight on training point ``i`` in leaf ``l`` is ``c_i / W(l)``, so ``||s(x)||^2 = sum_{i in l}
    c_i^2 / W(l)^2`` and no weight matrix is formed for the trees.

    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> x = np.arange(4.0)[:, None]
    >>> tree = DecisionTreeRegressor(max_depth=1).fit(x, [0.0, 0.0, 1.0, 1.0])  # two leaves of two points
    >>> pointwise_parameters(tree, x, [[0.5], [9.0]]).tolist()                  # 4 * (0.5^2 + 0.5^2)
    [2.0, 2.0]
    """
    per_tree = check_bool(per_tree, "per_tree")
    query = x_train if x_query is None else x_query
    if not per_tree:
        s = smoother_weights(forest, x_train, query, n_trees=n_trees, sparse=True)
        return torch.from_numpy(s.shape[1] * np.asarray(s.multiply(s).sum(axis=1)).ravel())
    return tree_parameters_of_leaves(forest_leaves(forest, x_train, query, n_trees=n_trees))


def tree_parameters_of_leaves(leaves: ForestLeaves) -> torch.Tensor:
    """``n_train * ||s_t(x_j)||^2`` ``(T, n_query)`` float64 of every tree ``t`` at every query ``j`` of a
    :class:`~ensemble_lab.forests.smoother.ForestLeaves` you already have (what ``pointwise_parameters(...,
    per_tree=True)`` returns, without applying the trees again).

    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> x = np.arange(4.0)[:, None]
    >>> tree = DecisionTreeRegressor(max_depth=1).fit(x, [0.0, 0.0, 1.0, 1.0])
    >>> tree_parameters_of_leaves(forest_leaves(tree, x, [[0.5]])).tolist()
    [[2.0]]
    """
    if not isinstance(leaves, ForestLeaves):
        raise TypeError(f"leaves must be a ForestLeaves (from forest_leaves), got {type(leaves).__name__}")
    squares = np.bincount(leaves.train.ravel(), weights=np.square(leaves.counts).ravel(), minlength=leaves.weight.size)
    norms = squares[leaves.query] / np.square(leaves.weight[leaves.query])  # (T, n_query)
    return torch.from_numpy(leaves.n_train * norms)
