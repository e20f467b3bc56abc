# Two entry points: `make demo` (the main job) and `make test` (the whole suite: import layers,
# the API reference in strict mode, then pytest).
# Both create .venv on first use; torch/torchvision are pinned to the releases on this machine's disk.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.rsfm-installed

.PHONY: venv demo test lint docs bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rsfm demo

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check rsfm tests bench
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir .docs-check
	rm -rf .docs-check
	$(PY) -m pytest -q -n auto  # one worker per core (pytest-xdist), one torch thread each

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

lint: $(STAMP)
	$(VENV)/bin/ruff check rsfm tests bench

# Benchmarks (bench/run_all.py): harness scripts + the others, bench/RESULTS.md, < 20 min on 2 cores.
# Peers outside rsfm's dependencies (TerraTorch, TorchGeo): RSFM_BENCH_PEER_PYTHON=/path/to/python.
bench: $(STAMP)
	$(PY) -c "import segmentation_models_pytorch" 2>/dev/null || $(PY) -m pip install --quiet -e ".[bench]"
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info site .docs-check
