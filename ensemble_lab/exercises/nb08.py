"""The exercises of notebook 08 (random forests as adaptive smoothers, Curth, Jeffares & van der Schaar 2024): the
smoother weights of one tree from its leaves and bootstrap counts, and the effective number of parameters of a
weight matrix.  Every case comes from a real fitted scikit-learn tree or forest; expected answers come from
``forests.smoother_weights`` and ``forests.effective_parameters_of``.

``ensemble_lab.forests`` (and with it scikit-learn) is imported when the cases are first built, not when the
exercises are imported: a notebook that never checks these two does not pay for scikit-learn's import."""

from __future__ import annotations

import math

import numpy as np
import torch

from .checking import as_values, compare_scalar, compare_values, describe_result, fmt
from .exercise import Case, Exercise, generator

__all__ = ["EXERCISES"]


def _ints(g: torch.Generator, k: int) -> list[int]:
    """``k`` seeds for the toy worlds and scikit-learn's ``random_state``, drawn from ``g``."""
    return [int(v) for v in torch.randint(0, 2**31 - 1, (k,), generator=g)]


# ----------------------------------------------------------------------------------------------------------
# 08.1 the smoother weights of one tree
# ----------------------------------------------------------------------------------------------------------


def my_tree_weights(train_leaves, query_leaves, counts):
    same = query_leaves[:, None] == train_leaves[None, :]  # (n_query, n_train): in the query's leaf?
    w = same * counts  # a point drawn twice weighs twice, a point left out of the bootstrap weighs 0
    return w / w.sum(dim=1, keepdim=True)  # normalise over the query's leaf: every row sums to 1


def _tree_case(name: str, model, x_train: torch.Tensor, x_query: torch.Tensor, *, dtype=torch.float64) -> Case:
    """The case of a fitted single tree (``DecisionTreeRegressor``) or forest of ONE tree: its leaves from
    ``apply``, its counts from ``estimators_samples_`` (all 1 for a tree), the expected weights from the package."""
    from sklearn.tree import DecisionTreeRegressor

    from .. import forests

    n = x_train.shape[0]
    if isinstance(model, DecisionTreeRegressor):
        tree, counts = model, np.ones(n)
    else:
        tree, counts = model.estimators_[0], np.bincount(model.estimators_samples_[0], minlength=n)
    train_leaves = torch.from_numpy(tree.apply(x_train.numpy()).astype(np.int64))
    query_leaves = torch.from_numpy(tree.apply(x_query.numpy()).astype(np.int64))
    expected = forests.smoother_weights(model, x_train, x_query)
    args = (train_leaves, query_leaves, torch.from_numpy(counts.astype(np.float64)).to(dtype))
    return Case(name, args, expected, loose=dtype == torch.float32)


def _one_tree(random_state: int, **params):
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=1, bootstrap=True, random_state=random_state, **params)


