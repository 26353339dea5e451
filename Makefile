# eigenbench — `make bench` (CPU) and `make test` work on a fresh clone with nothing installed.
# On a GPU box whose Python already has torch+CUDA, CuPy etc. and no package index:
#   make gpu-check OUT=DIR               (python3, installs nothing; the one command of a GPU loan)
#   make bench-gpu PYTHON=python3        (installs nothing when its imports work)

VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
PYTHON      ?=
SUITES      ?= all
BENCH_ARGS  ?=
CHECK_SUITES ?= all
CHECK_ARGS  ?=
CHECK_ROUNDS ?= 1
CHECK_RUN   ?= results/runs/check.json
BASELINE_KEEP ?= 5

ifeq ($(strip $(PYTHON)),)
PY          := $(VENV)/bin/python
READY       := $(VENV)/.installed
else
PY          := $(PYTHON)
READY       := python-ready
endif
EIGENBENCH  := $(PY) -m eigenbench
LATEST       = $(shell ls -t results/runs/*.json 2>/dev/null | grep -v '\.recheck\.json$$' | head -n 1)

.PHONY: install test bench bench-full bench-gpu gpu-check report check ab baseline lint clean python-ready

install: $(READY)

# torch goes in first, from its own spec, so nothing pulls the multi-GB CUDA build on CPU hosts.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet "$(TORCH_SPEC)"
	$(VENV)/bin/pip install --quiet -e ".[dev]"
	touch $@

# A given interpreter is used as it is: check its imports, install nothing.
python-ready:
	@$(PY) -c "import torch, numpy, scipy, rich, matplotlib, jinja2" || \
	  { echo "$(PY) lacks a dependency of eigenbench (see pyproject.toml)"; exit 4; }

test: $(READY)
	$(PY) -m pytest -q

# The main job on any machine: every suite's quick grid on the CPU (about 2 minutes on 2 cores).
bench: $(READY)
	$(EIGENBENCH) run $(SUITES) --quick --device cpu $(BENCH_ARGS)
	$(MAKE) --no-print-directory report PYTHON=$(PYTHON)

# Every suite's full CPU grid, seed shapes and 10^7-point Spearman included (~15 min on 2 cores).
bench-full: $(READY)
	$(EIGENBENCH) run $(SUITES) --device cpu $(BENCH_ARGS)
	$(MAKE) --no-print-directory report PYTHON=$(PYTHON)

# The CUDA cases only, GPU grids sized to take at most ~6 minutes on an H100; a case past
# --timeout is stopped and the bigger sizes of its impl are skipped.
BENCH_GPU_ARGS ?= --min-samples 5 --max-time 1 --timeout 15
bench-gpu: $(READY)
	$(EIGENBENCH) run $(SUITES) --device cuda $(BENCH_GPU_ARGS) $(BENCH_ARGS)
	$(MAKE) --no-print-directory report PYTHON=$(PYTHON)

# The one command a GPU session runs (device tool, timeout_s ~450): preflight, GPU tests,
# selftest, eigenbench beside triton/torch timers, bench-gpu; at most 8 files in OUT
# (default results/gpu-check), stopping itself within GPU_CHECK_BUDGET seconds. Installs
# nothing: PYTHON (default python3) must already have torch with CUDA. Without a GPU it
# exits 0 in seconds and its summary says so.
GPU_CHECK_OUT    := $(if $(strip $(OUT)),$(OUT),results/gpu-check)
GPU_CHECK_PY     := $(if $(strip $(PYTHON)),$(PYTHON),python3)
GPU_CHECK_BUDGET ?= 420
gpu-check:
	$(GPU_CHECK_PY) tools/gpu_check.py --out "$(GPU_CHECK_OUT)" --budget $(GPU_CHECK_BUDGET) \
	  --bench-args "$(BENCH_GPU_ARGS)"

report: $(READY)
	$(EIGENBENCH) report $(LATEST)

# The quick CPU suites against this machine's committed baseline; exit 1 on a regression.
# `eigenbench check` measures every case called slower once more and keeps the verdict only if
# the second measurement agrees (a neighbour's burst of work passes; a regression does not).
# CHECK_ROUNDS > 1 samples each case in that many rounds spread over the run (--rounds).
# CI passes CHECK_ARGS=--report-only: timing noise on shared machines must not block work.
check: $(READY)
	@key=$$($(EIGENBENCH) env --key); \
	if [ -d results/baselines/$$key ]; then \
	  $(EIGENBENCH) check $(CHECK_SUITES) --quick --device cpu --rounds $(CHECK_ROUNDS) \
	    --out $(CHECK_RUN) --changes-only $(CHECK_ARGS); \
	else \
	  $(EIGENBENCH) run $(CHECK_SUITES) --quick --device cpu --rounds $(CHECK_ROUNDS) --out $(CHECK_RUN); \
	  echo "no baseline for machine '$$key' in results/baselines/ (make baseline)"; \
	fi

# Is this working tree slower than a revision? Both timed alternately in one session
# (`eigenbench ab`), the revision checked out in .ab-base/ (AB_BASE: a commit, default HEAD,
# i.e. the uncommitted changes). Exit 1 on a regression.
AB_BASE     ?= HEAD
AB_SUITES   ?= all
AB_ARGS     ?=
ab: $(READY)
	@rm -rf .ab-base && git worktree prune && \
	  git worktree add --quiet --detach --force .ab-base $(AB_BASE) && \
	  { $(EIGENBENCH) ab $(AB_SUITES) --quick --device cpu --base-dir .ab-base --changes-only $(AB_ARGS); \
	    code=$$?; git worktree remove --force .ab-base; exit $$code; }

# Promote the latest run to this machine's baseline (one file per suite); the baseline keeps
# the last BASELINE_KEEP runs' medians, from which compare learns each case's drift.
baseline: $(READY)
	@echo "saving $(LATEST) into results/baselines/ (keeping $(BASELINE_KEEP) runs)"
	$(EIGENBENCH) baseline save $(LATEST) --keep $(BASELINE_KEEP)

lint: $(READY)
	$(PY) -m ruff check eigenbench suites tests tools
	$(PY) -m ruff format --check eigenbench suites tests tools
	$(PY) -m mypy eigenbench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
