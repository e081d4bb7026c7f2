import Foundation
import Testing

@testable import TestSupport

/// A daemon run by an ordinary user: the built-in defaults (XDG paths) with no configuration file,
/// and that user administering their own daemon. Run as root, the daemon and its owner's clients
/// drop to a non-root uid with setpriv; run as an ordinary user, they run as that user.
@Suite("An ordinary user's own daemon")
struct OrdinaryUserTests {
    /// The uid the daemon runs as: this process's own, or (as root) a non-root one.
    static let owner: UInt32 = getuid() == 0 ? 65532 : getuid()
    static let stranger: UInt32 = 65534

    /// The command prefix that runs a program as `uid` with exactly `environment`.
    static func asUser(_ uid: UInt32, _ environment: [String: String]) -> [String] {
        let env =
            ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin"] + environment.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }
        guard getuid() == 0 else { return env }
        return ["/usr/bin/setpriv", "--reuid", "\(uid)", "--regid", "\(uid)", "--clear-groups"] + env
    }

    /// Runs a program as `uid` with exactly `environment`, to completion.
    static func run(
        _ uid: UInt32, _ environment: [String: String], _ command: [String], stdin: String? = nil
    ) async throws -> CommandResult {
        let full = asUser(uid, environment) + command
        return try await runCommand(full[0], Array(full.dropFirst()), stdin: stdin)
    }

    /// A directory tree for the owner: `home`, `runtime` (0700, as /run/user/UID is).
    static func ownerDirectory() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        for name in ["home", "runtime"] {
            try FileManager.default.createDirectory(
                atPath: directory.file(name), withIntermediateDirectories: false,
                attributes: [.posixPermissions: 0o700])
        }
        chmod(directory.path, 0o755)
        if getuid() == 0 {
            for name in ["home", "runtime"] { chown(directory.file(name), owner, owner) }
        }
        return directory
    }

    /// Waits for a socket file, while the process runs.
    static func waitForSocket(_ path: String, pid: pid_t) async throws {
        for _ in 0..<200 where Spawn.isRunning(pid) {
            if access(path, F_OK) == 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test("no configuration file: the built-in defaults, the socket in XDG_RUNTIME_DIR; tokenctl status finds it")
    func builtInDefaults() async throws {
        let directory = try Self.ownerDirectory()
        defer { directory.cleanup() }
        let home = directory.file("home")
        let environment = [
            "HOME": home, "XDG_RUNTIME_DIR": directory.file("runtime"),
            "XDG_CONFIG_HOME": home + "/.config", "XDG_STATE_HOME": home + "/.local/state",
        ]
        let log = directory.file("daemon.log")
        let pid = try Spawn.start(
            Self.asUser(Self.owner, environment) + [Products.path("tokenbrokerd")], stdout: log, stderr: log)
        try await Spawn.stopping(pid) {
            let socket = directory.file("runtime") + "/tokenbroker/tokenbroker.sock"
            try await Self.waitForSocket(socket, pid: pid)
            let daemonLog = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
            try #require(access(socket, F_OK) == 0, "no socket at \(socket): \(daemonLog())")
            let attributes = try FileManager.default.attributesOfItem(atPath: socket)
            #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == Self.owner)
            #expect(((attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0) & 0o777 == 0o600)
            #expect(daemonLog().contains("running on the built-in defaults"), "\(daemonLog())")
            let health = try await runCommand(
                "/usr/bin/curl", ["-sf", "--unix-socket", socket, "http://localhost/v1/health"])
            #expect(health.status == 0 && health.stdout.contains("\"status\""), "\(health)")
            // tokenctl with no --socket and no TOKENBROKER_SOCKET finds the user's socket.
            let status = try await Self.run(Self.owner, environment, [Products.path("tokenctl"), "status"])
            #expect(status.status == 0, "\(status.stderr)")
            // The state went to XDG_STATE_HOME, for this user only.
            let state = home + "/.local/state/tokenbroker"
            #expect(FileManager.default.fileExists(atPath: state + "/key"))
            let stateAttributes = try FileManager.default.attributesOfItem(atPath: state)
            #expect((stateAttributes[.ownerAccountID] as? NSNumber)?.uint32Value == Self.owner)
            #expect(((stateAttributes[.posixPermissions] as? NSNumber)?.intValue ?? 0) & 0o777 == 0o700)
        }
    }

    @Test(
        "the daemon's own uid enrolls and reads with no admin group or access rule; another uid may not enroll (77)")
    func ownerAdministers() async throws {
        try await withLiveSim { sim in
            let daemon = try DaemonProcess(sim: sim, socket: ["mode = \"0666\""])
            chmod(daemon.directory.path, 0o755)
            if getuid() == 0 {
                for path in [daemon.directory.path, daemon.configPath, daemon.directory.file("ca.pem")] {
                    chown(path, Self.owner, Self.owner)
                }
                daemon.launcher = Self.asUser(Self.owner, ["HOME": daemon.directory.path])
            }
            func run(_ uid: UInt32, _ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
                try await Self.run(
                    uid, ["HOME": "/"], [Products.path("tokenctl"), "--socket", daemon.socketPath] + arguments,
                    stdin: stdin)
            }
            do {
                try await daemon.start()
                let login = try await run(
                    Self.owner, ["login", "alice@example.com", "--password-stdin"], stdin: "correct horse\n")
                #expect(login.status == 0, "\(login.stderr)\n\(daemon.log.suffix(2000))")
                let token = try await run(Self.owner, ["token", "alice@example.com", "--scope", "ssl"])
                #expect(token.status == 0, "\(token.stderr)")
                let value = token.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(try await sim.validate(value)["valid"] as? Bool == true)
                #expect(try await run(Self.owner, ["status"]).status == 0)
                guard getuid() == 0 else {
                    print("skip: another uid's refusal needs root (setpriv to a second uid)")
                    await daemon.shutdown()
                    return
                }
                let stranger = try await run(
                    Self.stranger, ["login", "bob@example.com", "--password-stdin"], stdin: "hunter2\n")
                #expect(stranger.status == 77, "\(stranger.stdout) \(stranger.stderr)")
                #expect(stranger.stderr.contains("uid \(Self.stranger)"), "\(stranger.stderr)")
                #expect(try await run(Self.stranger, ["token", "alice@example.com"]).status == 77)
                #expect(try await run(Self.stranger, ["logout", "alice@example.com"]).status == 77)
                #expect(try await run(Self.owner, ["logout", "alice@example.com"]).status == 0)
            } catch {
                print("daemon log:\n" + daemon.log.suffix(4000))
                await daemon.shutdown()
                throw error
            }
            await daemon.shutdown()
        }
    }
}
