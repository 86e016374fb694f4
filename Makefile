# Thin wrapper over CMake presets and the scripts under tests/ and packaging/.
# The real build is CMakeLists.txt; the real dependency list is
# packaging/deps/debian-packages.txt and tests/package-lock.json.

PRESET ?= release
BUILD_DIR := build/$(PRESET)
JOBS ?= $(shell nproc)

.PHONY: all deps configure build test unit integration demo bench bench-api soak fuzz lint clean bundle bundle-test

all: build

deps:
	@bash packaging/deps/install-deps.sh

configure:
	@cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build --preset $(PRESET) -j $(JOBS)

# Every suite: unit, integration and e2e, each test labelled.
test: deps
	@$(MAKE) --no-print-directory build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L unit

integration: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) -L integration

demo: deps
	@$(MAKE) --no-print-directory build
	@bash tests/e2e/demo.sh $(BUILD_DIR)

bench: deps
	@$(MAKE) --no-print-directory build
	@bash tests/bench/run.sh $(BUILD_DIR)
	@bash tests/bench/api_load.sh $(BUILD_DIR)

# bunkerd's REST API under load alone (also part of bench): API_CLIENTS=200,
# API_SECONDS=30 (tests/bench/api_load.sh).
bench-api: deps
	@$(MAKE) --no-print-directory build
	@bash tests/bench/api_load.sh $(BUILD_DIR)

# Long randomized runs, bounded in time (SOAK_MINUTES, default 20): the model
# test over many seeds, with faults, kills and concurrent writers.
SOAK_MINUTES ?= 20
soak: deps
	@$(MAKE) --no-print-directory build
	@bash tests/soak.sh $(BUILD_DIR) $(SOAK_MINUTES)

# libFuzzer over every decoder, FUZZ_SECONDS per harness (clang build of its own).
FUZZ_SECONDS ?= 60
fuzz:
	@bash packaging/deps/install-deps.sh --with-fuzz
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# clang-format check on every C++ file, clang-tidy on C++ files changed
# against origin/main (or the last commit when there is no remote).
lint: configure
	@bash tests/lint.sh $(BUILD_DIR)

# The offline bundle: build/bundle/bunker-offline-VERSION.tar (offline-bundle/).
bundle: deps
	@test -f $(BUILD_DIR)/CMakeCache.txt || cmake --preset $(PRESET) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target bunkerd bunkerctl bunker-agent
	@bash offline-bundle/build-bundle.sh --build-dir $(BUILD_DIR) --out-dir build/bundle

# The bundle installed into a clean Debian 12 root with no network (not in make test).
bundle-test: bundle
	@bash tests/integration/bundle/bundle_test.sh build/bundle build/bundle-cache build/bundle-test

clean:
	rm -rf build
