#!/usr/bin/env bash
# `make stack`: the demo converter, Envoy with routemeter, Prometheus (monitoring/prometheus,
# scraping Envoy's admin endpoint, with the alert rules) and Alertmanager
# (monitoring/alertmanager), as plain processes on 127.0.0.1; Ctrl-C stops all of them (by pid).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN_DIR=.run/stack
mkdir -p "$RUN_DIR"
source scripts/processes.sh
require_free_ports 8000 10000 9901 9090 9093
start "$RUN_DIR/demo.log" target/release/routemeter-demo serve --listen 127.0.0.1:8000
start "$RUN_DIR/envoy.log" .venv/bin/envoy -c envoy/envoy.yaml --use-dynamic-base-id -l info
start "$RUN_DIR/alertmanager.log" prometheus-alertmanager --config.file=monitoring/alertmanager/alertmanager.yml \
  --storage.path="$RUN_DIR/alertmanager" --web.listen-address=127.0.0.1:9093 --cluster.listen-address=
start "$RUN_DIR/prometheus.log" prometheus --config.file=monitoring/prometheus/prometheus.yml \
  --storage.tsdb.path="$RUN_DIR/prometheus" --web.listen-address=127.0.0.1:9090

target/release/routemeter-kit wait-ready --admin 127.0.0.1:9901 --timeout-s 60
target/release/routemeter-kit traffic --target 127.0.0.1:10000 >/dev/null
cat <<MSG
Running (logs in $RUN_DIR/):
  demo service     http://127.0.0.1:8000
  Envoy            http://127.0.0.1:10000   (send traffic here)
  Envoy metrics    http://127.0.0.1:9901/stats/prometheus
  Prometheus       http://127.0.0.1:9090    (alerts: /alerts; rules from monitoring/prometheus/rules.yml and slo-rules.yml)
  Alertmanager     http://127.0.0.1:9093    (webhook receiver: http://127.0.0.1:5001/alerts, not started here)
  Grafana          import monitoring/grafana/routemeter.json with a Prometheus data source at :9090
Ctrl-C stops all four.
MSG
wait "${pids[1]}"
