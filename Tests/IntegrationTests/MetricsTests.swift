import Foundation
import LiveSim
import TestSupport
import Testing

@Suite("Metrics", .enabled(if: getuid() == 0, "needs root to run clients under other uids"))
struct MetricsTests {
    /// The value of one sample line, `name{labels} value`.
    func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test("GET /metrics counts a refresh, a denied read and a failed refresh; only admins and metrics_uids may read it")
    func scrape() async throws {
        try await withBroker(
            sim: { $0.tokenLifetime = 600 }, socket: ["mode = \"0666\""], topLevel: ["metrics_uids = [\"65533\"]"]
        ) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            // A first read of each scope waits for its first refresh, if it is still under way: the
            // five are done before the fault below, which must meet the contacts refresh and no
            // other. A second read is served from the cache.
            for scope in ["skype", "ssl", "login-skype", "contacts", "hotmail"] {
                #expect(try await daemon.token("alice@example.com", scope: scope).status == 200)
            }
            #expect(try await daemon.token("alice@example.com", scope: "ssl").status == 200)
            // A denied read.
            let denied = try await runCommand(
                "/usr/bin/setpriv",
                [
                    "--reuid", "65534", "--regid", "65534", "--clear-groups", Products.path("tokenctl"), "--socket",
                    daemon.socketPath,
                    "token", "alice@example.com",
                ])
            #expect(denied.status == 77)
            // A failed refresh, then a good one.
            try await sim.addFault(#"{"endpoint":"token","kind":"status","status":503,"count":1}"#)
            try await Task.sleep(for: .milliseconds(1_100))
            #expect(try await daemon.token("alice@example.com", scope: "contacts", minValid: 599).status == 200)

            let response = try await daemon.get("/metrics")
            #expect(response.status == 200)
            #expect(response.header("Content-Type")?.hasPrefix("text/plain") == true)
            let text = response.body
            #expect((sample(text, #"tokenbroker_refreshes_total{result="ok"}"#) ?? 0) >= 6)
            #expect((sample(text, #"tokenbroker_refreshes_total{result="failed"}"#) ?? 0) >= 1)
            #expect((sample(text, #"tokenbroker_reads_total{result="denied"}"#) ?? 0) >= 1)
            #expect((sample(text, #"tokenbroker_reads_total{result="fresh"}"#) ?? 0) >= 1)
            #expect((sample(text, #"tokenbroker_reads_total{result="refreshed"}"#) ?? 0) >= 1)
            #expect(sample(text, #"tokenbroker_accounts{state="active"}"#) == 1)
            // One family, one TYPE line: the read counter and histogram are written by the daemon
            // itself, next to the registry's families, and must not repeat one of them.
            let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map {
                $0.split(separator: " ")[2]
            }
            #expect(types.count == Set(types).count, "families with more than one TYPE line: \(types)")
            #expect(types.contains("tokenbroker_reads_total"))
            // Every read that was answered (fresh or refreshed) is in the duration histogram; the
            // buckets are cumulative, the last one is every read.
            let timed = sample(text, "tokenbroker_read_duration_seconds_count") ?? 0
            #expect(
                timed >= (sample(text, #"tokenbroker_reads_total{result="fresh"}"#) ?? 0)
                    + (sample(text, #"tokenbroker_reads_total{result="refreshed"}"#) ?? 0))
            #expect(sample(text, #"tokenbroker_read_duration_seconds_bucket{le="+Inf"}"#) == timed)
            #expect(
                (sample(text, #"tokenbroker_read_duration_seconds_bucket{le="0.001"}"#) ?? 0)
                    <= (sample(text, #"tokenbroker_read_duration_seconds_bucket{le="0.01"}"#) ?? -1))
            #expect((sample(text, "tokenbroker_read_duration_seconds_sum") ?? 0) > 0)
            #expect(text.contains("tokenbroker_refresh_lateness_seconds_bucket"))
            // malloc's view, read when the metrics are rendered.
            #expect((sample(text, #"tokenbroker_heap_bytes{state="in_use"}"#) ?? 0) > 1_000_000)
            #expect(sample(text, #"tokenbroker_heap_bytes{state="free"}"#) != nil)
            // The secret slab: the account's refresh token and its tokens live there, in slots at
            // most 63 bytes larger each, inside what the slab has mapped.
            let secrets = sample(text, "tokenbroker_secrets") ?? 0
            let payload = sample(text, #"tokenbroker_secret_bytes{state="payload"}"#) ?? 0
            let slots = sample(text, #"tokenbroker_secret_bytes{state="slots"}"#) ?? 0
            let mapped = sample(text, #"tokenbroker_secret_bytes{state="mapped"}"#) ?? 0
            #expect(secrets >= 3)
            #expect(payload > 1_000)
            #expect(slots >= payload && slots < payload + 64 * secrets)
            #expect(mapped >= slots)
            #expect((sample(text, #"tokenbroker_resident_bytes{kind="anon"}"#) ?? 0) > mapped)
            #expect((sample(text, #"tokenbroker_resident_bytes{kind="file"}"#) ?? 0) > 1_000_000)

            func curl(asUID uid: Int) async throws -> CommandResult {
                try await runCommand(
                    "/usr/bin/setpriv",
                    [
                        "--reuid", "\(uid)", "--regid", "\(uid)", "--clear-groups", "/usr/bin/curl", "-s", "-o",
                        "/dev/null", "-w", "%{http_code}",
                        "--unix-socket", daemon.socketPath, "http://localhost/metrics",
                    ])
            }
            #expect(try await curl(asUID: 65533).stdout == "200")
            #expect(try await curl(asUID: 65534).stdout == "403")
        }
    }
}
