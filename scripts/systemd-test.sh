#!/usr/bin/env bash
# Boots a real systemd as PID 1 in new namespaces (pid, mount, net, uts, ipc, cgroup) on a tmpfs
# overlay of the host's root, installs tokenbroker into that root with `make install DESTDIR=`,
# runs livesim on 192.0.2.1 (not loopback) in the test's own network namespace, and checks what
# issue 5 asks of tokenbrokerd under systemd: socket activation, the STATUS line, a token served,
# journal fields and no secret in the journal, reload (access removed, broken file refused),
# stop during a hanging refresh, and the watchdog killing a frozen event loop.
#
# Usage (as root): scripts/systemd-test.sh        ~1 min, most of it building and installing
# Recipe: ../shared/docs/SYSTEMD-TESTING.md. Set KEEP=1 to keep the work directory (logs).
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT=$(pwd)
NAME=tokenbroker-systemd-test
ACCOUNT=alice@example.com
PASSWORD="correct horse battery"
READER_UID=1001
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

# ---------------------------------------------------------------------------------------------
# Inside the new namespaces, as their PID 1: build the container root and exec systemd.
if [ "${1:-}" = "--inner" ]; then
    work=$2
    exec > "$work/inner.log" 2>&1
    set -x
    mount --make-rprivate /
    # This PID namespace's own /proc (Swift programs read /proc/<their pid>).
    mount -t proc proc /proc

    # The test's own network: 192.0.2.1 on a dummy (or veth) interface, reachable only in here.
    ip link set lo up
    if ip link add tb0 type dummy 2>/dev/null; then :; else
        ip link add tb0 type veth peer name tb1
        ip link set tb1 up
    fi
    ip addr add 192.0.2.1/24 dev tb0
    ip link set tb0 up

    base=$work/root
    mkdir -p "$base"
    mount -t tmpfs -o mode=0755 tmpfs "$base"
    mkdir -p "$base/upper" "$base/work" "$base/merged"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/merged"
    M=$base/merged
    mount -t proc proc "$M/proc"
    mount --bind "$M/proc/sys" "$M/proc/sys"
    mount -o remount,bind,ro "$M/proc/sys"
    mount -t sysfs -o ro sysfs "$M/sys"
    mount -t cgroup2 cgroup2 "$M/sys/fs/cgroup"
    mount -t tmpfs -o mode=0755,nosuid tmpfs "$M/dev"
    for device in null zero full random urandom tty; do
        touch "$M/dev/$device"
        mount --bind "/dev/$device" "$M/dev/$device"
    done
    touch "$M/dev/console"
    mount --bind /dev/null "$M/dev/console"
    mkdir -p "$M/dev/pts" "$M/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$M/dev/pts"
    ln -s pts/ptmx "$M/dev/ptmx"

    # What is tested: the project installed as an operator would.
    make -C "$PROJECT" install DESTDIR="$M" CONFIGURATION=debug TESTING=1 BUILD=no > "$work/make-install.log" 2>&1

    mkdir -p "$M/etc/livesim" "$M/etc/tokenbroker" "$M/etc/systemd/system" "$M/etc/tmpfiles.d"
    printf '[{"login": "%s", "password": "%s"}]\n' "$ACCOUNT" "$PASSWORD" > "$M/etc/livesim/accounts.json"
    cp "$work/tokenbroker.toml" "$M/etc/tokenbroker/tokenbroker.toml"
    chmod 0644 "$M/etc/tokenbroker/tokenbroker.toml"
    cat > "$M/etc/systemd/system/livesim.service" <<EOF
[Unit]
Description=livesim, the identity provider for the test
[Service]
ExecStart=/usr/local/bin/livesim --listen 192.0.2.1:443 --san 192.0.2.1 --port-file /run/livesim/port --ca-out /etc/tokenbroker/livesim-ca.pem --accounts /etc/livesim/accounts.json --control-listen 127.0.0.1:8081 --control-port-file /run/livesim/control-port --token-lifetime 3600 --quiet
RuntimeDirectory=livesim
UMask=0022
EOF
    cat > "$M/etc/systemd/system/$NAME.target" <<EOF
