import BrokerCore
import Foundation
import TOMLKit

#if canImport(Glibc)
    import Glibc
#endif

/// The daemon's configuration, read from TOML and resolved: group names to gids, scope aliases to
/// scopes, relative defaults filled in. `config/tokenbroker.toml` documents every key.
package struct DaemonConfiguration: Sendable {
    package static let defaultPath = "/etc/tokenbroker/tokenbroker.toml"

    package var socketPath = "/run/tokenbroker/tokenbroker.sock"
    package var socketMode: mode_t = 0o660
    package var socketGroup: gid_t?
    package var stateDirectory = "/var/lib/tokenbroker"
    package var keyFile: String?
    package var realms: [Realm] = [Realm(name: "live")]
    package var scopes: [Scope] = Scope.allCases
    package var policy = RefreshPolicy()
    package var access = AccessPolicy()
    package var idleTimeout: TimeInterval = 10
    package var maxHeaderBytes = 8 * 1024
    package var maxBodyBytes = 64 * 1024
    /// Seconds from a request's first byte to its last; a slower request closes its connection.
    package var requestTimeout: TimeInterval = 5
    /// Connections served at once; one more is answered 503 and closed.
    package var maxConnections = 16384
    package var logLevel = "info"
    package var logTarget = LogTarget.auto

    /// Where log records go.
    package enum LogTarget: String, Sendable, CaseIterable {
        /// The journal when standard error is connected to it (`JOURNAL_STREAM`), else standard error.
        case auto
        /// Native journal entries with fields, through libsystemd.
        case journal
        /// Lines on standard error.
        case stderr
    }

    package init() {}

    /// The key file: the configured one, or `key` in the state directory.
    package var resolvedKeyFile: String { keyFile ?? (stateDirectory + "/key") }

    /// `environment` supplies `STATE_DIRECTORY` (systemd's StateDirectory=), the state directory
    /// when the file sets none.
    package static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        names: NameResolver = .system
    ) throws(BrokerError) -> DaemonConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw BrokerError(.badRequest, "cannot read configuration \(path): \(error.localizedDescription)")
        }
        return try parse(text, source: path, environment: environment, names: names)
    }

    /// Reads a configuration from its text. `source` names the file in messages, which say what
    /// is wrong in the file's own terms, with the line where it can be found:
    /// `tokenbroker.toml:12: access[0].uids[0]: expected a user name or a uid, got true`.
    ///
    /// `defaults` are the values of keys the text leaves out: root's system paths unless a
    /// `ConfigurationSource` gives a user's own.
    package static func parse(
        _ text: String, source: String = "configuration", environment: [String: String] = [:],
        names: NameResolver = .system, defaults: ConfigurationSource.Defaults = .init()
    ) throws(BrokerError) -> DaemonConfiguration {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let at = error.source.begin
            throw BrokerError(.badRequest, "\(source):\(at.line):\(at.column): \(error.description)")
        } catch {
            throw BrokerError(.badRequest, "\(source): \(error)")
        }
        let c: DaemonConfiguration
        do throws(ConfigProblem) {
            c = try read(root, environment: environment, names: names, defaults: defaults.configuration)
        } catch {
            let line = ConfigLocator(text).line(of: error.path).map { ":\($0)" } ?? ""
            let path = error.path.components.isEmpty ? "" : "\(error.path): "
            throw BrokerError(.badRequest, "\(source)\(line): \(path)\(error.message)")
        }
        // No default socket (a user without a runtime directory), and the file names none.
        if c.socketPath.isEmpty, let problem = defaults.socketProblem { throw BrokerError(.badRequest, problem) }
        return c
    }
}
