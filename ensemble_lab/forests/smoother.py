"""Smoother weights of tree ensembles: a forest's prediction as a weighted average of the training outcomes.

A regression tree predicts, at an input ``x``, the (bootstrap-weighted) mean outcome of the training points in
the leaf ``x`` falls in; a forest averages its trees.  So a fitted forest is a SMOOTHER (Curth, Jeffares & van der
Schaar, "Why do Random Forests Work? Understanding Tree Ensembles as Self-Regularizing Adaptive Smoothers", 2024):

    yhat(x) = sum_i s_i(x) y_i,   s_i(x) = (1 / T) sum_t c_ti 1[leaf_t(x_i) = leaf_t(x)] / W_t(leaf_t(x)),

with ``c_ti`` the number of times training point ``i`` is in tree ``t``'s bootstrap sample (1 without bootstrap)
and ``W_t(l)`` the sum of those counts in leaf ``l``.  Each row ``s(x)`` is non-negative and sums to 1.  For a
classifier the same weights average the one-hot labels: ``S @ onehot(y)`` is ``predict_proba``.

Shapes and units
----------------
- ``x_train``: ``(n_train, d)``, the inputs the forest was fit on, in the same order; ``x_query``:
  ``(n_query, d)``, where to take the weights, ``d`` the forest's ``n_features_in_``.  numpy arrays or torch
  tensors on the cpu (scikit-learn reads numpy; a tensor on another device is refused, never moved); read as
  float64 and, like scikit-learn does, compared with the split thresholds in float32.
- the result: ``(n_query, n_train)`` float64 on the cpu, unitless weights (``sparse=True``: a scipy CSR matrix).

Supported: fitted scikit-learn ``DecisionTreeRegressor/Classifier`` (and ``ExtraTree*``),
``RandomForestRegressor/Classifier``, ``ExtraTreesRegressor/Classifier`` and ``BaggingRegressor/Classifier`` of
decision trees (feature subsets through ``estimators_features_``).  Bootstrap counts come from the public
``estimators_samples_`` (``np.bincount``), leaves from ``apply``.  Refused, by name: an unfitted forest, another
kind of model (boosting, a linear model, a pipeline), ``class_weight`` on a classifier (its leaf probabilities
re-weight training points by their LABEL, so the weights would depend on ``y``: refit with ``class_weight=None``),
``criterion="absolute_error"`` (leaf medians, not means), monotonic constraints (clipped leaf values), and an
``x_train`` that is not what the forest was fit on (checked exactly: per tree, the counts of the training points
in each leaf must add up to the tree's ``tree_.weighted_n_node_samples`` there; a forest fit with
``sample_weight`` and no bootstrap fails this check too, as its leaves average with weights we cannot see).  One
thing the check cannot see: rows APPENDED after the rows a bootstrapped (or subsampling) ensemble was fit on were
drawn by no tree, so they get weight 0 everywhere (scikit-learn keeps the number of rows fit on private); without
bootstrap every tree saw every row and the number of rows is checked too.

The authors' code (github.com/AliciaCurth/understanding-random-forests, ``src/effective_parameters.py``) builds,
per tree, a dense ``(n_query, n_train)`` matrix of leaf co-membership times the bootstrap counts, row-normalises
it and averages the trees; its counts come from scikit-learn's private ``_generate_sample_indices``.  Ours is the
same matrix (the oracle tests check it against such a per-tree loop) built at once: a sparse ``(n_query, leaves of
all trees)`` one-hot times a sparse ``(leaves, n_train)`` matrix of ``c_ti / W_t``, with the counts from the
public ``estimators_samples_`` (which follows ``max_samples`` and weighted bootstrap draws).

>>> import numpy as np
>>> from sklearn.ensemble import RandomForestRegressor
>>> from ensemble_lab.forests import smoother_weights
>>> rng = np.random.default_rng(0)
>>> x, y = rng.uniform(size=(40, 2)), rng.normal(size=40)
>>> forest = RandomForestRegressor(n_estimators=10, random_state=0).fit(x, y)
>>> s = smoother_weights(forest, x, x[:5])
>>> tuple(s.shape), bool(np.allclose(s.sum(1), 1.0)), bool(np.allclose(s.numpy() @ y, forest.predict(x[:5])))
((5, 40), True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
import torch
from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from .._validation import as_tensor, check_bool, check_finite_tensor, check_int

__all__ = [
    "ForestLeaves",
    "forest_leaves",
    "smoother_weights",
    "weights_of_leaves",
    "check_forest",
    "check_inputs",
    "MAX_ENTRIES",
    "TREES",
    "FORESTS",
    "BAGGING",
]

#: single trees (the ExtraTree* classes subclass these)
TREES = (DecisionTreeRegressor, DecisionTreeClassifier)
#: forests whose members are trees fit on all features
FORESTS = (RandomForestRegressor, RandomForestClassifier, ExtraTreesRegressor, ExtraTreesClassifier)
#: bagging ensembles (members may see a subset of the features)
BAGGING = (BaggingRegressor, BaggingClassifier)
#: the largest ``n_query * n_train`` of a dense weight matrix (2**27 float64 entries: 1 GiB)
MAX_ENTRIES = 2**27
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_KINDS = "a DecisionTree, RandomForest, ExtraTrees or Bagging-of-trees regressor or classifier from scikit-learn"


def _kind(model) -> str:
    return type(model).__name__


def _check_tree(tree, name: str, where: str = "") -> None:
    """A member tree whose leaves average (bootstrap-weighted) training outcomes, nothing else."""
    if getattr(tree, "class_weight", None) is not None:
        raise ValueError(
            f"{name} must have class_weight=None{where}, got class_weight={tree.class_weight!r}: its leaf "
            "probabilities re-weight the training points by their label, so they are not a weighted average with "
            "weights that do not depend on y; refit with class_weight=None"
        )
    if getattr(tree, "criterion", None) == "absolute_error":
        raise ValueError(
            f"{name} must average its leaves (a mean criterion){where}, got criterion='absolute_error': its leaves "
            "predict medians, which are no fixed weighted average of the outcomes"
        )
    if getattr(tree, "monotonic_cst", None) is not None:
        raise ValueError(
            f"{name} must have monotonic_cst=None{where}: monotonic constraints clip the leaf values, so they are "
            "no longer averages of the training outcomes"
        )


def check_forest(forest, name: str = "forest", *, fitted: bool = True, regressor: bool = False) -> str:
    """Refuse anything but a supported tree ensemble (see the module's docstring); return its kind, ``"tree"``,
    ``"forest"`` or ``"bagging"``.

    ``fitted``: it must be fitted (``False``: a recipe, checked by its parameters only); ``regressor``: a
    classifier is refused too.

    >>> from sklearn.ensemble import RandomForestRegressor
    >>> check_forest(RandomForestRegressor(), fitted=False)
    'forest'
    """
    if type(forest).__name__ == "Pipeline" or hasattr(forest, "steps"):
        raise TypeError(
            f"{name} must be {_KINDS}, got a {_kind(forest)}: pass its final step (pipeline[-1]) and the inputs "
            "that step sees (the pipeline's transformed x)"
        )
    if isinstance(forest, TREES):
        kind = "tree"
    elif isinstance(forest, FORESTS):
        kind = "forest"
    elif isinstance(forest, BAGGING):
        kind = "bagging"
    else:
        hint = ""
        if "Boosting" in _kind(forest):
            hint = " (boosting's trees fit residuals: its weights are no average over leaves)"
        raise TypeError(f"{name} must be {_KINDS}, got {_kind(forest) if forest is not None else None}{hint}")
    is_classifier = isinstance(
        forest, (DecisionTreeClassifier, RandomForestClassifier, ExtraTreesClassifier, BaggingClassifier)
    )
    if regressor and is_classifier:
        raise TypeError(f"{name} must be a regressor (the errors here are squared errors), got {_kind(forest)}")
    if kind == "bagging":
        base = forest.estimator
        if base is not None and not isinstance(base, TREES):
            raise TypeError(f"{name} must be a Bagging ensemble of decision trees, got one of {_kind(base)}")
        if base is not None:
            _check_tree(base, name, " (its estimator)")
    else:  # a tree, or a forest: its own parameters are its trees'
        _check_tree(forest, name)
    if fitted and not hasattr(forest, "tree_" if kind == "tree" else "estimators_"):
        raise ValueError(f"{name} must be a fitted {_kind(forest)}: call {name}.fit(x_train, y_train) first")
    if fitted and kind == "bagging":
        for t, tree in enumerate(forest.estimators_):
            if not isinstance(tree, TREES):
                raise TypeError(f"{name} must be a Bagging ensemble of decision trees, got one of {_kind(tree)}")
            _check_tree(tree, name, f" (its tree {t})")
    return kind


def check_inputs(x, name: str, n_features: int | None, *, what: str = "the forest's n_features_in_") -> np.ndarray:
    """``x`` as a C-contiguous float64 numpy array ``(n, n_features)`` with n >= 1, finite and within float32's
    range (scikit-learn's trees compare inputs in float32).  numpy arrays, lists and cpu tensors are read; a
    tensor on another device is refused, never moved.

    >>> check_inputs([[0.5, 1.0]], "x_query", 2).dtype
    dtype('float64')
    """
    if isinstance(x, torch.Tensor) and x.device.type != "cpu":
        raise ValueError(
            f"{name} must be on the cpu (scikit-learn reads numpy), got a tensor on {x.device}; move it with .cpu()"
        )
    if isinstance(x, np.ndarray) and x.dtype.kind in "biuf":
        x = np.ascontiguousarray(x)  # a reversed or strided view is valid; torch refuses negative strides
    t = as_tensor(x, name).detach()
    if t.dtype == torch.bool:
        t = t.to(torch.float64)
    shape = f"(n, {n_features})" if n_features is not None else "(n, d)"
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape {shape} (one row per input), got shape {tuple(t.shape)}")
    if t.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one row, got shape {tuple(t.shape)}")
    if n_features is not None and t.shape[1] != n_features:
        raise ValueError(f"{name} must have {n_features} columns ({what}), got {t.shape[1]}")
    check_finite_tensor(t, name)
    big = float(t.abs().max())
    if big > _FLOAT32_MAX:
        raise ValueError(
            f"{name} must lie within float32's range (scikit-learn's trees compare inputs in float32), got a value "
            f"of magnitude {big:.3g}"
        )
    return np.ascontiguousarray(t.to(torch.float64).numpy())


@dataclass(frozen=True)
class ForestLeaves:
    """The leaf structure that smoother weights are made of (build it with :func:`forest_leaves`).

    Attributes (numpy):
        train: ``(T, n_train)`` int64, the leaf of each training point in each tree, as a GLOBAL node id (tree
            ``t``'s node ``k`` is ``offsets[t] + k``).
        query: ``(T, n_query)`` int64, the same for the query points.
        counts: ``(T, n_train)`` float64, how many times each training point is in each tree's bootstrap sample
            (0 where it is left out; 1 without bootstrap).
        weight: ``(total nodes,)`` float64, the tree's ``weighted_n_node_samples`` at each global node: the sum of
            the counts in that node.
        offsets: ``(T,)`` int64, where each tree's nodes start.
    """

    train: np.ndarray
    query: np.ndarray
    counts: np.ndarray
    weight: np.ndarray
    offsets: np.ndarray

    @property
    def n_trees(self) -> int:
        return int(self.train.shape[0])

    @property
    def n_train(self) -> int:
        return int(self.train.shape[1])

    @property
    def n_query(self) -> int:
        return int(self.query.shape[1])


def _members(forest, kind: str, n_trees: int | None):
    """``[(tree, feature indices or None)]`` of the first ``n_trees`` members, and their sample indices."""
    if kind == "tree":
        return [(forest, None)], None
    trees = list(forest.estimators_)
    total = len(trees)
    k = total if n_trees is None else check_int(n_trees, "n_trees", minimum=1, maximum=total)
    samples = forest.estimators_samples_[:k]
    if kind == "forest" and not forest.bootstrap:
        samples = [("all", len(idx)) for idx in samples]  # every tree saw every row: len is the rows fit on
    if kind == "bagging":
        feats = [np.asarray(f) for f in forest.estimators_features_[:k]]
        return list(zip(trees[:k], feats, strict=True)), samples
    return [(t, None) for t in trees[:k]], samples


def _counts(samples, n_train: int, n_trees: int) -> np.ndarray:
    if samples is None:
        return np.ones((1, n_train), dtype=np.float64)
    out = np.empty((n_trees, n_train), dtype=np.float64)
    for t, idx in enumerate(samples):
        if isinstance(idx, tuple):  # ("all", rows fit on)
            if idx[1] != n_train:
                raise ValueError(
                    f"x_train must be the inputs the forest was fit on: it has {n_train} rows, but tree {t} was "
                    f"grown on {idx[1]}"
                )
            out[t] = 1.0
            continue
        idx = np.asarray(idx)
        if idx.size and int(idx.max()) >= n_train:
            raise ValueError(
                f"x_train must be the inputs the forest was fit on: it has {n_train} rows, but tree {t} was grown "
                f"on training row {int(idx.max())}"
            )
        out[t] = np.bincount(idx, minlength=n_train)
    return out


def forest_leaves(forest, x_train, x_query, *, n_trees: int | None = None) -> ForestLeaves:
    """The checked leaf structure of ``forest`` at ``x_train`` ``(n_train, d)`` and ``x_query`` ``(n_query, d)``.

    ``n_trees``: use the first ``n_trees`` trees only (None: all; a single tree has one).  Raises as the module's
    docstring says, naming the argument; in particular ``x_train`` is checked against every tree's leaf weights.

    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> x = np.arange(6.0)[:, None]
    >>> leaves = forest_leaves(DecisionTreeRegressor(max_depth=1).fit(x, x[:, 0] > 2), x, x)
    >>> leaves.n_trees, leaves.counts.tolist()
    (1, [[1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    """
    kind = check_forest(forest, "forest")
    d = int(forest.n_features_in_)
    xt = check_inputs(x_train, "x_train", d)
    xq = check_inputs(x_query, "x_query", d)
    if kind == "tree" and n_trees is not None:
        check_int(n_trees, "n_trees", minimum=1, maximum=1)
    members, samples = _members(forest, kind, n_trees)
    n_train, t_count = xt.shape[0], len(members)
    counts = _counts(samples, n_train, t_count)
    xt32, xq32 = xt.astype(np.float32), xq.astype(np.float32)
    node_counts = np.array([tree.tree_.node_count for tree, _ in members], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(node_counts)[:-1]]).astype(np.int64)
    train = np.empty((t_count, n_train), dtype=np.int64)
    query = np.empty((t_count, xq.shape[0]), dtype=np.int64)
    weight = np.empty(int(node_counts.sum()), dtype=np.float64)
    for t, (tree, feats) in enumerate(members):
        a = xt32 if feats is None else np.ascontiguousarray(xt32[:, feats])
        b = xq32 if feats is None else np.ascontiguousarray(xq32[:, feats])
        lt = tree.apply(a, check_input=False)
        w = tree.tree_.weighted_n_node_samples
        seen = np.bincount(lt, weights=counts[t], minlength=w.shape[0])
        leaves = tree.tree_.children_left == -1
        if not np.array_equal(seen[leaves], w[leaves]):
            bad = int(np.flatnonzero(leaves)[np.flatnonzero(seen[leaves] != w[leaves])[0]])
            raise ValueError(
                f"x_train must be the inputs the forest was fit on, in the same order: in tree {t} the training "
                f"points in leaf {bad} carry a count of {seen[bad]:g}, but the tree was grown with weight "
                f"{w[bad]:g} there (another x_train, reordered rows, or a forest fit with sample_weight, whose "
                "leaf averages we cannot reproduce)"
            )
        train[t] = lt + offsets[t]
        query[t] = tree.apply(b, check_input=False) + offsets[t]
        weight[offsets[t] : offsets[t] + w.shape[0]] = w
    return ForestLeaves(train=train, query=query, counts=counts, weight=weight, offsets=offsets)


def _sparse(leaves: ForestLeaves) -> scipy.sparse.csr_matrix:
    t_count, n_train, n_query = leaves.n_trees, leaves.n_train, leaves.query.shape[1]
    total = leaves.weight.shape[0]
    # (n_query, nodes): row j has a 1 at its leaf in every tree
    a = scipy.sparse.csr_matrix(
        (
            np.ones(n_query * t_count, dtype=np.float64),
            np.ascontiguousarray(leaves.query.T).ravel(),
            np.arange(0, n_query * t_count + 1, t_count, dtype=np.int64),
        ),
        shape=(n_query, total),
    )
    # (nodes, n_train): a leaf's row holds c_ti / W_t(leaf) of the training points in it
    keep = leaves.counts > 0
    rows = leaves.train[keep]
    cols = np.broadcast_to(np.arange(n_train), (t_count, n_train))[keep]
    vals = leaves.counts[keep] / leaves.weight[rows]
    b = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(total, n_train))
    s = (a @ b).tocsr()
    s.data /= t_count
    return s


def smoother_weights(forest, x_train, x_query, *, n_trees: int | None = None, sparse: bool = False):
    """The smoother weights ``S`` ``(n_query, n_train)`` of a fitted tree ensemble: ``S @ y_train`` is
    ``forest.predict(x_query)`` (regression) and ``S @ onehot(y_train)`` is ``forest.predict_proba(x_query)``
    (classification), to rounding.

    Args:
        forest: a fitted scikit-learn tree, random forest, extra-trees or bagging-of-trees ensemble.
        x_train: ``(n_train, d)``, the inputs it was fit on, in the same order.
        x_query: ``(n_query, d)``, where to take the weights (``x_train`` itself for the in-sample weights).
        n_trees: the first ``n_trees`` trees only (None: all): the weights of a smaller forest.
        sparse: return a scipy CSR matrix (most weights are zero for deep trees) instead of a dense tensor.

    Returns:
        float64 ``(n_query, n_train)`` tensor on the cpu, rows non-negative and summing to 1 (unitless).

    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeRegressor
    >>> x = np.arange(4.0)[:, None]
    >>> tree = DecisionTreeRegressor(max_depth=1).fit(x, [0.0, 0.0, 1.0, 1.0])
    >>> smoother_weights(tree, x, [[0.2], [2.7]]).tolist()
    [[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]
    """
    sparse = check_bool(sparse, "sparse")
    if not sparse:
        # the dense result's size is known from the shapes: refuse before any work
        nq = _rows(x_query)
        nt = _rows(x_train)
        if nq is not None and nt is not None and nq * nt > MAX_ENTRIES:
            raise ValueError(
                f"x_query and x_train make a dense ({nq}, {nt}) matrix, above {MAX_ENTRIES:,} entries; "
                "pass sparse=True or fewer queries"
            )
    s = _sparse(forest_leaves(forest, x_train, x_query, n_trees=n_trees))
    if sparse:
        return s
    return torch.from_numpy(s.toarray())


def weights_of_leaves(
    leaves: ForestLeaves, n_trees: int | None = None, *, tree: int | None = None, sparse: bool = False
):
    """The smoother weights ``(n_query, n_train)`` of a :class:`ForestLeaves` you already have: of its first
    ``n_trees`` trees (None: all), or of its tree ``tree`` alone (0-based).  Fit once, build the leaves once
    (:func:`forest_leaves`), then take every prefix of the forest cheaply: ``weights_of_leaves(forest_leaves(f,
    x, q), k)`` equals ``smoother_weights(f, x, q, n_trees=k)``.

    Returns a float64 tensor on the cpu (``sparse=True``: a scipy CSR matrix), rows non-negative summing to 1.

    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.uniform(size=(30, 2)), rng.normal(size=30)
    >>> forest = RandomForestRegressor(n_estimators=8, random_state=0).fit(x, y)
    >>> leaves = forest_leaves(forest, x, x[:4])
    >>> bool(np.array_equal(weights_of_leaves(leaves, 3).numpy(), smoother_weights(forest, x, x[:4], n_trees=3)))
    True
    >>> bool(np.allclose(weights_of_leaves(leaves, tree=5).numpy() @ y, forest.estimators_[5].predict(x[:4])))
    True
    """
    if not isinstance(leaves, ForestLeaves):
        raise TypeError(f"leaves must be a ForestLeaves (from forest_leaves), got {type(leaves).__name__}")
    sparse = check_bool(sparse, "sparse")
    total = leaves.n_trees
    if tree is not None:
        if n_trees is not None:
            raise ValueError(f"n_trees and tree: give one of them, got n_trees={n_trees!r} and tree={tree!r}")
        t = check_int(tree, "tree", minimum=0, maximum=total - 1)
        part = slice(t, t + 1)
    else:
        k = total if n_trees is None else check_int(n_trees, "n_trees", minimum=1, maximum=total)
        part = slice(0, k)
    if not sparse and leaves.n_query * leaves.n_train > MAX_ENTRIES:
        raise ValueError(
            f"leaves make a dense ({leaves.n_query}, {leaves.n_train}) matrix, above {MAX_ENTRIES:,} entries; "
            "pass sparse=True"
        )
    # the trees' global node ids index the whole ``weight``: a slice of trees keeps them valid
    s = _sparse(
        ForestLeaves(
            train=leaves.train[part],
            query=leaves.query[part],
            counts=leaves.counts[part],
            weight=leaves.weight,
            offsets=leaves.offsets[part],
        )
    )
    return s if sparse else torch.from_numpy(s.toarray())


def _rows(x) -> int | None:
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2:
        return None
    return int(shape[0])
