"""Artefacts: trained things built once (with a progress bar) and then read from the cache.

- :mod:`~ensemble_lab.artefacts.zoo`: trained deep ensembles and their member logits on every split;
- :mod:`~ensemble_lab.artefacts.soup_world`: the pre-train -> fine-tune world of the model-soups notebook;
- :mod:`~ensemble_lab.artefacts.zeroshot`: image and text embeddings of a text-image model for zero-shot prompts;
- :mod:`~ensemble_lab.artefacts.prebuild`: builds everything the notebooks load.

This layer sits above the routines: it calls training and the routines, and no routine imports it.  The store it
writes to, :mod:`ensemble_lab.cache`, sits at the bottom (the data generators cache through it too).
"""
