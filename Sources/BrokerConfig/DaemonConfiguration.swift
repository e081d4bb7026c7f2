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
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(BrokerError) -> DaemonConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw BrokerError(.badRequest, "cannot read configuration \(path): \(error.localizedDescription)")
        }
        return try parse(text, source: path, environment: environment)
    }

    /// `defaults` are the values of keys the text leaves out: root's system paths unless a
    /// `ConfigurationSource` gives a user's own.
    package static func parse(
        _ text: String, source: String = "configuration", environment: [String: String] = [:],
        defaults: ConfigurationSource.Defaults = .init()
    ) throws(BrokerError) -> DaemonConfiguration {
        let file: ConfigFile
        do {
            file = try TOMLDecoder(strictDecoding: true).decode(ConfigFile.self, from: text)
        } catch let error as UnexpectedKeysError {
            let keys = error.keys.keys.sorted().joined(separator: ", ")
            throw BrokerError(.badRequest, "\(source): unknown keys: \(keys)")
        } catch {
            throw BrokerError(.badRequest, "\(source): \(describe(error))")
        }
        return try file.resolve(source: source, environment: environment, defaults: defaults)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return "\(path.isEmpty ? "" : path + ": ")\(context.debugDescription)"
        case DecodingError.keyNotFound(let key, let context):
            let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            return "\(path) is required"
        default:
            return "\(error)"
        }
    }

    /// A group name or a number.
    static func gid(_ name: String, source: String) throws(BrokerError) -> gid_t {
        if let number = gid_t(name) { return number }
        guard let entry = getgrnam(name) else { throw BrokerError(.badRequest, "\(source): no group named \(name)") }
        return entry.pointee.gr_gid
    }

    /// A user name or a number.
    static func uid(_ name: String, source: String) throws(BrokerError) -> uid_t {
        if let number = uid_t(name) { return number }
        guard let entry = getpwnam(name) else { throw BrokerError(.badRequest, "\(source): no user named \(name)") }
        return entry.pointee.pw_uid
    }
}

/// A TOML number written as an integer or a float.
struct Number: Decodable {
    var value: Double

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let int = try? container.decode(Int.self) {
            value = Double(int)
        } else {
            value = try container.decode(Double.self)
        }
    }
}

/// The file's shape. Every key is optional; strict decoding refuses unknown keys.
struct ConfigFile: Decodable {
    struct Socket: Decodable {
        var path: String?
        var mode: String?
        var group: String?
    }

    struct State: Decodable {
        var directory: String?
        var key_file: String?
    }

    struct Refresh: Decodable {
        var refresh_point: Number?
        var jitter: Number?
        var safety_margin: Number?
        var backoff_start: Number?
        var backoff_cap: Number?
        var read_wait: Number?
        var max_concurrent: Int?
        var wake_interval: Number?
    }

    struct Server: Decodable {
        var idle_timeout: Number?
        var max_header_bytes: Int?
        var max_body_bytes: Int?
        var request_timeout: Number?
        var max_connections: Int?
    }

    struct RealmSection: Decodable {
        var sign_in: String?
        var nexus_url: String?
        var passport14_url: String?
        var rst_sites: [SiteSection]?
        var skylogin_servers: [String]?
        var skylogin_keys: String?
        /// Refused: scopes are set at the top level, and an `rst` realm has none.
        var scopes: [String]?
        var login_url: String?
        var token_url: String?
        var rst_url: String?
        var user_initialization_url: String?
        var skypetoken_url: String?
        var client_id: String?
        var redirect_uri: String?
        var ca_file: String?
        var allow_insecure_http: Bool?
    }

    struct SiteSection: Decodable {
        var address: String
        var policy: String?
    }

    struct Access: Decodable {
        var accounts: [String]
        var uids: [String]?
        var groups: [String]?
    }

    struct Log: Decodable {
        var level: String?
        var target: String?
    }

    var scopes: [String]?
    var admin_groups: [String]?
    var metrics_uids: [String]?
    var socket: Socket?
    var state: State?
    var refresh: Refresh?
    var server: Server?
    var realms: [String: RealmSection]?
    var access: [Access]?
    var log: Log?

