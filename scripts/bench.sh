#!/usr/bin/env bash
# The performance suite (issue 7): tokenbrokerd next to nginx, with the same loads, in one run.
# In (a) and (b) also next to the floor (Benchmarks/Floor/floor.c): a minimal one-thread C epoll
# server answering every request with the daemon's exact answer bytes, the lower bound for it.
# Not part of the test suite. Prints a side-by-side table at the end (see README, Performance).
#
# Usage: scripts/bench.sh [SCENARIO...]      SCENARIO: a b c d e (default: all, in the order a b e c d)
#   a  cached token reads, keep-alive, at 1, 16 and 64 connections     (nginx: the same bytes from a file;
#      the floor: the daemon's whole answer, head and body, from memory)
#   b  the same with a new connection per request
#   c  reads at 16 connections while livesim's lifetimes are short and refreshes run all the time
#   d  10,000 accounts × 5 scopes: start-up time, RSS, read latency during the refresh window,
#      refresh spreading
#   e  `tokenctl token` wall time next to `curl --unix-socket` (hyperfine)
#   f  a restart of 10,000 accounts whose skypetokens and UICs are valid: how many livesim issues
#      again in the first F_WATCH seconds after it (none is due: they live a day)
#
# Environment:
#   DURATION=5 WARMUP=1        measured and warm-up seconds of each load
#   ROUNDS=3                   (a), (b): each load runs this many times on each server; the table
#                              shows each side's median round, and tb/floor also paired by round
#   TURN=0.1                   (a), (b): tokenbroker and the floor share each round's load, taking
#                              turns of TURN seconds (socket-bench --versus), so that both meet the
#                              same machine; nginx runs alone after them. NO_TURNS=1: the floor
#                              runs alone after tokenbroker instead, as before
#   CONNECTIONS="1 16 64"      connection counts of (a) and (b)
#   CLIENT_THREADS=1           socket-bench threads
#   C_ACCOUNTS=200 C_LIFETIME=30   (c): accounts refreshing, livesim lifetime in seconds
#   D_ACCOUNTS=10000 D_LIFETIME=1200   (d): accounts, lifetime of the seeded tokens (the jitter
#                              window is 2 × 0.05 × D_LIFETIME; the tokens reach it after start-up)
#   D_SMAPS=1                  (d): save the daemon's /proc/PID/smaps after the window in the work
#                              directory (with KEEP=1, to read it afterwards)
#   F_ACCOUNTS=10000 F_WATCH=600   (f): accounts, seconds livesim's counters are watched after the restart
#   HYPERFINE_RUNS=300         (e); E_STATIC=1 adds tokenctl built with --static-swift-stdlib
#                              (into $SCRATCH-static) as a third command
#   SCRATCH=.build-release     SwiftPM scratch path of the release build (not .build, so that a
#                              debug build elsewhere is not blocked); NO_BUILD=1 skips the build
#                              (the floor is still compiled with cc -O2 into $SCRATCH/floor when
#                              that is missing or older than its source)
#   BASELINE_BIN=DIR           (a), (b): also run DIR/tokenbrokerd (for example another commit's
#                              release build), with its own account, alternating with this build in
#                              every round; a second table compares the two
#   BASELINE_TURNS=1           with BASELINE_BIN: (a), (b) run only this build and the baseline,
#                              taking turns of TURN seconds in one load (as the daemon and the
#                              floor do); which begins alternates by round. For an A/B of two
#                              builds: many short rounds, e.g. ROUNDS=30 DURATION=2
#   KEEP=1                     keep the work directory (logs, configurations) and print its path
#   PROFILE_CMD=               run the daemon under this prefix (e.g. "valgrind --tool=callgrind")
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-"1 16 64"}
CLIENT_THREADS=${CLIENT_THREADS:-1}
C_ACCOUNTS=${C_ACCOUNTS:-200}
C_LIFETIME=${C_LIFETIME:-30}
D_ACCOUNTS=${D_ACCOUNTS:-10000}
D_LIFETIME=${D_LIFETIME:-1200}
F_ACCOUNTS=${F_ACCOUNTS:-10000}
F_WATCH=${F_WATCH:-600}
HYPERFINE_RUNS=${HYPERFINE_RUNS:-300}
SCRATCH=${SCRATCH:-.build-release}
SCENARIOS=${*:-a b e c d}
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# --- requirements -------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
command -v cc >/dev/null || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bench: installing ${missing[*]}"
        apt-get install -y "${missing[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
    else
        echo "bench: missing ${missing[*]}; install them first: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# --- build ----------------------------------------------------------------------------------
