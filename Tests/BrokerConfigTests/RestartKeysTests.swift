import BrokerConfig
import Testing

@Suite("Configuration: keys that need a restart")
struct RestartKeysTests {
    /// A changed value for each key that applies only at the next start.
    static let changed: [String: String] = [
        "socket.path": "\"/tmp/other.sock\"", "socket.mode": "\"0600\"", "socket.group": "\"wheel\"",
        "state.directory": "\"/tmp/other-state\"", "state.key_file": "\"/tmp/other-key\"",
        "server.idle_timeout": "11", "server.max_header_bytes": "4096", "server.max_body_bytes": "4096",
        "server.request_timeout": "6", "server.max_connections": "100", "log.target": "\"stderr\"",
    ]

    @Test("the keys a reload reports are the schema's restart keys, and each change is reported by its name alone")
    func restartKeys() throws {
        let schema = ConfigSchema.tables.flatMap { table in
            table.keys.filter { $0.reload == .restart }.map { table.qualifiedName($0) }
        }
        #expect(DaemonConfiguration.restartKeys.map(\.key) == schema)
        // As docs/CONFIGURATION.md and the example say: every key of [socket], [state] and
        // [server], and log.target.
        let documented = [ConfigSchema.socket, ConfigSchema.state, ConfigSchema.server].flatMap { table in
            table.keys.map { table.qualifiedName($0) }
        }
        #expect(Set(schema) == Set(documented + ["log.target"]))
        #expect(Set(Self.changed.keys) == Set(schema))
        let base = try DaemonConfiguration.parse("", names: testNames)
        for (key, value) in Self.changed {
            let parts = key.split(separator: ".")
            let new = try DaemonConfiguration.parse("[\(parts[0])]\n\(parts[1]) = \(value)", names: testNames)
            #expect(DaemonConfiguration.restartNeeded(from: base, to: new) == [key])
        }
        // What a reload applies is not reported.
        let live = try DaemonConfiguration.parse(
            "scopes = [\"skype\"]\n[refresh]\nread_wait = 1\n[log]\nlevel = \"debug\"\n[realms.other]", names: testNames
        )
        #expect(DaemonConfiguration.restartNeeded(from: base, to: live).isEmpty)
    }
}
