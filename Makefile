# Entry points of the README's Quick start. Each target sets itself up on a fresh machine, in a
# virtualenv in .venv, quietly (pip's output goes to .venv/pip.log):
#   make train  torch (a CPU build where one can be had), the training extras, the extension;
#               then `sinabs-fast train` with its defaults
#   make test   the same, plus the test dependencies (sinabs 3.1.3 as the oracle, ...); the tests
#   make bench-deps  the same as train's set-up, plus the benchmark's peers
# The extension is rebuilt incrementally with ninja when csrc/ changes.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
LOG := $(VENV)/pip.log
TORCH ?= torch==2.13.0
# PyTorch's index of CPU builds: tried first (briefly), so that a machine without a GPU does not
# download a multi-gigabyte CUDA build; the plain registry (and PIP_FIND_LINKS) otherwise.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
CMAKE_BUILD := build/cmake
# Runs a pip command into the log; on failure shows the log's end.
QUIET = >> $(LOG) 2>&1 || { tail -n 30 $(LOG); echo "(full pip log: $(LOG))"; exit 1; }

.PHONY: train demo test pytest ctest bench bench-deps fuzz sanitize clean

$(VENV)/.torch:
	@$(PYTHON) -m venv $(VENV)
	@echo "setting up $(VENV): torch and the training job's dependencies (pip log: $(LOG))"
	@$(PIP) install --upgrade pip $(QUIET)
	@$(PIP) install --timeout 5 --retries 0 --index-url $(TORCH_CPU_INDEX) "$(TORCH)" >> $(LOG) 2>&1 \
	  || { echo "(PyTorch's CPU index unreachable: torch from the default index)" >> $(LOG); \
	       $(PIP) install "$(TORCH)" $(QUIET); }
	@touch $@

$(VENV)/.deps: $(VENV)/.torch Makefile
	@$(PIP) install "$(TORCH)" numpy ninja pybind11 setuptools wheel tqdm matplotlib scikit-learn nir nirtorch $(QUIET)
	@touch $@

# The benchmark's peers (pyproject.toml's bench extra, then the two whose declared dependencies
# would replace torch: spikingjelly wants torchvision, torchaudio, tensorboard, ...; norse wants
# torchvision, which pulls another torch; neither imports them). The semantics gate's tests
# (tests/test_bench_peers.py) run against them, so the test set-up installs them too.
BENCH_PEERS := sinabs==3.1.3 snntorch==1.0.0 loguru nir nirtorch matplotlib tqdm
BENCH_NO_DEPS := spikingjelly==2.0.0 norse==1.1.0

$(VENV)/.bench-deps: $(VENV)/.deps
	@echo "installing the benchmark's peers (pip log: $(LOG))"
	@$(PIP) install "$(TORCH)" $(BENCH_PEERS) $(QUIET)
	@$(PIP) install --no-deps $(BENCH_NO_DEPS) $(QUIET)
	@touch $@

$(VENV)/.test-deps: $(VENV)/.deps $(VENV)/.bench-deps
	@echo "installing the test dependencies (pip log: $(LOG))"
	@$(PIP) install "$(TORCH)" pytest hypothesis pandas tonic $(QUIET)
	@touch $@

$(VENV)/.installed: $(VENV)/.deps setup.py pyproject.toml
	@echo "building the extension (a few minutes on 2 cores)"
	@MAX_JOBS=2 $(PIP) install -v --no-build-isolation --no-deps -e . $(QUIET)
	@grep -ho "sinabs_fast: building the .*" $(LOG) | tail -n 1
	@mkdir -p build && touch $@ && touch build/.ext  # the extension is fresh: no second build

# The extension, rebuilt in place when a C++ source or header changes. Make decides to run this
# recipe when .installed was remade in the same run (it stat'ed build/.ext before the install
# touched it), so the recipe itself skips the build when no source is newer than the last one.
build/.ext: $(VENV)/.installed $(shell find csrc -name '*.cpp' -o -name '*.h' 2>/dev/null)
	@if [ ! -e $@ ] || [ -n "$$(find csrc -type f -newer $@)" ]; then \
	  MAX_JOBS=2 $(PY) setup.py --quiet build_ext --inplace; fi
	@mkdir -p build && touch $@

train: build/.ext
	$(VENV)/bin/sinabs-fast train

demo: build/.ext
	$(PY) -m sinabs_fast.demo

pytest: build/.ext $(VENV)/.test-deps
	$(PY) -m pytest -q tests

# C++ unit tests of the shared neuron/surrogate math, and the CMake build against libtorch.
# Without a CUDA toolkit, a CUDA build of torch cannot be found by CMake: then only the unit tests.
ctest: $(VENV)/.deps
	prefix="$$($(PY) sinabs_fast/_cuda_toolkit.py --cmake-prefix)"; \
	cmake -S . -B $(CMAKE_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$$prefix" \
	  -DSINABS_FAST_BUILD_LIBRARY=$$([ -n "$$prefix" ] && echo ON || echo OFF) \
	  -DPython3_EXECUTABLE="$$(realpath $(PY))" > /dev/null
	cmake --build $(CMAKE_BUILD) -j2
	ctest --test-dir $(CMAKE_BUILD) --output-on-failure

test: pytest ctest

# A long hypothesis campaign of tests/test_fuzz.py (the test run tries 40 examples): 8000
# examples took 14 minutes on the busy 2-core development machine. Not in CI.
FUZZ_EXAMPLES ?= 8000
fuzz: build/.ext $(VENV)/.test-deps
	SINABS_FAST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -x tests/test_fuzz.py \
	  --hypothesis-show-statistics

# The extension built with AddressSanitizer and UndefinedBehaviorSanitizer into build/sanitize
# (not the in-place one) and the kernel-heavy tests run against it: tools/sanitize.sh. Not in CI:
# the sanitized build alone took 32 minutes on the busy 2-core development machine. (CI's short
# sanitizer subset: ctest runs the C++ unit tests built with the sanitizers too.)
sanitize: $(VENV)/.deps $(VENV)/.test-deps
	PYTHON=$(PY) bash tools/sanitize.sh

bench-deps: build/.ext $(VENV)/.bench-deps

bench: build/.ext $(VENV)/.test-deps
	$(PY) -m sinabs_fast.cli bench --device cpu --quick

clean:
	rm -rf build $(VENV) sinabs_fast/*.so *.egg-info