def _weights_cases(seed: int) -> list[Case]:
    from sklearn.tree import DecisionTreeRegressor

    from ..forests import toy_1d, toy_2d

    out = []
    settings = [
        (toy_1d(), 40, 25, {"max_depth": 4}),
        (toy_1d(), 60, 30, {"min_samples_leaf": 3}),
        (toy_2d(), 50, 20, {"max_leaf_nodes": 8}),
    ]
    for i, (world, n, q, params) in enumerate(settings):
        data, noise, state = _ints(generator("08.1", seed, i), 3)
        x, y = world.sample(n, seed=data)
        model = _one_tree(state, **params).fit(x.numpy(), y.numpy())
        out.append(_tree_case(f"random input {i + 1} of 3", model, x, world.near(x[:q], 0.1, seed=noise)))
    world = toy_1d()
    data, noise, state, *more = _ints(generator("08.1", seed, 10), 15)
    x, y = world.sample(40, seed=data)
    tree = DecisionTreeRegressor(max_depth=3, random_state=state).fit(x.numpy(), y.numpy())
    out.append(_tree_case("a decision tree without bootstrap (every count is 1)", tree, x, world.near(x[:20], 0.1)))
    model = _one_tree(more[0], min_samples_leaf=6).fit(x.numpy(), y.numpy())
    out.append(_tree_case("large leaves (min_samples_leaf=6)", model, x, world.near(x[:25], 0.1, seed=noise)))
    x, y = world.sample(50, seed=more[1])
    model = _one_tree(more[2], max_depth=3).fit(x.numpy(), y.numpy())
    left_out = np.bincount(model.estimators_samples_[0], minlength=50) == 0  # about 37% of the points
    out.append(
        _tree_case(
            "queries at the training points left out of the bootstrap (count 0: they weigh 0 even in their own leaf)",
            model,
            x,
            x[torch.from_numpy(left_out)],
        )
    )
    x, y = world.sample(30, seed=more[3])
    model = _one_tree(more[4], max_depth=4).fit(x.numpy(), y.numpy())
    out.append(_tree_case("queries equal to the training inputs (the in-sample weights, a square matrix)", model, x, x))
    x, _ = world.sample(30, seed=more[5])
    model = _one_tree(more[6]).fit(x.numpy(), np.ones(30))
    out.append(
        _tree_case(
            "a tree of a single leaf (constant outcomes: every query averages the whole bootstrap sample)",
            model,
            x,
            world.near(x[:10], 0.2, seed=more[7]),
        )
    )
    x, y = world.sample(40, seed=more[8])
    model = _one_tree(more[9], max_depth=4).fit(x.numpy(), y.numpy())
    out.append(_tree_case("a single query point", model, x, world.near(x[:1], 0.05, seed=more[10])))
    x, y = world.sample(50, seed=more[11])
    model = _one_tree(state, min_samples_leaf=2).fit(x.numpy(), y.numpy())
    out.append(_tree_case("float32 counts", model, x, world.near(x[:30], 0.1, seed=data), dtype=torch.float32))
    return out


def _weights_compare(case: Case, got) -> str | None:
    want = case.expected
    train_leaves, query_leaves, counts = case.args
    q, n = want.shape
    wanted = f"a tensor of shape ({q}, {n}) (n_query, n_train): one row of weights per query point"
    t, reason, _ = as_values(got)
    if t is None:
        return f"expected {wanted}, got {reason}"
    if tuple(t.shape) == (n, q) and n != q:
        return (
            f"expected {wanted}, got shape ({n}, {q}), (n_train, n_query): the transpose; row j holds the weights "
            "of QUERY j over all the training points (compare query_leaves[:, None] with train_leaves[None, :])"
        )
    problem = compare_values(want, got, loose=case.loose)
    if problem is None or tuple(t.shape) != (q, n):
        return problem
    same = (query_leaves[:, None] == train_leaves[None, :]).to(torch.float64)  # (n_query, n_train)
    c = counts.to(torch.float64)
    in_leaf = same * c  # counts_i [leaf_i == leaf_j]
    total = in_leaf.sum(dim=1, keepdim=True)  # the leaf's total count, > 0 for every query
    j = int((t - want).abs().nan_to_num(nan=math.inf).max(dim=1).values.argmax())  # the worst row
    known = [
        (
            same / same.sum(dim=1, keepdim=True),
            " (uniform over the leaf: the counts are ignored; weigh each training point in the leaf by the bootstrap "
            "counts: a point drawn twice weighs twice, a point left out weighs 0)",
        ),
        (
            in_leaf,
            f" (the rows are not normalised: row {j} sums to {fmt(total[j, 0])}, the total count of the query's "
            "leaf; the rows must sum to 1: divide each row by sum_k counts_k [leaf_k == leaf_j])",
        ),
        (
            same,
            " (that is the leaf indicator alone: weigh it by the counts and divide by the leaf's total count; the "
            "rows must sum to 1)",
        ),
        (
            in_leaf / c.sum(),
            f" (normalised over ALL the training points (the counts sum to {fmt(c.sum())}), not over the query's "
            f"leaf: row {j} sums to {fmt(t[j].sum())}; divide by the total count of the training points in the "
            "query's leaf, so that every row sums to 1)",
        ),
        (
            in_leaf / same.sum(dim=1, keepdim=True),
            f" (divided by the number of training points in the leaf ({fmt(same[j].sum())} in row {j}), not by the "
            f"sum of their counts ({fmt(total[j, 0])}): with the counts in the numerator, the rows must be divided "
            "by the counts' sum to sum to 1)",
        ),
        (
            in_leaf / in_leaf.sum(dim=0, keepdim=True),
            " (the columns (dim=0) are normalised, not the rows: divide each ROW by its sum, "
            "w.sum(dim=1, keepdim=True))",
        ),
    ]
    if q == n:
        known.insert(
            0,
            (
                want.T,
                " (that is the transpose: the queries equal the training inputs, so the shapes agree, but the "
                "weights are not symmetric when the counts differ; row j holds the weights of QUERY j over the "
                "training points)",
            ),
        )
    for alternative, why in known:
        if compare_values(alternative, got, loose=case.loose) is None:
            return problem + why
    sums = t.sum(dim=1)
    off = (sums - 1).abs()
    if bool((off > 1e-4).any()):
        k = int(off.nan_to_num(nan=math.inf).argmax())
        return problem + f" (row {k} sums to {fmt(sums[k])}: the rows must sum to 1)"
    return problem + " (s_ji = counts_i [leaf_i == leaf_j] / sum_k counts_k [leaf_k == leaf_j])"


