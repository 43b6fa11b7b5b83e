# `make tune` and `make test` set up .venv themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: tune test test-oldest lint bench gpu-check clean

# uv installs the same pinned set as pip in half the time (98 s against 199 s on 2 cores, from an
# empty cache). Compiled to bytecode at install, as pip does: left to the first imports, the two
# processes of the fast stage compiled torch each and the stage took 266 s instead of 142.
INSTALL := $(PY) -m uv pip install --quiet --compile-bytecode --python $(PY) -c constraints.txt

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt uv
	$(INSTALL) -e ".[dev]"
	touch $(STAMP)

tune: $(STAMP)
	$(PY) run_tune.py

# Fast stage first (unit tests, about 2 minutes, in two processes), then the Ray stage (real
# sweeps) one test at a time: each is bound by the CPU of the processes it starts. Run two at a
# time (`-n 2 --dist loadscope`, the memory-monitor test left out: it needs a quiet host), each
# test took 1.4-2.2x as long and the stage 1469 s against 1653 s one at a time (the pair run
# also had four sweeps without W&B).
# mypy (68 s of one core from an empty cache, as on CI) runs beside the Ray stage, in the CPU its
# tests leave idle (about a third); its verdict counts as much as theirs.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mkdocs build --strict --quiet  # the documentation site, warnings as errors
	$(PY) -m pytest -m "not ray" -n 2
	$(PY) -m mypy > $(VENV)/mypy.log 2>&1 & types=$$!; \
	$(PY) -m pytest -m ray; tests=$$?; \
	wait $$types; typed=$$?; cat $(VENV)/mypy.log; \
	test $$tests -eq 0 && test $$typed -eq 0

# The oldest Ray and Lightning of pyproject's ranges (constraints-oldest.txt), in a venv of their
# own: the fast stage, then the real sweeps marked `oldest` (DDP, a killed driver resumed,
# LightningCLI, stock-Ray mode, every private part's layer off), about 8 minutes with the install.
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed

$(OLDEST_STAMP): pyproject.toml constraints-oldest.txt
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet -c constraints-oldest.txt uv
	$(OLDEST)/bin/python -m uv pip install --quiet --compile-bytecode --python $(OLDEST)/bin/python \
		-c constraints-oldest.txt -e ".[dev]"
	touch $(OLDEST_STAMP)

test-oldest: $(OLDEST_STAMP)
	$(OLDEST)/bin/python -m pytest -m "not ray" -n 2
	$(OLDEST)/bin/python -m pytest -m oldest

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(INSTALL) -e ".[dev,bench]"
	touch $(BENCH_STAMP)

# Benchmarks (about three and a half hours on 2 cores): bench/results/latest.json and bookkeeping.json.
# Speed (bench.run, bench.default_sweep), then search quality: MNIST-1D against random search, regret on
# LCDB, PBT's correctness and PBT against TPE + ASHA, several objectives against random search;
# a sweep under kills of every kind (bench/results/chaos.json), and what a preemption loses.
bench: $(BENCH_STAMP)
	$(PY) -m bench.run
	$(PY) -m bench.sync_actor
	$(PY) -m bench.warm_pool
	$(PY) -m bench.warm_pool --rounds 0 --sweeps 1 --epochs 40
	$(PY) -m bench.warm_pool --rounds 0 --sweeps 1 --epochs 40 --cpus-per-worker 0.5
	$(PY) -m bench.default_sweep
	$(PY) -m bench.run --bookkeeping --trials 10000 --out bench/results/bookkeeping.json
	$(PY) -m bench.run --bookkeeping --trials 2000 --epochs 30 --out bench/results/bookkeeping.json
	$(PY) -m bench.search
	$(PY) -m bench.regret
	$(PY) -m bench.pbt
	$(PY) -m bench.pareto
	$(PY) -m bench.pbt_vs_asha
	$(PY) -m bench.chaos
	$(PY) -m bench.preemption

# One GPU, under 8 minutes: trials sharing the card, every precision, against plain Lightning.
# Writes bench/results/gpu.json; without a GPU it says "no GPU: skipped" and succeeds.
gpu-check: $(STAMP)
	$(PY) -m bench.gpu_check

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) $(OLDEST) .pytest_cache .mypy_cache .ruff_cache *.egg-info
