#!/usr/bin/env python3
"""Helpers for scripts/bench.sh: livesim control-API grants, refresh-spreading sampling,
the hyperfine comparison, the floor's answer and the side-by-side table. Standard library only."""

import http.client
import json
import math
import os
import re
import socket
import sys
import time


def control(base):
    host, port = base.replace("http://", "").rstrip("/").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=30)


def call(conn, method, path, body=None):
    payload = None if body is None else json.dumps(body)
    headers = {"Content-Type": "application/json"} if payload else {}
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else {})


def grants(base, prefix, count, out, create=True):
    """Creates accounts PREFIX-N@example.com (unless they exist) and writes one grant per line:
    LOGIN<TAB>REFRESH_TOKEN<TAB>SKYPE_ACCESS_TOKEN<TAB>SESSION_COOKIES."""
    conn = control(base)
    started = time.time()
    with open(out, "w") as f:
        for n in range(count):
            login = f"{prefix}-{n}@example.com"
            if create:
                status, body = call(conn, "POST", "/_livesim/accounts", {"login": login, "password": "x"})
                if status not in (201, 409):
                    sys.exit(f"creating {login}: HTTP {status} {body}")
            status, body = call(conn, "POST", f"/_livesim/accounts/{login}/grant", {"scope": "service::skype.com::MBI_SSL"})
            if status not in (200, 201):
                sys.exit(f"grant for {login}: HTTP {status} {body}")
            f.write(f"{login}\t{body['refresh_token']}\t{body['access_token']}\t{body['cookies']}\n")
    print(f"grants: {count} accounts in {time.time() - started:.1f} s", file=sys.stderr)


def read_all(sock_path, prefix, count, paths, threads=8):
    """Reads PATHS (comma-separated, e.g. skypetoken,uic) of every account PREFIX-N@example.com
    over the socket, THREADS at a time; exits non-zero if any read is not a 200."""
    import concurrent.futures
    targets = [f"/v1/accounts/{prefix}-{n}@example.com/{p}" for n in range(count) for p in paths.split(",")]
    started = time.time()

    def one(target):
        head = answer(sock_path, target, close=True).split(b"\r\n", 1)[0]
        return target if b" 200 " not in head else None

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        failed = [t for t in pool.map(one, targets) if t]
    print(f"read-all: {len(targets)} reads in {time.time() - started:.1f} s, {len(failed)} not 200"
          + (f" (first: {failed[0]})" if failed else ""), file=sys.stderr)
    if failed:
        sys.exit(1)


def issued(base, kinds):
    """The counts livesim issued of KINDS (comma-separated), space-separated."""
    _, body = call(control(base), "GET", "/_livesim/counters")
    print(" ".join(str(body.get("issued", {}).get(k, 0)) for k in kinds.split(",")))


def accounts_file(prefix, count, out):
    with open(out, "w") as f:
        json.dump([{"login": f"{prefix}-{n}@example.com", "password": "x"} for n in range(count)], f)


def counters(conn):
    status, body = call(conn, "GET", "/_livesim/counters")
    if status != 200:
        sys.exit(f"counters: HTTP {status}")
    return body.get("refreshes", 0), body.get("issued", {}).get("skypetoken", 0)


def sample(base, seconds, out, stop_after=None):
    """Every second on the second (monotonic), the refresh and skypetoken counters, until
    `seconds` pass or `stop_after` refreshes were counted; writes one line per second:
    ELAPSED REFRESHES SKYPETOKENS (deltas)."""
    conn = control(base)
    r0, s0 = counters(conn)
    start = time.monotonic()
    last_r, last_s = r0, s0
    with open(out, "w") as f:
        k = 1
        while k <= seconds:
            time.sleep(max(0, start + k - time.monotonic()))
            r, s = counters(conn)
            f.write(f"{k} {r - last_r} {s - last_s}\n")
            f.flush()
            last_r, last_s = r, s
            if stop_after is not None and r - r0 >= stop_after:
                break
            k += 1


