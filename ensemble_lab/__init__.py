"""ensemble_lab: GPU-backed ensemble routines and interactive Labs for teaching ensembles.

Layers (arrows point down): notebooks -> ``ensemble_lab.labs`` -> routines (``metrics``, ``combine``, ...)
-> ``models`` and ``data``.  Importing the package is cheap; submodules are imported on demand.
"""

__version__ = "0.1.0"
