# `make tune` and `make test` set up .venv themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: tune test lint bench gpu-check clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

tune: $(STAMP)
	$(PY) run_tune.py

# Fast stage first (unit tests, about 2 minutes), then the Ray stage (real sweeps).
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -m "not ray"
	$(PY) -m pytest -m ray

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	touch $(BENCH_STAMP)

# Benchmarks (about three and a half hours on 2 cores): bench/results/latest.json and bookkeeping.json.
# Speed (bench.run, bench.default_sweep), then search quality: MNIST-1D against random search, regret on
# LCDB, PBT's correctness and PBT against TPE + ASHA, several objectives against random search.
bench: $(BENCH_STAMP)
	$(PY) -m bench.run
	$(PY) -m bench.default_sweep
	$(PY) -m bench.run --bookkeeping --trials 10000 --out bench/results/bookkeeping.json
	$(PY) -m bench.run --bookkeeping --trials 2000 --epochs 30 --out bench/results/bookkeeping.json
	$(PY) -m bench.search
	$(PY) -m bench.regret
	$(PY) -m bench.pbt
	$(PY) -m bench.pareto
	$(PY) -m bench.pbt_vs_asha

# One GPU, under 8 minutes: trials sharing the card, every precision, against plain Lightning.
# Writes bench/results/gpu.json; without a GPU it says "no GPU: skipped" and succeeds.
gpu-check: $(STAMP)
	$(PY) -m bench.gpu_check

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
