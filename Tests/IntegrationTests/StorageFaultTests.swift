import Foundation
import LiveSim
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The state directory on a small tmpfs in the daemon's own mount namespace, so the test can
/// fill it or make it read-only without touching the machine's mounts.
@Suite(
    "Storage faults: a full disk and a read-only database",
    .enabled(if: getuid() == 0, "needs root for mount namespaces"))
struct StorageFaultTests {
    func namespaced(_ daemon: DaemonProcess) throws {
        let script = daemon.directory.file("mount-state.sh")
        try """
        #!/bin/sh
        set -e
        mkdir -p "\(daemon.directory.file("state"))"
        mount -t tmpfs -o size=1m,mode=0700 tokenbroker-state "\(daemon.directory.file("state"))"
        exec "$@"
        """.write(toFile: script, atomically: true, encoding: .utf8)
        daemon.launcher = ["/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", script]
    }

    /// Runs a shell command inside the daemon's mount namespace.
    func inside(_ daemon: DaemonProcess, _ command: String) async throws -> CommandResult {
        try await runCommand("/usr/bin/nsenter", ["-t", "\(daemon.pid ?? 0)", "-m", "/bin/sh", "-c", command])
    }

    func health(_ daemon: DaemonProcess) async throws -> [String: Any] { try await daemon.get("/v1/health").json }

    @Test(
        "full disk, then space returns: tokens keep being served, status says degraded, the rotated token is never lost"
    )
    func fullDisk() async throws {
        try await withLiveSim({
            $0.tokenLifetime = 4
            $0.rotation = .strict
        }) { sim in
            let daemon = try DaemonProcess(sim: sim, refresh: ["safety_margin = 1"])
            try namespaced(daemon)
            do {
                try await daemon.start()
                try await daemon.importAccount("alice@example.com", sim: sim)
                let state = daemon.directory.file("state")
                #expect(
                    try await inside(daemon, "dd if=/dev/zero of=\(state)/filler bs=4k 2>/dev/null; true").status == 0)
                // Refreshes go on (strict rotation) while nothing can be written.
                var degradedSeen = false
                var failures = 0
                let start = ContinuousClock.now
                while ContinuousClock.now - start < .seconds(10) {
                    for alias in ["skype", "ssl", "contacts"] {
                        let read = try await daemon.token("alice@example.com", scope: alias)
                        if read.status != 200 { failures += 1 }
                    }
                    if try await health(daemon)["status"] as? String == "degraded" { degradedSeen = true }
                    try await Task.sleep(for: .milliseconds(200))
                }
                #expect(failures == 0)
                #expect(degradedSeen)
                #expect((try await health(daemon)["storage_error"] as? String) != nil)
                #expect(daemon.log.contains("storage_degraded"))
                // Space returns: the daemon writes what it held and recovers by itself.
                #expect(try await inside(daemon, "rm -f \(state)/filler").status == 0)
                let recovered = ContinuousClock.now
                while try await health(daemon)["status"] as? String != "ok",
                    ContinuousClock.now - recovered < .seconds(10)
                {
                    try await Task.sleep(for: .milliseconds(200))
                }
                #expect(try await health(daemon)["status"] as? String == "ok")
                #expect(daemon.log.contains("storage_recovered"))
                // Nothing was lost: the chain of rotated tokens is intact, and what is on disk is the newest.
                let counters = try await sim.counters()
                #expect(counters["refresh_token_reuse"] as? Int == 0)
                #expect(counters["revoked_families"] as? Int == 0)
                #expect(try await daemon.token("alice@example.com", scope: "hotmail", minValid: 3).status == 200)
                #expect((try await daemon.get("/v1/accounts/alice@example.com")).json["state"] as? String == "active")
            } catch {
                print(daemon.log.suffix(3000))
                await daemon.shutdown()
                throw error
            }
            await daemon.shutdown()
        }
    }

    @Test("a database turned read-only while running: served, degraded, and recovered when writable again")
    func readOnly() async throws {
        try await withLiveSim({
            $0.tokenLifetime = 4
            $0.rotation = .strict
        }) { sim in
            // The database and its WAL turn immutable (chattr +i): every write fails, even for root.
            // (The -shm index stays writable: it is memory-mapped, and an immutable mapping faults.)
            let daemon = try DaemonProcess(sim: sim, refresh: ["safety_margin = 1"])
            let state = daemon.directory.file("state")
            let files = ["", "-wal"].map { "\(state)/tokenbroker.sqlite\($0)" }
            do {
                try await daemon.start()
                try await daemon.importAccount("alice@example.com", sim: sim)
                let frozen = try await runCommand("/usr/bin/chattr", ["+i"] + files)
                try #require(frozen.status == 0, "chattr is not supported here: \(frozen.stderr)")
                var degradedSeen = false
                var failures = 0
                let start = ContinuousClock.now
                while ContinuousClock.now - start < .seconds(8) {
                    if try await daemon.token("alice@example.com", scope: "skype").status != 200 { failures += 1 }
                    if try await health(daemon)["status"] as? String == "degraded" { degradedSeen = true }
                    try await Task.sleep(for: .milliseconds(200))
                }
                #expect(failures == 0)
                #expect(degradedSeen)
                #expect(try await runCommand("/usr/bin/chattr", ["-i"] + files).status == 0)
                let recovered = ContinuousClock.now
                while try await health(daemon)["status"] as? String != "ok",
                    ContinuousClock.now - recovered < .seconds(10)
                {
                    try await Task.sleep(for: .milliseconds(200))
                }
                #expect(try await health(daemon)["status"] as? String == "ok")
                #expect((try await sim.counters())["refresh_token_reuse"] as? Int == 0)
            } catch {
                _ = try? await runCommand("/usr/bin/chattr", ["-i"] + files)
                print(daemon.log.suffix(3000))
                await daemon.shutdown()
                throw error
            }
            await daemon.shutdown()
        }
    }
}
