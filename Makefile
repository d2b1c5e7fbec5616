# skvault: `make demo` and `make test` set everything up from a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEPS_STAMP := $(VENV)/.deps-$(shell cat requirements/*.txt 2>/dev/null | cksum | cut -d' ' -f1)

# Older scikit-learn releases that tests/test_old_sklearn.py converts models from, each in a
# cached venv (git-ignored) made once per machine.
OLD_SKLEARN := 1.2.2 1.3.2 1.5.2
OLD_SKLEARN_DIR := .cache/old-sklearn
OLD_SKLEARN_PYS := $(foreach v,$(OLD_SKLEARN),$(OLD_SKLEARN_DIR)/$(v)/.ready)

.PHONY: help venv build wheel test-install demo test test-rust test-python lint stubs fuzz-replay miri bench clean old-sklearn s3-server oha mlflow-serve chromium

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(DEPS_STAMP): requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	rm -f $(VENV)/.deps-* && touch $@

venv: $(DEPS_STAMP) ## Create .venv with the pinned dependencies

$(OLD_SKLEARN_DIR)/%/.ready:
	rm -rf $(OLD_SKLEARN_DIR)/$*
	$(PYTHON) -m venv $(OLD_SKLEARN_DIR)/$*
	$(OLD_SKLEARN_DIR)/$*/bin/python -m pip install --quiet scikit-learn==$* numpy==1.26.4 scipy==1.11.4 joblib==1.3.2
	touch $@

old-sklearn: $(OLD_SKLEARN_PYS) ## Cached venvs with older scikit-learn releases (for conversion tests)

# The registry's tests run against a real S3-compatible server on loopback: s3s-fs from
# crates.io, built once per machine into .cache/s3s (git-ignored). See docs/REGISTRY.md.
S3S_VERSION := 0.14.1
S3S_BIN := .cache/s3s/bin/s3s-fs
$(S3S_BIN):
	cargo install --quiet --locked --root .cache/s3s --version $(S3S_VERSION) --features binary s3s-fs

s3-server: $(S3S_BIN) ## Build the S3 test server (s3s-fs) once into .cache/s3s

# bench/serve.py's HTTP load generator: oha from crates.io, built once per machine into
# .cache/oha (git-ignored). oha needs one TLS backend to compile; native-tls (the system's
# OpenSSL, libssl-dev from Debian's packages, installed here if missing) builds in a fraction of the time of the default rustls + aws-lc.
OHA_VERSION := 1.16.0
OHA_BIN := .cache/oha/bin/oha
$(OHA_BIN):
	dpkg -s libssl-dev pkg-config >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq libssl-dev pkg-config; }
	cargo install --quiet --locked --root .cache/oha --version $(OHA_VERSION) --no-default-features --features native-tls oha

oha: $(OHA_BIN) ## Build the HTTP load generator (oha) once into .cache/oha

# The model card and registry page tests open the pages in a real browser: headless
# Chromium from Debian's own package (no browser download), installed here when missing.
# Where it cannot be installed the browser tests skip with a message saying so.
chromium: ## Install headless Chromium (Debian's package) for the browser tests
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } || echo "make chromium: could not install Debian's chromium; the browser tests will skip"

# `mlflow models serve` for bench/serve.py, in a cached venv of its own: full MLflow
# requires pyarrow < 26, which requirements/dev.txt's pyarrow pin rules out for .venv.
MLFLOW_SERVE_VERSION := $(shell sed -n 's/^mlflow==//p' requirements/bench-mlflow.txt)
MLFLOW_SERVE_DIR := .cache/mlflow-$(MLFLOW_SERVE_VERSION)
$(MLFLOW_SERVE_DIR)/.ready: requirements/bench-mlflow.txt
	rm -rf $(MLFLOW_SERVE_DIR)
	$(PYTHON) -m venv $(MLFLOW_SERVE_DIR)
	$(MLFLOW_SERVE_DIR)/bin/python -m pip install --quiet -r requirements/bench-mlflow.txt
	touch $@

mlflow-serve: $(MLFLOW_SERVE_DIR)/.ready ## Cached venv with full MLflow (mlflow models serve) for bench/serve.py

build: venv ## Build the extension (release) into .venv
	$(VENV)/bin/maturin develop --release --quiet

# The wheel a user installs: abi3 (one wheel for every CPython >= 3.11), built with the same
# cargo target folder and features as `make build`, so that after it only the link is new.
wheel: venv ## Build the abi3 wheel into dist/ (release)
	rm -f dist/skvault-*.whl
	$(VENV)/bin/maturin build --release --quiet --out dist

