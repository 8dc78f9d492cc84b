# mtvae: two commands do all set-up on a fresh machine (see README):
#   make test        create .venv if missing, install, run the whole test suite (+ notebooks)
#   make reproduce   create .venv if missing, install, run the reproduction (PROFILE=quick|full)
#
# The library's own requirements are ranges (pyproject.toml). The exact torch/torchvision pair
# is chosen here: the default is the pair that installs on our CI machine (x86_64, Python 3.11,
# CUDA 13 build that also runs on CPU). Elsewhere pass your own, e.g.
#   make test TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu"
# or TORCH_SPEC= (empty) to keep a torch that is already installed in the environment.

PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PROFILE    ?= quick
OUTPUT     ?= output/$(PROFILE)
PYTEST_ARGS ?=

.PHONY: install test test-fast reproduce lint lock clean help

help:
	@sed -n '2,4p' Makefile

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(if $(strip $(TORCH_SPEC)),$(PY) -m pip install --quiet $(TORCH_SPEC))
	$(PY) -m pip install --quiet -e ".[dev,notebooks]"
	touch $@

install: $(VENV)/.installed

# The whole suite: unit tests, then the notebooks under nbval (quick profile, marked cells
# compared). Headless matplotlib; no GPU needed.
test: install
	MPLBACKEND=Agg $(PY) -m pytest tests $(PYTEST_ARGS)
	MPLBACKEND=Agg $(PY) -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider notebooks $(PYTEST_ARGS)

# Unit tests without the slow trainings and without notebooks (a quick check while editing).
test-fast: install
	MPLBACKEND=Agg $(PY) -m pytest tests -m "not slow" -x -q

reproduce: install
	MPLBACKEND=Agg $(PY) -m mtvae reproduce --profile $(PROFILE) --output $(OUTPUT)

lint: install
	$(PY) -m ruff check mtvae tests benchmarks

# Record the exact versions of this environment (pins live here, not in the library).
lock: install
	$(PY) -m pip freeze --exclude-editable > requirements-lock.txt

clean:
	rm -rf $(VENV) output .pytest_cache
