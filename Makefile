# The two commands of the README: `make demo` and `make test`. Both install
# missing Debian packages first (scripts/install-deps.sh).
BUILD ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo sanitize results bench clean

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

# The data and store tests under AddressSanitizer + UndefinedBehaviorSanitizer
# (a Debug build of its own in build-asan/).
sanitize: deps
	@cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDEBIAS_SANITIZE=ON \
	  -DDEBIAS_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS) --target data_tests store_tests
	@build-asan/tests/data_tests --gtest_brief=1
	@build-asan/tests/store_tests --gtest_brief=1

# The container image (Dockerfile) built with podman and exercised end to end
# through a published port (scripts/container_smoke.sh; docs/OPERATIONS.md).
.PHONY: container-smoke check-deploy
container-smoke:
	@BUILD=$(BUILD) bash scripts/container_smoke.sh

# Parse and check the compose and Kubernetes files under deploy/.
check-deploy:
	@bash scripts/check_deploy.sh

clean:
	rm -rf $(BUILD) build-asan var
