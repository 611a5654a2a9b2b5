# Akamai eStats for Grafana: build, test and package.
#
#   make test    every check CI runs: rustfmt, clippy, Rust unit, property and integration
#                tests, frontend typecheck, lint, jest, build, compatibility checks against the
#                oldest and newest Grafana, and browser tests in Chromium
#   make dist    dist/: plugin.json, module.js, img/, and the static executable for this machine
#                (gpx_akamai_estats_linux_amd64 on x86_64, _linux_arm64 on aarch64; ARCH=arm64 or
#                ARCH=amd64 picks one, given its Rust target: `rustup target add ...`)
#   make bench   the benchmarks (numbers, not pass/fail; bench/run.sh installs Prometheus)

SHELL := /bin/bash
CARGO ?= cargo
NPM ?= npm
# Grafana's name of the architecture (the suffix of the executable it starts) and Rust's.
# The Dockerfile passes the build platform's TARGETARCH, which uses Grafana's names too.
UNAME_M := $(shell uname -m)
ARCH ?= $(if $(filter x86_64 amd64,$(UNAME_M)),amd64,$(if $(filter aarch64 arm64,$(UNAME_M)),arm64,$(UNAME_M)))
RUST_ARCH_amd64 := x86_64
RUST_ARCH_arm64 := aarch64
RUST_ARCH := $(RUST_ARCH_$(ARCH))
HOST_TRIPLE := $(RUST_ARCH)-unknown-linux-gnu
# Static glibc build: with --target, RUSTFLAGS apply to the executable only, not to build
# scripts and proc macros (which cannot be static). DNS goes through hickory, not NSS, so the
# static binary resolves names in Alpine and Debian images alike.
STATIC_RUSTFLAGS := -C target-feature=+crt-static
EXE := gpx_akamai_estats
DIST_EXE := dist/$(EXE)_linux_$(ARCH)

.PHONY: all test test-rust test-frontend lint-rust dist dist-backend dist-frontend frontend-deps bench clean

all: dist

test: lint-rust test-rust test-frontend

lint-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

test-rust:
	$(CARGO) test --locked --lib --bins --tests

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && $(NPM) ci

frontend-deps: frontend/node_modules/.package-lock.json

test-frontend: frontend-deps
	cd frontend && $(NPM) run typecheck && $(NPM) run lint && $(NPM) test && $(NPM) run build && $(NPM) run compat \
		&& $(NPM) run test:browser

dist: dist-backend dist-frontend
	@test -f dist/plugin.json && test -f dist/module.js && test -x $(DIST_EXE)
	@echo "dist/ is a complete plugin folder:" && ls -R dist

dist-backend:
	@test -n "$(RUST_ARCH)" || { echo "cannot build for architecture '$(ARCH)': ARCH=amd64 or ARCH=arm64" >&2; exit 1; }
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --locked --release --target $(HOST_TRIPLE) --bin $(EXE)
	mkdir -p dist
	cp target/$(HOST_TRIPLE)/release/$(EXE) $(DIST_EXE)
	@file $(DIST_EXE)
	@file $(DIST_EXE) | grep -Eq 'statically linked|static-pie linked' || { echo "$(DIST_EXE) is not statically linked" >&2; exit 1; }

dist-frontend: frontend-deps
	cd frontend && $(NPM) run build

bench:
	$(CARGO) bench --locked --bench core
	bench/run.sh

clean:
	$(CARGO) clean
	rm -rf dist frontend/node_modules
