import BrokerConfig
import BrokerCore
import Testing

/// Users and groups that exist in these tests, whatever the machine's databases hold.
let testNames = NameResolver(
    user: { ["alice": 1003, "msnbridge": 2001, "prometheus": 2002][$0] },
    group: { ["wheel": 10, "tokenbroker": 3001, "tokenbroker-admin": 3002][$0] })

/// The message a configuration is refused with, or nil when it is taken.
func refusal(_ text: String) -> String? {
    do {
        _ = try DaemonConfiguration.parse(text, source: "t.toml", names: testNames)
        return nil
    } catch {
        return error.message
    }
}

@Suite("Configuration errors")
struct ConfigErrorTests {
    @Test(
        "typical mistakes: each message names the file, the line and the key as the file writes them",
        arguments: [
            // A uid of the wrong type.
            (
                "[[access]]\naccounts = [\"alice\"]\nuids = [true]",
                "t.toml:3: access[0].uids[0]: expected a user name or a uid, got true"
            ),
            // A gid of the wrong type, in the second entry.
            (
                "[[access]]\naccounts = [\"*\"]\n\n[[access]]\naccounts = [\"bob\"]\ngroups = [\"wheel\", 1.5]",
                "t.toml:6: access[1].groups[1]: expected a group name or a gid, got 1.5"
            ),
            // A duration written with its unit.
            (
                "[server]\nidle_timeout = \"10s\"",
                "t.toml:2: server.idle_timeout: expected a number of seconds, got \"10s\""
            ),
            // A misspelled key.
            ("[socket]\npath = \"/x\"\npaht = \"/y\"", "t.toml:3: socket.paht: unknown key; did you mean path?"),
            // A key no table takes.
            (
                "[log]\ncolour = true",
                "t.toml:2: log.colour: unknown key in [log], which takes level, target"
            ),
            // A misspelled table.
            ("[sockets]\npath = \"/x\"", "t.toml:1: sockets: unknown table; did you mean [socket]?"),
            (
                "[realm.live]\nlogin_url = \"https://a.example\"",
                "t.toml:1: realm: unknown table; did you mean [realms.NAME]?"
            ),
            // A top-level key written after a table header.
            (
                "[log]\nlevel = \"info\"\nscopes = [\"skype\"]",
                "t.toml:3: log.scopes: scopes belongs at the top level, before the first [table] header"
            ),
            // A negative duration.
            ("[refresh]\nread_wait = -1", "t.toml:2: refresh.read_wait: must be 0 or more, got -1"),
            ("[server]\nrequest_timeout = 0", "t.toml:2: server.request_timeout: must be more than 0, got 0"),
            // A URL without its scheme.
            (
                "[realms.live]\ntoken_url = \"login.example\"",
                "t.toml:2: realms.live.token_url: expected an absolute http(s) URL, like \"https://login.example\", got \"login.example\""
            ),
            // An OAuth key in an rst realm.
            (
                "[realms.escargot]\nsign_in = \"rst\"\nrst_url = \"https://m1.escargot.chat\"\nclient_id = \"1\"",
                "t.toml:4: realms.escargot.client_id: an OAuth key, and this realm signs in with rst (sign_in = \"rst\")"
            ),
            // An rst realm without its RST.srf.
            ("[realms.r]\nsign_in = \"rst\"", "t.toml:1: realms.r.rst_url: required when sign_in = \"rst\""),
            // An unknown sign_in.
            (
                "[realms.r]\nsign_in = \"saml\"",
                "t.toml:2: realms.r.sign_in: expected \"oauth\" or \"rst\", got \"saml\""
            ),
            // A group that does not exist here.
            (
                "admin_groups = [\"nosuchgroup\"]",
                "t.toml:1: admin_groups[0]: no group named \"nosuchgroup\" on this system"
            ),
            ("[socket]\ngroup = \"staff-x\"", "t.toml:2: socket.group: no group named \"staff-x\" on this system"),
            // An [[access]] entry without its accounts.
            ("[[access]]\nuids = [1001]", "t.toml:1: access[0].accounts: required in [[access]]"),
            // An unknown scope.
            (
                "scopes = [\"skype\", \"email\"]",
                "t.toml:1: scopes[1]: unknown scope \"email\" (skype, ssl, login-skype, contacts, hotmail, or a full name)"
            ),
            // A mode written in decimal.
            ("[socket]\nmode = 660", "t.toml:2: socket.mode: expected an octal mode like \"0660\" or 0o660, got 660"),
            // A table written as a value.
            ("socket = \"/run/x.sock\"", "t.toml:1: socket: expected a table ([socket]), got \"/run/x.sock\""),
            // An rst_sites entry that is not a table.
            (
                "[realms.r]\nsign_in = \"rst\"\nrst_url = \"https://a.example\"\nrst_sites = [\"contacts.msn.com\"]",
                "t.toml:4: realms.r.rst_sites[0]: expected a table like { address = \"contacts.msn.com\", policy = \"MBI\" }, got \"contacts.msn.com\""
            ),
            // A SkyLogin server without its port.
            (
                "[realms.live]\nskylogin_servers = [\"91.190.216.17\"]",
                "t.toml:2: realms.live.skylogin_servers[0]: expected host:port (a port 1-65535; an IPv6 address in brackets), got \"91.190.216.17\""
            ),
        ])
    func mistakes(text: String, expected: String) {
        let message = refusal(text)
        #expect(message == expected)
        // Never the decoder's words or its internal paths.
        #expect(!(message ?? "").contains("Index") && !(message ?? "").contains("Cannot decode"))
    }

    @Test("a TOML syntax error names its line and column; so does a realm written twice")
    func syntax() throws {
        let unquoted = try #require(refusal("[socket]\npath = /run/x.sock"))
        #expect(unquoted.hasPrefix("t.toml:2:8: "), "\(unquoted)")
        let twice = try #require(refusal("[realms.live]\n\n[realms.live]\n"))
        #expect(twice.hasPrefix("t.toml:3:"), "\(twice)")
        #expect(twice.contains("realms.live"), "\(twice)")
        let key = try #require(refusal("[refresh]\njitter = 0.1\njitter = 0.2"))
        #expect(key.hasPrefix("t.toml:3:"), "\(key)")
    }

    @Test("uids and gids are taken as integers as well as strings, names through the user and group databases")
    func numericIDs() throws {
        let config = try DaemonConfiguration.parse(
            """
            admin_groups = [0, "wheel", "100"]
            metrics_uids = [65534, "prometheus"]
            [socket]
            group = 3001
            mode = 0o640
            [[access]]
            accounts = ["alice"]
            uids = [1001, "1002", "alice"]
            groups = [100, "tokenbroker"]
            """, names: testNames)
        #expect(config.access.adminGroups == [0, 10, 100])
        #expect(config.access.metricsUIDs == [65534, 2002])
        #expect(config.socketGroup == 3001)
        #expect(config.socketMode == 0o640)
        #expect(
            config.access.rules == [AccessRule(accounts: ["alice"], uids: [1001, 1002, 1003], groups: [100, 3001])])
        #expect(refusal("metrics_uids = [-1]") == "t.toml:1: metrics_uids[0]: expected a user name or a uid, got -1")
        #expect(refusal("metrics_uids = 1001") == "t.toml:1: metrics_uids: expected an array, got 1001")
    }

    @Test("the system's databases resolve names by default")
    func systemNames() throws {
        let config = try DaemonConfiguration.parse("admin_groups = [\"root\"]\nmetrics_uids = [\"root\"]")
        #expect(config.access.adminGroups == [0] && config.access.metricsUIDs == [0])
    }
}
