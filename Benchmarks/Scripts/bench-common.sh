# Shared by scripts/bench.sh and scripts/bench-profile.sh (sourced, not run). Expects ROOT, BIN,
# LIB, DURATION, WARMUP, CLIENT_THREADS and NGINX to be set (and FLOOR for start_floor).

work=$(mktemp -d /tmp/tokenbroker-bench.XXXXXX)
chmod 755 "$work"   # nginx's worker runs as nobody and reads the file served
RESULTS=$work/results.txt
: > "$RESULTS"
pids=()
stop_pid() {
    local pid=$1
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    for pid in "${pids[@]}"; do stop_pid "$pid"; done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "bench: work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# livesim DIR [extra options]: starts livesim with its control API; sets SIM_PID, SIM_URL, SIM_CONTROL.
start_livesim() {
    local dir=$1; shift
    mkdir -p "$dir"
    "$BIN/livesim" --listen 127.0.0.1:0 --port-file "$dir/port" --ca-out "$dir/ca.pem" \
        --control-listen 127.0.0.1:0 --control-port-file "$dir/control-port" --quiet "$@" \
        > "$dir/livesim.out" 2> "$dir/livesim.log" &
    SIM_PID=$!
    disown "$SIM_PID"   # stopped by pid in cleanup; no job-control notices
    pids+=("$SIM_PID")
    for _ in $(seq 600); do [ -s "$dir/control-port" ] && [ -s "$dir/port" ] && break; sleep 0.05; done
    [ -s "$dir/control-port" ] || { echo "bench: livesim did not start"; cat "$dir/livesim.log"; exit 1; }
    SIM_URL="https://127.0.0.1:$(cat "$dir/port")"
    SIM_CONTROL="http://127.0.0.1:$(cat "$dir/control-port")"
}

# write_config DIR SIM_DIR [refresh lines...]: a daemon configuration in DIR/tokenbroker.toml.
write_config() {
    local dir=$1 simdir=$2; shift 2
    mkdir -p "$dir"
    {
        echo "[socket]"
        echo "path = \"$dir/tokenbroker.sock\""
        echo "[state]"
        echo "directory = \"$dir/state\""
        echo "[refresh]"
        for line in "$@"; do echo "$line"; done
        echo "[log]"
        echo "target = \"stderr\""
        echo "[realms.bench]"
        echo "login_url = \"https://127.0.0.1:$(cat "$simdir/port")\""
        echo "user_initialization_url = \"https://127.0.0.1:$(cat "$simdir/port")\""
        echo "skypetoken_url = \"https://127.0.0.1:$(cat "$simdir/port")\""
        echo "ca_file = \"$simdir/ca.pem\""
    } > "$dir/tokenbroker.toml"
}

# start_daemon DIR: starts tokenbrokerd and waits for its socket; sets DAEMON_PID, SOCK.
start_daemon() {
    local dir=$1
    SOCK=$dir/tokenbroker.sock
    ${PROFILE_CMD:-} "${DAEMON_BIN:-$BIN}/tokenbrokerd" --config "$dir/tokenbroker.toml" > "$dir/daemon.log" 2>&1 &
    DAEMON_PID=$!
    disown "$DAEMON_PID"
    pids+=("$DAEMON_PID")
    for _ in $(seq 600); do curl -sf --unix-socket "$SOCK" http://localhost/v1/health >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "bench: tokenbrokerd did not start"; cat "$dir/daemon.log"; exit 1
}

# start_nginx BODY_FILE: nginx-light with one worker serving BODY_FILE for every path; sets NGINX_SOCK, NGINX_PIDS.
start_nginx() {
    local dir=$work/nginx
    mkdir -p "$dir/tmp"
    cp "$1" "$dir/token.json"
    chmod 644 "$dir/token.json"
    cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    server {
        listen unix:$dir/nginx.sock;
        location / {
            default_type application/json;
            root $dir;
            try_files /token.json =404;
        }
    }
}
EOF
    NGINX_SOCK=$dir/nginx.sock
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" &
    local master=$!
    disown "$master"
    pids+=("$master")
    for _ in $(seq 100); do [ -S "$NGINX_SOCK" ] && curl -sf --unix-socket "$NGINX_SOCK" -o /dev/null http://localhost/ && break; sleep 0.05; done
    NGINX_PIDS="$master $(pgrep -P "$master" | tr '\n' ' ')"
    chmod 666 "$NGINX_SOCK"
}

