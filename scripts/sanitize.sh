#!/usr/bin/env bash
# Tests built and run under sanitizers.
#
#   scripts/sanitize.sh address build|test [full]   AddressSanitizer (Swift and C) and
#                                                   UndefinedBehaviorSanitizer (C and C++ only)
#   scripts/sanitize.sh thread build|test [full]    ThreadSanitizer
#
# By default (what CI runs) the build is Sanitize/, a package of symbolic links to the modules that
# handle raw memory or C (the secret slabs, the event loop and its buffers, the request parser, the
# identity provider's readers and libcrypto, the journal writer) and their own tests: about a quarter
# of the whole build's time, since it leaves out the HTTPS client, the store and swift-crypto's and
# swift-nio-ssl's two copies of BoringSSL. `full` builds the whole package and its tests instead and
# runs the daemon itself sanitized (the integration tests start tokenbrokerd, tokenctl and livesim
# from the test bundle's directory): the engine, the store and every integration suite that the
# sanitizer's slowdown leaves meaningful. Each build has its own scratch path (.build-asan,
# .build-tsan, .build-asan-full, .build-tsan-full), so none disturbs .build or another.
#
# Every sanitized process writes its reports to SCRATCH/sanitizer-reports/ instead of its standard
# error (the daemon's log would hide them); the run fails if any report is there at the end, and
# prints them. What runs where, and why some tests are left out, is in the README ("Sanitizers").
set -euo pipefail
cd "$(dirname "$0")/.."

sanitizer=${1:?address or thread}
action=${2:?build or test}
scope=${3:-light}
root=$PWD
config=$root/scripts/sanitizers

case $sanitizer in
    address)
        scratch=.build-asan
        # swiftc has no -sanitize=undefined on Linux (Swift itself traps overflow, out-of-range
        # indexes and bad unwraps); UBSan instruments the C and C++ targets: CShims, CSecretSlab,
        # llhttp, NIO's shims (and in the full build BoringSSL, toml++). ASan's runtime holds
        # UBSan's handlers. vptr is left out: its handler is in UBSan's C++ runtime, which swiftc
        # does not link.
        flags=(--sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize=vptr)
        ;;
    thread)
        scratch=.build-tsan
        flags=(--sanitize=thread)
        ;;
    *)
        echo "sanitize: unknown sanitizer $sanitizer (address or thread)" >&2
        exit 2
        ;;
esac
case $scope in
    light) package=(--package-path Sanitize) ;;
    full) package=(); scratch=$scratch-full ;;
    *)
        echo "sanitize: unknown scope $scope (full, or nothing)" >&2
        exit 2
        ;;
esac

if [ "$action" = build ]; then
    exec swift build --build-tests "${package[@]}" --scratch-path "$root/$scratch" "${flags[@]}"
fi
[ "$action" = test ] || { echo "sanitize: unknown action $action (build or test)" >&2; exit 2; }

reports=$root/$scratch/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
# Swift's own crash reporter would print before the sanitizer's report is written.
export SWIFT_BACKTRACE=enable=no
# SANITIZER_HALT=0 goes on after a report, to collect every one in a single run.
halt=${SANITIZER_HALT:-1}
if [ "$sanitizer" = address ]; then
    export ASAN_OPTIONS=halt_on_error=$halt:detect_leaks=1:log_path=$reports/asan
    export LSAN_OPTIONS=suppressions=$config/lsan.supp:print_suppressions=0
    export UBSAN_OPTIONS=halt_on_error=$halt:print_stacktrace=1:suppressions=$config/ubsan.supp:log_path=$reports/ubsan
else
    export TSAN_OPTIONS=halt_on_error=$halt:second_deadlock_stack=1:log_path=$reports/tsan
fi

status=0
run() {
    local name=$1; shift
    local log=$scratch/test-output-$name.txt
    echo "sanitize: $sanitizer: $name"
    # --disable-xctest: there are no XCTest tests, and XCTest's empty run leaks its suite objects.
    # At most 16 tests at once, as in scripts/test's main run: the tests' tasks share a few
    # threads, and with 200 tests at once under a sanitizer one waited seconds for its turn.
    SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=16 swift test --skip-build --disable-xctest "${package[@]}" \
        --scratch-path "$root/$scratch" "${flags[@]}" "$@" 2>&1 | tee "$log" \
        | awk '!/^(◇|↳)/ && (!/^✔/ || /Test run with/)' || status=1
}

case $sanitizer/$scope in
    */light)
        # Every test of the package's targets (Sanitize/Package.swift leaves out the two files it
        # cannot build): the slabs, the refresh machine, the request parser and router, event
        # streams on a real socket, the wire types and the blocking client, every reader of the
        # identity provider's replies, the journal writer.
        run main
        ;;
    address/full)
        # The request parser, router and wire types in process; the socket server through the real
        # daemon. Left out: HostileClientTests' 10,000 idle connections, whose RSS and p99 bounds
        # do not hold with ASan's shadow memory and quarantine, and the SkyLogin client's timeout,
        # timed to the second (scripts/test runs both).
        run main --filter 'BrokerServerTests\.' --filter 'BrokerAPITests\.' --filter 'LiveProtocolTests\.' \
            --filter 'IntegrationTests\.SocketTests' --skip 'SkyLoginTimeoutTests'
        run hostile --filter 'IntegrationTests\.HostileClientTests' --skip 'tenThousandIdleConnections'
        ;;
    thread/full)
        # The engine in process; refreshes, provider failures and every credential through the
        # real daemon and livesim. Left out, for bounds that TSan's slowdown (5 to 15 times, on two
        # cores, the tests' own HTTPS client included) breaks: RefreshTests' keepsFresh (a token
        # still has 0.5 s left one HTTPS round trip after it was served) and ProviderFaultTests'
        # hangingProvider (every cached read within 250 ms), and FailureTests' rateLimitRestsRealm (two
        # concurrent refreshes must both have reached livesim within 300 ms). scripts/test runs them.
        run main --filter 'BrokerEngineTests\.' --filter 'IntegrationTests\.RefreshTests' \
            --filter 'IntegrationTests\.CredentialTests' --filter 'IntegrationTests\.FailureTests' \
            --skip 'RefreshTests/keepsFresh' --skip 'FailureTests/rateLimitRestsRealm'
        ;;
esac

found=$(find "$reports" -type f | sort)
if [ -n "$found" ]; then
    for report in $found; do
        echo "sanitize: report $(basename "$report"):"
        cat "$report"
    done
    echo "sanitize: $sanitizer: $(echo "$found" | wc -l) report(s)" >&2
    exit 1
fi
[ "$status" -eq 0 ] || { echo "sanitize: $sanitizer: tests failed" >&2; exit 1; }
echo "sanitize: $sanitizer: no reports, tests passed"
