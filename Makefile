# Entry points of the README's Quick start. Each target sets itself up on a fresh machine:
# a virtualenv in .venv with the CPU build of torch, the test dependencies, and the extension
# (rebuilt incrementally with ninja when csrc/ changes).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
CMAKE_BUILD := build/cmake

.PHONY: demo test pytest ctest bench clean

$(VENV)/.deps: Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)" numpy ninja pybind11 pytest setuptools wheel tqdm pandas
	$(PY) -m pip install --quiet "$(TORCH)" sinabs==3.1.3
	$(PY) -m pip install --quiet --no-deps spikingjelly==2.0.0
	$(PY) -m pip install --quiet loguru
	touch $@

$(VENV)/.installed: $(VENV)/.deps setup.py
	MAX_JOBS=2 $(PY) -m pip install --quiet --no-build-isolation --no-deps -e .
	mkdir -p build && touch $@ && touch build/.ext  # the extension is fresh: no second build

# The extension, rebuilt in place when a C++ source or header changes. Make decides to run this
# recipe when .installed was remade in the same run (it stat'ed build/.ext before the install
# touched it), so the recipe itself skips the build when no source is newer than the last one.
build/.ext: $(VENV)/.installed $(shell find csrc -name '*.cpp' -o -name '*.h' 2>/dev/null)
	if [ ! -e $@ ] || [ -n "$$(find csrc -type f -newer $@)" ]; then \
	  MAX_JOBS=2 $(PY) setup.py --quiet build_ext --inplace; fi
	mkdir -p build && touch $@

demo: build/.ext
	$(PY) -m sinabs_fast.demo

pytest: build/.ext
	$(PY) -m pytest -q tests

# C++ unit tests of the shared neuron/surrogate math, and the CMake build against libtorch.
ctest: $(VENV)/.deps
	cmake -S . -B $(CMAKE_BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	  -DPython3_EXECUTABLE="$$(realpath $(PY))" > /dev/null
	cmake --build $(CMAKE_BUILD) -j2
	ctest --test-dir $(CMAKE_BUILD) --output-on-failure

test: pytest ctest

bench: build/.ext
	$(PY) benchmarks/bench_cpu.py

clean:
	rm -rf build $(VENV) sinabs_fast/*.so *.egg-info