def spread(path, total, jitter_window, skypetokens=None):
    """Summary of a sample file: the busiest second against 1.5 × total / window, for refreshes,
    and for skypetoken fetches against 1.5 × SKYPETOKENS / window (one per account)."""
    rows = [tuple(int(x) for x in line.split()) for line in open(path) if line.strip()]
    refreshes = [r for _, r, _ in rows]
    active = [r for r in refreshes if r > 0]
    limit = 1.5 * total / jitter_window
    busiest = max(refreshes) if refreshes else 0
    first = next((t for t, r, _ in rows if r > 0), None)
    last = max((t for t, r, _ in rows if r > 0), default=None)
    skype = [s for _, _, s in rows]
    result = {
        "refreshes": sum(refreshes), "seconds_with_refreshes": len(active), "busiest_second": busiest,
        "limit": round(limit, 1), "over_limit_seconds": sum(1 for r in refreshes if r > limit),
        "first_s": first, "last_s": last, "skypetokens": sum(skype), "busiest_skypetoken_second": max(skype) if skype else 0,
    }
    if skypetokens:
        skype_limit = 1.5 * int(skypetokens) / jitter_window
        result["skypetoken_limit"] = round(skype_limit, 1)
        result["skypetoken_over_limit_seconds"] = sum(1 for s in skype if s > skype_limit)
    print("RESULT label=spread " + " ".join(f"{k}={v}" for k, v in result.items()))


def hyperfine_ratio(path):
    data = json.load(open(path))["results"]
    tb, curl = data[0], data[1]
    print(
        f"RESULT label=e tokenctl_ms={tb['mean'] * 1e3:.2f} tokenctl_sd_ms={tb['stddev'] * 1e3:.2f} tokenctl_median_ms={tb['median'] * 1e3:.2f} "
        f"curl_ms={curl['mean'] * 1e3:.2f} curl_sd_ms={curl['stddev'] * 1e3:.2f} curl_median_ms={curl['median'] * 1e3:.2f} "
        f"ratio={tb['mean'] / curl['mean']:.2f}")
    if len(data) > 2:
        st = data[2]
        print(f"RESULT label=e-static tokenctl_ms={st['mean'] * 1e3:.2f} tokenctl_sd_ms={st['stddev'] * 1e3:.2f} ratio={st['mean'] / curl['mean']:.2f}")


