#!/usr/bin/env bash
# The README's livesim walkthrough, step by step, with curl; CI runs it as written. The README's
# block is this file from the "# --- walkthrough ---" line on (DocsDriftTests compares them).
# Usage: scripts/livesim-walkthrough.sh [path/to/livesim]
set -euo pipefail
LIVESIM=$(realpath "${1:-.build/debug/livesim}")
work=$(mktemp -d)
# `livesim` on PATH, as a reader has it, so that `$!` below is livesim's own pid (a shell
# function run with `&` would be a subshell, and killing it would leave livesim running).
mkdir "$work/bin"
ln -s "$LIVESIM" "$work/bin/livesim"
PATH="$work/bin:$PATH"
trap 'kill "${pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
# --- walkthrough ---
# 1. Start livesim with one account, its CA written to ca.pem.
echo '[{"login": "alice@example.com", "password": "correct horse"}]' > accounts.json
livesim --listen 127.0.0.1:0 --port-file port --ca-out ca.pem --accounts accounts.json \
    --control-listen 127.0.0.1:0 --control-port-file control-port --quiet > ready.txt &
pid=$!
for _ in $(seq 100); do [ -s control-port ] && break; sleep 0.1; done
PORT=$(cat port); CONTROL=$(cat control-port)
cat ready.txt

# 2. Fetch the login page; keep its cookies (MSPOK) and pull PPFT and urlPost out of the JavaScript.
curl -s --cacert ca.pem -c cookies.txt \
    "https://localhost:$PORT/oauth20_authorize.srf?client_id=00000000480BC46C&scope=service::skype.com::MBI_SSL&response_type=token&redirect_uri=https://login.live.com/oauth20_desktop.srf" \
    > page.html
PPFT=$(sed -n 's/.*name="PPFT" id="i0327" value="\([^"]*\)".*/\1/p' page.html)
URLPOST=$(sed -n "s/.*urlPost:'\([^']*\)'.*/\1/p" page.html)
[ -n "$PPFT" ] && [ -n "$URLPOST" ] || { echo "no PPFT or urlPost in the page"; false; }
echo "PPFT: ${#PPFT} characters; urlPost: ${URLPOST%%\?*}"

# 3. Post the password with the PPFT and the cookies; the answer is a 302 whose fragment holds the tokens.
LOCATION=$(curl -s --cacert ca.pem -b cookies.txt -c cookies.txt -o /dev/null -w '%{redirect_url}' \
    --data-urlencode "login=alice@example.com" --data-urlencode "passwd=correct horse" \
    --data-urlencode "PPFT=$PPFT" "$URLPOST")
case "$LOCATION" in https://login.live.com/oauth20_desktop.srf\?lc=1033\#access_token=*) ;; *) echo "unexpected redirect: ${LOCATION%%#*}"; false;; esac

# 4. Read the fragment (URL-encoded values).
field() { printf '%s' "${LOCATION#*#}" | tr '&' '\n' | sed -n "s/^$1=//p" | python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.stdin.read().strip()))'; }
REFRESH=$(field refresh_token)
echo "signed in: expires_in=$(field expires_in) scope=$(field scope) user_id=$(field user_id)"

# 5. Refresh another scope with the refresh token.
curl -s --cacert ca.pem "https://localhost:$PORT/oauth20_token.srf" \
    --data-urlencode client_id=00000000480BC46C --data-urlencode scope=service::ssl.live.com::MBI_SSL \
    --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$REFRESH" > ssl.json
python3 -c 'import json; t = json.load(open("ssl.json")); assert t["scope"] == "service::ssl.live.com::MBI_SSL"; print("refreshed:", t["scope"], "expires_in", t["expires_in"])'

# 6. Get a skypetoken from a skype.com access token (the seed's four headers).
curl -s --cacert ca.pem "https://localhost:$PORT/oauth20_token.srf" \
    --data-urlencode client_id=00000000480BC46C --data-urlencode scope=service::skype.com::MBI_SSL \
    --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$(python3 -c 'import json; print(json.load(open("ssl.json"))["refresh_token"])')" > skype.json
ACCESS=$(python3 -c 'import json; print(json.load(open("skype.json"))["access_token"])')
curl -s --cacert ca.pem -X POST "https://localhost:$PORT/rps/skypetoken" \
    -H "scopes: client" -H "clientVersion: 0/7.4.85.102/259/" -H "access_token: $ACCESS" -H "partner: 999" > skypetoken.json
python3 -c 'import json; t = json.load(open("skypetoken.json")); assert len(t["skypetoken"]) > 100; print("skypetoken: expiresIn", t["expiresIn"])'

# 7. Ask the control API whether livesim issued that token and whether it is still valid.
curl -s "http://127.0.0.1:$CONTROL/_livesim/validate" -d "{\"credential\": \"$ACCESS\"}" > valid.json
python3 -c 'import json; v = json.load(open("valid.json")); assert v["valid"] and v["kind"] == "access_token"; print("validated:", v["kind"], v["scope"])'
kill $pid
echo "walkthrough: ok"
