import BrokerCore

/// The keys of the configuration file, table by table: what the parser reads, and all it accepts
/// (any other key is refused by name). docs/CONFIGURATION.md and config/tokenbroker.toml document
/// each of them; BrokerConfigTests checks that they do.
package enum ConfigSchema {
    /// When a new value of a key takes effect.
    package enum Reload: Sendable, Equatable {
        /// At the next reload (SIGHUP).
        case live
        /// Only at the next start; a reload that changes it logs a warning naming it.
        case restart
    }

    package struct Key: Sendable, Hashable {
        package let name: String
        package let reload: Reload
        /// The realms that take the key, by their `sign_in` (every kind outside `[realms.NAME]`).
        package let signIn: Set<SignInKind>
        /// The table is refused without it.
        package let required: Bool
        /// A duration, in seconds (an integer or a float).
        package let inSeconds: Bool

        init(
            _ name: String, _ reload: Reload = .live, signIn: Set<SignInKind> = Set(SignInKind.allCases),
            required: Bool = false, seconds: Bool = false
        ) {
            self.name = name
            self.reload = reload
            self.signIn = signIn
            self.required = required
            self.inSeconds = seconds
        }
    }

    package struct Table: Sendable {
        /// The table as the file writes it (`[socket]`, `[realms.NAME]`, `[[access]]`), or as its
        /// place in the file when it has no header (the top level, an `rst_sites` entry).
        package let header: String
        /// Where its keys are, in messages and in `qualifiedName`: `socket`, `realms.NAME`, `access[]`.
        package let path: String
        package let keys: [Key]
        /// The tables it holds besides its keys (the top level's sections).
        package let tables: [String]

        init(_ header: String, path: String, keys: [Key], tables: [String] = []) {
            self.header = header
            self.path = path
            self.keys = keys
            self.tables = tables
        }

        package func key(_ name: String) -> Key? { keys.first { $0.name == name } }

        /// `socket.path`, `realms.NAME.token_url`, `access[].uids`; a top-level key alone.
        package func qualifiedName(_ key: Key) -> String { path.isEmpty ? key.name : path + "." + key.name }
    }

    package static let topLevel = Table(
        "the top level", path: "",
        keys: [Key("scopes"), Key("admin_groups"), Key("metrics_uids")],
        tables: ["socket", "state", "refresh", "server", "log", "realms", "access"])

    package static let socket = Table(
        "[socket]", path: "socket", keys: [Key("path", .restart), Key("mode", .restart), Key("group", .restart)])

    package static let state = Table(
        "[state]", path: "state", keys: [Key("directory", .restart), Key("key_file", .restart)])

    package static let refresh = Table(
        "[refresh]", path: "refresh",
        keys: [
            Key("refresh_point"), Key("jitter"), Key("safety_margin", seconds: true),
            Key("backoff_start", seconds: true), Key("backoff_cap", seconds: true), Key("read_wait", seconds: true),
            Key("max_concurrent"), Key("wake_interval", seconds: true),
        ])

    package static let server = Table(
        "[server]", path: "server",
        keys: [
            Key("idle_timeout", .restart, seconds: true), Key("max_header_bytes", .restart),
            Key("max_body_bytes", .restart), Key("request_timeout", .restart, seconds: true),
            Key("max_connections", .restart),
        ])

    package static let log = Table("[log]", path: "log", keys: [Key("level"), Key("target", .restart)])

    /// One realm. `sign_in = "rst"` realms refuse the OAuth keys, OAuth realms the rst keys.
    package static let realm = Table(
        "[realms.NAME]", path: "realms.NAME",
        keys: [
            Key("sign_in"),
            Key("login_url", signIn: [.oauth]),
            Key("token_url", signIn: [.oauth]),
            Key("rst_url"),
            Key("user_initialization_url", signIn: [.oauth]),
            Key("skypetoken_url", signIn: [.oauth]),
            Key("client_id", signIn: [.oauth]),
            Key("redirect_uri", signIn: [.oauth]),
            Key("ca_file"),
            Key("allow_insecure_http"),
            Key("skylogin_servers", signIn: [.oauth]),
            Key("skylogin_keys", signIn: [.oauth]),
            Key("nexus_url", signIn: [.rst]),
            Key("passport14_url", signIn: [.rst]),
            Key("rst_sites", signIn: [.rst]),
        ])

    /// One entry of an `rst` realm's `rst_sites`.
    package static let rstSite = Table(
        "an rst_sites entry", path: "realms.NAME.rst_sites[]",
        keys: [Key("address", required: true), Key("policy")])

    package static let access = Table(
        "[[access]]", path: "access[]", keys: [Key("accounts", required: true), Key("uids"), Key("groups")])

    /// Every table, in the order the reference documents them.
    package static let tables: [Table] = [topLevel, socket, state, refresh, server, log, realm, rstSite, access]

    /// Keys refused with a reason of their own rather than as unknown.
    static let misplaced: [String: String] = [
        "realms.NAME.scopes": "scopes are set at the top level, for every realm (and an rst realm has none)"
    ]
}
