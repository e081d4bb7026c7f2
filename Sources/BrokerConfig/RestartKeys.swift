/// What a reload cannot change: the keys `ConfigSchema` marks `restart`, and how to tell that
/// each changed.
extension DaemonConfiguration {
    /// Each key that applies only at the next start, with whether it differs between two
    /// configurations. BrokerConfigTests checks that these are exactly the schema's `restart` keys.
    package static let restartKeys:
        [(key: String, differs: @Sendable (DaemonConfiguration, DaemonConfiguration) -> Bool)] = [
            ("socket.path", { $0.socketPath != $1.socketPath }),
            ("socket.mode", { $0.socketMode != $1.socketMode }),
            ("socket.group", { $0.socketGroup != $1.socketGroup }),
            ("state.directory", { $0.stateDirectory != $1.stateDirectory }),
            ("state.key_file", { $0.keyFile != $1.keyFile }),
            ("server.idle_timeout", { $0.idleTimeout != $1.idleTimeout }),
            ("server.max_header_bytes", { $0.maxHeaderBytes != $1.maxHeaderBytes }),
            ("server.max_body_bytes", { $0.maxBodyBytes != $1.maxBodyBytes }),
            ("server.request_timeout", { $0.requestTimeout != $1.requestTimeout }),
            ("server.max_connections", { $0.maxConnections != $1.maxConnections }),
            ("log.target", { $0.logTarget != $1.logTarget }),
        ]

    /// The keys that changed from `old` to `new` but apply only after a restart, in the order of
    /// the reference: a reload logs a warning naming them.
    package static func restartNeeded(from old: DaemonConfiguration, to new: DaemonConfiguration) -> [String] {
        restartKeys.filter { $0.differs(old, new) }.map(\.key)
    }
}