TREE_WEIGHTS = Exercise(
    id="08.1",
    title="Smoother weights of one tree",
    function="my_tree_weights",
    params=("train_leaves", "query_leaves", "counts"),
    task=(
        "A regression tree predicts, at a query point, the bootstrap-weighted mean outcome of the training points "
        "in the query's leaf, so its prediction is a weighted average of the training outcomes.  Given ONE tree's "
        "leaf of every training point, train_leaves, shape (n_train,) int64, the leaf of every query point, "
        "query_leaves, shape (n_query,) int64 (leaf ids are scikit-learn node ids such as 3, 4, 7: compare them, "
        "do not count on them being 0 .. L - 1), and counts, shape (n_train,) float64 whole numbers, how many "
        "times each training point is in the tree's bootstrap sample (0 = left out; all 1 without bootstrap), "
        "return the weights, shape (n_query, n_train) float64: s_ji = counts_i [leaf_i == leaf_j] / "
        "sum_k counts_k [leaf_k == leaf_j], so that every row sums to 1 (a query's leaf always holds a point of "
        "the bootstrap sample).  The cases come from fitted scikit-learn trees (leaves from "
        "tree.apply, counts from np.bincount(forest.estimators_samples_[0])); the checker compares with "
        "ensemble_lab.forests.smoother_weights(forest, x_train, x_query)."
    ),
    hints=(
        "For query j, the training points that count are those in the SAME leaf; each weighs its bootstrap "
        "count, and the weights are then scaled so that they sum to 1 over the leaf.",
        "query_leaves[:, None] == train_leaves[None, :] broadcasts to an (n_query, n_train) True/False matrix: "
        "row j marks the training points in query j's leaf.  Multiply it by counts (broadcast over the rows), "
        "then divide every row by its own sum (dim=1, keepdim=True).",
        "w = (query_leaves[:, None] == train_leaves[None, :]) * counts; return w / w.sum(dim=1, keepdim=True)",
    ),
    reference=my_tree_weights,
    cases=_weights_cases,
    compare=_weights_compare,
)


# ----------------------------------------------------------------------------------------------------------
# 08.2 the effective number of parameters
# ----------------------------------------------------------------------------------------------------------