def answer(sock_path, target, close=False):
    """The whole answer (status line, header fields, body) to the request socket-bench sends."""
    head = f"GET {target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: socket-bench\r\nAccept: application/json\r\n"
    if close:
        head += "Connection: close\r\n"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall((head + "\r\n").encode())
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            length = 0
            for line in data[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(data) >= end + 4 + length:
                s.close()
                return data[:end + 4 + length]
        chunk = s.recv(65536)
        if not chunk:
            sys.exit(f"answer: {sock_path} closed the connection before a complete answer ({len(data)} bytes)")
        data += chunk


def check_floor(daemon_sock, floor_sock, target, answer_file):
    """The floor's answers against the daemon's: the keep-alive answer byte for byte the file it
    serves (taken from the daemon), the `Connection: close` one the daemon's now (expires_in aside)."""
    expected = open(answer_file, "rb").read()
    got = answer(floor_sock, target)
    if got != expected:
        sys.exit(f"check-floor: the floor's answer differs from the daemon's:\n{got[:300]!r}\n{expected[:300]!r}")
    seconds = re.compile(rb'"expires_in":[0-9]+')
    floor_close = answer(floor_sock, target, close=True)
    daemon_close = answer(daemon_sock, target, close=True)
    if seconds.sub(b"", floor_close) != seconds.sub(b"", daemon_close):
        sys.exit(f"check-floor: the floor's Connection: close answer differs from the daemon's:\n{floor_close[:300]!r}\n{daemon_close[:300]!r}")
    print(f"bench: the floor answers with the daemon's bytes: {len(got)} keep-alive, {len(floor_close)} with Connection: close")


def parse_results(path):
    """RESULT lines by label. Repeated loads are labelled LABEL#ROUND: the round with the median
    requests/s stands for the label (its latencies too), and `rounds` lists every round's rate."""
    runs = {}
    for line in open(path):
        if not line.startswith("RESULT "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        runs.setdefault(fields["label"].split("#")[0], []).append(fields)
    results = {}
    for label, rounds in runs.items():
        if len(rounds) == 1 or "rps" not in rounds[0]:
            results[label] = rounds[-1]
            continue
        ordered = sorted(rounds, key=lambda f: float(f["rps"]))
        chosen = dict(ordered[(len(ordered) - 1) // 2])
        chosen["rounds"] = "/".join(f"{float(f['rps']):,.0f}" for f in rounds)
        results[label] = chosen
    return results


def round_rates(path):
    """requests/s of every round of each label, in the order the rounds ran."""
    rates = {}
    for line in open(path):
        if not line.startswith("RESULT "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        if "rps" in fields:
            rates.setdefault(fields["label"].split("#")[0], []).append(float(fields["rps"]))
    return rates


def paired_ratio(rates, a, b):
    """The median of a's rate over b's, round by round (None with fewer than two rounds). The
    servers alternate within each round, or take turns within one load, so a round's two rates
    were taken seconds apart or in the same seconds: when the machine's speed changes between
    rounds, this pairs a slow round with a slow one, where the ratio of the two medians can pair
    a slow round with a fast one."""
    pairs = [x / y for x, y in zip(rates.get(a, []), rates.get(b, [])) if y > 0]
    if len(pairs) < 2:
        return None
    pairs.sort()
    middle = len(pairs) // 2
    return pairs[middle] if len(pairs) % 2 else (pairs[middle - 1] + pairs[middle]) / 2


def paired_spread(rates, a, b):
    """The rounds' own ratios a/b: median, and mean ± its standard error (an A/B of two builds
    wants many short rounds, where a small difference shows in the mean's error)."""
    pairs = [x / y for x, y in zip(rates.get(a, []), rates.get(b, [])) if y > 0]
    if len(pairs) < 2:
        return "-"
    mean = sum(pairs) / len(pairs)
    error = math.sqrt(sum((p - mean) ** 2 for p in pairs) / (len(pairs) - 1) / len(pairs))
    return f"{paired_ratio(rates, a, b):.3f}, {mean:.3f} ± {error:.3f}"


# Issue 16's targets against the floor, judged on the paired ratio: keep-alive at 16 and 64
# connections, and a new connection per request at any count.
FLOOR_TARGETS = {("a", 16): 0.85, ("a", 64): 0.85, ("b", 1): 0.95, ("b", 16): 0.95, ("b", 64): 0.95}


def paired_text(rates, tb, fl, target):
    value = paired_ratio(rates, tb, fl)
    if value is None:
        return "-"
    if target is None:
        return f"{value:.3f}"
    return f"{value:.3f} (≥ {target}: {'met' if value >= target else 'NOT met'})"


def table(path, machine):
    r = parse_results(path)
    rates = round_rates(path)
    out = []

    def num(label, key):
        try:
            return float(r[label][key])
        except (KeyError, ValueError):
            return math.nan

    def lat(label):
        if label not in r:
            return "-"
        return f"{num(label, 'p50_us'):.0f} / {num(label, 'p99_us'):.0f} / {num(label, 'p999_us'):.0f}"

    def rps(label):
        v = num(label, "rps")
        return "-" if math.isnan(v) else f"{v:,.0f}"

    def ratio_text(a, b):
        v = num(a, "rps") / num(b, "rps")
        return "-" if math.isnan(v) else f"{v:.2f}"

    def errs(label):
        if label not in r:
            return ""
        e = int(r[label].get("errors", 0)) + int(r[label].get("bad", 0))
        return f" ({e} failed)" if e else ""

    out.append(f"machine: {machine}")
    out.append("")
    header = ("| load | tokenbroker req/s | p50 / p99 / p99.9 µs | nginx req/s | p50 / p99 / p99.9 µs | "
              "floor req/s | p50 / p99 / p99.9 µs | ratio tb/nginx | ratio tb/floor | tb/floor, rounds paired | target |")
    out.append(header)
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for scenario, mode in (("a", "keep-alive"), ("b", "new connection per request")):
        for conns in (1, 16, 64):
            tb, ng, fl = f"tb-{scenario}-{conns}", f"nginx-{scenario}-{conns}", f"floor-{scenario}-{conns}"
            if ng not in r:  # an A/B of two builds (BASELINE_TURNS) runs no nginx: its own table below
                continue
            ratio = num(tb, "rps") / num(ng, "rps")
            target = ""
            if scenario == "a" and conns == 16:
                ok = ratio >= 1.0 and num(tb, "p99_us") <= num(ng, "p99_us")
                target = f"≥ 1.0 and p99 ≤ nginx: {'met' if ok else 'NOT met'}"
            elif scenario == "b":
                target = f"≥ 1.0: {'met' if ratio >= 1.0 else 'NOT met'}"
            out.append(
                f"| ({scenario}) {mode}, {conns} conn | {rps(tb)}{errs(tb)} | {lat(tb)} | {rps(ng)}{errs(ng)} | {lat(ng)} | "
                f"{rps(fl)}{errs(fl)} | {lat(fl)} | {ratio:.2f} | {ratio_text(tb, fl)} | "
                f"{paired_text(rates, tb, fl, FLOOR_TARGETS.get((scenario, conns)))} | {target} |")
    if any(label.startswith("base-") for label in r):
        out.append("")
        out.append("This build next to the baseline build (BASELINE_BIN), alternating round by round (with BASELINE_TURNS, in turns within each round):")
        out.append("")
        out.append("| load | this build req/s | p50 / p99 µs | rounds | baseline req/s | p50 / p99 µs | rounds | ratio | "
                   "rounds paired: median, mean ± standard error |")
        out.append("|---|---:|---:|---|---:|---:|---|---:|---:|")
        for scenario, mode in (("a", "keep-alive"), ("b", "new connection per request")):
            for conns in (1, 16, 64):
                tb, base = f"tb-{scenario}-{conns}", f"base-{scenario}-{conns}"
                if base not in r:
                    continue
                out.append(
                    f"| ({scenario}) {mode}, {conns} conn | {rps(tb)} | {num(tb, 'p50_us'):.0f} / {num(tb, 'p99_us'):.0f} | "
                    f"{r.get(tb, {}).get('rounds', '-')} | {rps(base)} | {num(base, 'p50_us'):.0f} / {num(base, 'p99_us'):.0f} | "
                    f"{r.get(base, {}).get('rounds', '-')} | {num(tb, 'rps') / num(base, 'rps'):.2f} | "
                    f"{paired_spread(rates, tb, base)} |")
    if "tb-c-16" in r:
        base = num("tb-a-16", "rps")
        ratio = num("tb-c-16", "rps") / base
        verdict = "run (a) too" if math.isnan(ratio) else ("met" if ratio >= 0.8 else "NOT met")
        refresh = r.get("c-refreshes", {})
        out.append(
            f"| (c) keep-alive, 16 conn, refreshes running ({refresh.get('per_s', '?')} refreshes/s) | {rps('tb-c-16')}{errs('tb-c-16')} | {lat('tb-c-16')} | "
            f"{rps('nginx-c-16')} | {lat('nginx-c-16')} | - | - | {num('tb-c-16', 'rps') / num('nginx-c-16', 'rps'):.2f} | - | "
            f"vs (a) 16 conn: {ratio:.2f}, within 20%: {verdict} |")
    if "tb-d-16" in r:
        base = num("tb-a-16", "rps")
        accounts = int(r.get("d-size", {}).get("accounts", 0))
        when = ("during the refresh window" if r.get("d-reads-in-window", {}).get("refreshing", "yes") == "yes"
                else "BEFORE the refresh window (no refresh had started)")
        out.append(
            f"| (d) keep-alive, 16 conn, {accounts:,} accounts, {when} | {rps('tb-d-16')}{errs('tb-d-16')} | {lat('tb-d-16')} | "
            f"{rps('nginx-d-16')} | {lat('nginx-d-16')} | - | - | {num('tb-d-16', 'rps') / num('nginx-d-16', 'rps'):.2f} | - | "
            f"vs (a) 16 conn: {'run (a) too' if math.isnan(base) else format(num('tb-d-16', 'rps') / base, '.2f')} |")
    rounds = [f"{label} {r[label]['rounds']}" for label in sorted(r) if "rounds" in r[label]]
    if rounds:
        out.append("")
        out.append("req/s of every round (the table shows the median round): " + "; ".join(rounds))
    out.append("")
    if "startup" in r:
        s = r["startup"]
        sp = r.get("spread", {})
        rss = r.get("d-rss", {})
        n = r.get("d-size", {})
        ready = float(s["ready_ms"])
        rss_peak = int(rss.get("peak_kb", s["rss_kb"])) / 1024
        out.append(
            f"(d) {n.get('accounts', '?')} accounts × 5 scopes: start to \"tokenbrokerd ready\" (READY=1) {ready:.0f} ms, to the first answered read "
            f"of the last account {float(s['health_ms']):.0f} ms (target ≤ 1000 ms: {'met' if max(ready, float(s['health_ms'])) <= 1000 else 'NOT met'}); "
            f"RSS at ready {int(s['rss_kb']) / 1024:.0f} MB, after the refresh window {int(rss.get('rss_kb', 0)) / 1024:.0f} MB "
            f"(anonymous {int(rss.get('anon_kb', 0)) / 1024:.0f} MB, file-backed {int(rss.get('file_kb', 0)) / 1024:.0f} MB), peak {rss_peak:.0f} MB")
        if sp:
            out.append(
                f"(d) refresh spreading: {sp['refreshes']} refreshes over {sp['seconds_with_refreshes']} s; busiest second "
                f"{sp['busiest_second']}, limit 1.5 × {n.get('tokens', '?')} / {n.get('window_s', '?')} s = {sp['limit']} "
                f"({'met' if int(sp['busiest_second']) <= float(sp['limit']) else 'NOT met'}; {sp['over_limit_seconds']} seconds over); "
                f"the refreshes took {sp['seconds_with_refreshes']} s for a {n.get('window_s', '?')} s jitter window"
                f"{' (throughput-bound: the daemon refreshed slower than the window asks)' if float(sp['seconds_with_refreshes']) > 1.1 * float(n.get('window_s', 1e9)) else ''}; "
                f"skypetokens {sp['skypetokens']}, busiest second {sp['busiest_skypetoken_second']}"
                + (f" against a limit of {sp['skypetoken_limit']} ({sp['skypetoken_over_limit_seconds']} seconds over)" if 'skypetoken_limit' in sp else ""))
    if "f" in r:
        f = r["f"]
        fetched = int(f["skypetokens"]) + int(f["uics"])
        out.append(
            f"(f) restart of {f['accounts']} accounts with valid skypetokens and UICs: livesim issued {f['skypetokens']} skypetokens, "
            f"{f['uics']} UICs and {f['access_tokens']} access tokens in the {f['watch_s']} s after it "
            f"(target: no skypetoken or UIC again before its refresh point: {'met' if fetched == 0 else 'NOT met'})")
    if "e" in r:
        e = r["e"]
        ratio = float(e["ratio"])
        out.append(
            f"(e) `tokenctl token` {e['tokenctl_ms']} ± {e['tokenctl_sd_ms']} ms vs `curl --unix-socket` {e['curl_ms']} ± {e['curl_sd_ms']} ms "
            f"(mean, hyperfine): ratio {ratio:.2f} (target ≤ 1.5: {'met' if ratio <= 1.5 else 'NOT met'})")
    if "e-static" in r:
        st = r["e-static"]
        out.append(f"(e) tokenctl linked with --static-swift-stdlib: {st['tokenctl_ms']} ± {st['tokenctl_sd_ms']} ms, ratio {float(st['ratio']):.2f}")
    print("\n".join(out))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "grants":
        grants(args[0], args[1], int(args[2]), args[3], create=(len(args) < 5 or args[4] != "existing"))
    elif command == "accounts-file":
        accounts_file(args[0], int(args[1]), args[2])
    elif command == "sample":
        sample(args[0], int(args[1]), args[2], int(args[3]) if len(args) > 3 else None)
    elif command == "read-all":
        read_all(args[0], args[1], int(args[2]), args[3])
    elif command == "issued":
        issued(args[0], args[1])
    elif command == "spread":
        spread(args[0], int(args[1]), float(args[2]), args[3] if len(args) > 3 else None)
    elif command == "hyperfine":
        hyperfine_ratio(args[0])
    elif command == "answer":
        sys.stdout.buffer.write(answer(args[0], args[1], close=(len(args) > 2 and args[2] == "close")))
    elif command == "check-floor":
        check_floor(args[0], args[1], args[2], args[3])
    elif command == "table":
        table(args[0], args[1])
    else:
        sys.exit(f"unknown command {command}")
