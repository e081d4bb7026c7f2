import BrokerAPI
import Testing
import TokenctlKit

/// tokenctl's exit statuses: the table in `tokenctl --help` and docs/API.md.
@Suite struct ExitStatusTests {
    @Test func statuses() {
        #expect(ExitStatus.success == 0)
        #expect(ExitStatus.failure == 1)
        #expect(ExitStatus.notEnrolled == 3)
        #expect(ExitStatus.needsSignIn == 4)
        #expect(ExitStatus.temporarilyUnavailable == 5)
        #expect(ExitStatus.usage == 64)
        #expect(ExitStatus.unreachable == 69)
        #expect(ExitStatus.forbidden == 77)
    }

    /// Every API error code and its exit status (docs/API.md, "the last column").
    @Test(
        arguments: [
            ("bad_request", 64), ("unknown_scope", 64), ("forbidden", 77), ("not_found", 3),
            ("method_not_allowed", 1), ("conflict", 1), ("payload_too_large", 1),
            ("needs_reauth", 4), ("invalid_credentials", 4), ("interaction_required", 4), ("account_locked", 4),
            ("sign_in_failed", 1), ("rate_limited", 5), ("upstream_error", 5), ("temporarily_unavailable", 5),
            ("internal_error", 1), ("credential_unavailable", 1), ("something_new", 1),
        ] as [(String, Int32)])
    func apiCodes(code: String, status: Int32) {
        #expect(ExitStatus.forCode(code) == status)
        let failure = Failure(BrokerClientError.api(status: 400, code: code, message: "it failed", hint: nil))
        #expect(failure.exitStatus == status)
        #expect(failure.message == "it failed (\(code))")
    }

    @Test func apiErrorReport() {
        let failure = Failure(
            BrokerClientError.api(
                status: 404, code: "not_found", message: "no account alice", hint: "tokenctl accounts lists them"))
        #expect(failure.exitStatus == 3)
        #expect(failure.report == "tokenctl: no account alice (not_found)\ntokenctl accounts lists them\n")

        let plain = Failure(BrokerClientError.api(status: 500, code: "internal_error", message: "oops", hint: nil))
        #expect(plain.report == "tokenctl: oops (internal_error)\n")
    }

    /// The failures of the rst realm commands (sso, passport14, ticket --site, login), as the
    /// daemon words them.
    @Test func rstFailures() {
        let wrongPassword = Failure(
            BrokerClientError.api(
                status: 401, code: "invalid_credentials",
                message: "the server refused the login or password: FailedAuthentication", hint: nil))
        #expect(wrongPassword.exitStatus == 4)
        #expect(
            wrongPassword.report
                == "tokenctl: the server refused the login or password: FailedAuthentication (invalid_credentials)\n")

