import BrokerCore
import Crypto
import Foundation
import GRDB
import Testing

@testable import BrokerStore

@Suite("Accounts and credentials")
struct StoreDataTests {
    @Test("an enrollment reads back whole, through every reader")
    func roundTrip() throws {
        try withTemporaryDirectory { dir in
            let store = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            defer { try? store.close() }
            let before = Date()
            let e = Enrollment("roundtrip")
            try e.create(in: store)
            let bare = name("bare")
            try store.createAccount(
                name: bare, realm: "livesim", login: "bare@example.com", refreshToken: nil, accessTokens: [],
                password: nil, cookies: nil)

            let account = try #require(try store.account(named: e.name))
            #expect(account.name == e.name)
            #expect(account.realm == "live")
            #expect(account.login == e.login)
            #expect(account.state == .active)
            #expect(account.stateReason == nil)
            #expect(account.hasRefreshToken && account.hasPassword && account.hasCookies)
            #expect(abs(account.createdAt.timeIntervalSince(before)) < 5)
            #expect(try store.credentials(for: e.name) == e.expectedCredentials)

            let bareAccount = try #require(try store.account(named: bare))
            #expect(!bareAccount.hasRefreshToken && !bareAccount.hasPassword && !bareAccount.hasCookies)
            #expect(try store.credentials(for: bare) == StoredCredentials())

            #expect(try store.accounts().map(\.name) == [bare, e.name].sorted())
            let all = try store.loadAll()
            #expect(all.map(\.0) == (try store.accounts()))
            let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.0.name, $0.1) })
            #expect(byName == [bare: StoredCredentials(), e.name: e.expectedCredentials])

            #expect(try store.account(named: name("nobody")) == nil)
            expectBrokerError(.notFound) { _ = try store.credentials(for: name("nobody")) }
            #expect(try store.accountName(login: e.login.uppercased(), realm: "live") == e.name)
            #expect(try store.accountName(login: e.login, realm: "livesim") == nil)
        }
    }

    @Test(
        "skypetoken, UIC and the cookies' expiry are stored with their times; new cookies drop the skypetoken, a new grant drops both, rekey re-seals them"
    )
    func derivedCredentials() throws {
        try withTemporaryDirectory { dir in
            let store = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            defer { try? store.close() }
            let e = Enrollment("derived")
            try e.create(in: store)
            let skypetoken = Credential(value: Secret("ST-1"), obtainedAt: t0, expiresAt: t0 + 86_400)
            let uic = Credential(
                value: Secret("UIC-1"), obtainedAt: t0, expiresAt: t0 + 3_600, refreshBy: t0 + 1_800, issuedAt: t0 - 5)
            try store.commitRefresh(
                account: e.name, accessToken: nil, rotatedRefreshToken: nil,
                derived: [.skypetoken: skypetoken, .uic: uic])
            var creds = try store.credentials(for: e.name)
            #expect(creds.derived == [.skypetoken: skypetoken, .uic: uic])
            #expect(creds.cookiesExpireAt == nil)
            #expect("\(creds)".contains("derived: [skypetoken,uic]") && !"\(creds)".contains("ST-1"))

            // New cookies (a sign-in, a new grant family): the skypetoken goes, the UIC stays.
            try store.commitRefresh(
                account: e.name, accessToken: nil, rotatedRefreshToken: nil, cookies: Secret("MSPAuth=2"),
                cookiesExpireAt: t0 + 7_200)
            creds = try store.credentials(for: e.name)
            #expect(creds.derived == [.uic: uic])
            #expect(creds.cookies == Secret("MSPAuth=2") && creds.cookiesExpireAt == t0 + 7_200)

            // Rekey re-seals the row: the store opened with the new key alone reads it back.
            let newBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
            _ = try store.rekey(to: newBytes)
            try store.close()
            let reopened = try CredentialStore(
                databasePath: databaseURL(dir).path, keys: [SymmetricKey(data: newBytes)])
            defer { try? reopened.close() }
            #expect(try reopened.credentials(for: e.name).derived == [.uic: uic])

            // A new grant: neither is kept.
            try reopened.replaceGrant(account: e.name, refreshToken: Secret("RT-new"), accessTokens: [], cookies: nil)
            #expect(try reopened.credentials(for: e.name).derived.isEmpty)
        }
    }

    @Test("commitRefresh without rotation keeps the refresh token, with rotation replaces it")
    func commitRefresh() throws {
        try withTemporaryDirectory { dir in
            let store = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            defer { try? store.close() }
            let e = Enrollment("refresh")
            try e.create(in: store)
            let later = t0 + 100

            // No rotation: the access token for the scope is replaced, the refresh token kept.
            let newSkype = token("AT-skype-2", .skype, obtained: later)
            try store.commitRefresh(account: e.name, accessToken: newSkype, rotatedRefreshToken: nil)
            var creds = try store.credentials(for: e.name)
            #expect(creds.refreshToken == Secret(e.refreshToken))
            #expect(creds.accessTokens[.skype] == newSkype)
            #expect(creds.accessTokens[.contacts] == e.tokens[1])
            #expect(creds.password == Secret(e.password))
            #expect(creds.cookies == Secret(e.cookies))

            // A new scope is added.
            let hotmail = token("AT-hotmail-1", .hotmail, obtained: later)
            try store.commitRefresh(account: e.name, accessToken: hotmail, rotatedRefreshToken: nil)
            creds = try store.credentials(for: e.name)
            #expect(creds.accessTokens.count == 3)
            #expect(creds.accessTokens[.hotmail] == hotmail)
            #expect(creds.refreshToken == Secret(e.refreshToken))

            // Rotation: both are replaced.
            let rotatedSkype = token("AT-skype-3", .skype, obtained: later + 100)
            try store.commitRefresh(
                account: e.name, accessToken: rotatedSkype, rotatedRefreshToken: Secret("RT-rotated"))
            creds = try store.credentials(for: e.name)
            #expect(creds.refreshToken == Secret("RT-rotated"))
            #expect(creds.accessTokens[.skype] == rotatedSkype)
            #expect(creds.accessTokens[.hotmail] == hotmail)

            expectBrokerError(.notFound) {
                try store.commitRefresh(
                    account: name("ghost"), accessToken: newSkype, rotatedRefreshToken: Secret("RT-ghost"))
            }
        }
    }

    @Test("everything survives close and reopen")
    func survivesReopen() throws {
        try withTemporaryDirectory { dir in
            let keyFile = dir.appendingPathComponent("key")
            let store = try CredentialStore.open(directory: dir, keyFile: keyFile)
            let a = Enrollment("persist-a")
            let b = Enrollment("persist-b", realm: "livesim")
            try a.create(in: store)
            try b.create(in: store)
            try store.commitRefresh(
                account: a.name, accessToken: token("AT-a-ssl", .ssl), rotatedRefreshToken: Secret("RT-a-2"))
            try store.setState(.needsReauth, reason: "invalid_grant", for: b.name)
            let before = try store.loadAll()
            try store.close()

            let reopened = try CredentialStore.open(directory: dir, keyFile: keyFile)
            defer { try? reopened.close() }
            let after = try reopened.loadAll()
            #expect(after.map(\.0) == before.map(\.0))
            #expect(after.map(\.1) == before.map(\.1))
            #expect(try reopened.credentials(for: a.name).refreshToken == Secret("RT-a-2"))
            #expect(try reopened.account(named: b.name)?.state == .needsReauth)
            #expect(try reopened.account(named: b.name)?.stateReason == "invalid_grant")
        }
    }

    @Test("a sub-second time reads back to within a microsecond")
    func timePrecision() throws {
        try withTemporaryDirectory { dir in
            let store = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            defer { try? store.close() }
            let now = Date()
            let e = Enrollment("time")
            try e.create(in: store)
            try store.commitRefresh(
                account: e.name, accessToken: token("AT", .ssl, obtained: now, lifetime: 3600.25),
                rotatedRefreshToken: nil)
            let read = try #require(try store.credentials(for: e.name).accessTokens[.ssl])
            #expect(abs(read.obtainedAt.timeIntervalSince(now)) < 1e-6)
            #expect(abs(read.lifetime - 3600.25) < 1e-6)
        }
    }

    @Test("a duplicate name, or the same login in the same realm, is a conflict and writes nothing")
    func conflicts() throws {
        try withTemporaryDirectory { dir in
            let store = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            defer { try? store.close() }
            let e = Enrollment("conflict")
            try e.create(in: store)

            // Same name, other login.
            let sameName = expectBrokerError(.conflict) {
                try store.createAccount(
                    name: e.name, realm: "live", login: "other@example.com", refreshToken: Secret("RT-dup-1"),
                    accessTokens: [token("AT-dup-1", .skype)], password: nil, cookies: nil)
            }
            #expect(sameName?.message.contains("RT-dup-1") == false)
            #expect(try store.credentials(for: e.name) == e.expectedCredentials)

            // Same login (other case) in the same realm, other name.
            let other = name("someone-else")
            let sameLogin = expectBrokerError(.conflict) {
                try store.createAccount(
                    name: other, realm: "live", login: e.login.uppercased(), refreshToken: Secret("RT-dup-2"),
                    accessTokens: [], password: Secret("PW-dup-2"), cookies: nil)
            }
            #expect(sameLogin?.message.contains(e.name.rawValue) == true)
            #expect(sameLogin?.message.lowercased().contains(e.login.lowercased()) == false)
            #expect(try store.account(named: other) == nil)
            #expect(try store.accounts().count == 1)

            // Same login in another realm is another account.
            try store.createAccount(
                name: other, realm: "livesim", login: e.login, refreshToken: nil, accessTokens: [], password: nil,
                cookies: nil)
            #expect(try store.accounts().count == 2)
        }
    }

    @Test("a write that fails half-way leaves nothing behind, and its error holds no secret")
    func atomicWrites() throws {
        try withTemporaryDirectory { dir in
            let path = databaseURL(dir).path
            let key = randomKey()
            let e = Enrollment("atomic")
            try CredentialStore(databasePath: path, keys: [key]).close()
            // Make the last step of each write fail: inserting an access token for `ssl`, and
            // updating a refresh token.
            let queue = try rawQueue(path)
            try queue.write { db in
                try db.execute(
                    sql: """
                        CREATE TRIGGER fail_ssl BEFORE INSERT ON access_tokens WHEN NEW.scope = '\(Scope.ssl.rawValue)'
                        BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
                        CREATE TRIGGER fail_rotation BEFORE UPDATE ON secrets WHEN NEW.kind = 'refresh_token'
                        BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
                        """)
            }
            try queue.close()

            let store = try CredentialStore(databasePath: path, keys: [key])
            defer { try? store.close() }
            let failed = expectBrokerError(.internalError) {
                try store.createAccount(
                    name: e.name, realm: e.realm, login: e.login, refreshToken: Secret(e.refreshToken),
                    accessTokens: e.tokens + [token("AT-ssl-secret", .ssl)], password: Secret(e.password),
                    cookies: Secret(e.cookies))
            }
            #expect(failed?.message.contains("injected failure") == true)
            for secret in e.plaintexts + ["AT-ssl-secret"] {
                #expect(failed?.description.contains(secret) == false)
            }
            #expect(try store.accounts().isEmpty)
            // Not even the login stayed enrolled.
            try e.create(in: store)

            // commitRefresh: the rotated refresh token fails, so the access token is not kept either.
            let newSkype = token("AT-skype-after", .skype, obtained: t0 + 10)
            expectBrokerError(.internalError) {
                try store.commitRefresh(account: e.name, accessToken: newSkype, rotatedRefreshToken: Secret("RT-new"))
            }
            #expect(try store.credentials(for: e.name) == e.expectedCredentials)
        }
    }

    @Test("setState, setSecret and replaceGrant")
    func updates() throws {
        try withTemporaryDirectory { dir in
            let store = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            defer { try? store.close() }
            let e = Enrollment("updates")
            try e.create(in: store)

            try store.setState(.needsReauth, reason: "invalid_grant: revoked", for: e.name)
            #expect(try store.account(named: e.name)?.state == .needsReauth)
            #expect(try store.account(named: e.name)?.stateReason == "invalid_grant: revoked")
            expectBrokerError(.notFound) { try store.setState(.active, reason: nil, for: name("ghost")) }

            try store.setSecret(nil, kind: .password, account: e.name)
            #expect(try store.account(named: e.name)?.hasPassword == false)
            #expect(try store.credentials(for: e.name).password == nil)
            try store.setSecret(Secret("PW-new"), kind: .password, account: e.name)
            #expect(try store.credentials(for: e.name).password == Secret("PW-new"))
            try store.setSecret(Secret("CK-new"), kind: .cookies, account: e.name)
            #expect(try store.credentials(for: e.name).cookies == Secret("CK-new"))
            expectBrokerError(.badRequest) { try store.setSecret(Secret("x"), kind: .accessToken, account: e.name) }
            expectBrokerError(.badRequest) { try store.setSecret(Secret("x"), kind: .login, account: e.name) }
            expectBrokerError(.notFound) { try store.setSecret(Secret("x"), kind: .cookies, account: name("ghost")) }

            // A new sign-in: new refresh token and tokens, old tokens gone, cookies dropped,
            // password kept, state active again.
            let ssl = token("AT-ssl-relogin", .ssl)
            try store.replaceGrant(
                account: e.name, refreshToken: Secret("RT-relogin"), accessTokens: [ssl], cookies: nil)
            let creds = try store.credentials(for: e.name)
            #expect(creds.refreshToken == Secret("RT-relogin"))
            #expect(creds.accessTokens == [.ssl: ssl])
            #expect(creds.cookies == nil)
            #expect(creds.password == Secret("PW-new"))
            let account = try #require(try store.account(named: e.name))
            #expect(account.state == .active)
            #expect(account.stateReason == nil)
            expectBrokerError(.notFound) {
                try store.replaceGrant(account: name("ghost"), refreshToken: nil, accessTokens: [], cookies: nil)
            }
        }
    }

    @Test("a closed store refuses calls; closing twice is harmless")
    func closed() throws {
        try withTemporaryDirectory { dir in
            let store = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            try store.close()
            try store.close()
            expectBrokerError(.internalError) { _ = try store.accounts() }
            expectBrokerError(.internalError) {
                try store.createAccount(
                    name: name("late"), realm: "live", login: "late@example.com", refreshToken: nil, accessTokens: [],
                    password: nil, cookies: nil)
            }
        }
    }
}
