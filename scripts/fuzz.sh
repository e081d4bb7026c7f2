#!/usr/bin/env bash
# Coverage-guided fuzzing of the socket's request parser and router with libFuzzer.
#
# Builds Fuzz/ (the real Sources/BrokerServer over a stub credential service, see Fuzz/Package.swift) with
# `swift build --sanitize=fuzzer` into .build-fuzz, then runs it for SECONDS from the seed corpus
# in Fuzz/corpus. New inputs go to .build-fuzz/corpus, never into the repository; a crash, a
# failed check or a hang (10 s on one input) stops the run, saves the input under
# .build-fuzz/artifacts/ and prints it in base64 so that a CI log is enough to reproduce it.
#
# Usage: scripts/fuzz.sh [SECONDS]        run (default 60)
#        scripts/fuzz.sh --merge          minimize .build-fuzz/corpus into Fuzz/corpus (to commit)
#        scripts/fuzz.sh --repro FILE     run one input and print the daemon's answers
# FUZZ_JOBS=N runs N processes at once (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."

scratch=.build-fuzz
bin=$scratch/release/fuzz-http
mode=run
seconds=60
case "${1:-}" in
    --merge) mode=merge ;;
    --repro) mode=repro; input=${2:?an input file}; input=$(cd "$(dirname "$input")" && pwd)/$(basename "$input") ;;
    "") ;;
    *) seconds=$1 ;;
esac

start=$SECONDS
# -assert-config Debug keeps assertions (the connection state machine checks itself with them) in an
# optimized build; -enable-testing lets the harness reach the server's internal types.
swift build --package-path Fuzz --scratch-path "$scratch" -c release --sanitize=fuzzer \
    -Xswiftc -enable-testing -Xswiftc -assert-config -Xswiftc Debug --product fuzz-http
echo "fuzz: built in $((SECONDS - start)) s"

mkdir -p "$scratch/corpus" "$scratch/artifacts"
# Swift's own crash reporter would take the signal before libFuzzer could save the input.
export SWIFT_BACKTRACE=enable=no
flags=(-dict=Fuzz/http.dict -max_len=8192 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$scratch/artifacts/" -print_final_stats=1)

case $mode in
    repro)
        FUZZ_PRINT=1 exec "$bin" "${flags[@]}" -runs=1 "$input"
        ;;
    merge)
        exec "$bin" "${flags[@]}" -merge=1 Fuzz/corpus "$scratch/corpus"
        ;;
esac

jobs=${FUZZ_JOBS:-1}
parallel=()
[ "$jobs" -gt 1 ] && parallel=(-fork="$jobs")
before=$(ls "$scratch/artifacts" | wc -l)
status=0
"$bin" "${flags[@]}" "${parallel[@]}" -max_total_time="$seconds" "$scratch/corpus" Fuzz/corpus 2>&1 \
    | grep -vE '^#[0-9]+.*(NEW|REDUCE)' || status=${PIPESTATUS[0]}
for artifact in $(ls -t "$scratch/artifacts" | head -n $(( $(ls "$scratch/artifacts" | wc -l) - before ))); do
    echo "fuzz: input that failed: $scratch/artifacts/$artifact (base64):"
    base64 -w 76 "$scratch/artifacts/$artifact"
    echo "fuzz: reproduce with: echo '<base64>' | base64 -d > crash; scripts/fuzz.sh --repro crash"
done
echo "fuzz: corpus now $(ls "$scratch/corpus" | wc -l) inputs beside $(ls Fuzz/corpus | wc -l) seeds; $((SECONDS - start)) s in all"
exit "$status"
