"""Smoother weights of tree ensembles (ensemble_lab.forests.smoother) against two oracles.

Oracles: scikit-learn itself (``S @ y == predict`` and ``S @ onehot(y) == predict_proba`` to 1e-10, over
hyper-parameter settings of every supported kind, and as a hypothesis property over random settings), and a slow,
obviously correct reference that loops over trees, query points and training points.  Bad input: refused by name.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeRegressor

from ensemble_lab.forests import forest_leaves, smoother_weights

N, Q, D, C = 80, 25, 3, 3


def _data(seed=0, n=N, q=Q, d=D):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, d))
    y = np.sin(3 * x[:, 0]) + x[:, 1] + 0.3 * rng.normal(size=n)
    yc = (x[:, 0] * C).astype(int) % C
    yc[:C] = np.arange(C)
    return x, y, yc, rng.uniform(-0.1, 1.1, size=(q, d))


REGRESSORS = {
    "tree": DecisionTreeRegressor(random_state=0),
    "tree depth 3": DecisionTreeRegressor(max_depth=3, random_state=0),
    "extra tree, leaf 4": ExtraTreeRegressor(min_samples_leaf=4, random_state=0),
    "rf": RandomForestRegressor(n_estimators=15, random_state=0),
    "rf no bootstrap, max_features 1": RandomForestRegressor(
        n_estimators=15, bootstrap=False, max_features=1, random_state=0
    ),
    "rf max_samples 0.5, leaf 5": RandomForestRegressor(
        n_estimators=15, max_samples=0.5, min_samples_leaf=5, random_state=0
    ),
    "rf max_samples 17, depth 4": RandomForestRegressor(n_estimators=15, max_samples=17, max_depth=4, random_state=0),
    "rf max_leaf_nodes 6, ccp_alpha": RandomForestRegressor(
        n_estimators=15, max_leaf_nodes=6, ccp_alpha=0.01, random_state=0
    ),
    "extra trees": ExtraTreesRegressor(n_estimators=15, random_state=0),
    "extra trees bootstrap 0.7": ExtraTreesRegressor(
        n_estimators=15, bootstrap=True, max_samples=0.7, min_samples_leaf=2, random_state=0
    ),
    "bagging": BaggingRegressor(n_estimators=12, random_state=0),
    "bagging features 2, no bootstrap 0.6": BaggingRegressor(
        DecisionTreeRegressor(min_samples_leaf=3),
        n_estimators=12,
        max_features=2,
        max_samples=0.6,
        bootstrap=False,
        random_state=0,
    ),
    "bagging bootstrap_features": BaggingRegressor(
        DecisionTreeRegressor(max_depth=5), n_estimators=12, max_features=3, bootstrap_features=True, random_state=0
    ),
    "bagging of extra trees": BaggingRegressor(ExtraTreeRegressor(), n_estimators=12, random_state=0),
}

CLASSIFIERS = {
    "tree": DecisionTreeClassifier(random_state=0),
    "tree leaf 5": DecisionTreeClassifier(min_samples_leaf=5, random_state=0),
    "rf": RandomForestClassifier(n_estimators=15, random_state=0),
    "rf entropy, max_samples 0.6, depth 3": RandomForestClassifier(
        n_estimators=15, criterion="entropy", max_samples=0.6, max_depth=3, random_state=0
    ),
    "extra trees": ExtraTreesClassifier(n_estimators=15, random_state=0),
    "extra trees bootstrap": ExtraTreesClassifier(n_estimators=15, bootstrap=True, max_features=1, random_state=0),
    "bagging features 2": BaggingClassifier(n_estimators=12, max_features=2, random_state=0),
    "bagging subsample without replacement": BaggingClassifier(
        n_estimators=12, max_samples=0.4, bootstrap=False, random_state=0
    ),
}


def _reference(model, x, xq):
    """Per tree, per query, per training point: the weight c_i / (sum of c over the query's leaf), averaged."""
    if isinstance(model, (DecisionTreeRegressor, DecisionTreeClassifier)):
        members = [(model, np.arange(x.shape[1]), np.ones(len(x)))]
    else:
        feats = getattr(model, "estimators_features_", [np.arange(x.shape[1])] * len(model.estimators_))
        members = [
            (tree, f, np.bincount(idx, minlength=len(x)))
            for tree, f, idx in zip(model.estimators_, feats, model.estimators_samples_, strict=True)
        ]
    s = np.zeros((len(xq), len(x)))
    for tree, f, counts in members:
        leaf_train = tree.apply(x[:, f].astype(np.float32))
        leaf_query = tree.apply(xq[:, f].astype(np.float32))
        for j in range(len(xq)):
            total = sum(counts[i] for i in range(len(x)) if leaf_train[i] == leaf_query[j])
            for i in range(len(x)):
                if leaf_train[i] == leaf_query[j]:
                    s[j, i] += counts[i] / total / len(members)
    return s


@pytest.mark.parametrize("name", list(REGRESSORS))
def test_weights_reproduce_predict(name):
    x, y, _, xq = _data()
    model = REGRESSORS[name].fit(x, y)
    for q in (xq, x):
        s = smoother_weights(model, x, q)
        assert s.dtype == torch.float64
        assert tuple(s.shape) == (len(q), N)
        assert float(s.min()) >= 0
        assert torch.allclose(s.sum(1), torch.ones(len(q), dtype=torch.float64), atol=1e-12)
        assert np.abs(s.numpy() @ y - model.predict(q)).max() < 1e-10


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_weights_reproduce_predict_proba(name):
    x, _, yc, xq = _data(1)
    model = CLASSIFIERS[name].fit(x, yc)
    onehot = np.eye(C)[yc]
    for q in (xq, x):
        s = smoother_weights(model, x, q).numpy()
        assert np.abs(s @ onehot - model.predict_proba(q)).max() < 1e-10


@pytest.mark.parametrize("name", ["rf", "rf max_samples 0.5, leaf 5", "bagging features 2, no bootstrap 0.6", "tree"])
def test_weights_match_the_per_tree_loop(name):
    x, y, _, xq = _data(2, n=30, q=8)
    model = (
        REGRESSORS[name]
        .set_params(**({"n_estimators": 5} if "n_estimators" in REGRESSORS[name].get_params() else {}))
        .fit(x, y)
    )
    ref = _reference(model, x, xq)
    assert np.abs(smoother_weights(model, x, xq).numpy() - ref).max() < 1e-12


def test_weighted_bootstrap_and_multi_output():
    x, y, _, xq = _data(3)
    w = np.random.default_rng(3).uniform(0.1, 2.0, size=N)
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(x, y, sample_weight=w)  # draws by weight
    assert np.abs(smoother_weights(model, x, xq).numpy() @ y - model.predict(xq)).max() < 1e-10
    ys = np.stack([y, -2 * y + 1], axis=1)
    model = ExtraTreesRegressor(n_estimators=8, bootstrap=True, random_state=0).fit(x, ys)
    assert np.abs(smoother_weights(model, x, xq).numpy() @ ys - model.predict(xq)).max() < 1e-10


def test_n_trees_sparse_and_input_types():
    x, y, _, xq = _data(4)
    model = RandomForestRegressor(n_estimators=12, random_state=0).fit(x, y)
    first = smoother_weights(model, x, xq, n_trees=4).numpy()
    want = np.mean([t.predict(xq.astype(np.float32)) for t in model.estimators_[:4]], axis=0)
    assert np.abs(first @ y - want).max() < 1e-10
    sp = smoother_weights(model, x, xq, sparse=True)
    assert scipy.sparse.issparse(sp)
    assert np.abs(sp.toarray() - smoother_weights(model, x, xq).numpy()).max() == 0
    dense = smoother_weights(model, x, xq)
    as_tensors = smoother_weights(model, torch.from_numpy(x).float().requires_grad_(), torch.from_numpy(xq))
    assert torch.equal(as_tensors, dense)  # float32 tensors: the trees compare in float32 anyway
    assert torch.equal(smoother_weights(model, x.tolist(), xq[::-1].copy())[::1], dense.flip(0))
    assert torch.equal(smoother_weights(model, np.asfortranarray(x), xq[::-1]), dense.flip(0))


def test_forest_leaves_structure():
    x, y, _, xq = _data(5)
    model = RandomForestRegressor(n_estimators=6, max_depth=3, random_state=0).fit(x, y)
    leaves = forest_leaves(model, x, xq)
    assert leaves.n_trees == 6
    assert leaves.n_train == N
    assert leaves.n_query == Q
    assert np.array_equal(leaves.counts.sum(1), np.full(6, float(N)))  # a bootstrap sample of N
    # each tree's leaves hold its training weight
    for t in range(6):
        seen = np.bincount(leaves.train[t], weights=leaves.counts[t], minlength=leaves.weight.size)
        assert np.array_equal(seen[leaves.train[t]], leaves.weight[leaves.train[t]])


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    kind=st.sampled_from(["rf", "et", "bagging", "tree"]),
    bootstrap=st.booleans(),
    max_samples=st.sampled_from([None, 0.3, 0.8, 11]),
    max_features=st.sampled_from([1, 2, 1.0, "sqrt"]),
    min_samples_leaf=st.integers(1, 8),
    max_depth=st.sampled_from([None, 1, 2, 5]),
    classify=st.booleans(),
    seed=st.integers(0, 50),
)
def test_rows_on_the_simplex_for_random_settings(
    kind, bootstrap, max_samples, max_features, min_samples_leaf, max_depth, classify, seed
):
    x, y, yc, xq = _data(seed, n=40, q=10)
    tree_kw = dict(min_samples_leaf=min_samples_leaf, max_depth=max_depth, random_state=seed)
    if kind == "tree":
        model = (DecisionTreeClassifier if classify else DecisionTreeRegressor)(max_features=max_features, **tree_kw)
    elif kind == "bagging":
        base = (DecisionTreeClassifier if classify else DecisionTreeRegressor)(**tree_kw)
        bag = BaggingClassifier if classify else BaggingRegressor
        model = bag(
            base,
            n_estimators=6,
            bootstrap=bootstrap,
            max_samples=max_samples or 1.0,
            max_features=max_features if max_features != "sqrt" else 2,
            random_state=seed,
        )
    else:
        forest = {
            ("rf", False): RandomForestRegressor,
            ("rf", True): RandomForestClassifier,
            ("et", False): ExtraTreesRegressor,
            ("et", True): ExtraTreesClassifier,
        }[kind, classify]
        model = forest(
            n_estimators=6,
            bootstrap=bootstrap,
            max_samples=max_samples if bootstrap else None,
            max_features=max_features,
            **tree_kw,
        )
    model.fit(x, yc if classify else y)
    s = smoother_weights(model, x, xq).numpy()
    assert s.min() >= 0
    assert np.abs(s.sum(1) - 1).max() < 1e-12
    if classify:
        assert np.abs(s @ np.eye(C)[yc] - model.predict_proba(xq)).max() < 1e-10
    else:
        assert np.abs(s @ y - model.predict(xq)).max() < 1e-10


