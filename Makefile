# branchdb — the two commands:
#   make run    install missing packages, build, start the server on ./data
#   make test   install missing packages, build (ASan+UBSan), run every test via ctest
.PHONY: all deps build run test bench fuzz clean

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

# libFuzzer targets (needs clang): the JWT parser/verifier. New inputs go to
# build-fuzz/corpus/; a crash found should be added to tests/fuzz/corpus/ so that
# the default test run replays it.
FUZZ_SECONDS ?= 60
fuzz: deps
	@command -v clang++ >/dev/null || { echo "make fuzz needs clang: apt-get install clang"; exit 1; }
	@CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANCHDB_SANITIZE=ON -DBRANCHDB_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target jwt_fuzz
	@mkdir -p build-fuzz/corpus/jwt
	build-fuzz/tests/fuzz/jwt_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=9000 build-fuzz/corpus/jwt tests/fuzz/corpus/jwt

clean:
	rm -rf $(BUILD_DIR) $(TEST_BUILD_DIR) build-fuzz
