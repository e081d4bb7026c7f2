import BrokerAPI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Which socket tokenctl talks to.
package enum SocketPath {
    /// `--socket`, else `$TOKENBROKER_SOCKET`, else the system daemon's socket when it exists, else
    /// the socket of a daemon run by this user (`$XDG_RUNTIME_DIR/tokenbroker/tokenbroker.sock`,
    /// or under `/run/user/UID` when the variable is unset) when it exists. With neither there,
    /// a user other than root is pointed at their own daemon's socket, root at the system one.
    /// Empty variables count as unset.
    package static func resolve(
        option: String?,
        uid: UInt32 = getuid(),
        environment: @escaping @Sendable (String) -> String? = SocketPath.environmentValue,
        exists: @escaping @Sendable (String) -> Bool = SocketPath.exists
    ) -> String {
        if let option { return option }
        if let value = environment(BrokerDefaults.socketEnvironmentVariable), !value.isEmpty {
            return value
        }
        if exists(BrokerDefaults.socketPath) { return BrokerDefaults.socketPath }
        var values: [String: String] = [:]
        for name in ["XDG_RUNTIME_DIR"] { values[name] = environment(name) }
        let user = UserPaths(uid: uid, environment: values, directoryExists: exists).socketPath
        if let user, exists(user) || uid != 0 { return user }
        return BrokerDefaults.socketPath
    }

    /// The process environment's value of `name`.
    @Sendable package static func environmentValue(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Whether something exists at `path`.
    @Sendable package static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}
