#!/usr/bin/env bash
# Refresh-token throughput of livesim over HTTPS keep-alive, in rotate mode.
#
# Builds livesim and livesim-bench in release, then for each run starts a fresh livesim
# (--rotation rotate --quiet) and runs livesim-bench against it, printing the bench's figures.
# Client and server share the machine's cores; the bench reports who used how much CPU.
#
# Usage: Benchmarks/livesim-refresh.sh [extra livesim-bench options]
# Environment:
#   RUNS=3            how many runs, each against a new livesim
#   CONNECTIONS=16    keep-alive connections
#   DURATION=10       measured seconds;  WARMUP=2  unmeasured seconds first
#   CLIENT_THREADS=1  bench event-loop threads;  SERVER_THREADS=  livesim --threads (default: one per core)
#   LOG=1             run livesim without --quiet (one log line per request, to a file)
#   SERVER_CPUS=, CLIENT_CPUS=   taskset CPU lists, e.g. SERVER_CPUS=0 CLIENT_CPUS=1 (default: no pinning)
#   NO_BUILD=1        skip the build
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CLIENT_THREADS=${CLIENT_THREADS:-1}

if [ -z "${NO_BUILD:-}" ]; then
    swift build -c release --product livesim-bench && swift build -c release --product livesim
fi
BIN=$(swift build -c release --show-bin-path)

pin() { if [ -n "$1" ]; then echo "taskset -c $1"; fi; }

# Stops livesim: SIGTERM first, SIGKILL if it is still there after two seconds (this build of
# livesim does not always exit on SIGTERM).
stop() {
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}

work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then stop; fi
    rm -rf "$work"
}
trap cleanup EXIT

server_args=(--listen 127.0.0.1:0 --port-file "$work/port" --ca-out "$work/ca.pem"
    --control-listen 127.0.0.1:0 --control-port-file "$work/control-port" --rotation rotate)
[ -z "${LOG:-}" ] && server_args+=(--quiet)
[ -n "${SERVER_THREADS:-}" ] && server_args+=(--threads "$SERVER_THREADS")

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "livesim ${server_args[*]//$work\//}${LOG:+ (request log to a file)}"
status=0
for run in $(seq "$RUNS"); do
    rm -f "$work/port" "$work/control-port"
    # shellcheck disable=SC2046
    $(pin "${SERVER_CPUS:-}") "$BIN/livesim" "${server_args[@]}" > "$work/ready" 2> "$work/livesim.log" &
    pid=$!
    for _ in $(seq 200); do [ -s "$work/control-port" ] && break; sleep 0.05; done
    [ -s "$work/control-port" ] || { echo "livesim did not start"; cat "$work/livesim.log"; exit 1; }
    echo
    echo "== run $run/$RUNS"
    # shellcheck disable=SC2046
    $(pin "${CLIENT_CPUS:-}") "$BIN/livesim-bench" \
        --url "https://127.0.0.1:$(cat "$work/port")" --ca "$work/ca.pem" \
        --control "http://127.0.0.1:$(cat "$work/control-port")" \
        --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" \
        --threads "$CLIENT_THREADS" --server-pid "$pid" --target 5000 "$@" || status=1
    if [ -n "${LOG:-}" ]; then echo "livesim log: $(wc -l < "$work/livesim.log") lines"; fi
    stop
done
exit $status