def my_effective_parameters(weights):
    n_query, n_train = weights.shape
    squared_norms = (weights**2).sum(dim=1)  # (n_query,): ||s_j||^2, how much query j leans on few outcomes
    return float(n_train / n_query * squared_norms.sum())  # n_train times the mean over the queries


def _p_case(name: str, weights: torch.Tensor) -> Case:
    from .. import forests

    return Case(name, (weights,), forests.effective_parameters_of(weights), loose=weights.dtype == torch.float32)


def _p_cases(seed: int) -> list[Case]:
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor

    from ..forests import smoother_weights, toy_1d

    world = toy_1d()
    out = []
    settings = [  # (n_train, n_query, distance of the queries: None = the training inputs themselves)
        (RandomForestRegressor, 60, 40, 0.05, {"n_estimators": 20}),
        (RandomForestRegressor, 50, 50, None, {"n_estimators": 15, "min_samples_leaf": 2}),
        (ExtraTreesRegressor, 80, 50, 0.2, {"n_estimators": 10, "bootstrap": True}),
    ]
    for i, (recipe, n, q, distance, params) in enumerate(settings):
        data, noise, state = _ints(generator("08.2", seed, i), 3)
        x, y = world.sample(n, seed=data)
        forest = recipe(random_state=state, **params).fit(x.numpy(), y.numpy())
        query = x if distance is None else world.near(x[:q], distance, seed=noise)
        out.append(_p_case(f"random input {i + 1} of 3", smoother_weights(forest, x, query)))
    s = _ints(generator("08.2", seed, 10), 8)
    x, y = world.sample(40, seed=s[0])
    tree = DecisionTreeRegressor(random_state=s[1]).fit(x.numpy(), y.numpy())
    out.append(
        _p_case("a fully grown tree at its training inputs (S = I: p = n_train = 40)", smoother_weights(tree, x, x))
    )
    x = world.inputs(30, seed=s[2])
    steps = (torch.argsort(torch.argsort(x[:, 0])) // 3).double()  # rank // 3: groups of 3 neighbours
    tree = DecisionTreeRegressor(random_state=s[3]).fit(x.numpy(), steps.numpy())
    out.append(_p_case("leaves of k = 3 points at the training inputs (p = n / k = 10)", smoother_weights(tree, x, x)))
    tree = DecisionTreeRegressor(random_state=s[3]).fit(x.numpy(), np.ones(30))
    query = world.near(x[:20], 0.1, seed=s[4])
    out.append(_p_case("the constant mean (every weight 1 / n_train: p = 1)", smoother_weights(tree, x, query)))
    x, y = world.sample(50, seed=s[5])
    forest = RandomForestRegressor(n_estimators=10, random_state=s[6]).fit(x.numpy(), y.numpy())
    out.append(_p_case("a single query row (n_query = 1)", smoother_weights(forest, x, world.near(x[:1], 0.05))))
    query = world.near(x[:30], 0.1, seed=s[7])
    out.append(_p_case("float32 weights", smoother_weights(forest, x, query).to(torch.float32)))
    return out


def _close(a: float, b: float, loose: bool) -> bool:
    rtol, atol = (1e-4, 1e-5) if loose else (1e-6, 1e-8)
    return abs(a - b) <= atol + rtol * abs(b)


def _p_compare(case: Case, got) -> str | None:
    want = case.expected
    (weights,) = case.args
    q, n = weights.shape
    wanted = f"a number (a python float) such as {fmt(want)}"
    t, reason, _ = as_values(got)
    if t is None:
        return f"expected {wanted}, got {reason}"
    if t.numel() != 1:
        text = f"expected {wanted}, got {describe_result(got) if t.ndim == 0 else f'shape {tuple(t.shape)}'}"
        if tuple(t.shape) == (q,):
            text += (
                ": one value per query; p is ONE number for the whole set of queries, n_train / n_query times the "
                "sum over the queries of ||s_j||^2"
            )
        return text
    value = float(t.reshape(()))
    problem = compare_scalar(want, value, loose=case.loose)
    if problem is None:
        return None
    if not math.isfinite(value):
        return problem
    w = weights.to(torch.float64)
    squares = float((w**2).sum())  # sum_j ||s_j||^2
    known = [
        (
            squares / q,
            f" (n_train = {n} times too small: that is the mean over the queries of ||s_j||^2; p is n_train times it)",
        ),
        (
            float(w.sum()) * n / q,
            f" (that is n_train = {n}: the weights of each row sum to 1, so summing the weights rather than their "
            "SQUARES gives n_train for every smoother)",
        ),
        (
            float(torch.diagonal(w).sum()),
            (
                f" (that is the trace of S, sum_j s_jj: it means something only for a square S, the weights AT the "
                f"training inputs, where s_jj is a point's weight on its own outcome; here S is ({q}, {n}), the "
                "queries are other points and query j is not training point j; p sums the squared weights of "
                "every row)"
                if q != n
                else " (that is the trace of S, sum_j s_jj, the classical degrees of freedom at the training "
                "inputs: it equals p only when S is a projection (a tree without bootstrap), not for a forest, "
                "and off the training inputs, where query j is not training point j, it means nothing; p sums the "
                "squared weights of every row)"
            ),
        ),
        (
            squares,
            f" (that is sum_j ||s_j||^2 alone, as if dividing by n_train instead of n_query: p = n_train / n_query "
            f"* sum_j ||s_j||^2, here {n} / {q})",
        ),
        (squares * n, f" (n_query = {q} times too large: p = n_train / n_query * sum_j ||s_j||^2; divide by n_query)"),
        (
            squares * q / n,
            f" (n_train and n_query are swapped: weights is (n_query, n_train) = ({q}, {n}), one row per query; "
            "p = n_train / n_query * sum_j ||s_j||^2)",
        ),
        (
            float(w.norm(dim=1).sum()) * n / q,
            " (the norms are not squared: p sums ||s_j||^2, the SQUARED weights of each row)",
        ),
    ]
    for alternative, why in known:
        if _close(value, alternative, case.loose) and not _close(want, alternative, case.loose):
            return problem + why
    return problem + " (p = n_train / n_query * sum over the queries j of sum_i s_ji^2)"


EFFECTIVE_PARAMETERS = Exercise(
    id="08.2",
    title="Effective parameters",
    function="my_effective_parameters",
    params=("weights",),
    task=(
        "Given a smoother's weights, shape (n_query, n_train) float64 (row j: the weights s_j of query j over the "
        "training outcomes, non-negative, summing to 1), return its effective number of parameters, a python "
        "float: p = (n_train / n_query) * sum_j ||s_j||^2, i.e. n_train times the mean over the queries of the "
        "sum of the squared weights of a row (Curth, Jeffares & van der Schaar 2023, used for forests in 2024).  "
        "At the training inputs a smoother that copies each outcome (S = I) has p = n_train, one that averages "
        "k outcomes equally p = n_train / k, the constant mean p = 1; at new inputs p says how much the "
        "predictions there average.  The weights come from ensemble_lab.forests.smoother_weights of fitted "
        "trees and forests, at their training inputs or at test points near them; the checker compares with "
        "ensemble_lab.forests.effective_parameters_of(weights)."
    ),
    hints=(
        "One number per row first: how concentrated query j's weights are, the sum of their squares (1 when all "
        "the weight is on one outcome, 1/k when it is spread evenly over k).  Then one number for all the rows.",
        "(weights ** 2).sum(dim=1) gives ||s_j||^2 for every query, shape (n_query,).  Average it over the "
        "queries and multiply by n_train (weights.shape[1]); return it as a python float.",
        "n_query, n_train = weights.shape; return float(n_train / n_query * (weights ** 2).sum())",
    ),
    reference=my_effective_parameters,
    cases=_p_cases,
    compare=_p_compare,
)

EXERCISES = (TREE_WEIGHTS, EFFECTIVE_PARAMETERS)
