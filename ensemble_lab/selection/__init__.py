"""Choosing the team: which of many trained models to combine.

Two questions, two modules:

- :mod:`ensemble_lab.selection.forward`: ensemble selection from a LIBRARY of trained models (Caruana et al.,
  ICML 2004): forward selection with replacement on any of the package's metrics (NLL, Brier, ECE, error), with
  sorted initialisation and bagged selection, the selection path (hill-climbing and held-out score at each step),
  and the top-k and uniform baselines.  The greedy soup (:func:`ensemble_lab.soups.greedy_soup`) is the same
  procedure in weight space.
- :mod:`ensemble_lab.selection.transferability`: choosing pre-trained SOURCE models for a new target task
  without fine-tuning every team: LEEP (Nguyen et al., ICML 2020) for one model, MS-LEEP and E-LEEP (Agostinelli
  et al., CVPR 2022) for an ensemble, and OSBORN (Vimal K B et al., ICCV 2023) with its three terms and its
  greedy submodular team selection (:func:`select_team`, returning a :class:`TeamSelection`).

Pure torch routines: tensors in, tensors and dataclasses out, on the inputs' device.
"""

from .forward import METRICS, SelectionResult, SelectionStep, forward_select, top_k, uniform
from .transferability import (
    OsbornPool,
    OsbornTerms,
    TeamSelection,
    e_leep,
    leep,
    ms_leep,
    osborn,
    osborn_pool,
    select_team,
)

__all__ = [
    "METRICS",
    "forward_select",
    "SelectionResult",
    "SelectionStep",
    "top_k",
    "uniform",
    "leep",
    "ms_leep",
    "e_leep",
    "osborn",
    "OsbornTerms",
    "osborn_pool",
    "OsbornPool",
    "select_team",
    "TeamSelection",
]
