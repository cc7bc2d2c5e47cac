"""Session-wide test set-up (applies to tests/ and to the notebooks run by nbval).

Unless ENSEMBLE_LAB_CACHE is set, the whole session uses one fresh cache folder: tests never read a user's
cache, notebooks run from a cold cache as on a learner's first visit, and artefacts built once (data,
trained members) are shared by the tests and notebook kernels of the same session.
"""

import os
import tempfile

os.environ.setdefault("ENSEMBLE_LAB_CACHE", tempfile.mkdtemp(prefix="ensemble_lab_cache_"))
os.environ.setdefault("MPLBACKEND", "Agg")
