#!/usr/bin/env bash
# The long crash soak: SIGKILL the daemon during refresh storms many more times than CI does.
# Usage: scripts/crash-soak.sh [KILLS_PER_MODE] [SEED]   (default 250 per mode)
set -euo pipefail
cd "$(dirname "$0")/.."
export TOKENBROKER_CRASH_KILLS=${1:-250}
[ -n "${2:-}" ] && export TOKENBROKER_CRASH_SEED=$2
swift build --build-tests
swift test --skip-build --filter CrashTests 2>&1 | grep -E "crash test|✔|✘"
