# Two entry points (see README):
#   make lab   -> install everything into .venv and open JupyterLab on notebooks/
#   make test  -> install everything into .venv, lint, and run the whole test suite (unit tests + nbval + browser)
PYTHON ?= python3
# the same kernels on every x86-64 cpu (AVX2, also where AVX-512 exists): trained models and the notebooks'
# numbers are then the same bits as on the machines they were saved on (see conftest.py)
ifeq ($(shell uname -m),x86_64)
export ATEN_CPU_CAPABILITY ?= avx2
export MKL_ENABLE_INSTRUCTIONS ?= AVX2
export ONEDNN_MAX_CPU_ISA ?= AVX2
export OPENBLAS_CORETYPE ?= Haswell
endif
VENV   ?= .venv
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip

.PHONY: lab test install bench clean-cache lint format

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e ".[lab,test]"

lab: install
	$(BIN)/jupyter lab notebooks/

test: install lint
	$(BIN)/python -m pytest tests notebooks --nbval-lax -p no:cacheprovider --durations=20

# ruff's rules and line length are in pyproject.toml; make test runs lint first, so CI enforces both
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(PIP) install --quiet -c constraints.txt -e ".[bench]"
	$(PIP) install --quiet --no-deps torchensemble
	$(BIN)/python -m benchmarks

clean-cache:
	$(BIN)/python -c "import ensemble_lab.cache as c; c.clear_cache()"

# make app: the notebooks as apps (Voila, code hidden) at http://localhost:8866; the kernels of closed app tabs
# are shut down after 2 idle minutes (Voila 0.5 may fail to do it when a tab closes: voila#1458)
.PHONY: app
app: install
	$(BIN)/voila notebooks/ --MappingKernelManager.cull_interval=60 --MappingKernelManager.cull_idle_timeout=120
