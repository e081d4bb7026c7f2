import BrokerAPI
import BrokerCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Where the daemon's configuration comes from: a file named with `--config`, else the file at
/// the default path when there is one, else the built-in defaults.
///
/// The defaults depend on who runs the daemon. Root gets the system paths
/// (`/etc/tokenbroker/tokenbroker.toml`, `/run/tokenbroker/`, `/var/lib/tokenbroker`); any other
/// user gets the XDG base directories the user units use (`UserPaths`): the configuration in
/// `$XDG_CONFIG_HOME/tokenbroker/`, the socket in `$XDG_RUNTIME_DIR/tokenbroker/` and the state in
/// `$XDG_STATE_HOME/tokenbroker`. systemd's `STATE_DIRECTORY` wins over both.
package struct ConfigurationSource: Sendable {
    /// The `--config` path: a file that must exist.
    package var explicitPath: String?
    package var uid: UInt32
    package var environment: [String: String]
    package var user: UserPaths

    package init(
        explicitPath: String?, uid: UInt32 = getuid(),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        home: String? = ConfigurationSource.passwordHome(),
        fileExists: @escaping @Sendable (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }
    ) {
        self.explicitPath = explicitPath
        self.uid = uid
        self.environment = environment
        self.user = UserPaths(uid: uid, environment: environment, home: home, directoryExists: fileExists)
    }

    /// Which configuration this is, for the log and for `--check-config`.
    package enum Origin: Sendable, Equatable {
        case file(String)
        /// No `--config` and no file at `defaultPath`.
        case builtIn(defaultPath: String)

        package var description: String {
            switch self {
            case .file(let path): path
            case .builtIn(let path): "the built-in defaults (no file at \(path))"
            }
        }
    }

    /// The file read when no `--config` is given.
    package var defaultPath: String {
        uid == 0 ? DaemonConfiguration.defaultPath : (user.configurationPath ?? DaemonConfiguration.defaultPath)
    }

    /// Reads the configuration: the explicit file (which must exist), the file at the default
    /// path, or the built-in defaults (this user's). Keys a file leaves out take the system
    /// defaults.
    package func load(fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) })
        throws(BrokerError) -> (DaemonConfiguration, Origin)
    {
        let path = explicitPath ?? defaultPath
        if explicitPath == nil, !fileExists(path) {
            return (try builtInDefaults(source: "built-in defaults").resolve(), .builtIn(defaultPath: path))
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw BrokerError(.badRequest, "cannot read configuration \(path): \(error.localizedDescription)")
        }
        // A file's missing keys take the system defaults, whoever runs the daemon: the system
        // unit runs it as a DynamicUser, with the socket passed by systemd.
        let configuration = try DaemonConfiguration.parse(text, source: path, environment: environment)
        return (configuration, .file(path))
    }

    /// The defaults for this user, with the socket left unresolved when a non-root user has no
    /// runtime directory: an error only if the configuration does not name a socket itself.
    package func builtInDefaults(source: String) throws(BrokerError) -> Defaults {
        var c = DaemonConfiguration()
        var socketProblem: String?
        if uid != 0 {
            c.socketMode = 0o600
            if let socket = user.socketPath {
                c.socketPath = socket
            } else {
                c.socketPath = ""
                socketProblem = user.socketProblem
            }
            if let state = user.stateDirectory { c.stateDirectory = state }
        }
        // systemd's StateDirectory= (several are separated by colons; the first is ours).
        if let given = environment["STATE_DIRECTORY"]?.split(separator: ":").first, given.hasPrefix("/") {
            c.stateDirectory = String(given)
        }
        return Defaults(configuration: c, socketProblem: socketProblem.map { "\(source): \($0)" })
    }

    /// The built-in configuration, before a file's keys are applied.
    package struct Defaults: Sendable {
        package var configuration: DaemonConfiguration
        /// Set when there is no default socket path: the error for a configuration that names none.
        package var socketProblem: String?

        package init(configuration: DaemonConfiguration = DaemonConfiguration(), socketProblem: String? = nil) {
            self.configuration = configuration
            self.socketProblem = socketProblem
        }

        /// The defaults as they are, when no file names a socket.
        package func resolve() throws(BrokerError) -> DaemonConfiguration {
            if let socketProblem { throw BrokerError(.badRequest, socketProblem) }
            return configuration
        }
    }

    /// The home directory of the process's user, from the password database.
    package static func passwordHome() -> String? {
        guard let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir else { return nil }
        return String(cString: dir)
    }
}
