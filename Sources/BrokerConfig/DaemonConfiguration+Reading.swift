import BrokerCore
import TOMLKit

#if canImport(Glibc)
    import Glibc
#endif

/// The file's tables, read into a `DaemonConfiguration`: every key by `ConfigSchema`, every
/// problem named by its place in the file.
extension DaemonConfiguration {
    static func read(
        _ root: TOMLTable, environment: [String: String], names: NameResolver,
        defaults: DaemonConfiguration = DaemonConfiguration()
    ) throws(ConfigProblem) -> DaemonConfiguration {
        var c = defaults
        let top = try TableReader(root, path: ConfigPath(), schema: ConfigSchema.topLevel)
        // systemd's StateDirectory= (several are separated by colons; the first is ours).
        if let given = environment["STATE_DIRECTORY"]?.split(separator: ":").first, given.hasPrefix("/") {
            c.stateDirectory = String(given)
        }
        if let socket = try top.table("socket", schema: ConfigSchema.socket) {
            if let path = try socket.string("path") { c.socketPath = path }
            if let mode = socket.value("mode") {
                // "0660", or a TOML octal integer (0o660).
                let parsed = mode.int.flatMap { mode_t(exactly: $0) } ?? mode.string.flatMap { mode_t($0, radix: 8) }
                guard let parsed, parsed <= 0o777 else {
                    throw socket.problem(
                        "mode", "expected an octal mode like \"0660\" or 0o660, got \(TableReader.shown(mode))")
                }
                c.socketMode = parsed
            }
            c.socketGroup = try socket.group("group", names: names)
        }
        if let state = try top.table("state", schema: ConfigSchema.state) {
            if let directory = try state.string("directory") { c.stateDirectory = directory }
            c.keyFile = try state.string("key_file")
        }
        if let scopes = try top.strings("scopes") {
            var resolved: [Scope] = []
            for (index, name) in scopes.enumerated() {
                guard let scope = Scope(nameOrAlias: name) else {
                    throw ConfigProblem(
                        path: ConfigPath([.key("scopes"), .index(index)]),
                        message:
                            "unknown scope \"\(name)\" (skype, ssl, login-skype, contacts, hotmail, or a full name)")
                }
                if !resolved.contains(scope) { resolved.append(scope) }
            }
            guard !resolved.isEmpty else { throw top.problem("scopes", "must name at least one scope") }
            c.scopes = resolved
        }
        if let refresh = try top.table("refresh", schema: ConfigSchema.refresh) {
            c.policy = try readRefresh(refresh)
        }
        if let server = try top.table("server", schema: ConfigSchema.server) {
            try readServer(server, into: &c)
        }
        if let log = try top.table("log", schema: ConfigSchema.log) {
            let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
            if let level = try log.string("level") {
                guard levels.contains(level) else {
                    throw log.problem(
                        "level", "expected \(levels.dropLast().joined(separator: ", ")) or critical, got \"\(level)\"")
                }
                c.logLevel = level
            }
            if let target = try log.string("target") {
                guard let value = LogTarget(rawValue: target) else {
                    throw log.problem("target", "expected auto, journal or stderr, got \"\(target)\"")
                }
                c.logTarget = value
            }
        }
        if let realms = top.value("realms") {
            guard let table = realms.table else {
                throw top.problem("realms", "expected [realms.NAME] tables, got \(TableReader.shown(realms))")
            }
            var read: [Realm] = []
            for name in table.keys.sorted() {
                let path = ConfigPath([.key("realms"), .key(name)])
                guard let realm = table[name]?.table else {
                    throw ConfigProblem(
                        path: path,
                        message: "expected a table ([realms.\(name)]), got \(TableReader.shown(table[name]!))")
                }
                read.append(try readRealm(name, try TableReader(realm, path: path, schema: ConfigSchema.realm)))
            }
            if !read.isEmpty { c.realms = read }
        }
        c.access.metricsUIDs = try top.users("metrics_uids", names: names) ?? []
        c.access.adminGroups = try top.groups("admin_groups", names: names) ?? []
        let example = "[[access]] tables (or { accounts = [...], ... })"
        c.access.rules = try (top.tables("access", schema: ConfigSchema.access, example: example) ?? []).map {
            rule throws(ConfigProblem) in
            AccessRule(
                accounts: try rule.strings("accounts", element: "an account name or \"*\"") ?? [],
                uids: try rule.users("uids", names: names) ?? [],
                groups: try rule.groups("groups", names: names) ?? [])
        }
        return c
    }

