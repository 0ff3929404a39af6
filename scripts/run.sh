#!/usr/bin/env bash
# `make run`: demo converter on :8000, Envoy with routemeter on :10000 (admin :9901), a short
# traffic mix, a per-route summary from /stats/prometheus; then serve until Ctrl-C, and stop
# everything this script started (by pid).
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO=target/release/routemeter-demo
KIT=target/release/routemeter-kit
ENVOY=.venv/bin/envoy
RUN_DIR=.run
mkdir -p "$RUN_DIR"

source scripts/processes.sh
require_free_ports 8000 10000 9901
start "$RUN_DIR/demo.log" "$DEMO" serve --listen 127.0.0.1:8000
start "$RUN_DIR/envoy.log" "$ENVOY" -c envoy/envoy.yaml --use-dynamic-base-id --concurrency 2 -l info

if ! "$KIT" wait-ready --admin 127.0.0.1:9901 --timeout-s 60; then
  echo "Envoy did not become ready; last lines of $RUN_DIR/envoy.log:" >&2
  tail -n 40 "$RUN_DIR/envoy.log" >&2 || true
  exit 1
fi

echo "== traffic mix through Envoy (127.0.0.1:10000)"
"$KIT" traffic --target 127.0.0.1:10000
echo
echo "== waiting for Envoy's stats flush (histograms update every 5 s)"
sleep 6
"$KIT" summary --admin 127.0.0.1:9901
cat <<MSG

Running. Send your own traffic to http://127.0.0.1:10000 (e.g. curl -F file=@x.xlsx http://127.0.0.1:10000/api/v1/upload)
Metrics: http://127.0.0.1:9901/stats/prometheus     Logs: $RUN_DIR/
Ctrl-C stops the demo service and Envoy.
MSG
wait "${pids[1]}"