# ---- bad input ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted():
    x, y, yc, xq = _data(6)
    return x, y, yc, xq, RandomForestRegressor(n_estimators=5, random_state=0).fit(x, y)


@pytest.mark.parametrize(
    ("model", "fit", "error", "match"),
    [
        (RandomForestRegressor(), False, ValueError, r"forest must be a fitted RandomForestRegressor"),
        (DecisionTreeRegressor(), False, ValueError, r"forest must be a fitted DecisionTreeRegressor"),
        (BaggingRegressor(), False, ValueError, r"forest must be a fitted BaggingRegressor"),
        (GradientBoostingRegressor(n_estimators=3), True, TypeError, r"forest must be .*got GradientBoostingRegressor"),
        (HistGradientBoostingRegressor(max_iter=3), True, TypeError, r"forest must be .*HistGradientBoostingRegressor"),
        (LinearRegression(), True, TypeError, r"forest must be .*got LinearRegression"),
        (IsolationForest(n_estimators=3), True, TypeError, r"forest must be .*got IsolationForest"),
        (make_pipeline(StandardScaler(), RandomForestRegressor(3)), True, TypeError, r"forest must .*final step"),
        (
            BaggingRegressor(KNeighborsRegressor(), n_estimators=3),
            True,
            TypeError,
            r"forest must be a Bagging ensemble",
        ),
        (RandomForestRegressor(3, criterion="absolute_error"), True, ValueError, r"forest must average its leaves"),
        (RandomForestRegressor(3, monotonic_cst=[1, 0, 0]), True, ValueError, r"forest must have monotonic_cst=None"),
        (None, False, TypeError, r"forest must be .*got None"),
        ("forest", False, TypeError, r"forest must be .*got str"),
    ],
)
def test_refuses_other_models(fitted, model, fit, error, match):
    x, y, *_ = fitted
    if fit:
        model.fit(x, y)
    with pytest.raises(error, match=match):
        smoother_weights(model, x, x)


