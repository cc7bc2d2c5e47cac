"""Session-wide test set-up (applies to tests/ and to the notebooks run by nbval).

Unless ENSEMBLE_LAB_CACHE is set, the whole session uses one fresh cache folder: tests never read a user's
cache, notebooks run from a cold cache as on a learner's first visit, and artefacts built once (data,
trained members) are shared by the tests and notebook kernels of the same session.
"""

import os
import platform
import tempfile

# One instruction set on every x86-64 machine.  torch, MKL, oneDNN and numpy's OpenBLAS (scikit-learn's solvers)
# choose their kernels by the cpu (AVX2, AVX-512, ...), and different kernels round differently: on an AVX-512
# cpu, trained members, MiniCLIP and the notebooks' checked numbers came out different from the AVX2 machines they
# were saved on (seen at stop 25).  Capped at AVX2 (OpenBLAS's "Haswell" kernels), which every x86-64 cpu this
# course runs on has, both give the same bits.  Set before torch and numpy are imported; the notebook kernels and
# servers the tests start inherit it.  The Makefile sets the same for `make lab`, `make app` and `make bench`.
if platform.machine().lower() in ("x86_64", "amd64"):
    for _name, _value in (
        ("ATEN_CPU_CAPABILITY", "avx2"),
        ("MKL_ENABLE_INSTRUCTIONS", "AVX2"),
        ("ONEDNN_MAX_CPU_ISA", "AVX2"),
        ("OPENBLAS_CORETYPE", "Haswell"),
    ):
        os.environ.setdefault(_name, _value)

os.environ.setdefault("ENSEMBLE_LAB_CACHE", tempfile.mkdtemp(prefix="ensemble_lab_cache_"))
os.environ.setdefault("MPLBACKEND", "Agg")