if [ -z "${NO_BUILD:-}" ]; then
    for product in tokenbrokerd tokenctl livesim socket-bench bench-seed; do
        echo "bench: swift build -c release --scratch-path $SCRATCH --product $product"
        swift build -c release --scratch-path "$SCRATCH" --product "$product" 2>&1 | grep -E "error|Compiling|Build of" | tail -3
        [ "${PIPESTATUS[0]}" = 0 ] || exit 1
    done
fi
BIN=$ROOT/$SCRATCH/release
# The floor: one C file, rebuilt on every build, and with NO_BUILD=1 when missing or out of date.
FLOOR=$ROOT/$SCRATCH/floor
FLOOR_SRC=$ROOT/Benchmarks/Floor/floor.c
if (want a || want b) && { [ -z "${NO_BUILD:-}" ] || [ ! -x "$FLOOR" ] || [ "$FLOOR_SRC" -nt "$FLOOR" ]; }; then
    echo "bench: cc -O2 -o $SCRATCH/floor Benchmarks/Floor/floor.c"
    mkdir -p "$ROOT/$SCRATCH"
    cc -O2 -Wall -Wextra -o "$FLOOR" "$FLOOR_SRC"
fi
LIB="python3 $ROOT/Benchmarks/Scripts/benchlib.py"

# --- processes, configurations, loads: shared with scripts/bench-profile.sh ----------------------
# shellcheck source=Benchmarks/Scripts/bench-common.sh
source "$ROOT/Benchmarks/Scripts/bench-common.sh"

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
MACHINE="$(nproc) cores, $CPU, $(free -g | awk '/Mem:/ {print $2}') GB, $(uname -sr), $("$BIN/tokenbrokerd" --version 2>/dev/null || echo tokenbrokerd), $("$NGINX" -v 2>&1 | cut -d' ' -f3)"
echo "bench: $MACHINE"
echo "bench: scenarios $SCENARIOS; ${DURATION} s measured after ${WARMUP} s warm-up per load; work directory $work"

# --- the daemon for (a), (b), (e): one account, long-lived tokens ----------------------------------
if want a || want b || want e || want c; then
    start_livesim "$work/sim" --token-lifetime 86400
    write_config "$work/main" "$work/sim"
    start_daemon "$work/main"
    MAIN_PID=$DAEMON_PID
    MAIN_SOCK=$SOCK
    import_account "$MAIN_SOCK" bench@example.com
    if [ -n "${BASELINE_BIN:-}" ]; then
        write_config "$work/base" "$work/sim"
        DAEMON_BIN=$BASELINE_BIN start_daemon "$work/base"
        BASE_PID=$DAEMON_PID
        BASE_SOCK=$SOCK
        import_account "$BASE_SOCK" bench@example.com
        echo "bench: baseline daemon $BASELINE_BIN/tokenbrokerd alternates with this build in (a) and (b)"
    fi
    TOKEN_PATH="/v1/accounts/bench@example.com/token?scope=skype"
    curl -sf --unix-socket "$MAIN_SOCK" "http://localhost$TOKEN_PATH" > "$work/token.json"
    echo "bench: the daemon's token answer is $(wc -c < "$work/token.json") bytes; nginx serves a file of the same bytes"
    start_nginx "$work/token.json"
    if want a || want b; then
        # The floor answers with the daemon's whole answer to the load generator's request.
        $LIB answer "$MAIN_SOCK" "$TOKEN_PATH" > "$work/token.http"
        start_floor "$work/token.http"
        $LIB check-floor "$MAIN_SOCK" "$FLOOR_SOCK" "$TOKEN_PATH" "$work/token.http"
    fi
fi

if want a; then
    echo "== (a) cached token reads, keep-alive"
    for c in $CONNECTIONS; do pair "a-$c" "$TOKEN_PATH" "$c"; done
fi

if want b; then
    echo "== (b) cached token reads, a new connection per request"
    for c in $CONNECTIONS; do pair "b-$c" "$TOKEN_PATH" "$c" --new-connection; done
