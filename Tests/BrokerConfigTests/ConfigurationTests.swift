import BrokerConfig
import BrokerCore
import Foundation
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("the shipped example parses, with the documented defaults")
    func shippedExample() throws {
        let config = try DaemonConfiguration.load(
            path: Self.root.appendingPathComponent("config/tokenbroker.toml").path)
        #expect(config.socketPath == "/run/tokenbroker/tokenbroker.sock")
        #expect(config.stateDirectory == "/var/lib/tokenbroker")
        #expect(config.scopes == Scope.allCases || Set(config.scopes) == Set(Scope.allCases))
        #expect(config.realms.count == 1)
        #expect(config.realms[0].tokenEndpoint == "https://login.live.com/oauth20_token.srf")
        #expect(config.realms[0].redirectURI == "https://login.live.com/oauth20_desktop.srf")
        #expect(config.policy.refreshPoint == 0.75)
        #expect(config.policy.safetyMargin == 60)
    }

    @Test("a full configuration resolves realms, scopes, policy, access and socket")
    func full() throws {
        let config = try DaemonConfiguration.parse(
            """
            scopes = ["skype", "service::ssl.live.com::MBI_SSL"]
            admin_groups = ["0"]
            [socket]
            path = "/tmp/x.sock"
            mode = "0640"
            group = "0"
            [state]
            directory = "/tmp/state"
            [refresh]
            refresh_point = 0.8
            safety_margin = 5
            backoff_cap = 60
            [realms.revival]
            login_url = "https://login.revival.example"
            token_url = "https://token.revival.example:8443/"
            ca_file = "/etc/ssl/revival.pem"
            [[access]]
            accounts = ["alice"]
            uids = ["1000", "root"]
            groups = ["0"]
            """)
        #expect(config.scopes == [.skype, .ssl])
        #expect(config.socketMode == 0o640)
        #expect(config.socketGroup == 0)
        #expect(config.resolvedKeyFile == "/tmp/state/key")
        #expect(config.policy.refreshPoint == 0.8)
        #expect(config.policy.safetyMargin == 5)
        #expect(config.policy.backoffCap == 60)
        #expect(config.realms.map(\.name) == ["revival"])
        #expect(config.realms[0].tokenEndpoint == "https://token.revival.example:8443/oauth20_token.srf")
        #expect(config.realms[0].authorizeEndpoint == "https://login.revival.example/oauth20_authorize.srf")
        #expect(config.access.rules == [AccessRule(accounts: ["alice"], uids: [1000, 0], groups: [0])])
        #expect(config.access.adminGroups == [0])
    }

    @Test(
        "invalid configurations are refused with a message naming the problem",
        arguments: [
            ("bogus = 1", "bogus: unknown key at the top level"),
            ("[socket]\nmode = \"rw\"", "socket.mode"),
            ("scopes = [\"email\"]", "scopes[0]: unknown scope \"email\""),
            ("[realms.r]\nlogin_url = \"http://plain.example\"", "allow_insecure_http"),
            ("[refresh]\nrefresh_point = 2", "refresh_point"),
            ("[server]\nidle_timeout = 0", "idle_timeout"),
            ("[socket]\ngroup = \"no-such-group-here\"", "no group named"),
        ])
    func invalid(text: String, expected: String) {
        do {
            _ = try DaemonConfiguration.parse(text, source: "test.toml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.message.contains(expected), "\(error.message)")
            #expect(error.message.hasPrefix("test.toml"))
        }
    }

    @Test("http is allowed where the realm says so")
    func insecureAllowed() throws {
        let config = try DaemonConfiguration.parse(
            "[realms.local]\nlogin_url = \"http://127.0.0.1:8080\"\nallow_insecure_http = true")
        #expect(config.realms[0].allowInsecureHTTP)
    }
}
