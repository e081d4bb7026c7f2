#!/usr/bin/env bash
# Runs tokenbrokerd against livesim with a demo account and shows tokens served, with tokenctl and
# with the README's curl examples. CI runs it as written.
# Usage: scripts/demo.sh [build-dir]   (default .build/debug; builds it when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/debug}
[ -x "$BIN/tokenbrokerd" ] || swift build
BIN=$(cd "$BIN" && pwd)
work=$(mktemp -d)
cleanup() { kill "${daemon:-}" "${sim:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

echo '[{"login": "alice@example.com", "password": "correct horse"}]' > accounts.json
"$BIN/livesim" --listen 127.0.0.1:0 --port-file port --ca-out ca.pem --accounts accounts.json \
    --token-lifetime 3600 --quiet > livesim.out &
sim=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
PORT=$(cat port)

cat > tokenbroker.toml <<TOML
[socket]
path = "$work/tokenbroker.sock"
[state]
directory = "$work/state"
[realms.demo]
login_url = "https://127.0.0.1:$PORT"
user_initialization_url = "https://127.0.0.1:$PORT"
skypetoken_url = "https://127.0.0.1:$PORT"
ca_file = "$work/ca.pem"
TOML
"$BIN/tokenbrokerd" --config tokenbroker.toml 2> daemon.log &
daemon=$!
export TOKENBROKER_SOCKET=$work/tokenbroker.sock
for _ in $(seq 100); do [ -S "$TOKENBROKER_SOCKET" ] && break; sleep 0.1; done

echo "== tokenctl login alice@example.com (password from stdin)"
echo "correct horse" | "$BIN/tokenctl" login alice@example.com --password-stdin
echo "== tokenctl token alice@example.com --scope ssl"
TOKEN=$("$BIN/tokenctl" token alice@example.com --scope ssl)
echo "${TOKEN:0:24}... (${#TOKEN} characters)"

SOCK=$TOKENBROKER_SOCKET
echo "== curl: health"
curl -sf --unix-socket "$SOCK" http://localhost/v1/health; echo
echo "== curl: accounts"
curl -sf --unix-socket "$SOCK" http://localhost/v1/accounts; echo
echo "== curl: a skype.com token, at least 10 minutes valid"
curl -sf --unix-socket "$SOCK" "http://localhost/v1/accounts/alice@example.com/token?scope=skype&min_valid=600" \
    | python3 -c 'import json, sys; t = json.load(sys.stdin); print({k: (v[:16] + "..." if k == "access_token" else v) for k, v in t.items()})'
echo "== curl: an unknown scope is a clear error"
curl -s --unix-socket "$SOCK" "http://localhost/v1/accounts/alice@example.com/token?scope=email"; echo
echo "== tokenctl status"
"$BIN/tokenctl" status
echo "demo: ok"