    static func readRefresh(_ r: TableReader) throws(ConfigProblem) -> RefreshPolicy {
        var policy = RefreshPolicy()
        func check(_ key: String, _ value: Double?, _ ok: (Double) -> Bool, _ rule: String) throws(ConfigProblem) {
            guard let value, !ok(value) else { return }
            throw r.problem(key, "must be \(rule), got \(shown(value))")
        }
        let refreshPoint = try r.number("refresh_point")
        try check("refresh_point", refreshPoint, { (0.1...0.95).contains($0) }, "0.1-0.95")
        let jitter = try r.number("jitter")
        try check("jitter", jitter, { (0...0.2).contains($0) }, "0-0.2")
        let safetyMargin = try r.seconds("safety_margin")
        try check("safety_margin", safetyMargin, { $0 >= 0 }, "0 or more")
        let backoffStart = try r.seconds("backoff_start")
        try check("backoff_start", backoffStart, { $0 > 0 }, "more than 0")
        let backoffCap = try r.seconds("backoff_cap")
        let readWait = try r.seconds("read_wait")
        try check("read_wait", readWait, { $0 >= 0 }, "0 or more")
        let maxConcurrent = try r.integer("max_concurrent")
        try check("max_concurrent", maxConcurrent.map(Double.init), { $0 >= 1 }, "1 or more")
        let wakeInterval = try r.seconds("wake_interval")
        try check("wake_interval", wakeInterval, { (1...60).contains($0) }, "1-60")
        if let refreshPoint { policy.refreshPoint = refreshPoint }
        if let jitter { policy.jitter = jitter }
        if let safetyMargin { policy.safetyMargin = safetyMargin }
        if let backoffStart { policy.backoffStart = backoffStart }
        if let backoffCap { policy.backoffCap = backoffCap }
        if let readWait { policy.readWait = readWait }
        if let maxConcurrent { policy.maxConcurrentRefreshes = maxConcurrent }
        if let wakeInterval { policy.wakeInterval = wakeInterval }
        if policy.backoffCap < policy.backoffStart {
            throw r.problem(
                r.has("backoff_cap") ? "backoff_cap" : "backoff_start",
                "backoff_cap (\(shown(policy.backoffCap))) must be at least backoff_start (\(shown(policy.backoffStart)))"
            )
        }
        return policy
    }

    static func readServer(_ s: TableReader, into c: inout DaemonConfiguration) throws(ConfigProblem) {
        if let v = try s.seconds("idle_timeout") {
            guard v > 0 else { throw s.problem("idle_timeout", "must be more than 0, got \(shown(v))") }
            c.idleTimeout = v
        }
        if let v = try s.integer("max_header_bytes") {
            guard (1024...65536).contains(v) else {
                throw s.problem("max_header_bytes", "must be 1024-65536, got \(v)")
            }
            c.maxHeaderBytes = v
        }
        if let v = try s.integer("max_body_bytes") {
            guard (1024...(16 << 20)).contains(v) else {
                throw s.problem("max_body_bytes", "must be 1024-16777216, got \(v)")
            }
            c.maxBodyBytes = v
        }
        if let v = try s.seconds("request_timeout") {
            guard v > 0 else { throw s.problem("request_timeout", "must be more than 0, got \(shown(v))") }
            c.requestTimeout = v
        }
        if let v = try s.integer("max_connections") {
            guard (1...1_048_576).contains(v) else { throw s.problem("max_connections", "must be 1-1048576, got \(v)") }
            c.maxConnections = v
        }
    }

    /// A number as the file would write it: `5`, `0.5`.
    static func shown(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }
}
