# Kinema: the two commands a new user needs are `make serve` and `make test`.
SWIFT ?= swift
DATA_DIR ?= data
PORT ?= 8080
BIN := .build/release/kinema

.PHONY: deps build serve test lint format bench soak clean

deps:
	@bash scripts/install-deps

build: deps
	$(SWIFT) build -c release --product kinema

## Run the service with embedded defaults (SQLite + local files + in-process workers); prints the URL and a dev key.
serve: build
	$(BIN) serve --data-dir $(DATA_DIR) --port $(PORT)

## Run every test (unit, store conformance on SQLite and PostgreSQL, media, engine, end to end) against a
## release build: render-heavy tests are many times slower in debug. One build: `swift test` also builds the
## `kinema` binary that the end-to-end tests start (a separate `swift build` first would compile everything twice,
## since test builds enable testability).
## Then the diffusers worker's own suite, whose end-to-end tests run that same release `kinema`.
## First the layout checks: Package.swift declares exactly what each target imports and the architecture's arrows
## hold; the Swift sources are laid out as .swift-format says (the formatter ships with the toolchain); the playground
## compiled into the binary is what web/playground/ holds.
## At most TEST_WIDTH tests run at once: unbounded, Swift Testing starts all ~490 together and up to 80 `kinema`
## processes ran at once on 2 cores (load average over 20), starving timing-bound tests into failing; 6 at once takes
## about as long in all (137 s against 141 s here) with a tenth of the processes.
TEST_WIDTH ?= 6
test: deps lint
	python3 scripts/check-dependencies
	python3 scripts/embed-playground --check
	SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=$(TEST_WIDTH) $(SWIFT) test -c release
	$(MAKE) --no-print-directory test-worker

## The diffusers GPU worker (workers/diffusers): installs .venv-worker, then lint, strict type check and its tests (CPU,
## tiny models written by the tests; the end-to-end ones use .build/release/kinema and are skipped loudly without it).
.PHONY: test-worker
test-worker:
	bash scripts/install-worker
	cd workers/diffusers && ../../.venv-worker/bin/ruff check src tests
	cd workers/diffusers && ../../.venv-worker/bin/mypy
	cd workers/diffusers && ../../.venv-worker/bin/pytest -q

## Print the benchmark figures recorded in docs/benchmarks.md (motion engine, API load against the framework's floor,
## progress granularity, upstream gateway, event streams, webhook dispatch, blob stores).
bench: build
	$(SWIFT) build -c release --product kinema-floor
	bash scripts/bench
	python3 scripts/bench-progress
	python3 scripts/bench-gateway
	python3 scripts/bench-streams
	python3 scripts/bench-webhooks
	python3 scripts/bench-blobs

## Soak: 500 short tasks at a steady rate while the server and workers are SIGKILLed at random moments, on SQLite and
## on a throwaway PostgreSQL; fails unless 0 tasks are lost, 0 results duplicated and no 5xx comes outside a kill window.
soak: build
	python3 scripts/soak

clean:
	rm -rf .build

## Layout of the Swift sources (.swift-format: 4 spaces, 150 columns). `make format` rewrites files to match.
lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Benchmarks Package.swift

format:
	$(SWIFT) format format --in-place --recursive Sources Tests Benchmarks Package.swift
