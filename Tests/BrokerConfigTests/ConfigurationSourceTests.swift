import BrokerConfig
import BrokerCore
import Foundation
import Testing

/// Where the configuration comes from, and the built-in defaults for root and for a user.
@Suite struct ConfigurationSourceTests {
    private func source(
        _ explicit: String? = nil, uid: UInt32, _ environment: [String: String], home: String? = "/home/ann",
        existing: Set<String> = []
    ) -> ConfigurationSource {
        ConfigurationSource(
            explicitPath: explicit, uid: uid, environment: environment, home: home,
            fileExists: { existing.contains($0) })
    }

    @Test("root with no file: the system paths, the live realm, and the origin says built-in defaults")
    func rootDefaults() throws {
        let (c, origin) = try source(uid: 0, [:]).load(fileExists: { _ in false })
        #expect(origin == .builtIn(defaultPath: "/etc/tokenbroker/tokenbroker.toml"))
        #expect(origin.description.contains("built-in defaults"))
        #expect(c.socketPath == "/run/tokenbroker/tokenbroker.sock")
        #expect(c.socketMode == 0o660)
        #expect(c.stateDirectory == "/var/lib/tokenbroker")
        #expect(c.realms.map(\.name) == ["live"])
        #expect(c.realms.first?.loginBase == "https://login.live.com")
    }

    @Test("a user with no file: the socket in XDG_RUNTIME_DIR, the state in XDG_STATE_HOME or ~/.local/state")
    func userDefaults() throws {
        let xdg = ["XDG_RUNTIME_DIR": "/run/user/1000", "XDG_STATE_HOME": "/home/ann/state"]
        let (c, origin) = try source(uid: 1000, xdg).load(fileExists: { _ in false })
        #expect(origin == .builtIn(defaultPath: "/home/ann/.config/tokenbroker/tokenbroker.toml"))
        #expect(c.socketPath == "/run/user/1000/tokenbroker/tokenbroker.sock")
        #expect(c.socketMode == 0o600)
        #expect(c.stateDirectory == "/home/ann/state/tokenbroker")
        #expect(c.resolvedKeyFile == "/home/ann/state/tokenbroker/key")

        let plain = try source(uid: 1000, ["XDG_RUNTIME_DIR": "/tmp/rt", "HOME": "/h"]).load(fileExists: { _ in false })
        #expect(plain.0.socketPath == "/tmp/rt/tokenbroker/tokenbroker.sock")
        #expect(plain.0.stateDirectory == "/h/.local/state/tokenbroker")
        #expect(plain.1 == .builtIn(defaultPath: "/h/.config/tokenbroker/tokenbroker.toml"))
        // No HOME in the environment: the password database's home.
        #expect(
            try source(uid: 1000, ["XDG_RUNTIME_DIR": "/r"]).load(fileExists: { _ in false }).0.stateDirectory
                == "/home/ann/.local/state/tokenbroker")
        // systemd's StateDirectory= wins, as in the user unit.
        let unit = try source(uid: 1000, ["XDG_RUNTIME_DIR": "/r", "STATE_DIRECTORY": "/home/ann/.local/state/tb"])
            .load(fileExists: { _ in false })
        #expect(unit.0.stateDirectory == "/home/ann/.local/state/tb")
    }

    @Test("no XDG_RUNTIME_DIR: /run/user/UID when it exists, else an error naming the variable")
    func runtimeFallback() throws {
        let fallback = try source(uid: 1000, [:], existing: ["/run/user/1000"]).load(fileExists: { _ in false })
        #expect(fallback.0.socketPath == "/run/user/1000/tokenbroker/tokenbroker.sock")
        #expect(throws: BrokerError.self) {
            try source(uid: 1000, ["XDG_RUNTIME_DIR": ""]).load(fileExists: { _ in false })
        }
        do {
            _ = try source(uid: 1000, [:]).load(fileExists: { _ in false })
            Issue.record("loaded without a runtime directory")
        } catch {
            #expect(error.message.contains("XDG_RUNTIME_DIR"), "\(error.message)")
            #expect(error.message.contains("/run/user/1000"), "\(error.message)")
        }
    }

    @Test("a file at the default path is read; keys it leaves out take the system defaults, for any user")
    func defaultFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfgsrc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("tokenbroker"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.path + "/tokenbroker/tokenbroker.toml"
        try "[log]\nlevel = \"debug\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let environment = ["XDG_CONFIG_HOME": directory.path, "HOME": "/h"]
        let (c, origin) = try source(uid: 1000, environment).load()
        #expect(origin == .file(path))
        #expect(c.logLevel == "debug")
        // As under the system unit's DynamicUser, with no runtime directory: the system socket.
        #expect(c.socketPath == "/run/tokenbroker/tokenbroker.sock")
        #expect(c.stateDirectory == "/var/lib/tokenbroker")
        try "[socket]\npath = \"/tmp/x.sock\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try source(uid: 1000, ["XDG_CONFIG_HOME": directory.path]).load().0.socketPath == "/tmp/x.sock")
    }

    @Test("an explicit --config that is missing is an error, for root and for a user")
    func explicitMissing() {
        for uid: UInt32 in [0, 1000] {
            do {
                _ = try source("/nonexistent/tokenbroker.toml", uid: uid, ["XDG_RUNTIME_DIR": "/r"]).load()
                Issue.record("a missing --config loaded")
            } catch {
                #expect(error.message.contains("cannot read configuration /nonexistent/tokenbroker.toml"))
            }
        }
    }
}