# start_floor ANSWER_FILE: the floor (Benchmarks/Floor/floor.c, built as FLOOR) answering every
# request with ANSWER_FILE's bytes; sets FLOOR_SOCK, FLOOR_PID.
start_floor() {
    local dir=$work/floor
    mkdir -p "$dir"
    FLOOR_SOCK=$dir/floor.sock
    "$FLOOR" "$FLOOR_SOCK" "$1" > "$dir/floor.out" 2>&1 &
    FLOOR_PID=$!
    disown "$FLOOR_PID"
    pids+=("$FLOOR_PID")
    for _ in $(seq 100); do grep -q '^floor: listening' "$dir/floor.out" 2>/dev/null && return 0; sleep 0.05; done
    echo "bench: the floor did not start"; cat "$dir/floor.out"; exit 1
}

# pair LABEL_SUFFIX PATH CONNECTIONS [socket-bench options]: the same load on tokenbrokerd
# (MAIN_SOCK), nginx and, once started, the floor (FLOOR_SOCK), alternating, ROUNDS times each;
# the table takes each side's median.
pair() {
    local suffix=$1 path=$2 conns=$3; shift 3
    for round in $(seq "${ROUNDS:-1}"); do
        if [ -n "${BASE_SOCK:-}" ] && [ -n "${BASELINE_TURNS:-}" ]; then
            # An A/B of two builds: this one and the baseline in turns, nothing else.
            if [ $((round % 2)) = 1 ]; then
                load "tb-$suffix#$round" "$MAIN_SOCK" "$MAIN_PID" "$path" "$conns" "$@" --slice "${TURN:-0.1}" \
                    --versus "$BASE_SOCK" --versus-label "base-$suffix#$round" --versus-server-pid "$BASE_PID"
            else
                load "base-$suffix#$round" "$BASE_SOCK" "$BASE_PID" "$path" "$conns" "$@" --slice "${TURN:-0.1}" \
                    --versus "$MAIN_SOCK" --versus-label "tb-$suffix#$round" --versus-server-pid "$MAIN_PID"
            fi
            continue
        fi
        if [ -n "${FLOOR_SOCK:-}" ] && [ -z "${NO_TURNS:-}" ]; then
            # tokenbroker and the floor take turns of TURN seconds in one load, so that both meet
            # the same machine; which of them begins alternates from round to round.
            if [ $((round % 2)) = 1 ]; then
                load "tb-$suffix#$round" "$MAIN_SOCK" "$MAIN_PID" "$path" "$conns" "$@" --slice "${TURN:-0.1}" \
                    --versus "$FLOOR_SOCK" --versus-label "floor-$suffix#$round" --versus-server-pid "$FLOOR_PID"
            else
                load "floor-$suffix#$round" "$FLOOR_SOCK" "$FLOOR_PID" "$path" "$conns" "$@" --slice "${TURN:-0.1}" \
                    --versus "$MAIN_SOCK" --versus-label "tb-$suffix#$round" --versus-server-pid "$MAIN_PID"
            fi
        else
            load "tb-$suffix#$round" "$MAIN_SOCK" "$MAIN_PID" "$path" "$conns" "$@"
            if [ -n "${FLOOR_SOCK:-}" ]; then load "floor-$suffix#$round" "$FLOOR_SOCK" "$FLOOR_PID" "$path" "$conns" "$@"; fi
        fi
        if [ -n "${BASE_SOCK:-}" ]; then load "base-$suffix#$round" "$BASE_SOCK" "$BASE_PID" "$path" "$conns" "$@"; fi
        load "nginx-$suffix#$round" "$NGINX_SOCK" "$NGINX_PIDS" "$path" "$conns" "$@"
    done
}

# load LABEL SOCKET PIDS PATH CONNECTIONS [socket-bench options]: one load; its RESULT line is kept.
load() {
    local label=$1 sock=$2 spids=$3 path=$4 conns=$5; shift 5
    local pidargs=()
    for p in $spids; do pidargs+=(--server-pid "$p"); done
    "$BIN/socket-bench" load --socket "$sock" --path "$path" --connections "$conns" --duration "$DURATION" \
        --warmup "$WARMUP" --threads "$CLIENT_THREADS" --label "$label" "${pidargs[@]}" "$@" | tee -a "$RESULTS" | sed 's/^/  /'
}

import_account() {  # import_account SOCK LOGIN: a livesim grant imported with tokenctl
    local token
    token=$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"login":"'"$2"'","password":"x"}' "$SIM_CONTROL/_livesim/accounts" >/dev/null || true
        curl -sf -X POST -H 'Content-Type: application/json' -d '{"scope":"service::skype.com::MBI_SSL"}' "$SIM_CONTROL/_livesim/accounts/$2/grant" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["refresh_token"])')
    echo "$token" | "$BIN/tokenctl" --socket "$1" import "$2" --refresh-token-stdin >/dev/null
}

