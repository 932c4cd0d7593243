# redis-databroker: `make run` (build + start a server with the module),
# `make test` (everything CI runs), `make bench` (benchmarks).
.PHONY: setup build release run test bench memcheck fmt lint clean

CARGO ?= cargo

setup: ## install missing system packages (apt, pip)
	@bash scripts/setup.sh

build: setup ## debug build of the module
	$(CARGO) build --workspace

release: setup ## release build of the module
	$(CARGO) build --release -p redis-databroker

run: release ## start redis-server with the module on 127.0.0.1 (PORT=..., DATA=<dir>: durable)
	@bash scripts/run.sh

test: setup ## all tests: unit tests and integration tests on Redis and Valkey
	@bash scripts/test.sh

bench: release ## benchmarks: writes bench/results.md and bench/chart.svg
	$(CARGO) run --release -p databroker-bench

memcheck: setup ## integration tests on Valkey under valgrind memcheck (slow)
	@bash scripts/memcheck.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

clean:
	$(CARGO) clean
