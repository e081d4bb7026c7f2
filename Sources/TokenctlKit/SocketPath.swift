import BrokerAPI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Which socket tokenctl talks to.
package enum SocketPath {
    /// --socket, else $TOKENBROKER_SOCKET, else the system daemon's socket, else (when only that
    /// exists) the socket of a `systemd --user` daemon in $XDG_RUNTIME_DIR. Empty variables count
    /// as unset.
    package static func resolve(
        option: String?,
        environment: (String) -> String? = SocketPath.environmentValue,
        exists: (String) -> Bool = SocketPath.exists
    ) -> String {
        if let option { return option }
        if let value = environment(BrokerDefaults.socketEnvironmentVariable), !value.isEmpty {
            return value
        }
        if !exists(BrokerDefaults.socketPath), let runtime = environment("XDG_RUNTIME_DIR"), !runtime.isEmpty {
            let user = runtime + "/tokenbroker/tokenbroker.sock"
            if exists(user) { return user }
        }
        return BrokerDefaults.socketPath
    }

    /// The process environment's value of `name`.
    package static func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Whether something exists at `path`.
    package static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}
