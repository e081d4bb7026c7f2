import Foundation
import NIOHTTP1
import TestSupport
import Testing

@testable import LiveSim

private let loginSkypeScope = "service::login.skype.com::MBI_SSL"

/// livesim with its SkyLogin listener on and a Skype-name account "TestUser" / "secret".
func withSkyLogin(
    _ configure: @escaping (inout LiveSimConfiguration) -> Void = { _ in },
    _ body: (LiveSimFixture) async throws -> Void
) async throws {
    try await withLiveSim(
        { config in
            config.skyloginHost = "127.0.0.1"
            config.accounts.append(AccountSpec(skypeName: "TestUser", password: "secret"))
            configure(&config)
        }, body)
}

extension LiveSimFixture {
    func skyRequests() async throws -> Int {
        (try await counters()["requests"] as? [String: Int])?["skylogin"] ?? 0
    }

    func loginFailures() async throws -> [String: Int] {
        try await counters()["login_failures"] as? [String: Int] ?? [:]
    }

    /// An access token for login.skype.com, from a direct grant.
    func loginSkypeToken(_ login: String = "alice@example.com") async throws -> String {
        try #require(try await grant(login, scope: loginSkypeScope)["access_token"] as? String)
    }
}

/// 5-2000 random bytes: enough for a record header, so the server never waits for more.
private func randomBytes() -> [UInt8] { (0..<Int.random(in: 5...2000)).map { _ in UInt8.random(in: 0...255) } }

@Suite("SkyLogin login server: password and OAuth logins, faults and hostile input over TCP")
struct SkyLoginServerTests {
    @Test("the listener and its keys are off by default; on, the keys are RSA-1536 and an RSA-2048 signer at index 1")
    func keys() async throws {
        try await withLiveSim { sim in
            #expect(sim.server.skyloginPort == nil)
            #expect(sim.server.skyloginKeysJSON == nil)
        }
        try await withSkyLogin { sim in
            let keys = try sim.skyKeys()
            #expect(keys.session.size == 192)
            #expect(keys.session.modulus[0] & 0x80 != 0)
            #expect(Array(keys.signers.keys) == [1])
            #expect(keys.signers[1]?.size == 256)
            #expect(sim.server.skyloginAddress == "127.0.0.1:\(sim.skyloginPort)")
            let directory = try TemporaryDirectory()
            defer { directory.cleanup() }
            try sim.writeSkyLoginKeys(to: directory.file("keys.json"))
            let written = try String(contentsOfFile: directory.file("keys.json"), encoding: .utf8)
            #expect(try SkyKeysFile.parse(written).signers[1] == keys.signers[1])
            // No private key ever leaves livesim.
            let json = try #require(sim.server.skyloginKeysJSON)
            #expect(json.hasPrefix(#"{"session_modulus": ""#))
            #expect(!json.contains("\"d\""))
        }
    }

