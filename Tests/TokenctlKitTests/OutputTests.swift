import BrokerAPI
import Testing
import TokenctlKit

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

private let now = BrokerJSON.parseDate("2026-11-27T13:00:30Z")!

/// What tokenctl prints, byte for byte (`print` adds the final newline).
@Suite struct OutputTests {
    // MARK: - Format

    @Test func table() {
        let rows = [
            ["alice", "live", "alice@example.com", "active"],
            ["bob@example.com", "work", "bob@example.com", "needs_reauth"],
        ]
        #expect(
            Format.table(rows) == """
                alice            live  alice@example.com  active
                bob@example.com  work  bob@example.com    needs_reauth
                """)
        #expect(Format.table([["a", "bb"], ["ccc", "d"]], indent: "  ") == "  a    bb\n  ccc  d")
        #expect(Format.table([]) == "")
    }

    @Test func durations() {
        #expect(Format.duration(0) == "0 s")
        #expect(Format.duration(45) == "45 s")
        #expect(Format.duration(60) == "1 min")
        #expect(Format.duration(3599) == "59 min")
        #expect(Format.duration(3600 * 2 + 5 * 60 + 7) == "2 h 5 min")
        #expect(Format.duration(86400 * 3 + 3600 * 4 + 59) == "3 d 4 h")
        #expect(Format.plural(1, "account", "accounts") == "1 account")
        #expect(Format.plural(0, "account", "accounts") == "0 accounts")
    }

    @Test func times() {
        #expect(Format.time("2026-11-27T14:00:00Z", now: now) == "in 59 min (14:00:00Z)")
        #expect(Format.time("2026-11-27T12:57:30Z", now: now) == "3 min ago (12:57:30Z)")
        #expect(Format.time("2026-11-28T14:00:00Z", now: now) == "in 1 d 0 h (2026-11-28 14:00:00Z)")
        #expect(Format.time(nil, now: now) == "-")
        #expect(Format.time("soon", now: now) == "soon")
        #expect(Format.clock("2026-11-27T15:00:00+01:00", now: now) == "14:00:00Z")
        #expect(Format.clock("2026-11-26T23:00:00Z", now: now) == "2026-11-26 23:00:00Z")
    }

    // MARK: - tokenctl status

    @Test func health() {
        #expect(
            StatusReport.health(HealthResponse(version: "0.1.0", accounts: 2, needsReauth: 1))
                == "tokenbrokerd 0.1.0: ok, 2 accounts, 1 needs sign-in")
        #expect(
            StatusReport.health(HealthResponse(version: "0.1.0", accounts: 1, needsReauth: 0))
                == "tokenbrokerd 0.1.0: ok, 1 account, 0 need sign-in")
        #expect(
            StatusReport.health(
                HealthResponse(
                    status: "degraded", version: "0.1.0", accounts: 0, needsReauth: 2, storageError: "disk full"))
                    == """
                    tokenbrokerd 0.1.0: degraded, 0 accounts, 2 need sign-in
                    storage writes are failing (tokens are kept in memory and retried): disk full
                    """)
    }

    @Test func activeAccount() {
        let account = AccountDetail(
            name: "alice", realm: "live", login: "alice@example.com", state: "active",
            scopes: [
                ScopeStatus(
                    scope: "service::skype.com::MBI_SSL", alias: "skype", expiresAt: "2026-11-27T14:00:00Z",
                    nextRefresh: "2026-11-27T13:50:00Z"),
                ScopeStatus(
                    scope: "service::ssl.live.com::MBI_SSL", alias: "ssl", backoffUntil: "2026-11-27T13:05:00Z",
                    failures: 2,
                    lastError: APIErrorInfo(code: "temporarily_unavailable", message: "the provider answered 503")),
            ],
            readers: AccountDetail.Readers(uids: [1000, 1001], groups: []))
        #expect(
            StatusReport.account(account, now: now) == """
                alice  alice@example.com  realm live  active
                  readers: root; uids 1000, 1001; gids none
                  SCOPE  EXPIRES                NEXT REFRESH           FAILURES  LAST ERROR
                  skype  in 59 min (14:00:00Z)  in 49 min (13:50:00Z)  0         -
                  ssl    -                      -                      2         temporarily_unavailable: the provider answered 503 (backing off until 13:05:00Z)
                """)
    }

    @Test func accountThatNeedsSignIn() {
        let account = AccountDetail(
            name: "bob", realm: "work", login: "bob@example.com", state: "needs_reauth",
            stateReason: "the refresh token was revoked", scopes: [])
        #expect(
            StatusReport.account(account, now: now) == """
                bob  bob@example.com  realm work  needs_reauth (the refresh token was revoked)
                  sign in again: tokenctl login bob@example.com
                  no scopes
                """)
        #expect(StatusReport.loggedOutMeanwhile("bob") == "bob: logged out meanwhile")
    }

    /// An account of an rst realm: its credentials are the RST sites (name = the site's address).
    @Test func rstAccount() {
        let sites = [
            "contacts.msn.com", "messenger.msn.com", "messengerclear.live.com", "messengersecure.live.com",
        ].map {
            ScopeStatus(
                scope: $0, alias: $0, expiresAt: "2026-11-28T13:00:00Z", lastRefresh: "2026-11-27T13:00:00Z",
                nextRefresh: "2026-11-28T07:00:00Z")
        }
        let storage = ScopeStatus(
            scope: "storage.msn.com", alias: "storage.msn.com", expiresAt: "2026-11-27T12:55:30Z",
            backoffUntil: "2026-11-27T13:05:00Z", failures: 1,
            lastError: APIErrorInfo(code: "upstream_error", message: "RST.srf answered 502"))
        let account = AccountDetail(
            name: "carol", realm: "escargot", login: "carol@escargot.chat", state: "active",
            scopes: sites + [storage])
        #expect(account.hasSites)
        #expect(
            StatusReport.account(account, now: now) == """
                carol  carol@escargot.chat  realm escargot  active
                  SITE                      EXPIRES                                NEXT REFRESH                           FAILURES  LAST ERROR
                  contacts.msn.com          in 23 h 59 min (2026-11-28 13:00:00Z)  in 17 h 59 min (2026-11-28 07:00:00Z)  0         -
                  messenger.msn.com         in 23 h 59 min (2026-11-28 13:00:00Z)  in 17 h 59 min (2026-11-28 07:00:00Z)  0         -
                  messengerclear.live.com   in 23 h 59 min (2026-11-28 13:00:00Z)  in 17 h 59 min (2026-11-28 07:00:00Z)  0         -
                  messengersecure.live.com  in 23 h 59 min (2026-11-28 13:00:00Z)  in 17 h 59 min (2026-11-28 07:00:00Z)  0         -
                  storage.msn.com           5 min ago (12:55:30Z)                  -                                      1         upstream_error: RST.srf answered 502 (backing off until 13:05:00Z)
                """)
    }

    /// An rst account that needs a new sign-in is told its realm (rarely the default) and name.
    @Test func rstAccountThatNeedsSignIn() {
        let account = AccountDetail(
            name: "carol", realm: "escargot", login: "carol@escargot.chat", state: "needs_reauth",
            stateReason: "the server refused the password",
            scopes: [ScopeStatus(scope: "messengerclear.live.com", alias: "messengerclear.live.com")])
        #expect(
            StatusReport.account(account, now: now) == """
                carol  carol@escargot.chat  realm escargot  needs_reauth (the server refused the password)
                  sign in again: tokenctl login carol@escargot.chat --realm escargot --name carol --password-stdin
                  SITE                     EXPIRES  NEXT REFRESH  FAILURES  LAST ERROR
                  messengerclear.live.com  -        -             0         -
                """)
    }

    /// Only RST site addresses count as sites; OAuth scopes and credential kinds do not.
    @Test func sitesAndScopes() {
        #expect(ScopeStatus(scope: "messengerclear.live.com", alias: "messengerclear.live.com").isSite)
        #expect(ScopeStatus(scope: "http://Passport.NET/tb", alias: "http://Passport.NET/tb").isSite)
        #expect(!ScopeStatus(scope: "service::skype.com::MBI_SSL", alias: "skype").isSite)
        #expect(!ScopeStatus(scope: "skypetoken", alias: "skypetoken").isSite)
        #expect(!ScopeStatus(scope: "ticket", alias: "ticket").isSite)
        let oauth = AccountDetail(
            name: "alice", realm: "live", login: "alice@example.com", state: "active",
            scopes: [
                ScopeStatus(scope: "service::skype.com::MBI_SSL", alias: "skype"),
                ScopeStatus(scope: "ticket", alias: "ticket"),
            ])
        #expect(!oauth.hasSites)
        #expect(StatusReport.account(oauth, now: now).contains("\n  SCOPE "))
        #expect(!AccountDetail(name: "a", realm: "r", login: "a", state: "active", scopes: []).hasSites)
    }

    // MARK: - tokenctl accounts

    @Test func accounts() {
        #expect(
            AccountList.table([
                AccountSummary(name: "alice", realm: "live", login: "alice@example.com", state: "active"),
                AccountSummary(name: "b", realm: "work", login: "b@example.com", state: "needs_reauth"),
            ]) == """
                alice  live  alice@example.com  active
                b      work  b@example.com      needs_reauth
                """)
        #expect(AccountList.noneEnrolled == "no accounts are enrolled (tokenctl login LOGIN)\n")
    }

    // MARK: - tokenctl token and the credential commands

    @Test func token() throws {
        let token = TokenResponse(
            accessToken: "EwB4A/token", scope: "service::skype.com::MBI_SSL", expiresAt: "2026-11-27T14:00:00Z",
            expiresIn: 3570)
        #expect(try Answer.token(token, json: false) == "EwB4A/token")
        #expect(
            try Answer.token(token, json: true)
                == #"{"access_token":"EwB4A/token","expires_at":"2026-11-27T14:00:00Z","expires_in":3570,"scope":"service::skype.com::MBI_SSL","token_type":"bearer"}"#
        )
    }

    @Test func skypetoken() throws {
        let answer = SkypetokenResult(skypetoken: "eyJskype", expiresAt: "2026-11-28T13:00:00Z", expiresIn: 86370)
        #expect(try Answer.text(answer, bare: answer.skypetoken, json: false) == "eyJskype")
        #expect(
            try Answer.text(answer, bare: answer.skypetoken, json: true)
                == #"{"expires_at":"2026-11-28T13:00:00Z","expires_in":86370,"skypetoken":"eyJskype"}"#)
    }

    @Test func uic() throws {
        let answer = UICResult(uic: "uic/value", expiresAt: "2026-11-28T13:00:00Z", expiresIn: 10)
        #expect(try Answer.text(answer, bare: answer.uic, json: false) == "uic/value")
        #expect(
            try Answer.text(answer, bare: answer.uic, json: true)
                == #"{"expires_at":"2026-11-28T13:00:00Z","expires_in":10,"uic":"uic/value"}"#)
    }

    @Test func ticket() throws {
        let answer = TicketResult(
            ticket: "t=abc&p=", method: "oauth", site: "messengerclear.live.com", expiresAt: "2026-11-28T13:00:00Z",
            expiresIn: 10)
        #expect(try Answer.text(answer, bare: answer.ticket, json: false) == "t=abc&p=")
        #expect(
            try Answer.text(answer, bare: answer.ticket, json: true)
                == #"{"expires_at":"2026-11-28T13:00:00Z","expires_in":10,"method":"oauth","site":"messengerclear.live.com","ticket":"t=abc&p="}"#
        )
    }

    @Test func webTicket() throws {
        let answer = WebTicketResult(
            cookies: "MSPAuth=a; MSPProf=b; WLSSC=c",
            headers: ["X-MSN-Auth": "Use-Cookie", "Cookie": "MSPAuth=a; MSPProf=b; WLSSC=c"],
            expiresAt: "2026-11-28T13:00:00Z", expiresIn: 10)
        #expect(try Answer.text(answer, bare: answer.cookies, json: false) == "MSPAuth=a; MSPProf=b; WLSSC=c")
        #expect(
            try Answer.text(answer, bare: answer.cookies, json: true)
                == #"{"cookies":"MSPAuth=a; MSPProf=b; WLSSC=c","expires_at":"2026-11-28T13:00:00Z","expires_in":10,"headers":{"Cookie":"MSPAuth=a; MSPProf=b; WLSSC=c","X-MSN-Auth":"Use-Cookie"}}"#
        )
    }

    @Test func ath() throws {
        let answer = ATHResult(
            method: "ssl-compact-ticket-uic", body: "t=abc&p=\r\nuic", length: 13,
            wire: "ATH {trid} CON\\USER 13\r\nt=abc&p=\r\nuic", expiresAt: "2026-11-28T13:00:00Z", expiresIn: 10)
        #expect(try Answer.text(answer, bare: answer.wire, json: false) == "ATH {trid} CON\\USER 13\r\nt=abc&p=\r\nuic")
        #expect(
            try Answer.text(answer, bare: answer.wire, json: true)
                == #"{"body":"t=abc&p=\r\nuic","expires_at":"2026-11-28T13:00:00Z","expires_in":10,"length":13,"method":"ssl-compact-ticket-uic","wire":"ATH {trid} CON\\USER 13\r\nt=abc&p=\r\nuic"}"#
        )
    }

    @Test func rstTicket() throws {
        let answer = TicketResult(
            ticket: "t=0123456789abcdef0123xyz&p=", method: "rst", site: "contacts.msn.com",
            expiresAt: "2026-11-28T13:00:00Z", expiresIn: 86370)
        #expect(try Answer.text(answer, bare: answer.ticket, json: false) == "t=0123456789abcdef0123xyz&p=")
        #expect(
            try Answer.text(answer, bare: answer.ticket, json: true)
                == #"{"expires_at":"2026-11-28T13:00:00Z","expires_in":86370,"method":"rst","site":"contacts.msn.com","ticket":"t=0123456789abcdef0123xyz&p="}"#
        )
    }

    /// `tokenctl sso`: the `USR` line, or the whole answer.
    @Test func sso() throws {
        let answer = SSOResult(
            ticket: "t=abc&p=", proof: "HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAA+/x=", policy: "MBI_KEY_OLD",
            usr:
                "USR 4 SSO S t=abc&p= HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAA+/x= {6F1C2A3B-0000-4000-8000-0123456789AB}",
            expiresAt: "2026-11-28T13:00:00Z", expiresIn: 86370)
        #expect(
            try Answer.text(answer, bare: answer.usr, json: false)
                == "USR 4 SSO S t=abc&p= HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAA+/x= {6F1C2A3B-0000-4000-8000-0123456789AB}"
        )
        #expect(
            try Answer.text(answer, bare: answer.usr, json: true)
                == #"{"expires_at":"2026-11-28T13:00:00Z","expires_in":86370,"policy":"MBI_KEY_OLD","proof":"HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAA+/x=","ticket":"t=abc&p=","usr":"USR 4 SSO S t=abc&p= HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAA+/x= {6F1C2A3B-0000-4000-8000-0123456789AB}"}"#
        )
        let placeholder = SSOResult(
            ticket: "t=abc&p=", proof: "HAAA", policy: "MBI_KEY_OLD", usr: "USR {trid} SSO S t=abc&p= HAAA",
            expiresAt: "2026-11-28T13:00:00Z", expiresIn: 10)
        #expect(try Answer.text(placeholder, bare: placeholder.usr, json: false) == "USR {trid} SSO S t=abc&p= HAAA")
    }

    /// `tokenctl passport14`: the ticket, or the whole answer with its null lifetime.
    @Test func passport14() throws {
        let answer = Passport14Result(ticket: "t=0123456789abcdef0123&p=")
        #expect(try Answer.text(answer, bare: answer.ticket, json: false) == "t=0123456789abcdef0123&p=")
        #expect(
            try Answer.text(answer, bare: answer.ticket, json: true)
                == #"{"expires_in":null,"ticket":"t=0123456789abcdef0123&p="}"#)
    }

    // MARK: - tokenctl login, import, logout, rekey

    @Test func enrolled() {
        var account = AccountDetail(
            name: "alice", realm: "live", login: "alice@example.com", state: "active",
            scopes: [ScopeStatus(scope: "a", alias: "skype"), ScopeStatus(scope: "b", alias: "ssl")])
        #expect(
            Enrollment.enrolled(account) == "enrolled alice (alice@example.com, realm live): active\nscopes: skype, ssl"
        )
        account.scopes = []
        account.state = "needs_reauth"
        account.stateReason = "consent required"
        #expect(
            Enrollment.enrolled(account)
                == "enrolled alice (alice@example.com, realm live): needs_reauth (consent required)")
    }

    @Test func enrolledInRSTRealm() {
        let account = AccountDetail(
            name: "carol", realm: "escargot", login: "carol@escargot.chat", state: "active",
            scopes: ["messengerclear.live.com", "storage.msn.com"].map { ScopeStatus(scope: $0, alias: $0) })
        #expect(
            Enrollment.enrolled(account)
                == "enrolled carol (carol@escargot.chat, realm escargot): active\nsites: messengerclear.live.com, storage.msn.com"
        )
    }

    /// What tokenctl login says before a password enrollment in an rst realm.
    @Test func rstRealmLogin() throws {
        let realm = RealmInfo(name: "escargot", signIn: "rst", authorizeURL: nil, isDefault: false)
        #expect(realm.signIn == Enrollment.rstSignIn)
        #expect(
            Enrollment.rstPasswordNote(realm)
                == "realm escargot signs in with rst (RST.srf): the password is stored (sealed), as renewing RST tickets needs it"
        )
        let failure = Enrollment.ticketMethodInRSTRealm(realm)
        #expect(failure.exitStatus == 64)
        #expect(
            failure.report == """
                tokenctl: realm escargot signs in with rst: its tickets all come from RST.srf, so --ticket-method does not apply
                Leave out --ticket-method.

                """)
        let realms = [
            RealmInfo(name: "live", authorizeURL: "https://login.live.com/oauth20_authorize.srf", isDefault: true),
            realm,
        ]
        #expect(try Enrollment.chooseRealm(named: "escargot", from: realms).signIn == "rst")
        #expect(try Enrollment.chooseRealm(named: nil, from: realms).signIn == "oauth")
        #expect(try Enrollment.passwordRealm(named: "escargot", from: realms)?.signIn == "rst")
        #expect(try Enrollment.passwordRealm(named: nil, from: realms)?.name == "live")
        #expect(try Enrollment.passwordRealm(named: nil, from: [realm]) == nil)
        #expect(throws: Failure.self) { try Enrollment.passwordRealm(named: "nope", from: realms) }
    }

    @Test func browserInstructions() {
        let url =
            "https://login.example/oauth20_authorize.srf?client_id=1&redirect_uri=https%3A%2F%2Flogin.example%2Fdone&scope=x"
        #expect(
            Enrollment.browserInstructions(login: "alice@example.com", authorizeURL: url, cookies: false) == """
                To enroll alice@example.com, open this address in a browser and sign in:

                  \(url)

                The browser ends on a blank page. Copy its address (it starts with
                https://login.example/done), paste it here and press Enter.


                """)
        #expect(
            Enrollment.browserInstructions(login: "a", authorizeURL: "https://login.live.com/x", cookies: true) == """
                To enroll a, open this address in a browser and sign in:

                  https://login.live.com/x

                The browser ends on a blank page. Copy its address (it starts with
                https://login.live.com/oauth20_desktop.srf), paste it here and press Enter.
                Then paste the cookies line (MSPAuth=...; MSPProf=...; WLSSC=...) and press Enter.


                """)
    }

    @Test func redirectPrefix() {
        #expect(Enrollment.redirectPrefix(of: "https://a/b?redirect_uri=https://c/d") == "https://c/d")
        #expect(Enrollment.redirectPrefix(of: "https://a/b?x=1&redirect_uri=a+b%20c") == "a b c")
        #expect(
            Enrollment.redirectPrefix(of: "https://a/b?redirect_uri=%zz")
                == "https://login.live.com/oauth20_desktop.srf")
        #expect(Enrollment.redirectPrefix(of: "https://a/b") == "https://login.live.com/oauth20_desktop.srf")
    }

    @Test func loggedOut() {
        #expect(
            Enrollment.loggedOut(DeleteResponse(deleted: "alice"))
                == "logged out alice: its tokens, refresh token and password are forgotten")
    }

    @Test func rekeyed() {
        #expect(
            RekeyReport.result(RekeyResult(keyID: "k2", resealed: 12, keyFile: "/var/lib/tokenbroker/key")) == """
                re-sealed 12 values under key k2
                the key file /var/lib/tokenbroker/key now holds the new key
                """)
        #expect(
            RekeyReport.result(RekeyResult(keyID: "k2", resealed: 0, keyFile: nil)) == """
                re-sealed 0 values under key k2
                replace the systemd credential tokenbroker.key with the new key before the next restart
                """)
    }
}