fi

if want e; then
    echo "== (e) tokenctl token next to curl --unix-socket, the same request"
    static=()
    if [ -n "${E_STATIC:-}" ]; then
        # The same tokenctl linked with the Swift runtime and Foundation statically.
        swift build -c release --scratch-path "$SCRATCH-static" --product tokenctl --static-swift-stdlib 2>&1 | grep -E "error|Build of" | tail -2
        static=("$ROOT/$SCRATCH-static/release/tokenctl --socket $MAIN_SOCK token bench@example.com --scope skype")
    fi
    hyperfine -N --warmup 30 --runs "$HYPERFINE_RUNS" --export-json "$work/e.json" \
        "$BIN/tokenctl --socket $MAIN_SOCK token bench@example.com --scope skype" \
        "curl -sf --unix-socket $MAIN_SOCK http://localhost$TOKEN_PATH" "${static[@]}" | sed 's/^/  /'
    $LIB hyperfine "$work/e.json" | tee -a "$RESULTS" | sed 's/^/  /'
fi

if want c; then
    echo "== (c) reads while refreshes run: $C_ACCOUNTS accounts, livesim lifetime $C_LIFETIME s, safety_margin 5 s"
    curl -sf -X PATCH -H 'Content-Type: application/json' -d "{\"token_lifetime\": $C_LIFETIME}" "$SIM_CONTROL/_livesim/settings" >/dev/null
    $LIB grants "$SIM_CONTROL" c "$C_ACCOUNTS" "$work/c-grants.tsv"
    mkdir -p "$work/c"
    # Obtained at evenly spread moments over one refresh interval, so refreshes run all the time.
    "$BIN/bench-seed" --state "$work/c/state" --grants "$work/c-grants.tsv" --lifetime "$C_LIFETIME" --spread "$(python3 -c "print($C_LIFETIME * 0.75)")" | sed 's/^/  /'
    write_config "$work/c" "$work/sim" "safety_margin = 5"
    start_daemon "$work/c"
    C_PID=$DAEMON_PID
    C_SOCK=$SOCK
    sleep 3   # past the start-up burst (each account's skypetoken is fetched at start)
    r0=$(curl -sf "$SIM_CONTROL/_livesim/counters" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["refreshes"] + c["issued"].get("skypetoken", 0))')
    t0=$(date +%s.%N)
    load "tb-c-16" "$C_SOCK" "$C_PID" "/v1/accounts/c-0@example.com/token?scope=skype" 16
    r1=$(curl -sf "$SIM_CONTROL/_livesim/counters" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["refreshes"] + c["issued"].get("skypetoken", 0))')
    t1=$(date +%s.%N)
    per_s=$(python3 -c "print(round(($r1 - $r0) / ($t1 - $t0)))")
    echo "RESULT label=c-refreshes per_s=$per_s" | tee -a "$RESULTS" | sed 's/^/  /'
    # nginx opens the file for each request: give it the bytes of this answer.
    curl -sf --unix-socket "$C_SOCK" "http://localhost/v1/accounts/c-0@example.com/token?scope=skype" > "$work/nginx/token.json"
    load "nginx-c-16" "$NGINX_SOCK" "$NGINX_PIDS" "/v1/accounts/c-0@example.com/token?scope=skype" 16
    cp "$work/token.json" "$work/nginx/token.json"
    failed=$(grep -c '"refresh_failed"\|refresh failed' "$work/c/daemon.log" || true)
    echo "  refresh failures logged by the daemon: $failed"
    stop_pid "$C_PID"
fi

