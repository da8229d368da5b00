# branchdb — the two commands:
#   make run    install missing packages, build, start the server on ./data
#   make test   install missing packages, build (ASan+UBSan), run every test via ctest
.PHONY: all deps build run test bench clean

BUILD_DIR ?= build
TEST_BUILD_DIR ?= build-test
DATA_DIR ?= ./data
LISTEN ?= 127.0.0.1:8080
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANCHDB_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/server/branchdb serve --data-dir $(DATA_DIR) --listen $(LISTEN)

test: deps
	@cmake -S . -B $(TEST_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANCHDB_SANITIZE=ON -DBRANCHDB_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(TEST_BUILD_DIR) -j $(JOBS)
	cd $(TEST_BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# Benchmarks (not part of make test): release build, results in bench/results/.
# BENCH=storage_bench runs one program.
bench: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANCHDB_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	scripts/bench.sh $(BUILD_DIR) $(BENCH)

clean:
	rm -rf $(BUILD_DIR) $(TEST_BUILD_DIR)
