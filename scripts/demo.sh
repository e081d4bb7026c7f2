#!/usr/bin/env bash
# Runs tokenbrokerd against livesim with a demo account and shows tokens served, with tokenctl and
# with the README's curl examples. CI runs it as written.
# Usage: scripts/demo.sh [build-dir]   (default .build/debug; builds it when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/debug}
[ -x "$BIN/tokenbrokerd" ] || swift build
BIN=$(cd "$BIN" && pwd)
# Everything the demo writes (a configuration, a key, a database) is for this user only, whatever
# the umask: the daemon refuses a configuration others can write.
umask 077
work=$(mktemp -d)
cleanup() {
    local status=$?
    kill "${daemon:-}" "${sim:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ "$status" -ne 0 ]; then
        echo "demo: failed (exit $status)" >&2
        echo "---- tokenbrokerd log ($work/daemon.log)" >&2
        cat "$work/daemon.log" >&2 2>/dev/null || true
        echo "---- livesim log ($work/livesim.log)" >&2
        cat "$work/livesim.log" >&2 2>/dev/null || true
        echo "demo: the logs and files stay in $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT
fail() { echo "demo: $*" >&2; exit 1; }
cd "$work"

echo '[{"login": "alice@example.com", "password": "correct horse"}]' > accounts.json
"$BIN/livesim" --listen 127.0.0.1:0 --port-file port --ca-out ca.pem --accounts accounts.json \
    --token-lifetime 3600 --quiet > livesim.log 2>&1 &
sim=$!
for _ in $(seq 100); do [ -s port ] && break; kill -0 "$sim" 2>/dev/null || break; sleep 0.1; done
[ -s port ] || fail "livesim did not start"
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
chmod 600 tokenbroker.toml
"$BIN/tokenbrokerd" --config tokenbroker.toml > daemon.log 2>&1 &
daemon=$!
export TOKENBROKER_SOCKET=$work/tokenbroker.sock
up=
for _ in $(seq 100); do
    kill -0 "$daemon" 2>/dev/null || fail "tokenbrokerd exited at start"
    if curl -sf --unix-socket "$TOKENBROKER_SOCKET" http://localhost/v1/health > /dev/null 2>&1; then up=1; break; fi
    sleep 0.1
done
[ -n "$up" ] || fail "tokenbrokerd did not answer /v1/health within 10 s"

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
echo "== stop: SIGTERM ends the daemon gracefully"
kill -TERM "$daemon"
wait "$daemon" || fail "tokenbrokerd did not stop cleanly"
daemon=
kill "$sim"; wait "$sim" 2>/dev/null || true
sim=
echo "demo: ok"
