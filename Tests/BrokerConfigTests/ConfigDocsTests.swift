import BrokerConfig
import BrokerCore
import Foundation
import TOMLKit
import Testing

/// config/tokenbroker.toml: notes are `# ...` lines; settings are commented out as `#key = value`
/// (and `#[table]`), with the lines that continue a value (`#    { ... },`, `#]`) commented the same way.
enum Example {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    static var lines: [String] {
        get throws { try read("config/tokenbroker.toml").components(separatedBy: "\n") }
    }

    /// `#key = ...`, `#[table]`: a setting, commented out.
    static func isSetting(_ line: String) -> Bool {
        line.hasPrefix("#") && line.count > 1 && !line.hasPrefix("# ") && !line.hasPrefix("##")
    }

    /// `[` minus `]` outside strings.
    static func openBrackets(_ text: Substring) -> Int {
        var depth = 0
        var quoted = false
        for character in text {
            switch character {
            case "\"": quoted.toggle()
            case "[" where !quoted: depth += 1
            case "]" where !quoted: depth -= 1
            default: break
            }
        }
        return depth
    }

    /// One setting as the file has it: its first line's index, section (the last header above,
    /// uncommented: `[socket]`, `[realms.live]`, `[[access]]`, or "" at the top), key, and text
    /// (uncommented, continuation lines included).
    struct Setting {
        var line: Int
        var section: String
        var key: String
        var text: String
    }

    /// The file with every setting uncommented, and the settings.
    static func uncommented(_ lines: [String]) -> (text: String, settings: [Setting]) {
        var out: [String] = []
        var settings: [Setting] = []
        var section = ""
        var depth = 0
        for (index, line) in lines.enumerated() {
            if depth > 0 {
                let body = line.hasPrefix("#") ? String(line.dropFirst()) : line
                depth += openBrackets(Substring(body))
                settings[settings.count - 1].text += "\n" + body
                out.append(body)
                continue
            }
            let body = isSetting(line) ? String(line.dropFirst()) : line
            out.append(body)
            if body.hasPrefix("[") {
                section = body.trimmingCharacters(in: .whitespaces)
            } else if isSetting(line), let equals = body.range(of: " = ") {
                settings.append(
                    Setting(line: index, section: section, key: String(body[..<equals.lowerBound]), text: body))
                depth = openBrackets(Substring(body))
            }
        }
        return (out.joined(separator: "\n"), settings)
    }

    /// The note of the setting at `index`: the `# ` lines just above it (and above the settings
    /// right above it, which share the note).
    static func note(of index: Int, in lines: [String]) -> String {
        var i = index - 1
        while i >= 0, isSetting(lines[i]) || lines[i] == "#" { i -= 1 }
        var note: [String] = []
        while i >= 0, lines[i].hasPrefix("# ") || lines[i] == "#" {
            note.insert(lines[i], at: 0)
            i -= 1
        }
        return note.joined(separator: "\n")
    }
}

@Suite("Configuration: the example and the reference")
struct ConfigDocsTests {
    /// Every key of the schema, as `socket.path`, `realms.NAME.token_url`, `access[].uids`.
    static let schemaKeys = ConfigSchema.tables.flatMap { table in table.keys.map { (table, $0) } }