[Unit]
Description=tokenbroker systemd test
Requires=sysinit.target sockets.target
After=sysinit.target sockets.target
AllowIsolate=yes
EOF
    : > "$M/etc/machine-id"
    ln -sf /dev/null "$M/etc/tmpfiles.d/tmp.conf"

    cd "$M"
    mkdir -p oldroot
    pivot_root . oldroot
    cd /
    umount -l /oldroot
    rmdir /oldroot
    # Without it, LoadCredential= directories come up empty.
    mount --make-rshared /
    exec setpriv --bounding-set -sys_module,-sys_time,-sys_boot,-sys_rawio,-syslog,-wake_alarm,-mac_admin,-mac_override \
        env -i container="$NAME" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /lib/systemd/systemd --unit="$NAME.target" --log-target=journal
fi

# ---------------------------------------------------------------------------------------------
# Host side.
[ "$(id -u)" = 0 ] || { echo "systemd-test: must run as root (it creates namespaces and boots systemd)" >&2; exit 1; }
for tool in unshare nsenter setpriv pivot_root ip curl python3 make /lib/systemd/systemd; do
    command -v "$tool" > /dev/null || { echo "systemd-test: $tool is missing" >&2; exit 1; }
done

passed=0
failed=0
testing_built=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
expect() { # label command...: the command must succeed
    local label=$1; shift
    if "$@"; then ok "$label"; else bad "$label"; fi
}
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

work=$(mktemp -d "/tmp/$NAME.XXXXXX")
chmod 0755 "$work"
started=$(date +%s.%N)

# 1. The fault switch is absent from a normal build and present only in a testing build.
echo "::: building (a normal tokenbrokerd, then the testing build this test installs)"
env -u TOKENBROKER_TESTING swift build --product tokenbrokerd > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
for product in tokenctl livesim; do
    swift build --product "$product" >> "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
done
normal=.build/debug/tokenbrokerd
if ! grep -q TOKENBROKER_TEST_FREEZE "$normal" && ! "$normal" --version | grep -q testing; then
    ok "a build without TOKENBROKER_TESTING=1 has no fault switch ($("$normal" --version))"
else
    bad "a normal build contains the fault switch"
fi
testing_built=1
TOKENBROKER_TESTING=1 swift build --product tokenbrokerd >> "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
if grep -q TOKENBROKER_TEST_FREEZE "$normal" && "$normal" --version | grep -q testing; then
    ok "the testing build has the fault switch and says so in --version"
else
    bad "the testing build lacks the fault switch"
fi

# The configuration the daemon starts with: livesim's realm, and uid 1001 may read the account.
write_config() { # extra TOML appended
    cat <<EOF
[log]
level = "info"
[realms.sim]
login_url = "https://192.0.2.1"
user_initialization_url = "https://192.0.2.1"
skypetoken_url = "https://192.0.2.1"
ca_file = "/etc/tokenbroker/livesim-ca.pem"
$1
EOF
}
access_rule=$(printf '[[access]]\naccounts = ["%s"]\nuids = ["%s"]\n' "$ACCOUNT" "$READER_UID")
write_config "$access_rule" > "$work/tokenbroker.toml"