@pytest.mark.parametrize("cw", ["balanced", "balanced_subsample", {0: 1.0, 1: 2.0, 2: 1.0}])
def test_refuses_class_weight(fitted, cw):
    x, _, yc, *_ = fitted
    if cw == "balanced_subsample":
        model = RandomForestClassifier(3, class_weight=cw, random_state=0).fit(x, yc)
    else:
        model = DecisionTreeClassifier(class_weight=cw).fit(x, yc)
    with pytest.raises(ValueError, match=r"forest must have class_weight=None.*re-weight the training points"):
        smoother_weights(model, x, x)
    bag = BaggingClassifier(DecisionTreeClassifier(class_weight="balanced"), n_estimators=3).fit(x, yc)
    with pytest.raises(ValueError, match=r"forest must have class_weight=None \(its estimator\)"):
        smoother_weights(bag, x, x)


def test_refuses_queries_of_the_wrong_width(fitted):
    x, _, _, xq, model = fitted
    with pytest.raises(ValueError, match=r"^x_query must have 3 columns \(the forest's n_features_in_\), got 2$"):
        smoother_weights(model, x, xq[:, :2])
    with pytest.raises(ValueError, match=r"x_train must have 3 columns"):
        smoother_weights(model, x[:, :2], xq)
    with pytest.raises(ValueError, match=r"x_query must have shape \(n, 3\)"):
        smoother_weights(model, x, xq[0])
    with pytest.raises(ValueError, match=r"x_query must hold at least one row"):
        smoother_weights(model, x, xq[:0])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e39])