    func resolve(
        source: String, environment: [String: String] = [:], defaults: ConfigurationSource.Defaults = .init()
    ) throws(BrokerError) -> DaemonConfiguration {
        var c = defaults.configuration
        // systemd's StateDirectory= (several are separated by colons; the first is ours).
        if let given = environment["STATE_DIRECTORY"]?.split(separator: ":").first, given.hasPrefix("/") {
            c.stateDirectory = String(given)
        }
        if let socket {
            if let path = socket.path { c.socketPath = path }
            if let mode = socket.mode {
                guard let value = mode_t(mode, radix: 8), value <= 0o777 else {
                    throw BrokerError(.badRequest, "\(source): socket.mode must be octal, like \"0660\"")
                }
                c.socketMode = value
            }
            if let group = socket.group { c.socketGroup = try DaemonConfiguration.gid(group, source: source) }
        }
        if socket?.path == nil, let problem = defaults.socketProblem { throw BrokerError(.badRequest, problem) }
        if let state {
            if let directory = state.directory { c.stateDirectory = directory }
            c.keyFile = state.key_file
        }
        if let scopes {
            var resolved: [Scope] = []
            for name in scopes {
                guard let scope = Scope(nameOrAlias: name) else {
                    throw BrokerError(.badRequest, "\(source): unknown scope \(name)")
                }
                if !resolved.contains(scope) { resolved.append(scope) }
            }
            guard !resolved.isEmpty else {
                throw BrokerError(.badRequest, "\(source): scopes must name at least one scope")
            }
            c.scopes = resolved
        }
        if let r = refresh {
            if let v = r.refresh_point?.value { c.policy.refreshPoint = v }
            if let v = r.jitter?.value { c.policy.jitter = v }
            if let v = r.safety_margin?.value { c.policy.safetyMargin = v }
            if let v = r.backoff_start?.value { c.policy.backoffStart = v }
            if let v = r.backoff_cap?.value { c.policy.backoffCap = v }
            if let v = r.read_wait?.value { c.policy.readWait = v }
            if let v = r.max_concurrent { c.policy.maxConcurrentRefreshes = v }
            if let v = r.wake_interval?.value { c.policy.wakeInterval = v }
            guard (0.1...0.95).contains(c.policy.refreshPoint) else {
                throw BrokerError(.badRequest, "\(source): refresh.refresh_point must be 0.1-0.95")
            }
            guard (0...0.2).contains(c.policy.jitter) else {
                throw BrokerError(.badRequest, "\(source): refresh.jitter must be 0-0.2")
            }
            guard c.policy.safetyMargin >= 0, c.policy.backoffStart > 0, c.policy.backoffCap >= c.policy.backoffStart,
                c.policy.readWait >= 0, c.policy.maxConcurrentRefreshes > 0, (1...60).contains(c.policy.wakeInterval)
            else { throw BrokerError(.badRequest, "\(source): refresh values out of range") }
        }
        if let server {
            if let v = server.idle_timeout?.value { c.idleTimeout = v }
            if let v = server.max_header_bytes { c.maxHeaderBytes = v }
            if let v = server.max_body_bytes { c.maxBodyBytes = v }
            if let v = server.request_timeout?.value { c.requestTimeout = v }
            if let v = server.max_connections { c.maxConnections = v }
            guard c.idleTimeout > 0 else {
                throw BrokerError(.badRequest, "\(source): server.idle_timeout must be more than 0")
            }
            guard (1024...65536).contains(c.maxHeaderBytes) else {
                throw BrokerError(.badRequest, "\(source): server.max_header_bytes must be 1024-65536")
            }
            guard (1024...(16 << 20)).contains(c.maxBodyBytes) else {
                throw BrokerError(.badRequest, "\(source): server.max_body_bytes must be 1024-16777216")
            }
            guard c.requestTimeout > 0 else {
                throw BrokerError(.badRequest, "\(source): server.request_timeout must be more than 0")
            }
            guard (1...1_048_576).contains(c.maxConnections) else {
                throw BrokerError(.badRequest, "\(source): server.max_connections must be 1-1048576")
            }
        }
        if let realms, !realms.isEmpty {
            c.realms = try realms.sorted { $0.key < $1.key }.map { name, r throws(BrokerError) in
                let realm = try Self.realm(name, r, source: source)
                do { try realm.validate() } catch {
                    throw BrokerError(.badRequest, "\(source): \((error as? BrokerError)?.message ?? "\(error)")")
                }
                return realm
            }
        }
        c.access.metricsUIDs = try (metrics_uids ?? []).map { name throws(BrokerError) in
            try DaemonConfiguration.uid(name, source: source)
        }
        c.access.adminGroups = try (admin_groups ?? []).map { name throws(BrokerError) in
            try DaemonConfiguration.gid(name, source: source)
        }
        c.access.rules = try (access ?? []).map { rule throws(BrokerError) in
            AccessRule(
                accounts: rule.accounts,
                uids: try (rule.uids ?? []).map { name throws(BrokerError) in
                    try DaemonConfiguration.uid(name, source: source)
                },
                groups: try (rule.groups ?? []).map { name throws(BrokerError) in
                    try DaemonConfiguration.gid(name, source: source)
                })
        }
        if let level = log?.level {
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
                throw BrokerError(
                    .badRequest, "\(source): log.level must be trace, debug, info, notice, warning, error or critical")
            }
            c.logLevel = level
        }
        if let target = log?.target {
            guard let value = DaemonConfiguration.LogTarget(rawValue: target) else {
                throw BrokerError(.badRequest, "\(source): log.target must be auto, journal or stderr")
            }
            c.logTarget = value
        }
        return c
    }

    /// One `[realms.NAME]` table. `sign_in = "rst"` takes `rst_url` (required), `nexus_url`,
    /// `passport14_url` and `rst_sites`, and refuses the OAuth-only keys by name; an `rst`
    /// realm's origins are only its own URLs, with no Microsoft defaults.
    static func realm(_ name: String, _ r: RealmSection, source: String) throws(BrokerError) -> Realm {
        let prefix = "\(source): realms.\(name)"
        guard let signIn = SignInKind(rawValue: r.sign_in ?? "oauth") else {
            throw BrokerError(.badRequest, "\(prefix).sign_in must be \"oauth\" or \"rst\", not \"\(r.sign_in ?? "")\"")
        }
        if r.skylogin_keys != nil && (r.skylogin_servers ?? []).isEmpty {
            throw BrokerError(.badRequest, "\(prefix).skylogin_keys needs skylogin_servers")
        }
        if r.scopes != nil {
            throw BrokerError(
                .badRequest, "\(prefix).scopes: scopes are set at the top level (and an rst realm has none)")
        }
        switch signIn {
        case .oauth:
            for (key, value) in [
                ("nexus_url", r.nexus_url), ("passport14_url", r.passport14_url),
                ("rst_sites", r.rst_sites.map { _ in "" }),
            ] where value != nil {
                throw BrokerError(.badRequest, "\(prefix).\(key) is for realms with sign_in = \"rst\"")
            }
            let login = r.login_url ?? "https://login.live.com"
            return Realm(
                name: name, loginBase: login, tokenBase: r.token_url ?? login, rstBase: r.rst_url ?? login,
                userInitializationBase: r.user_initialization_url ?? "https://skypewebexperience.live.com",
                skypetokenBase: r.skypetoken_url ?? "https://api.skype.com",
                clientID: r.client_id ?? messengerClientID,
                redirectURI: r.redirect_uri ?? defaultDesktopRedirect, caFile: r.ca_file,
                allowInsecureHTTP: r.allow_insecure_http ?? false, skyloginServers: r.skylogin_servers ?? [],
                skyloginKeysFile: r.skylogin_keys)
        case .rst:
            for (key, value) in [
                ("login_url", r.login_url), ("token_url", r.token_url), ("client_id", r.client_id),
                ("redirect_uri", r.redirect_uri), ("user_initialization_url", r.user_initialization_url),
                ("skypetoken_url", r.skypetoken_url),
            ] where value != nil {
                throw BrokerError(
                    .badRequest, "\(prefix).\(key) is an OAuth key, and this realm signs in with rst (RST.srf)")
            }
            if r.skylogin_servers != nil || r.skylogin_keys != nil {
                throw BrokerError(
                    .badRequest,
                    "\(prefix).skylogin_servers: an rst realm keeps RST tickets only; name SkyLogin servers in another realm"
                )
            }
            guard let rst = r.rst_url else {
                throw BrokerError(.badRequest, "\(prefix).rst_url is required when sign_in = \"rst\"")
            }
            let sites =
                r.rst_sites.map { $0.map { RSTSite(address: $0.address, policy: $0.policy ?? "") } }
                ?? RSTSite.messengerDefaults
            return Realm(
                name: name, signIn: .rst, loginBase: rst, tokenBase: rst, rstBase: rst, userInitializationBase: rst,
                skypetokenBase: rst, caFile: r.ca_file, allowInsecureHTTP: r.allow_insecure_http ?? false,
                nexusBase: r.nexus_url, passport14Base: r.passport14_url, rstSites: sites,
                skyloginServers: r.skylogin_servers ?? [], skyloginKeysFile: r.skylogin_keys)
        }
    }
}
