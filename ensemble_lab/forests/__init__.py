"""Random forests as adaptive smoothers (Curth, Jeffares & van der Schaar, "Why do Random Forests Work?
Understanding Tree Ensembles as Self-Regularizing Adaptive Smoothers", 2024).

A fitted forest predicts a weighted average of the training outcomes, ``yhat(x) = sum_i s_i(x) y_i``; the weights
say how much it smooths, and how that changes away from the training data.

- the weights (:mod:`.smoother`): :func:`smoother_weights` ``(n_query, n_train)`` of a fitted scikit-learn tree,
  random forest, extra-trees or bagging ensemble (``S @ y`` is ``predict``, ``S @ onehot(y)`` is
  ``predict_proba``), the checked leaf structure they are made of (:func:`forest_leaves`) and the weights of
  a prefix of its trees from it (:func:`weights_of_leaves`);
- how much a prediction leans on few outcomes (:mod:`.effective`): the effective number of parameters
  :func:`effective_parameters` (at the training inputs, or at new ones), of a weight matrix you already have
  (:func:`effective_parameters_of`), of each tree (:func:`tree_effective_parameters`) and point by point
  (:func:`pointwise_parameters`, for paired comparisons);
- why a forest beats its trees (:mod:`.mechanisms`): :func:`forest_mechanisms` simulates the paper's three
  mechanisms (less outcome-noise variance, less variability given the inputs, less representation bias) and
  returns them in one exact identity (:class:`Mechanisms`);
- toy worlds to try it on (:mod:`.toys`): :func:`toy_1d` (a sine) and :func:`toy_2d` (an oblique boundary), with
  test points at a chosen distance from the training inputs (:meth:`ToyWorld.near`).

Shapes: inputs ``(n, d)`` (numpy or cpu tensors), weights ``(n_query, n_train)`` float64; numbers are python
floats.  The authors' code is github.com/AliciaCurth/understanding-random-forests; each module says where ours
differs.

>>> from sklearn.ensemble import ExtraTreesRegressor
>>> from ensemble_lab.forests import effective_parameters, toy_1d
>>> x, y = toy_1d().sample(100, seed=0)
>>> forest = ExtraTreesRegressor(n_estimators=20, random_state=0).fit(x.numpy(), y.numpy())
>>> effective_parameters(forest, x)                                  # at the training inputs: it interpolates
100.0
>>> bool(effective_parameters(forest, x, toy_1d().near(x, 0.1)) < 80)  # away from them it smooths
True
"""

from .effective import (
    effective_parameters,
    effective_parameters_of,
    pointwise_parameters,
    tree_effective_parameters,
    tree_parameters_of_leaves,
)
from .mechanisms import PARTS, Mechanisms, forest_mechanisms
from .smoother import ForestLeaves, forest_leaves, smoother_weights, weights_of_leaves
from .toys import TOYS, ToyWorld, toy_1d, toy_2d, toy_world

__all__ = [
    "smoother_weights",
    "forest_leaves",
    "ForestLeaves",
    "weights_of_leaves",
    "effective_parameters",
    "effective_parameters_of",
    "tree_effective_parameters",
    "pointwise_parameters",
    "tree_parameters_of_leaves",
    "forest_mechanisms",
    "Mechanisms",
    "PARTS",
    "ToyWorld",
    "TOYS",
    "toy_1d",
    "toy_2d",
    "toy_world",
]