if want d; then
    # Stop what (a)-(c) started except nginx: (d) gets the machine, a new livesim and a new daemon.
    [ -n "${MAIN_PID:-}" ] && stop_pid "$MAIN_PID"
    [ -n "${FLOOR_PID:-}" ] && stop_pid "$FLOOR_PID"
    [ -n "${SIM_PID:-}" ] && stop_pid "$SIM_PID"
    window=$(python3 -c "print(2 * 0.05 * $D_LIFETIME)")
    echo "== (d) $D_ACCOUNTS accounts × 5 scopes; token lifetime $D_LIFETIME s, jitter window $window s"
    $LIB accounts-file d "$D_ACCOUNTS" "$work/d-accounts.json"
    start_livesim "$work/dsim" --token-lifetime 86400 --accounts "$work/d-accounts.json"
    $LIB grants "$SIM_CONTROL" d "$D_ACCOUNTS" "$work/d-grants.tsv" existing
    # Every token obtained at the same moment, chosen so that the earliest refresh point
    # (0.70 of the lifetime) comes LEAD seconds after the daemon has started.
    lead=20
    # bench-seed writes about 190 accounts a second here (one durable transaction each): 53 s for
    # 10,000, 541 s for 100,000. Underestimating it makes refresh points fall before the start.
    seed_estimate=$(python3 -c "print(5 + $D_ACCOUNTS * ${SEED_SECONDS_PER_ACCOUNT:-0.0055})")
    ago=$(python3 -c "print(0.70 * $D_LIFETIME - $lead - $seed_estimate)")
    "$BIN/bench-seed" --state "$work/d/state" --grants "$work/d-grants.tsv" --lifetime "$D_LIFETIME" --obtained-ago "$ago" | sed 's/^/  /'
    echo "RESULT label=d-size accounts=$D_ACCOUNTS tokens=$((D_ACCOUNTS * 5)) window_s=$window" >> "$RESULTS"
    write_config "$work/d" "$work/dsim"
    sync
    # Readiness is the first answered read of the last account seeded: with the store loaded in the
    # background, a read of an account not loaded yet loads it first.
    "$BIN/socket-bench" startup --socket "$work/d/tokenbroker.sock" --log "$work/d/daemon.log" \
        --probe-path "/v1/accounts/d-$((D_ACCOUNTS - 1))@example.com/token?scope=ssl" -- \
        ${PROFILE_CMD:-} "$BIN/tokenbrokerd" --config "$work/d/tokenbroker.toml" | tee -a "$RESULTS" | sed 's/^/  /'
    D_PID=$(grep 'RESULT label=startup' "$RESULTS" | tail -1 | sed 's/.* pid=\([0-9]*\).*/\1/')
    pids+=("$D_PID")
    # Sample livesim's counters every second until every token was refreshed once, or the
    # window has passed well over (with a second more per 1,000 tokens: at 100,000 accounts the
    # refreshes are bound by throughput and take longer than the window).
    $LIB sample "$SIM_CONTROL" "$(python3 -c "print(int($lead + $seed_estimate + $window + 120 + $D_ACCOUNTS * 5 / 1000))")" "$work/d-spread.txt" "$((D_ACCOUNTS * 5))" &
    sampler=$!
    # Reads during the refresh window: wait until refreshes run (at most until the window should
    # be under way: the seeding may have been quicker than estimated), then measure.
    in_window=no
    for _ in $(seq "$(python3 -c "print(int(2 * ($lead + $seed_estimate + $window / 2)))")"); do
        if [ -s "$work/d-spread.txt" ] && awk '$2 > 0 {found=1} END {exit !found}' "$work/d-spread.txt"; then
            in_window=yes
            break
        fi
        sleep 0.5
    done
    sleep 5
    echo "RESULT label=d-reads-in-window refreshing=$in_window" | tee -a "$RESULTS" | sed 's/^/  /'
    D_PATH="/v1/accounts/d-0@example.com/token?scope=ssl"
    curl -sf --unix-socket "$work/d/tokenbroker.sock" "http://localhost$D_PATH" > "$work/d-token.json"
    if [ -z "${NGINX_SOCK:-}" ]; then start_nginx "$work/d-token.json"; else cp "$work/d-token.json" "$work/nginx/token.json"; fi
    load "tb-d-16" "$work/d/tokenbroker.sock" "$D_PID" "$D_PATH" 16
    load "nginx-d-16" "$NGINX_SOCK" "$NGINX_PIDS" "$D_PATH" 16
    wait "$sampler" || true
    echo "  refreshes per second (livesim counters; columns: second, refreshes, skypetokens):"
    awk '$2 > 0 || $3 > 0' "$work/d-spread.txt" | tr '\n' ';' | fold -w 150 | sed 's/^/    /'
    echo
    $LIB spread "$work/d-spread.txt" "$((D_ACCOUNTS * 5))" "$window" "$D_ACCOUNTS" | tee -a "$RESULTS" | sed 's/^/  /'
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$D_PID/status")
    peak=$(awk '/VmHWM/ {print $2}' "/proc/$D_PID/status")
    anon=$(awk '/RssAnon/ {print $2}' "/proc/$D_PID/status")
    file=$(awk '/RssFile/ {print $2}' "/proc/$D_PID/status")
    echo "RESULT label=d-rss rss_kb=$rss peak_kb=$peak anon_kb=$anon file_kb=$file" | tee -a "$RESULTS" | sed 's/^/  /'
    echo "  memory after the window: $(grep -E 'RssAnon|RssFile' "/proc/$D_PID/status" | tr -s ' \t\n' ' ')"
    memory=$(curl -sf --unix-socket "$work/d/tokenbroker.sock" http://localhost/metrics | awk '/^tokenbroker_(heap|secret)_bytes/ {name = $1; sub(/^tokenbroker_/, "", name); sub(/_bytes\{state="/, " ", name); sub(/"\}/, "", name); printf "%s %.1f MB; ", name, $2 / 1048576}')
    echo "  memory after the window (GET /metrics): ${memory:-not available}"
    if [ -n "${D_SMAPS:-}" ]; then cp "/proc/$D_PID/smaps" "$work/d-smaps.txt"; echo "  smaps saved to $work/d-smaps.txt"; fi
    failed=$(grep -c 'refresh failed' "$work/d/daemon.log" || true)
    echo "  refresh failures logged by the daemon: $failed"
fi

if want f; then
    [ -n "${D_PID:-}" ] && stop_pid "$D_PID"
    [ -n "${SIM_PID:-}" ] && stop_pid "$SIM_PID"
    echo "== (f) a restart of $F_ACCOUNTS accounts whose skypetokens and UICs are valid; livesim watched for $F_WATCH s after it"
    $LIB accounts-file f "$F_ACCOUNTS" "$work/f-accounts.json"
    start_livesim "$work/fsim" --token-lifetime 86400 --accounts "$work/f-accounts.json"
    $LIB grants "$SIM_CONTROL" f "$F_ACCOUNTS" "$work/f-grants.tsv" existing
    # Tokens and cookies valid for a day: nothing reaches its refresh point during the watch.
    "$BIN/bench-seed" --state "$work/f/state" --grants "$work/f-grants.tsv" --lifetime 86400 --cookies | sed 's/^/  /'
    write_config "$work/f" "$work/fsim"
    start_daemon "$work/f"
    # Every account's skypetoken and UIC, fetched once through the daemon (it stores them).
    $LIB read-all "$work/f/tokenbroker.sock" f "$F_ACCOUNTS" skypetoken,uic | sed 's/^/  /'
    before=$($LIB issued "$SIM_CONTROL" skypetoken,uic,access_token)
    echo "  livesim issued before the restart (skypetoken, uic, access_token): $before"
    stop_pid "$DAEMON_PID"
    t0=$(date +%s.%N)
    start_daemon "$work/f"
    t1=$(date +%s.%N)
    echo "  restarted: first /v1/health answer after $(python3 -c 'import sys; print(round((float(sys.argv[2]) - float(sys.argv[1])) * 1000))' "$t0" "$t1") ms"
    sleep "$F_WATCH"
    after=$($LIB issued "$SIM_CONTROL" skypetoken,uic,access_token)
    echo "  livesim issued $F_WATCH s after the restart (skypetoken, uic, access_token): $after"
    read -r s0 u0 a0 <<< "$before"
    read -r s1 u1 a1 <<< "$after"
    echo "RESULT label=f accounts=$F_ACCOUNTS watch_s=$F_WATCH skypetokens=$((s1 - s0)) uics=$((u1 - u0)) access_tokens=$((a1 - a0))" | tee -a "$RESULTS" | sed 's/^/  /'
    # Still served from the store after the restart: one account's, read again.
    curl -sf --unix-socket "$work/f/tokenbroker.sock" "http://localhost/v1/accounts/f-0@example.com/uic" >/dev/null \
        || { echo "bench: (f) a UIC read after the restart failed"; exit 1; }
    stop_pid "$DAEMON_PID"
fi

echo
echo "== tokenbroker next to nginx: scripts/bench.sh $SCENARIOS (DURATION=$DURATION ROUNDS=$ROUNDS CLIENT_THREADS=$CLIENT_THREADS)"
$LIB table "$RESULTS" "$MACHINE"
