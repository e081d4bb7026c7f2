#!/usr/bin/env bash
# The soak: the daemon against livesim with short lifetimes, random faults of every kind and a
# SIGKILL and restart every few minutes, while clients read continuously; rotation `rotate` for the
# first half, `strict` for the second. Prints reads served and failed (by code, restarts apart),
# refresh-token reuse, revoked families, each needs_reauth with its cause, and RSS over time.
# Usage: scripts/soak.sh [MINUTES] [BUILD_DIR]   (default 30 minutes, .build/debug)
# More knobs (accounts, lifetimes, kill interval, seed): python3 scripts/soak.py --help
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${2:-.build/debug}
[ -x "$BIN/tokenbrokerd" ] || swift build
exec python3 scripts/soak.py --minutes "${1:-30}" --bin "$BIN"
