import BrokerAPI
import Foundation
import Testing

@testable import TokenctlKit

/// What people expect of a shell tool: colour only on a terminal, and no name needed for the only
/// account.
@Suite struct NicetiesTests {
    @Test("colour on a terminal only; NO_COLOR with any value, or TERM=dumb, turns it off")
    func colourRules() {
        func palette(_ terminal: Bool, _ environment: [String: String]) -> Bool {
            Palette.forOutput(isTerminal: terminal) { environment[$0] }.enabled
        }
        #expect(palette(true, ["TERM": "xterm-256color"]))
        #expect(!palette(false, ["TERM": "xterm-256color"]))
        #expect(!palette(true, ["NO_COLOR": "1"]))
        #expect(!palette(true, ["NO_COLOR": "yes", "TERM": "xterm"]))
        #expect(palette(true, ["NO_COLOR": ""]), "an empty NO_COLOR is unset (no-color.org)")
        #expect(!palette(true, ["TERM": "dumb"]))
    }

    @Test("status in colour: states, failures and errors are coloured, and the columns stay aligned")
    func colouredStatus() {
        let now = Date(timeIntervalSince1970: 1_795_784_400) // 2026-11-27T13:00:00Z
        let account = AccountDetail(
            name: "alice", realm: "live", login: "alice@example.com", state: "needs_reauth",
            stateReason: "revoked",
            scopes: [
                ScopeStatus(
                    scope: "service::ssl.live.com::MBI_SSL", alias: "ssl", failures: 2,
                    lastError: APIErrorInfo(code: "needs_reauth", message: "revoked"))
            ])
        let plain = StatusReport.account(account, now: now)
        let coloured = StatusReport.account(account, now: now, palette: Palette(enabled: true))
        #expect(!plain.contains("\u{1B}["))
        #expect(coloured.contains("\u{1B}[31mneeds_reauth (revoked)\u{1B}[0m"))
        #expect(coloured.contains("\u{1B}[33m2\u{1B}[0m"))
        // Without the escapes, the coloured text is the plain one.
        let stripped = coloured.replacing(#/\x1B\[[0-9]+m/#, with: "")
        #expect(stripped == plain)
        #expect(
            StatusReport.health(
                HealthResponse(status: "ok", version: "1", accounts: 1, needsReauth: 1), palette: Palette(enabled: true)
            )
            .contains("\u{1B}[31m1 needs sign-in\u{1B}[0m"))
    }

    @Test("no name: the only account; none is exit 3, several is exit 64 naming them")
    func onlyAccount() throws {
        #expect(try AccountChoice.only(["alice"]) == "alice")
        #expect(throws: Failure.self) { try AccountChoice.only([]) }
        do {
            _ = try AccountChoice.only(["bob", "alice"])
        } catch {
            #expect(error.exitStatus == ExitStatus.usage)
            #expect(error.message == "2 accounts; name one: alice, bob")
        }
        do {
            _ = try AccountChoice.only([])
        } catch {
            #expect(error.exitStatus == ExitStatus.notEnrolled)
        }
    }
}
