"""Why a forest beats its trees: the three mechanisms of Curth, Jeffares & van der Schaar (2024), by simulation.

The paper ("Why do Random Forests Work?", Section 4) argues that the usual bias-variance split is too coarse for
tree ensembles, because an (infinite) forest has the same classical bias as its trees yet can represent functions
no single tree can.  It separates three ways in which a forest improves on a tree:

1. **noise**: less variance from the noise in the training outcomes (smoothing averages it out);
2. **variability**: less variability in the quality of the learned function given fixed inputs (different random
   seeds of the algorithm give trees of very different quality; a forest's quality varies less);
3. **bias**: less representation bias, by enriching the hypothesis space (the best forest a seed can give is
   better than the best tree).

What is simulated
-----------------
For a learner A (the forest recipe, and the tree recipe), an input draw X (``n_train`` inputs of the world), an
outcome-noise draw eps and an algorithm seed theta, let ``L = mean over test points (fhat(x0) - f(x0))^2`` be the
EXCESS test error (the squared distance to the truth; add ``noise^2`` for the expected error on noisy test
outcomes).  Then, per input draw X and exactly (every term is a mean over the same fits):

- ``error   = E_{eps, theta} L(fit on f(X) + noise * eps)``       (``n_noise`` noisy fits, one seed each)
- ``error_0 = E_theta L(fit on f(X))``                           (``n_seeds`` noiseless fits: noise = 0)
- ``bias    = min over the n_seeds noiseless fits of L``         (mechanism 3: the best the class gave)
- ``variability = error_0 - bias``                              (mechanism 2: mean excess over the best)
- ``noise   = error - error_0``                                 (mechanism 1: what the outcome noise adds)

so ``error = noise + variability + bias`` for each learner, and the forest's GAIN over the tree,
``gain = error_tree - error_forest = noise_gain + variability_gain + bias_gain``, with each part's gain the tree's
part minus the forest's.  Each number is the mean over ``n_inputs`` input draws; ``*_se`` are their standard
errors over the input draws (the draws are independent).  ``p_test_*`` are the effective numbers of parameters
at the test points (:mod:`.effective`): for a fixed smoother the noise part is ``noise^2 p_test / n_train``.

How this follows the authors' code (github.com/AliciaCurth/understanding-random-forests): their Fig. 13 experiment
(``run_error_decomp_experiments``) sets the outcome noise to 0, refits the forest with ``n_reps`` seeds on fixed
inputs, and reports the best seed's error ("RepBias"), the mean error's excess over it and the spread of the
predictions around the best ("ModVar"); their Fig. 10 experiment varies the noise level to show mechanism 1.
We differ in three documented ways: (a) the three parts are put in one exact identity (their ModVar, a mean
squared difference of predictions, does not add up; we use their mean excess over the best seed); (b) errors are
excess errors against the truth rather than against noisy test outcomes (the same up to the constant
``noise^2`` and its Monte Carlo error); (c) the default tree is "a forest of one tree" of the same recipe (the
paper's ``n_estimators = 1``), read off the forests' own trees, which are independent draws of that tree.
"bias" is the best of ``n_seeds`` draws, an estimate of the best of the class that falls as ``n_seeds`` grows;
compare learners at the same ``n_seeds``.

Cost: per input draw, one fit of ``n_seeds * T`` trees (the noiseless forests: a forest of ``n_seeds * T``
independent trees, cut into ``n_seeds`` forests of ``T``, which is how scikit-learn draws them) and ``n_noise``
fits of ``T`` trees; scikit-learn spends about 0.7 ms per small tree, so about
``n_inputs * (n_seeds + n_noise) * T * 0.7 ms`` (5 x (10 + 5) x 50 trees: about 3 s).

>>> from sklearn.ensemble import RandomForestRegressor
>>> from ensemble_lab.forests import forest_mechanisms, toy_1d
>>> m = forest_mechanisms(toy_1d(noise=1.0), RandomForestRegressor(n_estimators=5), n_train=30, n_test=50,
...                       n_inputs=2, n_noise=2, n_seeds=3, seed=0)
>>> abs(m.noise_gain + m.variability_gain + m.bias_gain - m.gain) < 1e-12
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sklearn
import torch
from sklearn.base import clone

from .._validation import MAX_COUNT, check_int, check_positive, check_seed
from .effective import effective_parameters, tree_effective_parameters
from .smoother import TREES, check_forest
from .toys import ToyWorld

__all__ = ["Mechanisms", "forest_mechanisms", "PARTS"]

_MAX_NOISE = 1e100  # outcome units; errors are squared, and (1e154)^2 overflows float64

#: the three parts, in the order of :attr:`Mechanisms.tree_parts` columns
PARTS = ("noise", "variability", "bias")


@dataclass(frozen=True, eq=False)
class Mechanisms:
    """The three mechanisms of a forest's gain over its tree (see the module's docstring).

    Numbers are python floats in squared outcome units (excess test error), means over the input draws;
    ``error = noise + variability + bias`` for each learner and ``gain = noise_gain + variability_gain +
    bias_gain`` exactly.  ``tree_parts`` and ``forest_parts`` are ``(n_inputs, 3)`` float64 tensors, one row per
    input draw, columns :data:`PARTS`.
    """

    sigma: float
    tree_noise: float
    tree_variability: float
    tree_bias: float
    tree_error: float
    forest_noise: float
    forest_variability: float
    forest_bias: float
    forest_error: float
    noise_gain: float
    variability_gain: float
    bias_gain: float
    gain: float
    noise_gain_se: float
    variability_gain_se: float
    bias_gain_se: float
    gain_se: float
    p_test_tree: float
    p_test_forest: float
    tree_parts: torch.Tensor
    forest_parts: torch.Tensor
    n_train: int
    n_test: int
    n_inputs: int
    n_noise: int
    n_seeds: int

    @property
    def gains(self) -> dict[str, float]:
        """The three gains by name, :data:`PARTS` order."""
        return {"noise": self.noise_gain, "variability": self.variability_gain, "bias": self.bias_gain}

    @property
    def dominant(self) -> str:
        """The mechanism with the largest gain."""
        g = self.gains
        return max(g, key=g.get)


def _check_recipe(recipe, name: str) -> int:
    """A regressor recipe (fitted or not: it is cloned) and its number of trees."""
    check_forest(recipe, name, fitted=False, regressor=True)
    return int(recipe.get_params().get("n_estimators", 1)) if not isinstance(recipe, TREES) else 1


def _member_predictions(model, x0: np.ndarray) -> np.ndarray:
    """``(members, m)`` predictions of each tree of a fitted ``model`` at float32 ``x0``."""
    if isinstance(model, TREES):
        return model.predict(x0, check_input=False)[None]
    feats = getattr(model, "estimators_features_", None)
    out = np.empty((len(model.estimators_), x0.shape[0]))
    for t, tree in enumerate(model.estimators_):
        out[t] = tree.predict(x0 if feats is None else np.ascontiguousarray(x0[:, feats[t]]), check_input=False)
    return out


def _fit(recipe, x, y, random_state: int, groups: int):
    """``recipe`` fit ``groups`` times over with independent seeds: ``(fitted models, per-tree predictions at
    x0 shaped (groups, T, m))`` via one fit of ``groups * T`` trees for an ensemble."""
    est = clone(recipe)
    keys = est.get_params()
    params = {"random_state": int(random_state)}
    if "oob_score" in keys:
        params["oob_score"] = False
    if "warm_start" in keys:
        params["warm_start"] = False
    if "n_estimators" in keys:
        params["n_estimators"] = groups * int(keys["n_estimators"])
        est.set_params(**params)
        est.fit(x, y)
        return [est]
    models = []
    for j in range(groups):
        e = clone(recipe).set_params(**{**params, "random_state": int(random_state) + j})
        models.append(e.fit(x, y))
    return models


def _draws(models, x0: np.ndarray, groups: int) -> np.ndarray:
    p = np.concatenate([_member_predictions(m, x0) for m in models])
    return p.reshape(groups, -1, x0.shape[0])


def _simulate(world, forest, t_forest, tree, sigma, n_train, n_test, distance, n_inputs, n_noise, n_seeds, seed):
    g = torch.Generator().manual_seed(seed)
    seeds = torch.randint(0, 2**31 - 1, (n_inputs, 5 + n_noise), generator=g).tolist()
    rows_tree, rows_forest, p_tree, p_forest = [], [], [], []
    first = True
    for i in range(n_inputs):
        s = seeds[i]
        x = world.inputs(n_train, seed=s[0])
        x0 = world.inputs(n_test, seed=s[1]) if distance is None else world.near(x, distance, seed=s[1])
        fx, f0 = world.truth(x).numpy(), world.truth(x0).numpy()
        xn, x0n = x.numpy(), np.ascontiguousarray(x0.numpy().astype(np.float32))
        with sklearn.config_context(skip_parameter_validation=not first, assume_finite=not first):
            # noiseless fits: n_seeds forests (and trees) on the same inputs
            clean = _fit(forest, xn, fx, s[2], n_seeds)
            first = False
            pc = _draws(clean, x0n, n_seeds)  # (R, T, m)
            forest_l0 = np.square(pc.mean(axis=1) - f0).mean(axis=1)  # (R,)
            if tree is None:
                tree_all = np.square(pc - f0).mean(axis=2)  # (R, T): every tree is a draw of the tree learner
                tree_err0, tree_best = float(tree_all.mean()), float(tree_all[:, 0].min())
            else:
                qc = _draws(_fit(tree, xn, fx, s[3], n_seeds), x0n, n_seeds)
                tree_l0 = np.square(qc.mean(axis=1) - f0).mean(axis=1)
                tree_err0, tree_best = float(tree_l0.mean()), float(tree_l0.min())
            forest_err0, forest_best = float(forest_l0.mean()), float(forest_l0.min())
            # noisy fits: one seed per noise draw
            if sigma > 0:
                errs_f, errs_t = [], []
                for k in range(n_noise):
                    gk = torch.Generator().manual_seed(s[5 + k])
                    y = fx + sigma * torch.randn(n_train, generator=gk, dtype=torch.float64).numpy()
                    noisy = _fit(forest, xn, y, s[4] + 7919 * k, 1)
                    pk = _draws(noisy, x0n, 1)[0]  # (T, m)
                    errs_f.append(float(np.square(pk.mean(axis=0) - f0).mean()))
                    if tree is None:
                        errs_t.append(float(np.square(pk - f0).mean()))
                        tree_model = None
                    else:
                        tree_model = _fit(tree, xn, y, s[4] + 7919 * k + 1, 1)[0]
                        errs_t.append(float(np.square(_draws([tree_model], x0n, 1)[0].mean(axis=0) - f0).mean()))
                    if k == 0:
                        p_model, p_tree_model = noisy[0], tree_model
                forest_err, tree_err = float(np.mean(errs_f)), float(np.mean(errs_t))
            else:
                forest_err, tree_err = forest_err0, tree_err0
                p_model, p_tree_model = clean[0], None if tree is None else _fit(tree, xn, fx, s[3], 1)[0]
        p_forest.append(effective_parameters(p_model, xn, x0.numpy(), n_trees=t_forest if t_forest > 1 else None))
        if tree is None:
            per = tree_effective_parameters(p_model, xn, x0.numpy(), n_trees=t_forest if t_forest > 1 else None)
            p_tree.append(float(per.mean()))
        else:
            p_tree.append(effective_parameters(p_tree_model, xn, x0.numpy()))
        rows_tree.append((tree_err - tree_err0, tree_err0 - tree_best, tree_best))
        rows_forest.append((forest_err - forest_err0, forest_err0 - forest_best, forest_best))
    return (
        torch.tensor(rows_tree, dtype=torch.float64),
        torch.tensor(rows_forest, dtype=torch.float64),
        float(np.mean(p_tree)),
        float(np.mean(p_forest)),
    )


def _se(v: torch.Tensor) -> float:
    return float(v.std(unbiased=True) / math.sqrt(v.shape[0]))


def forest_mechanisms(
    world,
    forest,
    tree=None,
    *,
    noise: float | None = None,
    n_train: int = 200,
    n_test: int = 500,
    distance: float | None = None,
    n_inputs: int = 5,
    n_noise: int = 5,
    n_seeds: int = 10,
    seed: int = 0,
) -> Mechanisms:
    """Simulate the three mechanisms of ``forest``'s gain over ``tree`` in a toy ``world``.

    Args:
        world: a :class:`~ensemble_lab.forests.toys.ToyWorld` (the truth, the inputs, the test points).
        forest: a scikit-learn regressor recipe: ``RandomForestRegressor``, ``ExtraTreesRegressor``,
            ``BaggingRegressor`` of trees (or a tree); cloned, its ``random_state`` replaced by the simulation's.
        tree: the tree recipe (e.g. ``DecisionTreeRegressor()``); None: a forest of ONE tree of the same recipe
            (the paper's comparison), read off the forests' own trees at no extra cost.
        noise: the outcome noise's standard deviation (None: the world's); 0 makes the noise part exactly 0.
        n_train: training inputs per draw; n_test: fresh test inputs from the world (when ``distance`` is None).
        distance: None for fresh test inputs; a number >= 0 to test at the training inputs each moved by
            ``U(-distance, distance)`` per coordinate (the authors' design; ``n_train`` test points, 0 = in-sample).
        n_inputs: input draws (>= 2, for the standard errors); n_noise: noisy fits per input draw; n_seeds:
            noiseless fits per input draw (the best of them is the "bias").
        seed: everything (inputs, noise, algorithm seeds) is a deterministic function of it.

    Returns:
        :class:`Mechanisms` (floats in squared outcome units; per-input rows in ``tree_parts``/``forest_parts``).

    >>> from sklearn.ensemble import RandomForestRegressor
    >>> from ensemble_lab.forests import toy_1d
    >>> m = forest_mechanisms(toy_1d(noise=0.0), RandomForestRegressor(n_estimators=4), n_train=20, n_test=20,
    ...                       n_inputs=2, n_noise=1, n_seeds=2)
    >>> m.noise_gain, m.tree_bias <= m.tree_error
    (0.0, True)
    """
    if not isinstance(world, ToyWorld):
        raise TypeError(
            f"world must be a ToyWorld (ensemble_lab.forests.toy_1d() or toy_2d()), got {type(world).__name__}"
        )
    t_forest = _check_recipe(forest, "forest")
    if tree is not None:
        _check_recipe(tree, "tree")
    sigma = world.noise if noise is None else check_positive(noise, "noise", allow_zero=True)
    if sigma > _MAX_NOISE:
        what = "noise" if noise is not None else "world.noise"
        raise ValueError(
            f"{what} must be at most {_MAX_NOISE:g} (squared errors of it must stay finite), got {sigma!r}"
        )
    n_train = check_int(n_train, "n_train", minimum=2, maximum=100_000)
    n_test = check_int(n_test, "n_test", minimum=1, maximum=MAX_COUNT)
    if distance is not None:
        distance = check_positive(distance, "distance", allow_zero=True)
    n_inputs = check_int(n_inputs, "n_inputs", minimum=2, maximum=100_000)
    n_noise = check_int(n_noise, "n_noise", minimum=1, maximum=100_000)
    n_seeds = check_int(n_seeds, "n_seeds", minimum=1, maximum=100_000)
    seed = check_seed(seed)
    trees = n_inputs * (n_seeds + (n_noise if sigma > 0 else 0)) * t_forest
    if trees > 10**7:
        raise ValueError(f"n_inputs, n_seeds and n_noise ask for {trees:,} tree fits, above 10,000,000; use fewer")
    tree_parts, forest_parts, p_tree, p_forest = _simulate(
        world, forest, t_forest, tree, sigma, n_train, n_test, distance, n_inputs, n_noise, n_seeds, seed
    )
    tp, fp = tree_parts.mean(0).tolist(), forest_parts.mean(0).tolist()
    gains = tree_parts - forest_parts
    total = gains.sum(1)
    gm = gains.mean(0).tolist()
    return Mechanisms(
        sigma=float(sigma),
        tree_noise=tp[0],
        tree_variability=tp[1],
        tree_bias=tp[2],
        tree_error=float(tree_parts.sum(1).mean()),
        forest_noise=fp[0],
        forest_variability=fp[1],
        forest_bias=fp[2],
        forest_error=float(forest_parts.sum(1).mean()),
        noise_gain=gm[0],
        variability_gain=gm[1],
        bias_gain=gm[2],
        gain=float(total.mean()),
        noise_gain_se=_se(gains[:, 0]),
        variability_gain_se=_se(gains[:, 1]),
        bias_gain_se=_se(gains[:, 2]),
        gain_se=_se(total),
        p_test_tree=p_tree,
        p_test_forest=p_forest,
        tree_parts=tree_parts,
        forest_parts=forest_parts,
        n_train=n_train,
        n_test=n_train if distance is not None else n_test,
        n_inputs=n_inputs,
        n_noise=n_noise,
        n_seeds=n_seeds,
    )
