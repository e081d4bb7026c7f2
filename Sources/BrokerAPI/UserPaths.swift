/// Where a daemon run by an ordinary user keeps its socket, state and configuration: the XDG
/// base directories, as the user units (`systemd/user/`) use them. The daemon takes these as its
/// defaults when it runs without root; tokenctl looks for the socket there.
///
/// Everything comes in as arguments (the uid, the environment, whether a directory exists), so
/// the same answers hold whoever runs the tests.
public struct UserPaths: Sendable {
    public var uid: UInt32
    /// The environment's values; an empty value counts as unset.
    public var environment: [String: String]
    /// The user's home directory, when the environment has no `HOME`.
    public var home: String?
    public var directoryExists: @Sendable (String) -> Bool

    public init(
        uid: UInt32, environment: [String: String], home: String? = nil,
        directoryExists: @escaping @Sendable (String) -> Bool
    ) {
        self.uid = uid
        self.environment = environment
        self.home = home
        self.directoryExists = directoryExists
    }

    func value(_ name: String) -> String? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        return value
    }

    /// `$XDG_RUNTIME_DIR`, else `/run/user/UID` when that directory exists.
    public var runtimeDirectory: String? {
        if let runtime = value("XDG_RUNTIME_DIR") { return runtime }
        let fallback = "/run/user/\(uid)"
        return directoryExists(fallback) ? fallback : nil
    }

    /// `$XDG_RUNTIME_DIR/tokenbroker/tokenbroker.sock` (`%t/tokenbroker/` in the user socket unit).
    public var socketPath: String? { runtimeDirectory.map { $0 + "/tokenbroker/tokenbroker.sock" } }

    /// Why there is no user socket path: names the variable to set.
    public var socketProblem: String {
        "XDG_RUNTIME_DIR is not set and /run/user/\(uid) does not exist: set XDG_RUNTIME_DIR to a directory "
            + "only you can write, or set [socket] path in a configuration file"
    }

    var homeDirectory: String? { value("HOME") ?? home }

    /// `$XDG_STATE_HOME/tokenbroker`, else `~/.local/state/tokenbroker` (`StateDirectory=` in the
    /// user unit).
    public var stateDirectory: String? {
        if let state = value("XDG_STATE_HOME") { return state + "/tokenbroker" }
        return homeDirectory.map { $0 + "/.local/state/tokenbroker" }
    }

    /// `$XDG_CONFIG_HOME/tokenbroker/tokenbroker.toml`, else `~/.config/tokenbroker/tokenbroker.toml`
    /// (`%E/tokenbroker/` in the user unit).
    public var configurationPath: String? {
        if let config = value("XDG_CONFIG_HOME") { return config + "/tokenbroker/tokenbroker.toml" }
        return homeDirectory.map { $0 + "/.config/tokenbroker/tokenbroker.toml" }
    }
}