    @Test("a password login, with and without the hello: credentials for the name, the client's modulus, 24 h")
    func passwordLogin() async throws {
        try await withSkyLogin { sim in
            let signers = try sim.skyKeys().signers
            for hello in [true, false] {
                let before = Date()
                let reply = try #require(
                    try await sim.skyLogin({ $0.passwordPlain(name: "testuser", password: "secret") }, hello: hello))
                #expect(reply.code == 4200)
                let credentials = try #require(reply.credentials)
                #expect(credentials.count == 260)
                #expect(Array(credentials.prefix(4)) == [0, 0, 0, 1])
                let fields = try SkyCredentials.open(credentials, signers: signers)
                #expect(fields.skypeName == "testuser")
                #expect(fields.modulus == SkyVectorKeys.client.modulus)
                let expected = UInt32(((before.timeIntervalSince1970 + 86_400) / 60).rounded(.up))
                #expect((expected...(expected + 1)).contains(fields.expiryMinutes))

                let validation = try await sim.validate(Data(credentials).base64EncodedString())
                #expect(validation["kind"] as? String == "skylogin")
                #expect(validation["valid"] as? Bool == true)
                #expect(validation["skype_name"] as? String == "testuser")
                #expect(validation["account"] as? String == "testuser")
            }
            // The name is case-insensitive: the client hashes the lowercased name.
            let mixed = try await sim.skyLogin { client in
                client.passwordPlain(
                    name: "TESTUSER", hash: SkyCipher.loginHash(skypeName: "testuser", password: "secret"))
            }
            #expect(mixed?.code == 4200)
            #expect(try await sim.skyRequests() == 3)
            #expect((try await sim.counters()["issued"] as? [String: Int])?["skylogin"] == 3)
        }
    }

    @Test("a wrong password, an unknown name and a locked account are refused with 4201 and counted")
    func passwordRefused() async throws {
        try await withSkyLogin({ $0.accounts.append(AccountSpec(skypeName: "frozen", password: "pw", locked: true)) }) {
            sim in
            let wrong = try await sim.skyLogin { $0.passwordPlain(name: "testuser", password: "Secret") }
            #expect(wrong == SkyTestClient.Reply(code: 4201, credentials: nil))
            let unknown = try await sim.skyLogin { $0.passwordPlain(name: "nobody", password: "secret") }
            #expect(unknown == SkyTestClient.Reply(code: 4201, credentials: nil))
            let locked = try await sim.skyLogin { $0.passwordPlain(name: "frozen", password: "pw") }
            #expect(locked == SkyTestClient.Reply(code: 4201, credentials: nil))
            let failures = try await sim.loginFailures()
            #expect(failures["skylogin_wrong_password"] == 1)
            #expect(failures["skylogin_unknown_name"] == 1)
            #expect(failures["skylogin_locked"] == 1)
            #expect(try await sim.skyRequests() == 3)
        }
    }

    @Test("an OAuth login with a livesim login.skype.com token maps to live:<local part>; other tokens are refused")
    func oauthLogin() async throws {
        try await withSkyLogin { sim in
            let token = try await sim.loginSkypeToken()
            for given in [token, "t=" + token] {
                let reply = try #require(try await sim.skyLogin { $0.oauthPlain(token: given) })
                #expect(reply.code == 4200)
                let fields = try SkyCredentials.open(
                    try #require(reply.credentials), signers: try sim.skyKeys().signers)
                #expect(fields.skypeName == "live:alice")
                #expect(fields.modulus == SkyVectorKeys.client.modulus)
                let validation = try await sim.validate(Data(reply.credentials ?? []).base64EncodedString())
                #expect(validation["account"] as? String == "alice@example.com")
                #expect(validation["skype_name"] as? String == "live:alice")
            }
            let sslToken = try #require(
                try await sim.grant("alice@example.com", scope: "service::ssl.live.com::MBI_SSL")["access_token"]
                    as? String)
            #expect(try await sim.skyLogin { $0.oauthPlain(token: sslToken) }?.code == 4201)
            #expect(try await sim.skyLogin { $0.oauthPlain(token: "EwAnotissued") }?.code == 4201)
            _ = try await sim.control(.POST, "accounts/alice@example.com/revoke", json: "{}")
            #expect(try await sim.skyLogin { $0.oauthPlain(token: token) }?.code == 4201)
            #expect(try await sim.loginFailures()["skylogin_invalid_token"] == 3)
        }
    }

    @Test("lifetimes: kind skylogin in seconds, rounded up to whole minutes on the wire; per Skype-name account too")
    func lifetimes() async throws {
        try await withSkyLogin({ $0.lifetimes[.skylogin] = 90 }) { sim in
            let signers = try sim.skyKeys().signers
            func expiry() async throws -> (UInt32, Date) {
                let before = Date()
                let credentials = try await sim.skyPasswordCredentials()
                return (try SkyCredentials.open(credentials, signers: signers).expiryMinutes, before)
            }
            var (minutes, before) = try await expiry()
            var expected = UInt32(((before.timeIntervalSince1970 + 90) / 60).rounded(.up))
            #expect((expected...(expected + 1)).contains(minutes))
            try await sim.setSettings(#"{"lifetimes":{"skylogin":120}}"#)
            (minutes, before) = try await expiry()
            expected = UInt32(((before.timeIntervalSince1970 + 120) / 60).rounded(.up))
            #expect((expected...(expected + 1)).contains(minutes))
            let patched = try await sim.control(.PATCH, "accounts/TestUser", json: #"{"lifetimes":{"skylogin":600}}"#)
            #expect(patched.status == 200)
            #expect((patched.json["lifetimes"] as? [String: Int]) == ["skylogin": 600])
            (minutes, before) = try await expiry()
            expected = UInt32(((before.timeIntervalSince1970 + 600) / 60).rounded(.up))
            #expect((expected...(expected + 1)).contains(minutes))
        }
    }

    @Test("faults: refuse with a code, expired and untrusted credentials, garbage, truncate, reset, hang, latency")
    func faults() async throws {
        try await withSkyLogin { sim in
            let signers = try sim.skyKeys().signers
            let password: (SkyTestClient) -> [UInt8] = { $0.passwordPlain(name: "testuser", password: "secret") }

            try await sim.addFault(#"{"endpoint":"skylogin","kind":"refuse","code":4209,"count":1}"#)
            #expect(try await sim.skyLogin(password) == SkyTestClient.Reply(code: 4209, credentials: nil))
            try await sim.addFault(#"{"endpoint":"skylogin","kind":"refuse","count":1}"#)
            #expect(try await sim.skyLogin(password)?.code == 4201)

            try await sim.addFault(#"{"endpoint":"skylogin","kind":"expired","count":1}"#)
            let expired = try #require(try await sim.skyLogin(password)?.credentials)
            let fields = try SkyCredentials.open(expired, signers: signers)
            #expect(fields.expiresAt < Date().addingTimeInterval(-60))
            let expiredView = try await sim.validate(Data(expired).base64EncodedString())
            #expect(expiredView["valid"] as? Bool == false)
            #expect(expiredView["reason"] as? String == "expired")

            try await sim.addFault(#"{"endpoint":"skylogin","kind":"untrusted","count":1}"#)
            let untrusted = try #require(try await sim.skyLogin(password)?.credentials)
            #expect(Array(untrusted.prefix(4)) == [0, 0, 0, 7])
            #expect(throws: SkyCredentials.Invalid.self) { try SkyCredentials.open(untrusted, signers: signers) }
            let untrustedView = try await sim.validate(Data(untrusted).base64EncodedString())
            #expect(untrustedView["valid"] as? Bool == false)
            #expect((untrustedView["reason"] as? String)?.contains("key index 7") == true)

            for kind in ["garbage", "truncate", "reset", "hang"] {
                try await sim.addFault(#"{"endpoint":"skylogin","kind":"\#(kind)","count":1}"#)
                let client = try sim.skyClient()
                let (_, bytes, end) = try await skyConnect(
                    port: sim.skyloginPort, [SkyTestClient.hello, client.record1(), client.record2(password(client))],
                    timeout: .seconds(kind == "hang" ? 2 : 10))
                #expect(client.openReply(bytes) == nil, "\(kind)")
                switch kind {
                case "garbage": #expect(end == .closed && (64...512).contains(bytes.count))
                case "truncate": #expect(end == .closed && !bytes.isEmpty)
                case "reset": #expect(end == .reset && bytes.isEmpty)
                default: #expect(end == .timedOut && bytes.isEmpty)
                }
            }

            try await sim.addFault(#"{"endpoint":"skylogin","kind":"latency","latency_ms":300,"count":1}"#)
            let start = ContinuousClock.now
            #expect(try await sim.skyLogin(password)?.code == 4200)
            #expect(ContinuousClock.now - start >= .milliseconds(300))

            #expect((try await sim.counters()["faults_injected"] as? [String: Int])?["skylogin"] == 9)
            #expect(try await sim.skyLogin(password)?.code == 4200)
            // The login server's kinds are refused on the HTTP endpoints.
            let refused = try await sim.control(
                .POST, "faults", json: #"{"endpoint":"token","kind":"garbage","count":1}"#)
            #expect(refused.status == 400)
            let ok = try await sim.control(
                .POST, "faults", json: #"{"endpoint":"skylogin","kind":"refuse","code":4200,"count":1}"#)
            #expect(ok.status == 400)
        }
    }

    @Test("hostile input never takes the server down; after the session key is known a bad request gets 4202")
    func hostileInput() async throws {
        try await withSkyLogin({ $0.skyloginTimeout = 2 }) { sim in
            let port = sim.skyloginPort
            let client = try sim.skyClient()
            let random = randomBytes()
            let closedWithoutAnswer: [[[UInt8]]] = [
                [random], [[0x16, 0x03, 0x01, 0xFF, 0xFF] + random], [SkyTestClient.hello, SkyTestClient.hello],
                // Too slow: closed when the connection's time is up.
                [[0x16, 0x03, 0x01, 0x00, 0xCD, 0x41, 0x03]],
                [[0x16, 0x03, 0x01, 0x00, 0x10] + [UInt8](repeating: 0x41, count: 16)],
                [SkyTestClient.hello, [0x16, 0x03, 0x01, 0x00, 0xCD] + [UInt8](repeating: 0, count: 0xCD)],
            ]
            for segments in closedWithoutAnswer {
                let (_, bytes, end) = try await skyConnect(port: port, segments, timeout: .seconds(40))
                #expect(bytes.isEmpty, "\(segments.map(\.count))")
                #expect(end != .timedOut, "\(segments.map(\.count))")
            }
            var badCRC = client.record2(client.passwordPlain(name: "testuser", password: "secret"))
            badCRC[badCRC.count - 1] ^= 0xFF
            let answered: [[UInt8]] = [
                badCRC, client.record2(random), client.record2([0x41, 0x01, 0x00, 0x00, 0x99, 0x27]),
                [0x17, 0x03, 0x01, 0xFF, 0xFF], [0x15, 0x03, 0x01, 0x00, 0x10],
            ]
            for record2 in answered {
                let (_, bytes, end) = try await skyConnect(port: port, [client.record1(), record2])
                #expect(client.openReply(bytes) == SkyTestClient.Reply(code: 4202, credentials: nil))
                #expect(end == .closed)
            }
            // Concurrent junk, then a normal login still works.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 {
                    group.addTask { _ = try await skyConnect(port: port, [randomBytes()], timeout: .seconds(40)) }
                }
                try await group.waitForAll()
            }
            #expect(try await sim.skyLogin { $0.passwordPlain(name: "testuser", password: "secret") }?.code == 4200)
            #expect((try await sim.loginFailures()["skylogin_malformed"] ?? 0) >= 11)
        }
    }

    @Test("Skype-name accounts through the control API: add, list, secrets, revoke, delete; never both login and name")
    func controlAPI() async throws {
        try await withSkyLogin { sim in
            let created = try await sim.control(
                .POST, "accounts", json: #"{"skype_name":"Echo.Two","password":"pw-echo"}"#)
            #expect(created.status == 201)
            #expect(created.json["skype_name"] as? String == "echo.two")
            #expect(
                try await sim.control(.POST, "accounts", json: #"{"skype_name":"echo.two","password":"x"}"#).status
                    == 409)
            let both = try await sim.control(
                .POST, "accounts", json: #"{"login":"x@example.com","skype_name":"x","password":"x"}"#)
            #expect(both.status == 400)
            let list = try await sim.control(.GET, "accounts").json
            let names = (list["skype_accounts"] as? [[String: Any]])?.compactMap { $0["skype_name"] as? String }
            #expect(names == ["echo.two", "testuser"])
            #expect((list["accounts"] as? [Any])?.count == TestAccounts.all.count)

            let credentials = try await sim.skyPasswordCredentials("ECHO.two", password: "pw-echo")
            let secrets = Set(try await sim.secrets())
            #expect(secrets.contains("pw-echo"))
            #expect(secrets.contains(SkyHex.encode(SkyCipher.loginHash(skypeName: "echo.two", password: "pw-echo"))))
            #expect(secrets.contains(Data(credentials).base64EncodedString()))

            #expect(try await sim.control(.POST, "accounts/echo.two/revoke", json: "{}").status == 200)
            let revoked = try await sim.validate(Data(credentials).base64EncodedString())
            #expect(revoked["valid"] as? Bool == false)
            #expect(revoked["reason"] as? String == "revoked")
            #expect(try await sim.control(.DELETE, "accounts/Echo.Two").status == 200)
            #expect(try await sim.skyLogin { $0.passwordPlain(name: "echo.two", password: "pw-echo") }?.code == 4201)
            #expect(try await sim.control(.GET, "accounts/echo.two").status == 404)
        }
    }

    @Test("the accounts file takes login or skype_name, never both")
    func accountsFile() throws {
        let decoder = JSONDecoder()
        let specs = try decoder.decode(
            [AccountSpec].self,
            from: Data(#"[{"login":"a@example.com","password":"p"},{"skype_name":"Bob","password":"q"}]"#.utf8))
        #expect(specs[0].login == "a@example.com" && specs[0].skypeName == nil)
        #expect(specs[1].skypeName == "Bob" && specs[1].login.isEmpty)
        #expect(try decoder.decode(AccountSpec.self, from: JSONEncoder().encode(specs[1])) == specs[1])
        for bad in [#"{"login":"a","skype_name":"b","password":"p"}"#, #"{"password":"p"}"#] {
            #expect(throws: DecodingError.self) { try decoder.decode(AccountSpec.self, from: Data(bad.utf8)) }
        }
    }
}
