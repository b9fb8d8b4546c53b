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
.PHONY: container-smoke check-deploy podman-fleet
container-smoke:
	@BUILD=$(BUILD) bash scripts/container_smoke.sh

# deploy/podman/fleet.yaml under podman kube play: a trainer and three scoring
# replicas, a model published and load-balanced over (scripts/podman_fleet.sh;
# FLEET_IMAGE_FROM_BUILD=1 layers $(BUILD)'s binaries on the image).
podman-fleet:
	@bash scripts/podman_fleet.sh $(BUILD)

# Parse and check the compose and Kubernetes files under deploy/.
check-deploy:
	@bash scripts/check_deploy.sh

# docs/API.md (from the proto comments), docs/CLI.md (from --help of the
# built binaries) and the parameter tables of docs/METHODS.md (from the
# registry, through ListMethods) are generated; check-docs fails when one is
# stale.
.PHONY: docs check-docs
PYTHON_SYS ?= /usr/bin/python3
docs: build
	@$(PYTHON_SYS) scripts/gen_api_docs.py docs/API.md
	@bash scripts/gen_cli_docs.sh $(BUILD) docs/CLI.md
	@$(PYTHON_SYS) scripts/gen_method_params.py $(BUILD) docs/METHODS.md

check-docs: build
	@$(PYTHON_SYS) scripts/gen_api_docs.py --check docs/API.md
	@bash scripts/gen_cli_docs.sh --check $(BUILD) docs/CLI.md
	@$(PYTHON_SYS) scripts/gen_method_params.py $(BUILD) --check docs/METHODS.md

# Long measurements, run by hand (not in CI): the 10-minute mixed soak and the
# scaling tables of docs/SCALING.md.
.PHONY: soak scaling fleet
soak: build
	@bash scripts/soak.sh $(BUILD)

scaling: build
	@bash scripts/measure_scaling.sh $(BUILD)

# The fleet test of ctest -L fleet, longer (120 s of load); the report lands
# in docs/results/fleet.json, the numbers in docs/SCALING.md.
FLEET_SECONDS ?= 120
fleet: build
	@$(PYTHON_SYS) tests/e2e/fleet_test.py $(BUILD) --duration $(FLEET_SECONDS) \
	  --report docs/results/fleet.json

clean:
	rm -rf $(BUILD) build-asan var