        let needsSignIn = Failure(
            BrokerClientError.api(
                status: 401, code: "needs_reauth", message: "account carol needs a new sign-in: password refused",
                hint: "tokenctl login carol@escargot.chat --realm escargot --password-stdin"))
        #expect(needsSignIn.exitStatus == 4)
        #expect(
            needsSignIn.report == """
                tokenctl: account carol needs a new sign-in: password refused (needs_reauth)
                tokenctl login carol@escargot.chat --realm escargot --password-stdin

                """)

        let oauthAccount = Failure(
            BrokerClientError.api(
                status: 409, code: "credential_unavailable",
                message: "account alice is in realm live, which signs in with oauth: SSO proofs and Passport 1.4 "
                    + "tickets are for rst realms", hint: nil))
        #expect(oauthAccount.exitStatus == 1)

        let badNonce = Failure(
            BrokerClientError.api(
                status: 400, code: "bad_request", message: "nonce must be 1-256 characters of printable ASCII",
                hint: nil))
        #expect(badNonce.exitStatus == 64)

        let refused = Failure(
            BrokerClientError.api(
                status: 401, code: "sign_in_failed", message: "Passport 1.4 answered da-status=failed", hint: nil))
        #expect(refused.exitStatus == 1)
        #expect(
            Failure(
                BrokerClientError.api(status: 502, code: "upstream_error", message: "RST.srf answered 502", hint: nil)
            )
            .exitStatus == 5)
    }

    @Test func unreachable() {
        let missing = Failure(BrokerClientError.unreachable(path: "/run/x.sock", reason: "no such file"))
        #expect(missing.exitStatus == 69)
        #expect(
            missing.report == """
                tokenctl: cannot reach tokenbrokerd at /run/x.sock: no such file
                Is tokenbrokerd running? Pass --socket PATH or set TOKENBROKER_SOCKET to use another socket.

                """)

        let denied = Failure(BrokerClientError.unreachable(path: "/run/x.sock", reason: "Permission denied"))
        #expect(denied.exitStatus == 69)
        #expect(
            denied.report == """
                tokenctl: cannot reach tokenbrokerd at /run/x.sock: Permission denied
                The socket is for the daemon's client group; ask an admin to add you to it.

                """)
    }

    @Test func protocolError() {
        let failure = Failure(BrokerClientError.protocolError("not HTTP"))
        #expect(failure.exitStatus == 1)
        #expect(failure.hint == nil)
        #expect(failure.report == "tokenctl: unexpected answer from tokenbrokerd: not HTTP\n")
    }

    @Test func ownFailures() {
        let failure = Failure("the password is empty", exitStatus: ExitStatus.usage)
        #expect(failure.report == "tokenctl: the password is empty\n")
        #expect(Failure("x").exitStatus == 1)
    }

    /// Client errors and tokenctl's own failures are reported; anything else (ArgumentParser's
    /// validation errors) is left to ArgumentParser.
    @Test func whatIsReported() {
        struct Other: Error {}
        #expect(Failure(reporting: Other()) == nil)
        #expect(Failure(reporting: Failure("mine", exitStatus: 5)) == Failure("mine", exitStatus: 5))
        let client = BrokerClientError.api(status: 403, code: "forbidden", message: "admins only", hint: nil)
        #expect(Failure(reporting: client) == Failure(client))
        #expect(Failure(reporting: client)?.exitStatus == 77)
    }

    @Test func inputLines() throws {
        #expect(try Input.value("  abc \t\r", "the refresh token") == "abc")
        #expect(Input.trimmed(" \n ") == "")
        #expect(throws: Failure("standard input ended before the refresh token", exitStatus: 64)) {
            try Input.value(nil, "the refresh token")
        }
        #expect(throws: Failure("the password on standard input is empty", exitStatus: 64)) {
            try Input.value("   ", "the password")
        }
    }

    @Test func rekeyKey() throws {
        let key = String(repeating: "ab", count: 32)
        #expect(try RekeyReport.key(from: " " + key.prefix(10) + " " + key.dropFirst(10) + "\t") == key)
        let wrong = Failure("the new key must be 64 hex characters (32 bytes)", exitStatus: 64)
        #expect(throws: wrong) { try RekeyReport.key(from: String(key.dropFirst())) }
        #expect(throws: wrong) { try RekeyReport.key(from: String(key.dropFirst()) + "g") }
    }

    @Test func realmChoice() throws {
        let live = RealmInfo(name: "live", authorizeURL: "https://login.live.com/a", isDefault: false)
        let work = RealmInfo(name: "work", authorizeURL: "https://login.example/a", isDefault: true)
        #expect(try Enrollment.chooseRealm(named: nil, from: [live, work]) == work)
        #expect(try Enrollment.chooseRealm(named: nil, from: [live]) == live)
        #expect(try Enrollment.chooseRealm(named: "live", from: [live, work]) == live)
        #expect(throws: Failure("the daemon has no realm other", hint: "Its realms: live, work", exitStatus: 64)) {
            try Enrollment.chooseRealm(named: "other", from: [live, work])
        }
        #expect(throws: Failure("the daemon has no realm configured", exitStatus: 1)) {
            try Enrollment.chooseRealm(named: nil, from: [])
        }
    }
}
