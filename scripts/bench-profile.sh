#!/usr/bin/env bash
# Where tokenbrokerd's time goes on the cached-read path (issue 7, item 3): perf samples of the
# daemon while socket-bench loads it like scenario (a) at 16 connections, or (b) with `new`.
# Prints the top functions by own time (self) and by time including callees (children), and a
# per-thread split; keeps perf.data in the work directory for `perf report -i`.
#
# Usage: scripts/bench-profile.sh [keepalive|new] [CONNECTIONS]      (default: keepalive 16)
# Environment: DURATION=10 (seconds sampled), FREQ=1999 (samples/s), CALL_GRAPH=dwarf (or fp),
#   SCRATCH=.build-release, NO_BUILD=1, KEEP=1 (keep the work directory)
# Needs perf (Debian: linux-perf). In a container without hardware counters, the cpu-clock
# software event still works.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-keepalive}
CONNS=${2:-16}
DURATION=${DURATION:-10}
WARMUP=1
CLIENT_THREADS=1
FREQ=${FREQ:-1999}
CALL_GRAPH=${CALL_GRAPH:-dwarf}
SCRATCH=${SCRATCH:-.build-release}

if ! command -v perf >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get install -y linux-perf >/dev/null; else
        echo "bench-profile: perf is missing: sudo apt-get install -y linux-perf" >&2; exit 1; fi
fi
if [ -z "${NO_BUILD:-}" ]; then
    for product in tokenbrokerd tokenctl livesim socket-bench; do
        swift build -c release --scratch-path "$SCRATCH" --product "$product" 2>&1 | grep -E "error|Build of" | tail -2
        [ "${PIPESTATUS[0]}" = 0 ] || exit 1
    done
fi
BIN=$ROOT/$SCRATCH/release
LIB="python3 $ROOT/Benchmarks/Scripts/benchlib.py"
NGINX=/usr/sbin/nginx
# shellcheck source=Benchmarks/Scripts/bench-common.sh
source "$ROOT/Benchmarks/Scripts/bench-common.sh"

start_livesim "$work/sim" --token-lifetime 86400
write_config "$work/main" "$work/sim"
start_daemon "$work/main"
import_account "$SOCK" bench@example.com
TOKEN_PATH="/v1/accounts/bench@example.com/token?scope=skype"
extra=()
[ "$MODE" = new ] && extra=(--new-connection)

DURATION=$((DURATION + 3)) load "profile" "$SOCK" "$DAEMON_PID" "$TOKEN_PATH" "$CONNS" "${extra[@]}" > "$work/load.txt" &
loader=$!
sleep 2
perf record -q -e cpu-clock -F "$FREQ" --call-graph "$CALL_GRAPH" -p "$DAEMON_PID" -o "$work/perf.data" -- sleep "$DURATION" 2>/dev/null
wait "$loader"
echo "== load while sampling ($MODE, $CONNS connections)"
sed 's/^/  /' "$work/load.txt"

demangle() { if command -v swift-demangle >/dev/null; then swift-demangle --simplified; else swift demangle --simplified; fi; }
echo "== threads (share of the daemon's samples)"
perf report -i "$work/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -8
echo "== top functions by own time (self)"
perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio -g none --percent-limit 0.6 2>/dev/null \
    | grep -E '^ +[0-9]' | demangle | cut -c1-200 | head -45
echo "== top functions including callees (children)"
perf report -i "$work/perf.data" --children --sort symbol --stdio -g none --percent-limit 4 2>/dev/null \
    | grep -E '^ +[0-9]' | demangle | cut -c1-200 | head -60
echo "bench-profile: perf data in $work/perf.data (KEEP=1 keeps it)"