    @Test("every setting of the example is written #key = value; no note looks like a setting")
    func convention() throws {
        for (index, line) in try Example.lines.enumerated() where line.hasPrefix("# ") {
            let word = line.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            #expect(
                word.isEmpty || !line.dropFirst(2 + word.count).hasPrefix(" = "),
                "line \(index + 1) reads as a setting but has a space after #: \(line)")
        }
    }

    @Test("the example, every setting uncommented, parses: one OAuth realm and one rst realm")
    func parses() throws {
        let (text, _) = Example.uncommented(try Example.lines)
        let config = try DaemonConfiguration.parse(text, source: "tokenbroker.toml", names: testNames)
        #expect(config.realms.map(\.signIn).sorted { $0.rawValue < $1.rawValue } == [.oauth, .rst])
        // As shipped, with every setting commented out, it is the built-in configuration.
        let shipped = try DaemonConfiguration.parse(try Example.read("config/tokenbroker.toml"), names: testNames)
        #expect(Self.resolved(shipped) == Self.resolved(try DaemonConfiguration.parse("", names: testNames)))
    }

    @Test("the example holds every key the parser takes, each realm the keys of its sign-in kind")
    func everyKey() throws {
        let root = try TOMLTable(string: Example.uncommented(try Example.lines).text)
        let realms = try #require(root["realms"]?.table)
        let byKind = Dictionary(
            uniqueKeysWithValues: realms.keys.map { name in
                (SignInKind(rawValue: realms[name]?["sign_in"]?.string ?? "oauth")!, realms[name]!.table!)
            })
        for (table, key) in Self.schemaKeys {
            let qualified = table.qualifiedName(key)
            switch table.path {
            case "":
                #expect(root[key.name] != nil, "\(qualified) is not in the example")
            case "realms.NAME":
                for kind in key.signIn {
                    #expect(byKind[kind]?[key.name] != nil, "\(qualified) is not in the example's \(kind) realm")
                }
            case "realms.NAME.rst_sites[]":
                let sites = byKind[.rst]?["rst_sites"]?.array
                #expect(
                    (0..<(sites?.count ?? 0)).contains { sites?[$0].table?[key.name] != nil },
                    "\(qualified) is in no rst_sites entry of the example")
            case "access[]":
                let entries = root["access"]?.array
                #expect(
                    (0..<(entries?.count ?? 0)).contains { entries?[$0].table?[key.name] != nil },
                    "\(qualified) is in no [[access]] entry of the example")
            default:
                #expect(root[table.path]?.table?[key.name] != nil, "\(qualified) is not in the example")
            }
        }
    }

    @Test("a setting shows its default unless its note says Default:")
    func defaults() throws {
        let lines = try Example.lines
        let escargot = "[realms.escargot]\nsign_in = \"rst\"\nrst_url = \"https://m1.escargot.chat\""
        for setting in Example.uncommented(lines).settings
        where !Example.note(of: setting.line, in: lines).contains("Default:") {
            let base: String
            switch setting.section {
            case "": base = ""
            case "[realms.escargot]": base = escargot
            case "[[access]]":
                Issue.record("line \(setting.line + 1): an [[access]] entry is an example; say so with Default:")
                continue
            default: base = setting.section
            }
            let alone = try DaemonConfiguration.parse(
                setting.section.isEmpty ? setting.text + "\n" + base : base + "\n" + setting.text, names: testNames)
            let without = try DaemonConfiguration.parse(base, names: testNames)
            #expect(
                Self.resolved(alone) == Self.resolved(without),
                "line \(setting.line + 1): \(setting.key) shows a value that is not its default, and its note has no Default:"
            )
        }
    }

    /// Everything a configuration says, with the key file resolved (a key_file that names the
    /// default is the default).
    static func resolved(_ configuration: DaemonConfiguration) -> String {
        var configuration = configuration
        configuration.keyFile = configuration.resolvedKeyFile
        return String(reflecting: configuration)
    }

    @Test("each value of the example means what its note says")
    func meanings() throws {
        let lines = try Example.lines
        let (text, settings) = Example.uncommented(lines)
        let c = try DaemonConfiguration.parse(text, names: testNames)
        let raw = try TOMLTable(string: text)
        let live = try #require(c.realms.first { $0.signIn == .oauth })
        let escargot = try #require(c.realms.first { $0.signIn == .rst })
        func value(_ section: String, _ key: String) -> (any TOMLValueConvertible)? {
            section.isEmpty
                ? raw[key]
                : section.split(separator: ".").reduce(raw as (any TOMLValueConvertible)?) {
                    $0?.table?[String($1)]
                }?.table?[key]
        }
        func string(_ section: String, _ key: String) -> String? { value(section, key)?.string }
        func number(_ section: String, _ key: String) -> Double? {
            value(section, key).flatMap { $0.int.map(Double.init) ?? $0.double }
        }
        func strings(_ section: String, _ key: String) -> [String] {
            guard let array = value(section, key)?.array else { return [] }
            return (0..<array.count).compactMap { array[$0].string }
        }
        func ids(_ values: (any TOMLValueConvertible)?, _ resolve: (String) -> UInt32?) -> [UInt32] {
            guard let array = values?.array else { return [] }
            return (0..<array.count).compactMap {
                array[$0].int.flatMap(UInt32.init(exactly:)) ?? array[$0].string.flatMap(resolve)
            }
        }
        let site = "realms.escargot"
        let liveSection = "realms.live"
        let rawSites = try #require(value(site, "rst_sites")?.array)
        let accessEntries = try #require(raw["access"]?.array)
        let checks: [String: () -> Bool] = [
            "scopes": { c.scopes == strings("", "scopes").compactMap(Scope.init(nameOrAlias:)) },
            "admin_groups": { c.access.adminGroups == ids(raw["admin_groups"], testNames.group) },
            "metrics_uids": { c.access.metricsUIDs == ids(raw["metrics_uids"], testNames.user) },
            "socket.path": { c.socketPath == string("socket", "path") },
            "socket.mode": { c.socketMode == string("socket", "mode").flatMap { mode_t($0, radix: 8) } },
            "socket.group": { c.socketGroup == string("socket", "group").flatMap(testNames.group) },
            "state.directory": { c.stateDirectory == string("state", "directory") },
            "state.key_file": { c.resolvedKeyFile == string("state", "key_file") },
            "refresh.refresh_point": { c.policy.refreshPoint == number("refresh", "refresh_point") },
            "refresh.jitter": { c.policy.jitter == number("refresh", "jitter") },
            "refresh.safety_margin": { c.policy.safetyMargin == number("refresh", "safety_margin") },
            "refresh.backoff_start": { c.policy.backoffStart == number("refresh", "backoff_start") },
            "refresh.backoff_cap": { c.policy.backoffCap == number("refresh", "backoff_cap") },
            "refresh.read_wait": { c.policy.readWait == number("refresh", "read_wait") },
            "refresh.max_concurrent": {
                Double(c.policy.maxConcurrentRefreshes) == number("refresh", "max_concurrent")
            },
            "refresh.wake_interval": { c.policy.wakeInterval == number("refresh", "wake_interval") },
            "server.idle_timeout": { c.idleTimeout == number("server", "idle_timeout") },
            "server.max_header_bytes": { Double(c.maxHeaderBytes) == number("server", "max_header_bytes") },
            "server.max_body_bytes": { Double(c.maxBodyBytes) == number("server", "max_body_bytes") },
            "server.request_timeout": { c.requestTimeout == number("server", "request_timeout") },
            "server.max_connections": { Double(c.maxConnections) == number("server", "max_connections") },
            "log.level": { c.logLevel == string("log", "level") },
            "log.target": { c.logTarget.rawValue == string("log", "target") },
            "realms.NAME.sign_in": {
                live.signIn.rawValue == string(liveSection, "sign_in")
                    && escargot.signIn.rawValue == string(site, "sign_in")
            },
            "realms.NAME.login_url": {
                live.authorizeEndpoint == string(liveSection, "login_url")! + "/oauth20_authorize.srf"
            },
            "realms.NAME.token_url": { live.tokenEndpoint == string(liveSection, "token_url")! + "/oauth20_token.srf" },
            "realms.NAME.rst_url": {
                live.rstEndpoint == string(liveSection, "rst_url")! + "/RST.srf"
                    && escargot.rstEndpoint == string(site, "rst_url")! + "/RST.srf"
            },
            "realms.NAME.user_initialization_url": {
                live.userInitializationEndpoint
                    == string(liveSection, "user_initialization_url")! + "/v1/User/Initialization"
            },
            "realms.NAME.skypetoken_url": {
                live.skypetokenEndpoint == string(liveSection, "skypetoken_url")! + "/rps/skypetoken"
            },
            "realms.NAME.client_id": { live.clientID == string(liveSection, "client_id") },
            "realms.NAME.redirect_uri": { live.redirectURI == string(liveSection, "redirect_uri") },
            "realms.NAME.ca_file": {
                live.caFile == string(liveSection, "ca_file") && escargot.caFile == string(site, "ca_file")
            },
            "realms.NAME.allow_insecure_http": {
                live.allowInsecureHTTP == value(liveSection, "allow_insecure_http")?.bool
                    && escargot.allowInsecureHTTP == value(site, "allow_insecure_http")?.bool
            },
            "realms.NAME.skylogin_servers": { live.skyloginServers == strings(liveSection, "skylogin_servers") },
            "realms.NAME.skylogin_keys": { live.skyloginKeysFile == string(liveSection, "skylogin_keys") },
            "realms.NAME.nexus_url": { escargot.nexusEndpoint == string(site, "nexus_url")! + "/rdr/pprdr.asp" },
            "realms.NAME.passport14_url": { escargot.passport14Base == string(site, "passport14_url") },
            "realms.NAME.rst_sites": { escargot.rstSites.count == rawSites.count },
            "realms.NAME.rst_sites[].address": {
                escargot.rstSites.map(\.address) == (0..<rawSites.count).map { rawSites[$0]["address"]?.string ?? "" }
            },
            "realms.NAME.rst_sites[].policy": {
                escargot.rstSites.map(\.policy) == (0..<rawSites.count).map { rawSites[$0]["policy"]?.string ?? "" }
            },
            "access[].accounts": {
                c.access.rules.map(\.accounts)
                    == (0..<accessEntries.count).map { i in
                        let a = accessEntries[i]["accounts"]?.array
                        return (0..<(a?.count ?? 0)).compactMap { a?[$0].string }
                    }
            },
            "access[].uids": {
                c.access.rules.map(\.uids)
                    == (0..<accessEntries.count).map { ids(accessEntries[$0]["uids"], testNames.user) }
            },
            "access[].groups": {
                c.access.rules.map(\.groups)
                    == (0..<accessEntries.count).map { ids(accessEntries[$0]["groups"], testNames.group) }
            },
        ]
        #expect(Set(checks.keys) == Set(Self.schemaKeys.map { $0.0.qualifiedName($0.1) }))
        for (key, check) in checks {
            #expect(check(), "\(key) in the example does not mean what the configuration reads")
        }
        // A duration's note says it is in seconds.
        for (table, key) in Self.schemaKeys where key.inSeconds {
            let setting = try #require(
                settings.first { $0.key == key.name && $0.section == table.header }, "\(table.qualifiedName(key))")
            #expect(
                Example.note(of: setting.line, in: lines).lowercased().contains("seconds"),
                "the note of \(table.qualifiedName(key)) does not say seconds")
        }
    }

    @Test("docs/CONFIGURATION.md's key tables name every key the parser takes, and no other; durations say seconds")
    func reference() throws {
        var documented: [String: String] = [:]
        var inKeyTable = false
        for line in try Example.read("docs/CONFIGURATION.md").components(separatedBy: "\n") {
            if line.hasPrefix("| key |") {
                inKeyTable = true
                continue
            }
            guard inKeyTable, line.hasPrefix("|") else {
                inKeyTable = false
                continue
            }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard cells.count > 3, cells[1].hasPrefix("`") else { continue }
            for name in cells[1].split(separator: ",") {
                documented[name.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: ["`"])] = cells[2]
            }
        }
        let names = Set(Self.schemaKeys.map(\.1.name))
        #expect(
            Set(documented.keys) == names,
            "documented but not taken: \(Set(documented.keys).subtracting(names)); taken but not documented: \(names.subtracting(documented.keys))"
        )
        for (_, key) in Self.schemaKeys where key.inSeconds {
            #expect(documented[key.name] == "seconds", "\(key.name): type \(documented[key.name] ?? "none")")
        }
    }
}
