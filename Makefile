# The two commands of the README: `make demo` and `make test`. Both install
# missing Debian packages first (scripts/install-deps.sh).
BUILD ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo sanitize sanitize-configure sanitize-all results bench clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@if [ ! -f $(BUILD)/build.ninja ]; then \
	  cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null; \
	fi

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 600

demo: build
	@bash scripts/demo.sh $(BUILD)

# Every core and store test (ctest labels core, store, and the fuzz corpora of
# the loaders, snapshots and estimators replayed) under AddressSanitizer + UndefinedBehaviorSanitizer, in a build of
# its own in build-asan/ (RelWithDebInfo: optimised, so the model tests run
# in seconds, with frame pointers for the reports). `make sanitize-all` runs
# the whole suite there, server and end-to-end tests included.
SANITIZE_TARGETS = util_tests data_tests clickmodels_tests synth_tests propensity_tests \
  samplers_tests eval_tests models_tests train_tests retrieval_tests store_tests \
  fuzz_loaders fuzz_snapshots fuzz_estimators
sanitize-configure: deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEBIAS_SANITIZE=ON \
	  -DDEBIAS_BUILD_BENCH=OFF >/dev/null

sanitize: sanitize-configure
	@cmake --build build-asan -j $(JOBS) --target $(SANITIZE_TARGETS)
	@ctest --test-dir build-asan -L 'core|store|fuzz' -E fuzz_requests --output-on-failure \
	  -j $(JOBS) --timeout 900

sanitize-all: sanitize-configure
	@cmake --build build-asan -j $(JOBS)
	@ctest --test-dir build-asan --output-on-failure -j $(JOBS) --timeout 900

# The container image (Dockerfile) built with podman and exercised end to end
# through a published port (scripts/container_smoke.sh; docs/OPERATIONS.md).
.PHONY: container-smoke check-deploy
container-smoke:
	@BUILD=$(BUILD) bash scripts/container_smoke.sh

# Parse and check the compose and Kubernetes files under deploy/.
check-deploy:
	@bash scripts/check_deploy.sh

# docs/API.md (from the proto comments) and docs/CLI.md (from --help of the
# built binaries) are generated; check-docs fails when either is stale.
.PHONY: docs check-docs
PYTHON_SYS ?= /usr/bin/python3
docs: build
	@$(PYTHON_SYS) scripts/gen_api_docs.py docs/API.md
	@bash scripts/gen_cli_docs.sh $(BUILD) docs/CLI.md

check-docs: build
	@$(PYTHON_SYS) scripts/gen_api_docs.py --check docs/API.md
	@bash scripts/gen_cli_docs.sh --check $(BUILD) docs/CLI.md

# Long measurements, run by hand (not in CI): the 10-minute mixed soak and the
# scaling tables of docs/SCALING.md.
.PHONY: soak scaling
soak: build
	@bash scripts/soak.sh $(BUILD)

scaling: build
	@bash scripts/measure_scaling.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan var