# Installs only the wheel and its declared dependencies into a clean venv and runs the CLI and
# a dump/load/predict from outside the repository (tests/install/smoke.py says what it checks).
test-install: wheel ## Install the wheel into a clean venv and smoke-test it
	$(PY) tests/install/smoke.py dist/skvault-*.whl

demo: build ## Train a small model, save, inspect, load and predict
	$(PY) examples/demo.py

# Every crate but the binding forbids unsafe code, or denies it and allows it only where a
# SAFETY note stands (docs/ARCHITECTURE.md, "Unsafe code").
UNSAFE_POLICY := ^\#!\[(forbid|deny)\(unsafe_code\)\]

lint: ## rustfmt, clippy (warnings are errors) and the unsafe-code policy
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	@for lib in crates/*/src/lib.rs; do \
	  case $$lib in crates/skvault-python/*) continue;; esac; \
	  grep -Eq '$(UNSAFE_POLICY)' $$lib || { echo "$$lib: no #![forbid(unsafe_code)] or #![deny(unsafe_code)]"; exit 1; }; \
	done

stubs: build ## Check the type stubs of skvault._native against the built module (mypy stubtest)
	$(PY) -m mypy.stubtest skvault._native

# INSTA_UPDATE=no: a CLI output that differs from its snapshot (crates/skvault-cli/tests/snapshots)
# fails the run and writes nothing; accept a reviewed change with `cargo insta review`.
test-rust: build s3-server ## Rust tests (the binding crate is tested through Python; the pickle corpus tests run make_fixtures.py with .venv)
	INSTA_UPDATE=no cargo test --workspace --exclude skvault-python --quiet

fuzz-replay: ## Replay the fuzz corpus and seeds through the parsers (no nightly needed)
	cargo test -p skvault-format -p skvault-pickle -p skvault-infer -p skvault-export -p skvault-table -p skvault-serve -p skvault-sign --test fuzz_replay --quiet

# Tree Borrows and permissive provenance: rayon's crossbeam-epoch breaks the (stricter,
# experimental) Stacked Borrows rules and casts integers to pointers; skvault's code does
# neither. Leaks are ignored because rayon's pool threads outlive `main` (a Fill's own
# workers are joined, which the tests check). Needs `rustup component add --toolchain
# nightly miri` once.
MIRIFLAGS_FILL := -Zmiri-tree-borrows -Zmiri-permissive-provenance -Zmiri-ignore-leaks

miri: ## The load plan and background fill tests under Miri (nightly; about 10 minutes)
	MIRIFLAGS="$(MIRIFLAGS_FILL)" cargo +nightly miri test -p skvault-format --test fill
	MIRIFLAGS="$(MIRIFLAGS_FILL)" cargo +nightly miri test -p skvault-format --lib -- load_plan:: ids::

# The native-inference parity tests compare bits with scikit-learn's outputs, which numpy's
# AVX-512 exp/log kernels change by an ulp on CPUs that have them: the reference is numpy's
# AVX2 kernels (docs/NATIVE.md, "Parity"), so the tests run with the AVX-512 dispatch off.
NUMPY_REFERENCE := NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR"

test-python: build old-sklearn s3-server chromium ## The Python test suite
	SKVAULT_REQUIRE_OLD_SKLEARN=1 $(NUMPY_REFERENCE) $(PY) -m pytest -q tests

test: build lint stubs test-rust test-python test-install ## Everything: lint, stub check, Rust tests, fuzz replay, Python tests, install test

# bench/scale.py's row count: the issue's 10 million takes tens of minutes on 2 cores (the
# Dask + joblib baseline most of it); `make bench SCALE_ROWS=1000000` for a shorter run.
SCALE_ROWS ?= 10000000

bench: build s3-server oha mlflow-serve ## Benchmarks: persistence vs pickle/joblib/skops, scan vs picklescan/fickling, native inference vs sklearn/onnxruntime/treelite, ONNX export vs skl2onnx, registry vs MLflow, skvault serve vs MLflow/FastAPI, batch scoring on Dask (writes bench/results/)
	$(PY) -m pip install --quiet -r requirements/bench.txt
	$(PY) bench/run.py
	$(PY) bench/scan.py
	$(PY) bench/native.py
	$(PY) bench/native_mixed.py
	$(PY) bench/export.py
	$(PY) bench/registry.py
	$(PY) bench/serve.py
	$(PY) bench/scale.py --rows $(SCALE_ROWS)

clean: ## Remove build outputs and the virtualenv
	cargo clean
	rm -rf $(VENV) .pytest_cache dist