@pytest.mark.parametrize("name", ["x_train", "x_query"])
def test_refuses_non_finite_inputs(fitted, value, name):
    x, _, _, xq, model = fitted
    args = {"x_train": x.copy(), "x_query": xq.copy()}
    args[name][3, 1] = value
    with pytest.raises(ValueError, match=rf"^{name} must "):
        smoother_weights(model, **args)


def test_refuses_other_training_inputs(fitted):
    x, y, _, xq, model = fitted
    with pytest.raises(ValueError, match=r"x_train must be the inputs the forest was fit on"):
        smoother_weights(model, x[::-1], xq)  # reordered rows
    with pytest.raises(ValueError, match=r"x_train must be the inputs the forest was fit on"):
        smoother_weights(model, x + 0.05, xq)
    with pytest.raises(ValueError, match=r"x_train must be the inputs the forest was fit on: it has 40 rows"):
        smoother_weights(model, x[:40], xq)
    nob = RandomForestRegressor(3, bootstrap=False, random_state=0).fit(x, y)
    with pytest.raises(ValueError, match=r"x_train must be the inputs the forest was fit on"):
        smoother_weights(nob, np.concatenate([x, x[:5]]), xq)  # more rows than fit on
    weighted = RandomForestRegressor(3, bootstrap=False, random_state=0).fit(x, y, sample_weight=np.arange(1.0, N + 1))
    with pytest.raises(ValueError, match=r"sample_weight"):
        smoother_weights(weighted, x, xq)
    tree = model.estimators_[0]  # a tree out of a bootstrapped forest carries its bootstrap counts
    with pytest.raises(ValueError, match=r"x_train must be the inputs the forest was fit on"):
        smoother_weights(tree, x, xq)


def test_refuses_bad_arguments(fitted):
    x, _, _, xq, model = fitted
    with pytest.raises(ValueError, match=r"n_trees must be in \[1, 5\]"):
        smoother_weights(model, x, xq, n_trees=6)
    with pytest.raises(TypeError, match=r"n_trees must be an int"):
        smoother_weights(model, x, xq, n_trees=2.0)
    with pytest.raises(TypeError, match=r"sparse must be True or False"):
        smoother_weights(model, x, xq, sparse="yes")
    with pytest.raises(ValueError, match=r"x_query must be on the cpu"):
        smoother_weights(model, x, torch.zeros(2, 3, device="meta"))
    with pytest.raises(TypeError, match=r"x_query must be"):
        smoother_weights(model, x, "abc")
    with pytest.raises(TypeError, match=r"x_query must"):
        smoother_weights(model, x, torch.zeros(2, 3, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"x_query and x_train make a dense"):
        smoother_weights(model, x, np.zeros((2**21, 3)))


def test_weights_of_leaves_are_smoother_weights_of_every_prefix_and_each_tree(fitted):
    from ensemble_lab.forests.smoother import weights_of_leaves

    x, y, _, xq, _ = fitted
    forest = RandomForestRegressor(n_estimators=6, min_samples_leaf=2, random_state=0).fit(x, y)
    leaves = forest_leaves(forest, x, xq)
    for k in range(1, 7):
        assert torch.equal(weights_of_leaves(leaves, k), smoother_weights(forest, x, xq, n_trees=k))
    assert torch.equal(weights_of_leaves(leaves), smoother_weights(forest, x, xq))
    s = weights_of_leaves(leaves, 4, sparse=True)
    assert scipy.sparse.issparse(s)
    assert np.array_equal(s.toarray(), weights_of_leaves(leaves, 4).numpy())
    for t, tree in enumerate(forest.estimators_):
        w = weights_of_leaves(leaves, tree=t)
        assert np.allclose(w.numpy() @ y, tree.predict(xq), rtol=0, atol=1e-10)
    with pytest.raises(TypeError, match=r"leaves must be a ForestLeaves"):
        weights_of_leaves(forest)
    with pytest.raises(ValueError, match=r"n_trees must be in \[1, 6\]"):
        weights_of_leaves(leaves, 7)
    with pytest.raises(ValueError, match=r"tree must be in \[0, 5\]"):
        weights_of_leaves(leaves, tree=6)
    with pytest.raises(ValueError, match=r"n_trees and tree: give one of them"):
        weights_of_leaves(leaves, 2, tree=1)
