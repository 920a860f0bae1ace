# Every target builds .venv from this repo's own files first (pyproject.toml), then runs in it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all
# One torch/BLAS thread per process: on a loaded 2-core machine two threads ran 0.05-0.8x one.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: venv run test lint bench report clean

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up and run the default pipeline (every figure and table, default scale, 27 min 30 s measured on 2 CPU cores).
run: venv
	$(BIN)/snakemake --cores $(CORES) --workflow-profile workflow/profiles/default

## Set up and run the test suite (what .ci/run calls). pytest exit 5 (no tests) fails make as any non-zero does.
test: venv
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

bench: venv
	$(BIN)/python -m bench

clean:
	rm -rf results .snakemake
