import BrokerConfig
import BrokerCore
import Foundation
import Testing

@Suite("Configuration: rst realms")
struct RSTRealmConfigTests {
    @Test("an rst realm: RST.srf and the nexus on rst_url's origin, the six sites by default, only its own origins")
    func defaults() throws {
        let config = try DaemonConfiguration.parse(
            """
            [realms.escargot]
            sign_in = "rst"
            rst_url = "https://m1.escargot.chat"
            """)
        let realm = try #require(config.realms.first)
        #expect(realm.signIn == .rst)
        #expect(realm.rstEndpoint == "https://m1.escargot.chat/RST.srf")
        #expect(realm.nexusEndpoint == "https://m1.escargot.chat/rdr/pprdr.asp")
        #expect(realm.rstSites == RSTSite.messengerDefaults)
        #expect(realm.rstSites[1] == RSTSite(address: "messengerclear.live.com", policy: "MBI_KEY_OLD"))
        #expect(realm.keptSites.count == 5)
        #expect(realm.origins == ["https://m1.escargot.chat"])
        #expect(!realm.mayFollow("https://login.live.com/RST.srf"))
        #expect(realm.ssoSite(policy: "mbi_key_old")?.address == "messengerclear.live.com")
    }

    @Test("nexus_url, passport14_url and rst_sites are taken; a .srf rst_url is used as it is")
    func explicit() throws {
        let config = try DaemonConfiguration.parse(
            """
            [realms.r2m]
            sign_in = "rst"
            rst_url = "https://rst.example/RST2.srf"
            nexus_url = "https://nexus.example"
            passport14_url = "https://login.example/login.srf"
            rst_sites = [
                { address = "http://Passport.NET/tb" },
                { address = "messengerclear.live.com", policy = "MBI_KEY_OLD" },
                { address = "contacts.msn.com", policy = "MBI" },
            ]
            """)
        let realm = try #require(config.realms.first)
        #expect(realm.rstEndpoint == "https://rst.example/RST2.srf")
        #expect(realm.nexusEndpoint == "https://nexus.example/rdr/pprdr.asp")
        #expect(realm.origins == ["https://rst.example", "https://nexus.example", "https://login.example"])
        #expect(realm.keptSites.map(\.address) == ["messengerclear.live.com", "contacts.msn.com"])
        #expect(realm.rstSites[0].policy == "")
    }

    @Test("a .srf rst_url: the nexus defaults to its origin")
    func nexusOfASrfURL() throws {
        let config = try DaemonConfiguration.parse(
            """
            [realms.r]
            sign_in = "rst"
            rst_url = "https://rst.example:8443/RST2.srf"
            """)
        #expect(config.realms[0].rstEndpoint == "https://rst.example:8443/RST2.srf")
        #expect(config.realms[0].nexusEndpoint == "https://rst.example:8443/rdr/pprdr.asp")
    }

    @Test(
        "OAuth-only keys in an rst realm are refused by name",
        arguments: [
            "login_url = \"https://x.example\"", "token_url = \"https://x.example\"", "client_id = \"1\"",
            "redirect_uri = \"https://x.example/r\"", "user_initialization_url = \"https://x.example\"",
            "skypetoken_url = \"https://x.example\"", "scopes = [\"skype\"]",
        ])
    func oauthKeysRefused(line: String) {
        let key = String(line.prefix { $0 != " " })
        #expect {
            try DaemonConfiguration.parse(
                """
                [realms.escargot]
                sign_in = "rst"
                rst_url = "https://m1.escargot.chat"
                \(line)
                """)
        } throws: { error in
            guard let error = error as? BrokerError else { return false }
            return error.code == .badRequest && error.message.contains("realms.escargot.\(key)")
        }
    }

    @Test("an unknown sign_in, a missing rst_url, rst keys in an OAuth realm and plain http are refused")
    func refusals() {
        let cases: [(String, String)] = [
            ("sign_in = \"saml\"\nrst_url = \"https://a.example\"", "sign_in"),
            ("sign_in = \"rst\"", "rst_url"),
            ("nexus_url = \"https://a.example\"", "nexus_url"),
            ("rst_sites = [{ address = \"a\" }]", "rst_sites"),
            ("sign_in = \"rst\"\nrst_url = \"http://a.example\"", "allow_insecure_http"),
            (
                "sign_in = \"rst\"\nrst_url = \"https://a.example\"\nrst_sites = [{ address = \"http://Passport.NET/tb\" }]",
                "rst_sites"
            ),
        ]
        for (body, named) in cases {
            #expect {
                try DaemonConfiguration.parse("[realms.r]\n" + body)
            } throws: { error in
                (error as? BrokerError)?.message.contains(named) == true
            }
        }
    }

    @Test("plain http where the realm allows it")
    func insecureAllowed() throws {
        let config = try DaemonConfiguration.parse(
            """
            [realms.lan]
            sign_in = "rst"
            rst_url = "http://192.0.2.1:8080"
            allow_insecure_http = true
            """)
        #expect(config.realms[0].rstEndpoint == "http://192.0.2.1:8080/RST.srf")
    }
}

@Suite("Configuration: SkyLogin")
struct SkyLoginConfigTests {
    @Test("skylogin_servers and skylogin_keys are taken in OAuth and rst realms")
    func taken() throws {
        let config = try DaemonConfiguration.parse(
            """
            [realms.live]
            skylogin_servers = ["91.190.216.17:33033", "[2001:db8::1]:33033", "login.example:1"]
            skylogin_keys = "/etc/tokenbroker/skylogin-keys.json"
            """)
        #expect(config.realms[0].skyloginServers.count == 3)
        #expect(config.realms[0].skyloginKeysFile == "/etc/tokenbroker/skylogin-keys.json")
        #expect(Realm.hostAndPort("[2001:db8::1]:33033")?.host == "2001:db8::1")
    }

    @Test(
        "a server that is not host:port, or skylogin_keys without servers, is refused",
        arguments: [
            #"skylogin_servers = ["91.190.216.17"]"#, #"skylogin_servers = ["host:0"]"#,
            #"skylogin_servers = ["host:70000"]"#, #"skylogin_servers = [":33033"]"#,
            #"skylogin_keys = "/k.json""#, #"skylogin_servers = ["fe80::1:33033"]"#,
            #"skylogin_servers = ["[::1:33033"]"#, #"skylogin_servers = ["host:+80"]"#,
            #"skylogin_servers = ["host:000080"]"#, #"skylogin_servers = ["[]:1"]"#,
            "sign_in = \"rst\"\nrst_url = \"https://a.example\"\nskylogin_servers = [\"h:1\"]",
        ])
    func refused(line: String) {
        #expect {
            try DaemonConfiguration.parse("[realms.live]\n" + line)
        } throws: { error in
            let message = (error as? BrokerError)?.message ?? ""
            return message.contains("skylogin_servers") || message.contains("skylogin_keys")
        }
    }
}

@Suite("Configuration: read_wait")
struct ReadWaitConfigTests {
    @Test("read_wait = 0 is taken, as documented (reads neither wait nor start a refresh); below 0 is refused")
    func zero() throws {
        #expect(try DaemonConfiguration.parse("[refresh]\nread_wait = 0").policy.readWait == 0)
        #expect(throws: BrokerError.self) { try DaemonConfiguration.parse("[refresh]\nread_wait = -1") }
    }
}
