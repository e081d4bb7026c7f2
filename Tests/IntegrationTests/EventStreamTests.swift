import BrokerAPI
import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tokenctl events [--json]` in the background, as the test's user or (with setpriv) as another
/// uid; its lines go to a file.
final class EventReader: @unchecked Sendable {
    let output: String
    private var pid: pid_t?
    private var status: Int32?

    init(_ daemon: DaemonProcess, uid: Int? = nil, account: String? = nil, json: Bool = true) throws {
        output = daemon.directory.file("events-\(UUID().uuidString.prefix(8)).jsonl")
        var command = [Products.path("tokenctl"), "--socket", daemon.socketPath, "events"]
        if json { command.append("--json") }
        if let account { command.append(account) }
        if let uid {
            command = ["/usr/bin/setpriv", "--reuid", "\(uid)", "--regid", "\(uid)", "--clear-groups"] + command
        }
        pid = try Spawn.start(command, stdout: output, stderr: output + ".err")
    }

    /// The lines so far, decoded.
    var events: [[String: Any]] {
        ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] ?? ["unreadable": String($0)]
        }
    }

    var text: String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
    var errors: String { (try? String(contentsOfFile: output + ".err", encoding: .utf8)) ?? "" }

    /// `event account` of each line, for comparing sequences.
    var summary: [String] { events.map { "\($0["event"] ?? "?") \($0["account"] ?? "-")" } }

    /// Waits until `count` lines have arrived.
    func wait(for count: Int, timeout: Duration = .seconds(20)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if events.count >= count { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Waits for tokenctl to exit; its exit status (nil if it had to be killed).
    func exitStatus(timeout: Duration = .seconds(20)) async throws -> Int32? {
        guard let pid else { return status }
        let deadline = ContinuousClock.now + timeout
        var raw: Int32 = 0
        while waitpid(pid, &raw, WNOHANG) == 0 {
            guard ContinuousClock.now < deadline else {
                kill(pid, SIGKILL)
                _ = await Spawn.finished(pid)
                self.pid = nil
                return nil
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        self.pid = nil
        status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        return status
    }

    /// Kills tokenctl if it still runs.
    func stop() {
        guard let pid else { return }
        kill(pid, SIGKILL)
        _ = Spawn.wait(pid)
        self.pid = nil
    }
}

@Suite("Event stream (GET /v1/events, tokenctl events)", .serialized)
struct EventStreamIntegrationTests {
    @Test("root and a uid allowed one account each get exactly the events they may see, in order, without secrets")
    func accessAndOrder() async throws {
        let root = getuid() == 0
        try await withBroker(
            sim: { $0.tokenLifetime = 600 }, socket: ["mode = \"0666\""], topLevel: ["scopes = [\"ssl\"]"],
            extra: "[[access]]\naccounts = [\"erin\"]\nuids = [\"65533\"]"
        ) { sim, daemon in
            for login in ["erin@example.com", "fred@example.com"] {
                _ = try await sim.control(.POST, "accounts", json: #"{"login":"\#(login)","password":"x"}"#)
            }
            try await daemon.importAccount("alice@example.com", sim: sim)
            try await daemon.importAccount("erin@example.com", sim: sim, name: "erin")

            let all = try EventReader(daemon)
            var readers = [all]
            var one: EventReader?
            var named: EventReader?
            if root {
                one = try EventReader(daemon, uid: 65533)
                named = try EventReader(daemon, uid: 65533, account: "erin")
                readers += [one!, named!]
                // Another account by name is refused as any other read; an unknown one is not found.
                let refused = try await runCommand(
                    "/usr/bin/setpriv",
                    [
                        "--reuid", "65533", "--regid", "65533", "--clear-groups", Products.path("tokenctl"), "--socket",
                        daemon.socketPath, "events", "alice@example.com",
                    ])
                #expect(refused.status == 77, "\(refused.stderr)")
            } else {
                print("skip: not root, so no reader runs as uid 65533 (its filtering is not checked)")
            }
            #expect(try await daemon.tokenctl(["events", "nobody"]).status == 3)
            // The state on connect shows the stream is open.
            #expect(try await all.wait(for: 2), "\(all.text)\(all.errors)")
            if let one, let named {
                #expect(try await one.wait(for: 1), "\(one.errors)")
                #expect(try await named.wait(for: 1), "\(named.errors)")
            }

            // A refresh of each account (the tokens were imported more than a second ago).
            try await Task.sleep(for: .milliseconds(1_100))
            #expect(try await daemon.token("erin", scope: "ssl", minValid: 599).status == 200)
            #expect(try await daemon.token("alice@example.com", scope: "ssl", minValid: 599).status == 200)
            // erin's grant revoked: needs_reauth (at the next refresh, which a read asking for more
            // than a token's lifetime forces), then a new sign-in.
            #expect(try await sim.control(.POST, "accounts/erin@example.com/revoke").status == 200)
            #expect(try await daemon.token("erin", scope: "ssl", minValid: 600).errorCode == "needs_reauth")
            try await daemon.importAccount("erin@example.com", sim: sim, name: "erin")
            // An account erin's reader may not read comes and alice goes.
            try await daemon.importAccount("fred@example.com", sim: sim)
            #expect(try await daemon.tokenctl(["logout", "alice@example.com"]).status == 0)

            let expected = [
                "state alice@example.com", "state erin", "refreshed erin", "refreshed alice@example.com",
                "needs_reauth erin", "reauthenticated erin", "enrolled fred@example.com",
                "logged_out alice@example.com",
            ]
            let erins = ["state erin", "refreshed erin", "needs_reauth erin", "reauthenticated erin"]
            #expect(try await all.wait(for: expected.count), "\(all.text)")
            if let one, let named {
                #expect(try await one.wait(for: erins.count), "\(one.text)")
                #expect(try await named.wait(for: erins.count), "\(named.text)")
            }
            let secrets = try await sim.secrets()
            #expect(await daemon.stop() == 0)

            // The daemon stopped: each stream ends with `shutdown`, and tokenctl with status 0.
            for reader in readers { #expect(try await reader.exitStatus() == 0, "\(reader.text)\(reader.errors)") }
            #expect(all.summary == expected + ["shutdown -"])
            if let one, let named {
                #expect(one.summary == erins + ["shutdown -"])
                #expect(named.summary == erins + ["shutdown -"])
                // One event, one id, whoever reads it (a `state` event is each stream's own).
                #expect(
                    one.events.dropFirst().map { $0["id"] as? Int } == named.events.dropFirst().map { $0["id"] as? Int }
                )
                let ids = Dictionary(all.events.map { ("\($0["event"]!) \($0["account"] ?? "-")", $0["id"] as? Int) }) {
                    first, _ in first
                }
                for event in one.events.dropFirst().dropLast() {
                    #expect(ids["\(event["event"]!) \(event["account"]!)"] == event["id"] as? Int)
                }
            }
            let events = all.events
            let ids = events.compactMap { $0["id"] as? Int }
            #expect(ids.count == events.count && ids == ids.sorted() && Set(ids).count == ids.count)
            let refreshed = events[2]
            #expect(refreshed["kind"] as? String == "token")
            #expect(refreshed["scope"] as? String == "service::ssl.live.com::MBI_SSL")
            #expect(refreshed["next_refresh_at"] is String && refreshed["at"] is String)
            let reauth = events[4]
            #expect(reauth["error_code"] as? String == "needs_reauth")
            #expect((reauth["message"] as? String)?.contains("revoked") == true)
            #expect(reauth["next_refresh_at"] == nil)
            #expect(events[1]["state"] as? String == "active")
            #expect(events[5]["next_refresh_at"] is String && events[7]["kind"] == nil)
            // No secret livesim issued is in any stream.
            for reader in readers {
                let text = reader.text
                for secret in secrets where secret.count >= 8 { #expect(!text.contains(secret)) }
            }
        }
    }

}

/// 10,000 events as fast as the daemon commits them: a load that would disturb the timing of the
/// other suites, so `scripts/test` runs it on its own, after them, with the hostile clients.
@Suite("Event stream under load")
struct EventStreamLoadTests {
    @Test("a reader that never reads is dropped once 1 MiB waits for it; RSS grows at most 5 MB over 10,000 events")
    func slowReaderMemory() async throws {
        try await withLiveSim({ $0.tokenLifetime = 3600 }) { sim in
            let daemon = try DaemonProcess(sim: sim, topLevel: ["scopes = [\"ssl\"]"])
            if getuid() == 0 {
                // Each event here is an enrollment, a committed write: on a tmpfs in the daemon's own
                // mount namespace they cost no disk flush.
                let script = daemon.directory.file("mount-state.sh")
                try """
                #!/bin/sh
                set -e
                mkdir -p "\(daemon.directory.file("state"))"
                mount -t tmpfs -o size=64m,mode=0700 tokenbroker-state "\(daemon.directory.file("state"))"
                exec "$@"
                """.write(toFile: script, atomically: true, encoding: .utf8)
                daemon.launcher = ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", script]
            } else {
                print("note: not root, so the daemon's state stays on disk and this test takes longer")
            }
            do {
                try await daemon.start()
                try await slowReader(sim, daemon)
            } catch {
                print("daemon log:\n" + daemon.log.suffix(4000))
                await daemon.shutdown()
                throw error
            }
            await daemon.shutdown()
        }
    }

    func slowReader(_ sim: LiveSimFixture, _ daemon: DaemonProcess) async throws {
        try await daemon.importAccount("alice@example.com", sim: sim)
        let pid = try #require(daemon.pid)
        // A sign-in pasted again and again: each is an enrollment of an enrolled account, one
        // `reauthenticated` event, and no call to the identity provider.
        let grant = try await sim.grant("alice@example.com", scope: "service::ssl.live.com::MBI_SSL")
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        func encoded(_ key: String) -> String {
            (grant[key] as? String ?? "").addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        }
        let location =
            "https://login.live.com/oauth20_desktop.srf#access_token=\(encoded("access_token"))&token_type=bearer"
            + "&expires_in=3600&scope=service::ssl.live.com::MBI_SSL&refresh_token=\(encoded("refresh_token"))"
        let body = String(
            decoding: try JSONSerialization.data(withJSONObject: [
                "method": "redirect_url", "login": "alice@example.com", "redirect_url": location,
            ]), as: UTF8.self)
        @Sendable func enroll(_ count: Int) async throws -> Int {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var failed = 0
                        for _ in 0..<(count / 4) {
                            if try await daemon.request(.POST, "/v1/accounts", body: body).status != 201 { failed += 1 }
                        }
                        return failed
                    }
                }
                return try await group.reduce(0, +)
            }
        }

        let stuck = connectUnix(daemon.socketPath)
        try #require(stuck >= 0)
        defer { close(stuck) }
        var small: Int32 = 4096
        setsockopt(stuck, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        #expect(sendAll(stuck, Array("GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)))
        let reader = try EventReader(daemon)
        defer { reader.stop() }
        #expect(try await reader.wait(for: 1))

        #expect(try await enroll(400) == 0)
        #expect(try await reader.wait(for: 401))
        let before = try #require(residentKilobytes(pid))
        let started = ContinuousClock.now
        #expect(try await enroll(10_000) == 0)
        #expect(try await reader.wait(for: 10_401, timeout: .seconds(60)), "\(reader.events.count) events read")
        let elapsed = ContinuousClock.now - started
        let after = try #require(residentKilobytes(pid))
        print("events: 10,000 in \(elapsed); daemon RSS \(before) kB before, \(after) kB after (+\(after - before) kB)")
        #expect(after - before <= 5_000, "RSS grew by \(after - before) kB")

        // The reader that did not read was dropped, with a last event that says why.
        let (bytes, closed) = await offloaded { readToEnd(stuck, timeout: .seconds(20)) }
        #expect(closed)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"))
        var parser = EventStreamParser()
        let events = try parser.feed(Array(text[(text.range(of: "\r\n\r\n")?.upperBound ?? text.endIndex)...].utf8))
        #expect(events.last?.type == "dropped")
        #expect(events.last?.decoded?.message?.contains("more than 1 MiB behind") == true)
        // Only what the socket's buffers held arrives before the last event: what was queued for
        // the reader was dropped with it.
        #expect(events.count > 1 && events.count < 10_401, "\(events.count) events before the drop")
        #expect(events.dropFirst().dropLast().allSatisfy { $0.type == "reauthenticated" && $0.decoded != nil })
        let dropLine = daemon.log.split(separator: "\n").first { $0.contains("event stream reader dropped") } ?? ""
        let queued = dropLine.split(separator: " ").first { $0.hasPrefix("broker.queued_bytes=") }
            .flatMap { Int($0.dropFirst("broker.queued_bytes=".count)) }
        #expect(queued.map { $0 > 1 << 20 && $0 < (1 << 20) + 4096 } == true, "\(dropLine)")

        // The reader that read got every event, and the daemon's stop.
        #expect(await daemon.stop() == 0)
        #expect(try await reader.exitStatus() == 0)
        #expect(reader.summary.last == "shutdown -")
        #expect(reader.summary.dropFirst().dropLast().allSatisfy { $0 == "reauthenticated alice@example.com" })
    }
}
