"""Everything the notebooks load, built in advance: ``python -m ensemble_lab.artefacts.prebuild`` (Binder's
``postBuild`` runs it, so a learner's first run only reads the cache)."""

from __future__ import annotations

# The artefacts the notebooks load; `python -m ensemble_lab.artefacts.prebuild` builds them (Binder's postBuild does).
NOTEBOOK_ARTEFACTS: tuple[dict, ...] = (
    # 01_deep_ensembles (and the members of 04): the headline over member seeds 0, 1, 2
    *({"dataset": "distorted", "arch": "mlp-m", "k": 8, "seed": s} for s in (0, 1, 2)),
    # 02_calibration: trained long, over-confident; seeds 0, 1, 2
    *({"dataset": "distorted", "arch": "mlp-m", "k": 8, "epochs": 40, "seed": s} for s in (0, 1, 2)),
    {"dataset": "distorted", "arch": "mlp-s", "k": 2},  # 04_early_exit_cascades: the family's small ...
    # ... and one large model per member seed (mlp-m: the 01 ensemble)
    *({"dataset": "distorted", "arch": "mlp-l", "k": 2, "seed": s} for s in (0, 1, 2)),
)


def prebuild(progress: bool = True) -> None:
    """Build (or find in the cache) every artefact in :data:`NOTEBOOK_ARTEFACTS`, the image-caption world of
    03_prompt_ensembling (its zero-shot domains and pre-training sample) and the fine-tuned ingredients of
    05_model_soups_wise_ft (data seeds 0, 1, 2), and the model library and winning-team world of
    06_ensemble_selection.  07_ensemble_forecasting needs nothing from the cache (its worlds are generated in a
    second and its forecasters ship with the package)."""
    from ..data.captions import pretraining_sample, zero_shot_domains
    from .library import model_library
    from .soup_world import soup_world
    from .transfer_world import transfer_world
    from .zoo import ensemble_predictions

    for config in NOTEBOOK_ARTEFACTS:
        ensemble_predictions(**config, progress=progress)
    zero_shot_domains()
    pretraining_sample()
    for seed in (0, 1, 2):  # 05's headline runs over the soup worlds of data seeds 0, 1, 2 (~40 s each on 2 cores)
        soup_world(seed=seed, progress=progress)
    model_library(progress=progress)  # 06: four groups are the ensembles above, three small ones are new
    transfer_world(progress=progress)  # 06: 12 source models and every team's probes (~30 s on 2 cores)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m ensemble_lab.artefacts.prebuild", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    prebuild(progress=not parser.parse_args().quiet)
