# branchdb — the two commands:
#   make run    install missing packages, build, start the server on ./data
#   make test   install missing packages (with the Ceph and etcd fixtures), build
#               (ASan+UBSan), run every test via ctest
.PHONY: all deps build run test tsan bench fuzz crash soak clean cluster-test

BUILD_DIR ?= build
TEST_BUILD_DIR ?= build-test
DATA_DIR ?= ./data
LISTEN ?= 127.0.0.1:8080
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# ctest runs one test more than there are cores: several tests mostly wait
# (a token's lifetime, S3 retries' backoff, etcd leases): about a quarter of
# the slots' time at -j2.
TEST_JOBS ?= $(shell echo $$(( $(JOBS) + 1 )))

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANCHDB_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/bin/branchdb serve --data-dir $(DATA_DIR) --listen $(LISTEN)

# tests/objstore start a real Ceph RGW, tests/cluster a real etcd: their
# packages (install-deps.sh s3 etcd) come first, so that no test waits on apt
# (ctest's objstore_ceph_install and cluster_etcd_install do the same for a
# bare `ctest`).
test: deps
	@scripts/install-deps.sh s3 etcd
	@cmake -S . -B $(TEST_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANCHDB_SANITIZE=ON -DBRANCHDB_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(TEST_BUILD_DIR) -j $(JOBS)
	cd $(TEST_BUILD_DIR) && ctest --output-on-failure -j $(TEST_JOBS)

# The cluster tests (tests/cluster, docs/cluster.md) with a longer campaign:
# CYCLES kill -9 cycles of a project's owner under forwarded writes (the
# default run does 1), each checking every acknowledged commit.
CYCLES ?= 10
cluster-test: deps
	@scripts/install-deps.sh etcd
	@scripts/install-deps.sh s3
	@cmake -S . -B $(TEST_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANCHDB_SANITIZE=ON -DBRANCHDB_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(TEST_BUILD_DIR) -j $(JOBS) --target branchdb cluster_config_test cluster_etcd_client_test cluster_node_test
	cd $(TEST_BUILD_DIR) && BRANCHDB_CLUSTER_CYCLES=$(CYCLES) ctest --output-on-failure -R '^cluster_'

# The concurrency tests under ThreadSanitizer, in their own build directory
# (TSan and ASan exclude each other): project deletion against everything in
# flight, per-project locking, the compute supervisor, the VFS's writers, and
# the catalog and server tests around them. TSAN_TESTS=name... runs others.
TSAN_BUILD_DIR ?= build-tsan
empty :=
space := $(empty) $(empty)
TSAN_TESTS ?= catalog_lifetime_stress_test server_lifetime_test server_compute_test \
	vfs_concurrency_test catalog_catalog_test catalog_diff_test catalog_promote_test \
	server_api_test server_transfer_test
tsan: deps
	@cmake -S . -B $(TSAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANCHDB_SANITIZE_THREAD=ON -DBRANCHDB_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(TSAN_BUILD_DIR) -j $(JOBS) --target $(TSAN_TESTS)
	cd $(TSAN_BUILD_DIR) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  ctest --output-on-failure -R '^($(subst $(space),|,$(strip $(TSAN_TESTS))))$$'

# Benchmarks (not part of make test): release build, results in bench/results/.
# BENCH=storage_bench runs one program. Installs PostgreSQL 15 and libpq for
# postgres_bench's baseline (a throwaway cluster started by scripts/bench.sh).
bench: deps
	@scripts/install-deps.sh bench
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBRANCHDB_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)
	scripts/bench.sh $(BUILD_DIR) $(BENCH)

# libFuzzer targets (needs clang; scripts/fuzz.sh installs it when missing):
# every target runs FUZZ_SECONDS; corpora live in tests/fuzz/corpus/<target>/.
# FUZZ=name runs one target.
FUZZ_SECONDS ?= 60
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ)

# kill -9 campaign against a real `branchdb serve` under mixed load.
CYCLES ?= 1000
crash: build
	scripts/crash.sh $(BUILD_DIR) $(CYCLES)

# Bounded load of many clients on many branches; reports to bench/results/.
DURATION ?= 600
soak: build
	scripts/soak.sh $(BUILD_DIR) $(DURATION)

clean:
	rm -rf $(BUILD_DIR) $(TEST_BUILD_DIR) $(TSAN_BUILD_DIR) build-fuzz