# 2. Boot. The container lives in a cgroup of its own, which becomes its cgroup namespace's root.
if [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
    cgroot=/sys/fs/cgroup/unified
elif [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    cgroot=/sys/fs/cgroup
else
    echo "systemd-test: no cgroup2 hierarchy" >&2; exit 1
fi
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
cg=$cgroot/$NAME-$$
upid=
pid1=
cleanup() {
    set +e
    if [ -n "$pid1" ] && kill -0 "$pid1" 2>/dev/null; then
        nsenter -t "$pid1" -a systemctl poweroff --no-block > /dev/null 2>&1
        for _ in $(seq 50); do kill -0 "$upid" 2>/dev/null || break; sleep 0.1; done
    fi
    [ -n "$upid" ] && kill -KILL "$upid" 2>/dev/null
    wait 2>/dev/null
    for _ in $(seq 20); do
        [ -d "$cg" ] || break
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
        sleep 0.1
    done
    if [ "${KEEP:-0}" = 1 ] || [ "$failed" -gt 0 ]; then echo "systemd-test: logs kept in $work"; else rm -rf "$work"; fi
    # Leave a normal build behind, so that no later install picks up the testing one.
    [ "$testing_built" = 1 ] && env -u TOKENBROKER_TESTING swift build --product tokenbrokerd > /dev/null 2>&1
}
trap cleanup EXIT

echo "::: booting systemd as PID 1"
mkdir "$cg"
echo $$ > "$cg/cgroup.procs"
unshare --pid --fork --kill-child --mount --uts --ipc --net --cgroup --propagation private \
    bash "$PROJECT/scripts/systemd-test.sh" --inner "$work" &
upid=$!
echo $$ > "$cgroot$own/cgroup.procs"
# The inner script installs first (make install into the container root), then execs systemd.
for _ in $(seq 1200); do
    pid1=$(pgrep -P "$upid" -x systemd || true)
    [ -n "$pid1" ] && break
    kill -0 "$upid" 2>/dev/null || break
    sleep 0.05
done
boot_started=$(date +%s.%N)

[ -n "$pid1" ] || { echo "systemd-test: systemd did not start"; cat "$work/inner.log" "$work/make-install.log" 2>/dev/null | tail -40; exit 1; }
ct() { nsenter -t "$pid1" -a "$@"; }
sctl() { ct systemctl "$@"; }
state=
for _ in $(seq 300); do
    state=$(sctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 0.1
done
case "$state" in
    running|degraded) ok "systemd is PID 1 and $state after $(elapsed "$boot_started" "$(date +%s.%N)") s" ;;
    *) bad "systemd did not finish booting ($state)"; sctl --failed --no-pager || true; exit 1 ;;
esac
journal() { ct journalctl --no-pager "$@"; }
sock=/run/tokenbroker/tokenbroker.sock
api() { ct curl -s --max-time 20 --unix-socket "$sock" "$@"; }
control() { ct curl -s --max-time 10 "$@"; }
wait_for() { # seconds command...: until the command succeeds
    local tries=$(($1 * 10)); shift
    for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.1; done
    return 1
}
reader() { ct setpriv --reuid="$READER_UID" --regid="$READER_UID" --groups="$(ct getent group tokenbroker | cut -d: -f3)" "$@"; }
reader_reads() { reader tokenctl token "$ACCOUNT" > /dev/null 2>&1; }

# 3. What make install put into the container's root; the installed units pass verify (man
# pages included); livesim comes up on 192.0.2.1.
installed=(/usr/local/bin/tokenbrokerd /usr/local/bin/tokenctl /usr/local/bin/livesim
    /usr/local/lib/systemd/system/tokenbrokerd.service /usr/local/lib/systemd/system/tokenbrokerd.socket
    /usr/local/lib/systemd/user/tokenbrokerd.service /usr/local/lib/systemd/user/tokenbrokerd.socket
    /usr/local/lib/sysusers.d/tokenbroker.conf /usr/local/share/doc/tokenbroker/tokenbroker.toml.example
    /usr/local/share/man/man8/tokenbrokerd.8 /usr/local/share/man/man1/tokenctl.1
    /usr/local/share/bash-completion/completions/tokenctl /usr/local/share/zsh/site-functions/_tokenctl
    /usr/local/share/fish/vendor_completions.d/tokenctl.fish)
missing=$(for file in "${installed[@]}"; do ct test -s "$file" || echo "$file"; done)
expect "make install DESTDIR=<container root> installed binaries, units, sysusers.d, config, man pages, completions${missing:+ (missing: $missing)}" test -z "$missing"
# tokenbrokerd links OpenSSL's libcrypto (the SSO proof's 3DES): the container (the host's root,
# overlaid) has it, as a machine with libssl-dev installed does.
links_resolved() { local libs; libs=$(ct ldd /usr/local/bin/tokenbrokerd) && [[ $libs == *libcrypto* && $libs != *"not found"* ]]; }
expect "the installed tokenbrokerd finds every library it links, libcrypto included" links_resolved
expect "systemd-analyze verify accepts the installed units (and finds their man pages)" \
    test -z "$(ct systemd-analyze verify --recursive-errors=no /usr/local/lib/systemd/system/tokenbrokerd.service /usr/local/lib/systemd/system/tokenbrokerd.socket 2>&1)"
sctl start livesim.service
wait_for 10 ct test -s /run/livesim/control-port || true
expect "livesim answers on 192.0.2.1 with a certificate for it" \
    ct curl -sf --cacert /etc/tokenbroker/livesim-ca.pem -o /dev/null "https://192.0.2.1/oauth20_desktop.srf"

# 4. Socket activation: the socket unit alone, then the first request starts the service.
sctl start tokenbrokerd.socket
expect "tokenbrokerd.service is not running before the first connection" \
    test "$(sctl is-active tokenbrokerd.service)" = inactive
expect "the socket is 0660, group tokenbroker" test "$(ct stat -c '%a %G' "$sock")" = "660 tokenbroker"
health=$(api http://localhost/v1/health || true)
expect "the first request (curl) is answered: $health" grep -q '"status":"ok"' <<< "$health"
expect "...by tokenbrokerd.service, started through the socket" test "$(sctl is-active tokenbrokerd.service)" = active
expect "...which adopted the socket from systemd" \
    wait_for 3 sh -c "nsenter -t $pid1 -a journalctl --no-pager -u tokenbrokerd -o cat | grep -q 'using the socket passed by systemd'"
mainpid=$(sctl show -p MainPID --value tokenbrokerd.service)

# 5. Enroll against livesim (outbound HTTPS from the sandbox) and read a token.
if ct tokenctl login "$ACCOUNT" --password-stdin <<< "$PASSWORD" > "$work/login.out" 2>&1; then
    ok "tokenctl login enrolls $ACCOUNT against livesim at https://192.0.2.1"
else
    bad "tokenctl login: $(cat "$work/login.out")"
fi
token=$(ct tokenctl token "$ACCOUNT" 2> "$work/token.err" || true)
valid=$(control -X POST http://127.0.0.1:8081/_livesim/validate -d "{\"credential\": \"$token\"}" \
    | python3 -c 'import json, sys; v = json.load(sys.stdin); print(v.get("valid"), v.get("account", v.get("login")))' 2>/dev/null || true)
expect "tokenctl token serves a token livesim issued and holds valid ($valid)" grep -q '^True' <<< "$valid"

# 6. The STATUS line.
status_ok() { sctl show -p StatusText --value tokenbrokerd.service | grep -q '^1 account, 0 need sign-in, '; }
if wait_for 8 status_ok; then ok "StatusText: \"$(sctl show -p StatusText --value tokenbrokerd.service)\""
else bad "StatusText: \"$(sctl show -p StatusText --value tokenbrokerd.service)\""; fi
expect "systemctl status shows it" sh -c "nsenter -t $pid1 -a systemctl status --no-pager tokenbrokerd.service | grep -q 'Status: \"1 account, 0 need sign-in'"

# 7. Journal fields, and no secret anywhere in the journal.
journal -u tokenbrokerd -o json TOKEN_EVENT=refreshed > "$work/refreshed.json"
fields=$(python3 - "$work/refreshed.json" "$ACCOUNT" <<'EOF'
import json, sys
entries = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
scoped = [e for e in entries if e.get("ACCOUNT") == sys.argv[2] and e.get("SCOPE")]
need = ["MESSAGE", "PRIORITY", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "SYSLOG_IDENTIFIER", "CREDENTIAL", "NEXT_REFRESH_USEC", "_SYSTEMD_UNIT"]
complete = [e for e in scoped if all(k in e for k in need) and e["SYSLOG_IDENTIFIER"] == "tokenbrokerd"
            and e["_SYSTEMD_UNIT"] == "tokenbrokerd.service" and e["NEXT_REFRESH_USEC"].isdigit()]
print(f"{len(entries)} entries, {len(scoped)} with ACCOUNT and SCOPE, {len(complete)} with every field", "ok" if complete and len(scoped) == len([e for e in entries if e.get("SCOPE")]) else "missing")
EOF
)
expect "journalctl -u tokenbrokerd TOKEN_EVENT=refreshed: $fields" grep -q ' ok$' <<< "$fields"
control http://127.0.0.1:8081/_livesim/secrets > "$work/secrets.json"
journal -o export > "$work/journal.export"
leaks=$(python3 - "$work/secrets.json" "$work/journal.export" "$PASSWORD" <<'EOF'
import json, sys
secrets = set(s for s in json.load(open(sys.argv[1]))["secrets"] if len(s) >= 8) | {sys.argv[3]}
journal = open(sys.argv[2], "rb").read().decode("utf-8", "replace")
found = [s for s in secrets if s in journal]
print(f"{len(secrets)} secrets, {len(journal)} bytes of journal, {len(found)} found")
EOF
)
expect "no secret livesim issued (nor the password) is in the journal: $leaks" grep -q ' 0 found$' <<< "$leaks"

# 8. Reload: a removed access rule applies to the next read; connections and tokens stay.
expect "uid $READER_UID may read $ACCOUNT" reader_reads
python3 - "/proc/$pid1/root$sock" > "$work/keepalive.out" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
def get():
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data: data += s.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < length: body += s.recv(4096)
    return head.split(b" ")[1].decode()
first = get(); time.sleep(3); second = get()
print(first, second)
EOF
keepalive=$!
sleep 0.5
write_config "" > "$work/no-access.toml"
ct sh -c 'cat > /etc/tokenbroker/tokenbroker.toml' < "$work/no-access.toml"
expect "systemctl reload succeeds" sctl reload tokenbrokerd.service
expect "the daemon reloaded" wait_for 5 sh -c "[ \$(nsenter -t $pid1 -a journalctl --no-pager -u tokenbrokerd -o cat | grep -c 'configuration reloaded') -ge 1 ]"
reader tokenctl token "$ACCOUNT" > /dev/null 2> "$work/reader.err" && code=0 || code=$?
expect "uid $READER_UID's next read is forbidden (tokenctl exit $code: $(head -c 120 "$work/reader.err"))" test "$code" = 77
wait "$keepalive" || true
expect "a keep-alive connection open across the reload still works ($(cat "$work/keepalive.out"))" grep -qx '200 200' "$work/keepalive.out"
expect "same process, account still there, token still served" \
    sh -c "[ $mainpid = \$(nsenter -t $pid1 -a systemctl show -p MainPID --value tokenbrokerd.service) ] && nsenter -t $pid1 -a tokenctl token $ACCOUNT > /dev/null"

# A broken file: systemctl reload refuses it (ExecReload checks first), and so does the daemon
# itself when sent SIGHUP directly; either way it keeps serving with the old configuration.
printf 'bogus_key = true\n' | cat - "$work/no-access.toml" > "$work/broken.toml"
ct sh -c 'cat > /etc/tokenbroker/tokenbroker.toml' < "$work/broken.toml"
if sctl reload tokenbrokerd.service 2> "$work/reload.err"; then bad "systemctl reload accepted a broken file"; else ok "systemctl reload refuses a broken file"; fi
expect "...with the reason in the journal" sh -c "nsenter -t $pid1 -a journalctl --no-pager -u tokenbrokerd -o cat | grep -q 'bogus_key: unknown key'"
sctl kill -s HUP --kill-whom=main tokenbrokerd.service
expect "SIGHUP with a broken file: the daemon refuses it with an error entry" \
    wait_for 5 sh -c "nsenter -t $pid1 -a journalctl --no-pager -u tokenbrokerd -p err -o cat | grep -q 'configuration reload refused; the previous configuration stays in force: .*bogus_key'"
expect "...and keeps serving: same process, token served, uid $READER_UID still refused" \
    sh -c "[ $mainpid = \$(nsenter -t $pid1 -a systemctl show -p MainPID --value tokenbrokerd.service) ] && nsenter -t $pid1 -a tokenctl token $ACCOUNT > /dev/null && [ \"\$(nsenter -t $pid1 -a systemctl is-active tokenbrokerd.service)\" = active ]"
ct sh -c 'cat > /etc/tokenbroker/tokenbroker.toml' < "$work/tokenbroker.toml"
sctl reload tokenbrokerd.service

# 9. Stop while livesim hangs a refresh: done well within 10 s, Result=success, exit 0.
control -X POST http://127.0.0.1:8081/_livesim/faults -d '{"endpoint": "token", "kind": "hang", "count": 1000}' > /dev/null
ct tokenctl token "$ACCOUNT" --min-valid 7200 > /dev/null 2>&1 &
pending=$!
sleep 1.5
t0=$(date +%s.%N)
sctl stop tokenbrokerd.service
t1=$(date +%s.%N)
wait "$pending" 2>/dev/null || true
took=$(elapsed "$t0" "$t1")
result=$(sctl show -p Result -p ExecMainCode -p ExecMainStatus tokenbrokerd.service | tr '\n' ' ')
expect "systemctl stop during a hanging refresh took $took s (under 10)" python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 10 else 1)" "$took"
expect "...and ended cleanly: $result" grep -q 'Result=success ExecMainCode=1 ExecMainStatus=0' <<< "$result"
expect "...leaving the socket (and its directory) in place" sh -c "nsenter -t $pid1 -a test -S $sock && [ \"\$(nsenter -t $pid1 -a systemctl is-active tokenbrokerd.socket)\" = active ]"
control -X DELETE http://127.0.0.1:8081/_livesim/faults > /dev/null
again=$(ct tokenctl token "$ACCOUNT" 2>&1 | head -c 12 || true)
expect "the next request starts it again, and the stored account is served (${again}...)" \
    sh -c "[ -n '$again' ] && [ \"\$(nsenter -t $pid1 -a systemctl is-active tokenbrokerd.service)\" = active ]"

# 10. The watchdog: a testing build told to freeze its event loop is killed for missing pings.
sctl stop tokenbrokerd.service
ct mkdir -p /etc/systemd/system/tokenbrokerd.service.d
ct sh -c 'cat > /etc/systemd/system/tokenbrokerd.service.d/freeze.conf' <<'EOF'
[Service]
WatchdogSec=2s
Environment=TOKENBROKER_TEST_FREEZE_EVENT_LOOP=1
Restart=no
LimitCORE=0
EOF
sctl daemon-reload
sctl start tokenbrokerd.service
watchdogged() { [ "$(sctl show -p Result --value tokenbrokerd.service)" = watchdog ]; }
t0=$(date +%s.%N)
if wait_for 15 watchdogged; then
    ok "a frozen event loop: systemd killed the daemon with Result=watchdog after $(elapsed "$t0" "$(date +%s.%N)") s"
else
    bad "a frozen event loop was not killed by the watchdog ($(sctl show -p Result -p ActiveState tokenbrokerd.service | tr '\n' ' '))"
fi
expect "...after it logged the failed health check" \
    sh -c "nsenter -t $pid1 -a journalctl --no-pager -u tokenbrokerd -o cat | grep -q 'health check failed; withholding the watchdog ping'"

journal -o short-precise > "$work/journal.txt" 2>&1 || true
echo "systemd-test: whole run $(elapsed "$started" "$(date +%s.%N)") s"
[ "$failed" -eq 0 ] || echo "journal: $work/journal.txt"
echo "systemd-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
