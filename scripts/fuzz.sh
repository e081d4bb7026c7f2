#!/usr/bin/env bash
# Coverage-guided fuzzing with libFuzzer and AddressSanitizer, three harnesses from one build of Fuzz/:
#   http     the socket's request parser and router (HTTPConnection, Router), no socket;
#   loop     the event loop (ServerLoop) over a real Unix socket, many connections, quiesces;
#   parsers  each reader of the identity provider's replies in Sources/LiveProtocol, one by one.
# See Fuzz/README.md.
#
# Builds Fuzz/ with `swift build --sanitize=fuzzer` (and AddressSanitizer) into .build-fuzz, then
# runs http and loop for SECONDS each and every parser target for PARSER_SECONDS (default 6), from
# the seed corpora in Fuzz/corpus, Fuzz/corpus-loop and Fuzz/corpus-parsers/TARGET. New inputs go
# to .build-fuzz/corpus*, never into the repository; a crash, a failed check, a sanitizer report, a
# hang (10 s on one input) or too much memory stops that harness, saves the input under
# .build-fuzz/artifacts/ and prints it in base64 so that a CI log is enough to reproduce it.
#
# Usage: scripts/fuzz.sh [SECONDS]                 run all (default 60)
#        scripts/fuzz.sh --only HARNESS [SECONDS]  run one: http, loop, parsers, or a parser target
#        scripts/fuzz.sh --merge                   minimize .build-fuzz/corpus* into the seed corpora (to commit)
#        scripts/fuzz.sh --repro HARNESS FILE      run one input (http and loop print what was sent and answered)
# FUZZ_JOBS=N runs N processes at once (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=.build-fuzz
mode=run
seconds=60
only=all
case "${1:-}" in
    --merge) mode=merge ;;
    --repro)
        mode=repro; only=${2:?a harness}; input=${3:?an input file}
        input=$(cd "$(dirname "$input")" && pwd)/$(basename "$input")
        ;;
    --only) only=${2:?a harness}; seconds=${3:-60} ;;
    "") ;;
    *) seconds=$1 ;;
esac
parser_seconds=${PARSER_SECONDS:-6}

start=$SECONDS
# SwiftPM passes each --sanitize separately and swiftc keeps the last, so ASan goes with the fuzzer
# in one -sanitize= for the Swift code (the C code gets coverage only). -assert-config Debug keeps
# assertions (the connection state machine checks itself with them) in an optimized build;
# -enable-testing lets the harnesses reach internal types.
swift build --package-path Fuzz --scratch-path "$scratch" -c release --sanitize=fuzzer \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xswiftc -assert-config -Xswiftc Debug
echo "fuzz: built in $((SECONDS - start)) s"

mkdir -p "$scratch/artifacts"
# Swift's own crash reporter would take the signal before libFuzzer could save the input.
export SWIFT_BACKTRACE=enable=no
common=(-timeout=10 -artifact_prefix="$scratch/artifacts/" -print_final_stats=1)
http=(-dict=Fuzz/http.dict -max_len=8192 -rss_limit_mb=2048)
loop=(-max_len=1024 -rss_limit_mb=2048)
# A reply of at most 64 KiB may not make a reader use more than 64 MiB at once.
parsers=(-max_len=65536 -rss_limit_mb=1024 -malloc_limit_mb=64)
targets=$(FUZZ_TARGET=list "$scratch/release/fuzz-parsers")

case $mode in
    repro)
        case $only in
            http) FUZZ_PRINT=1 exec "$scratch/release/fuzz-http" "${common[@]}" "${http[@]}" -runs=1 "$input" ;;
            loop) FUZZ_PRINT=1 exec "$scratch/release/fuzz-loop" "${common[@]}" "${loop[@]}" -runs=1 "$input" ;;
            *) FUZZ_TARGET=$only exec "$scratch/release/fuzz-parsers" "${common[@]}" "${parsers[@]}" -runs=1 "$input" ;;
        esac
        ;;
    merge)
        "$scratch/release/fuzz-http" "${common[@]}" "${http[@]}" -merge=1 Fuzz/corpus "$scratch/corpus"
        "$scratch/release/fuzz-loop" "${common[@]}" "${loop[@]}" -merge=1 Fuzz/corpus-loop "$scratch/corpus-loop"
        for target in $targets; do
            mkdir -p "Fuzz/corpus-parsers/$target" "$scratch/corpus-parsers/$target"
            FUZZ_TARGET=$target "$scratch/release/fuzz-parsers" "${common[@]}" "${parsers[@]}" -merge=1 \
                "Fuzz/corpus-parsers/$target" "$scratch/corpus-parsers/$target"
        done
        exit 0
        ;;
esac

jobs=${FUZZ_JOBS:-1}
parallel=()
[ "$jobs" -gt 1 ] && parallel=(-fork="$jobs")
status=0
summary=()
# fuzz NAME SECONDS CORPUS SEEDS BINARY FLAGS...: one run; prints the failing input, if any.
fuzz() {
    local name=$1 time=$2 corpus=$3 seeds=$4 bin=$5
    shift 5
    mkdir -p "$corpus" "$seeds"
    local before log
    before=$(ls "$scratch/artifacts" | wc -l)
    log=$(mktemp)
    local result=0
    "$bin" "$@" "${parallel[@]}" -max_total_time="$time" "$corpus" "$seeds" 2>&1 \
        | grep -vE '^#[0-9]+.*(NEW|REDUCE)' | tee "$log" || result=${PIPESTATUS[0]}
    local new=$(( $(ls "$scratch/artifacts" | wc -l) - before ))
    for artifact in $(ls -t "$scratch/artifacts" | head -n "$new"); do
        echo "fuzz: $name: input that failed: $scratch/artifacts/$artifact (base64):"
        base64 -w 76 "$scratch/artifacts/$artifact"
        echo "fuzz: reproduce with: echo '<base64>' | base64 -d > crash; scripts/fuzz.sh --repro $name crash"
    done
    local runs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rm -f "$log"
    summary+=("$(printf '%-22s %9s runs in %3d s%s' "$name" "${runs:-?}" "$time" "$([ "$result" = 0 ] || echo ", FAILED ($result)")")")
    [ "$result" = 0 ] || status=$result
}

if [ "$only" = all ] || [ "$only" = http ]; then
    fuzz http "$seconds" "$scratch/corpus" Fuzz/corpus "$scratch/release/fuzz-http" "${common[@]}" "${http[@]}"
fi
if [ "$only" = all ] || [ "$only" = loop ]; then
    fuzz loop "$seconds" "$scratch/corpus-loop" Fuzz/corpus-loop "$scratch/release/fuzz-loop" "${common[@]}" "${loop[@]}"
fi
for target in $targets; do
    [ "$only" = all ] || [ "$only" = parsers ] || [ "$only" = "$target" ] || continue
    [ "$only" = "$target" ] && time=$seconds || time=$parser_seconds
    FUZZ_TARGET=$target fuzz "$target" "$time" "$scratch/corpus-parsers/$target" "Fuzz/corpus-parsers/$target" \
        "$scratch/release/fuzz-parsers" "${common[@]}" "${parsers[@]}"
done
echo "fuzz: executions:"
printf '  %s\n' "${summary[@]}"
echo "fuzz: $((SECONDS - start)) s in all"
exit "$status"
