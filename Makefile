# Kinema: the two commands a new user needs are `make serve` and `make test`.
SWIFT ?= swift
DATA_DIR ?= data
PORT ?= 8080
BIN := .build/release/kinema

.PHONY: deps build serve test bench clean

deps:
	@bash scripts/install-deps

build: deps
	$(SWIFT) build -c release --product kinema

## Run the service with embedded defaults (SQLite + local files + in-process workers); prints the URL and a dev key.
serve: build
	$(BIN) serve --data-dir $(DATA_DIR) --port $(PORT)

## Run every test (unit, store conformance, media, engine, end to end) against a release build.
test: deps
	$(SWIFT) build -c release --product kinema
	$(SWIFT) test -c release

## Print the benchmark figures recorded in docs/benchmarks.md.
bench: build
	bash scripts/bench

clean:
	rm -rf .build
