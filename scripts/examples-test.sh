#!/usr/bin/env bash
# Runs examples/msnp_login.py against tokenbrokerd and livesim: one notification-server login per
# ATH method (the ssl-compact-ticket ones over TCP, web-compact-ticket through the HTTPS gateway),
# the SkyLogin ones against livesim's SkyLogin login server (ssl-compact-ticket-skylogin for the
# Microsoft account, skype-uic three times, each over a fresh CNT nonce, for a Skype name), and,
# for an account of an rst realm (livesim playing a revival server), one login per legacy dialect
# (MSNP15 and MSNP18 with USR SSO, MSNP12 with Passport 1.4); then checks livesim's counters saw a
# successful login for each.
# Usage: scripts/examples-test.sh [build-dir]   (default .build/debug; builds it when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=$PWD/examples
BIN=${1:-.build/debug}
[ -x "$BIN/tokenbrokerd" ] && [ -x "$BIN/livesim" ] && [ -x "$BIN/tokenctl" ] || swift build
BIN=$(cd "$BIN" && pwd)
work=$(mktemp -d)
cleanup() { kill "${daemon:-}" "${sim:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
fail() { echo "examples-test: $*" >&2; for f in livesim.log daemon.log; do echo "== $f" >&2; tail -20 "$f" >&2 || true; done; exit 1; }

cat > accounts.json <<'JSON'
[{"login": "alice@example.com", "password": "correct horse"},
 {"skype_name": "echo123", "password": "pw-echo"}]
JSON
"$BIN/livesim" --listen 127.0.0.1:0 --port-file port --ca-out ca.pem --accounts accounts.json \
    --control-listen 127.0.0.1:0 --control-port-file control-port \
    --ns-listen 127.0.0.1:0 --ns-port-file ns-port --token-lifetime 3600 \
    --skylogin-listen 127.0.0.1:0 --skylogin-port-file skylogin-port --skylogin-keys-out skylogin-keys.json \
    > livesim.out 2> livesim.log &
sim=$!
# skylogin-port is the last file livesim writes.
for _ in $(seq 100); do [ -s skylogin-port ] && break; sleep 0.1; done
[ -s skylogin-port ] || fail "livesim did not start"
PORT=$(cat port); CONTROL=$(cat control-port); NS=$(cat ns-port); SKY=$(cat skylogin-port)

cat > tokenbroker.toml <<TOML
[socket]
path = "$work/tokenbroker.sock"
[state]
directory = "$work/state"
[realms.sim]
login_url = "https://127.0.0.1:$PORT"
user_initialization_url = "https://127.0.0.1:$PORT"
skypetoken_url = "https://127.0.0.1:$PORT"
ca_file = "$work/ca.pem"
skylogin_servers = ["127.0.0.1:$SKY"]
skylogin_keys = "$work/skylogin-keys.json"
[realms.revival]
sign_in = "rst"
rst_url = "https://127.0.0.1:$PORT"
ca_file = "$work/ca.pem"
TOML
"$BIN/tokenbrokerd" --config tokenbroker.toml 2> daemon.log &
daemon=$!
export TOKENBROKER_SOCKET=$work/tokenbroker.sock
for _ in $(seq 100); do [ -S "$TOKENBROKER_SOCKET" ] && break; sleep 0.1; done
[ -S "$TOKENBROKER_SOCKET" ] || fail "tokenbrokerd did not start"

echo "== tokenctl login alice@example.com --realm sim --password-stdin --store-password --ticket-method rst"
echo "correct horse" | "$BIN/tokenctl" login alice@example.com --realm sim --password-stdin --store-password \
    --ticket-method rst || fail "enrollment failed"
echo "== tokenctl login alice@example.com --realm revival --name alice-revival --password-stdin"
echo "correct horse" | "$BIN/tokenctl" login alice@example.com --realm revival --name alice-revival --password-stdin \
    || fail "enrollment in the rst realm failed"
echo "== tokenctl login --skype echo123 --realm sim --password-stdin"
echo pw-echo | "$BIN/tokenctl" login --skype echo123 --realm sim --password-stdin || fail "Skype-name enrollment failed"

for method in ssl-compact-ticket ssl-compact-ticket-uic; do
    echo "== msnp_login.py --method $method (TCP)"
    python3 "$EXAMPLES/msnp_login.py" alice@example.com --method "$method" --ns "127.0.0.1:$NS" \
        || fail "$method login failed"
done
echo "== msnp_login.py --method ssl-compact-ticket-skylogin (TCP)"
python3 "$EXAMPLES/msnp_login.py" alice@example.com --method ssl-compact-ticket-skylogin --ns "127.0.0.1:$NS" \
    || fail "ssl-compact-ticket-skylogin login failed"
for i in 1 2 3; do
    echo "== msnp_login.py echo123 --method skype-uic (TCP, CNT nonce $i)"
    python3 "$EXAMPLES/msnp_login.py" echo123 --method skype-uic --ns "127.0.0.1:$NS" > skype-uic-$i.out \
        || { cat skype-uic-$i.out; fail "skype-uic login $i failed"; }
    cat skype-uic-$i.out
done
[ "$(grep -h '^  CNT nonce ' skype-uic-*.out | sort -u | wc -l)" -eq 3 ] \
    || fail "the three skype-uic logins did not sign over three different CNT nonces"
echo "== msnp_login.py --method web-compact-ticket (HTTPS gateway)"
python3 "$EXAMPLES/msnp_login.py" alice@example.com --method web-compact-ticket \
    --gateway "https://127.0.0.1:$PORT" --cafile "$work/ca.pem" || fail "web-compact-ticket login failed"

for dialect in MSNP15 MSNP18 MSNP12; do
    echo "== msnp_login.py alice-revival --dialect $dialect (TCP)"
    python3 "$EXAMPLES/msnp_login.py" alice-revival --dialect "$dialect" --ns "127.0.0.1:$NS" \
        || fail "$dialect login failed"
done

echo "== livesim counters: ns_logins"
curl -sf "http://127.0.0.1:$CONTROL/_livesim/counters" > counters.json || fail "no counters"
python3 - counters.json <<'PY' || fail "ns_logins does not show a success for each method"
import json, sys
logins = json.load(open(sys.argv[1]))["ns_logins"]
print(json.dumps(logins, sort_keys=True))
methods = ["ssl-compact-ticket", "ssl-compact-ticket-uic", "web-compact-ticket"]
sys.exit(0 if all(logins.get(m, {}).get("success", 0) >= 1 for m in methods) else 1)
PY
echo "== livesim counters: ns_logins of the SkyLogin methods"
python3 - counters.json <<'PY' || fail "ns_logins does not show the SkyLogin logins (3 skype-uic, 1 ssl-compact-ticket-skylogin) without failures"
import json, sys
logins = json.load(open(sys.argv[1]))["ns_logins"]
needed = {"skype-uic": 3, "ssl-compact-ticket-skylogin": 1}
counts = {m: logins.get(m, {}) for m in needed}
print(json.dumps(counts, sort_keys=True))
ok = all(c.get("success", 0) >= needed[m] and c.get("failure", 0) == 0 for m, c in counts.items())
sys.exit(0 if ok else 1)
PY
echo "== livesim counters: ns_usr_logins"
python3 - counters.json <<'PY' || fail "ns_usr_logins does not show the SSO and Passport 1.4 logins"
import json, sys
logins = json.load(open(sys.argv[1]))["ns_usr_logins"]
print(json.dumps(logins, sort_keys=True))
ok = logins["sso"]["success"] >= 2 and logins["twn"]["success"] >= 1
sys.exit(0 if ok and logins["sso"]["failure"] == 0 and logins["twn"]["failure"] == 0 else 1)
PY
echo "examples-test: ok"
