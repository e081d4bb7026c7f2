#!/usr/bin/env bash
# CI's unit checks: `systemd-analyze verify` (unknown keys and other errors fail) on every shipped
# unit, and `systemd-analyze security --offline=true` on the system service, failing above 1.2.
# Usage: scripts/check-units.sh [BIN_DIR]   (default .build/debug; ExecStart is pointed there)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(cd "${1:-.build/debug}" && pwd)
[ -x "$bin/tokenbrokerd" ] || { echo "check-units: $bin/tokenbrokerd is missing; build first" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/system" "$work/user" "$work/runtime"
for unit in tokenbrokerd.service tokenbrokerd.socket; do
    sed -e "s|/usr/local/bin/|$bin/|g" "systemd/$unit" > "$work/system/$unit"
    sed -e "s|/usr/local/bin/|$bin/|g" "systemd/user/$unit" > "$work/user/$unit"
done
status=0
check() { # label command...
    local label=$1; shift
    if output=$("$@" 2>&1) && [ -z "$output" ]; then
        echo "ok: $label"
    else
        echo "FAILED: $label"; printf '%s\n' "$output" | sed 's/^/    /'; status=1
    fi
}
check "verify system units" systemd-analyze verify --recursive-errors=no --man=no \
    "$work/system/tokenbrokerd.service" "$work/system/tokenbrokerd.socket"
check "verify user units" env XDG_RUNTIME_DIR="$work/runtime" systemd-analyze verify --user --recursive-errors=no --man=no \
    "$work/user/tokenbrokerd.service" "$work/user/tokenbrokerd.socket"
rating=$(systemd-analyze security --offline=true systemd/tokenbrokerd.service 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if systemd-analyze security --offline=true --threshold=12 systemd/tokenbrokerd.service > /dev/null 2>&1; then
    echo "ok: systemd-analyze security rates tokenbrokerd.service $rating (at most 1.2)"
else
    echo "FAILED: systemd-analyze security rates tokenbrokerd.service $rating, above 1.2"; status=1
fi
exit $status
