# ScaleBridge: `make run` and `make test` do all set-up on a fresh machine.
#
#   make run             set up on first use, then run the headline case
#   make test            set up, then the whole test suite (serial and 2-rank MPI tests)
#   make fuzz            many mutated cases through `check` (make test runs a few, fixed seed)
#   make bench           speed benchmarks (ratios against plain DOLFINx scripts)
#   make lint            ruff
#
# Cluster users who bring their own DOLFINx (conda-forge, Spack, docker image) run
#   make install DOLFINX=system
# which makes the venv see the system site-packages and skips the PyPI DOLFINx wheel.

SHELL := /bin/bash
VENV ?= .venv
DOLFINX ?= wheel
HEADLINE ?= cases/battery_cycling.toml
# the headline's short cycle (its own protocol is PyBaMM's full CC-CV experiment, twice)
HEADLINE_SETTINGS ?= --set 'protocol.steps=["Discharge at 1C for 20 minutes", "Rest for 5 minutes", "Charge at 1C until 4.2 V", "Hold at 4.2 V until C/20", "Rest for 5 minutes"]' --set protocol.repeat=1
HEADLINE_DIR ?= results/$(basename $(notdir $(HEADLINE)))

# A Python >= 3.12: explicit PYTHON=..., else the first candidate that reports a suitable version
# (pyenv shims on PATH may exist but fail, so each candidate is executed, not just located).
PYTHON_CANDIDATES := python3.12 python3.13 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python) \
                     $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python) python3 python
ifndef PYTHON
PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { command -v "$$p"; break; }; \
	done)
endif

ifeq ($(DOLFINX),system)
  VENV_FLAGS := --system-site-packages
  EXTRAS := test
else
  VENV_FLAGS :=
  EXTRAS := test,dolfinx
endif

STAMP := $(VENV)/.scalebridge-installed
BIN := $(VENV)/bin

.PHONY: install run test test-serial fuzz bench lint clean

install: $(STAMP)

# The example plug-in (examples/darcy_flow) is installed like a user's package, so the tests find
# it through its entry point only.
EXAMPLE_PLUGINS := examples/darcy_flow

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(EXAMPLE_PLUGINS))
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: no Python >= 3.12 found. Install one, or run: make PYTHON=/path/to/python3.12"; \
	  exit 2; fi
	@echo "Using $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
	  --no-build-isolation $(addprefix -e ,$(EXAMPLE_PLUGINS))
	@touch $@

run: $(STAMP)
	$(BIN)/scalebridge run $(HEADLINE) $(HEADLINE_SETTINGS) -o $(HEADLINE_DIR) --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup tests

test-serial: $(STAMP)
	$(BIN)/python -m pytest tests

# FUZZ_EXAMPLES mutations of every case in cases/, from a new seed unless FUZZ_SEED is given.
FUZZ_EXAMPLES ?= 300
fuzz: $(STAMP)
	@seed=$${FUZZ_SEED:-$$RANDOM}; echo "fuzz seed $$seed (repeat with: make fuzz FUZZ_SEED=$$seed)"; \
	SCALEBRIDGE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) SCALEBRIDGE_FUZZ_SEED=$$seed \
	  $(BIN)/python -m pytest -n 2 -p no:cacheprovider tests/test_fuzz_check.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/run.py --ranks 2
	$(BIN)/python benchmarks/run.py --case reaction_front
	$(BIN)/python benchmarks/scaling.py
	$(BIN)/python benchmarks/scaling.py --cache
	$(BIN)/python benchmarks/mesh_cache.py
	$(BIN)/mpirun -n 2 $(BIN)/python benchmarks/mesh_cache.py
	$(BIN)/python benchmarks/elasticity_3d.py --plain --repeats 3
	$(BIN)/python benchmarks/elasticity_3d.py --gmg --plain --repeats 3
	$(BIN)/python benchmarks/quadrature.py --chen2020 --2d
	$(BIN)/python benchmarks/study_speedup.py
	$(BIN)/python benchmarks/battery_pybamm.py
	$(BIN)/python benchmarks/multiscale.py --case convergence
	$(BIN)/python benchmarks/multiscale.py --case batch --count 32 --size 0.02

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) results .pytest_cache
