# Sourced by run.sh and stack.sh: refuse busy ports, and stop every process started with
# `start` (by pid) when the script exits or is interrupted.

# require_free_ports PORT...: exits if any of them is already taken on 127.0.0.1.
require_free_ports() {
  local port
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "port $port is in use on 127.0.0.1; stop what uses it (an earlier 'make run' or 'make stack'?) and try again" >&2
      exit 1
    fi
  done
}

pids=()

# start LOG COMMAND...: runs COMMAND in the background with its output in LOG.
start() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  pids+=($!)
}

stop_all() {
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped everything this script started"
}
trap stop_all EXIT
trap 'exit 130' INT TERM
