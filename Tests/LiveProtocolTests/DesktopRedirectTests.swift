import BrokerCore
import LiveProtocol
import Testing

@Suite("Desktop redirect")
struct DesktopRedirectTests {
    @Test func tokensAreReadAndPercentDecoded() throws {
        let location =
            "https://login.live.com/oauth20_desktop.srf?lc=1033#access_token=EwA%2bAq1D%2fYz%3d%3d+x"
            + "&token_type=bearer&expires_in=86400&scope=service%3a%3askype.com%3a%3aMBI_SSL"
            + "&refresh_token=MCb%21Rt%2a%24&state=999&user_id=d4e5f6a7b8c9d0e1"
        let result = try DesktopRedirect.parse(location)
        guard case .tokens(let access, let expiresIn, let scope, let refresh, let userID) = result else {
            Issue.record("expected tokens, got \(result)")
            return
        }
        // '+' is not a space here: tokens are base64.
        #expect(access.exposed == "EwA+Aq1D/Yz==+x")
        #expect(expiresIn == 86400)
        #expect(scope == "service::skype.com::MBI_SSL")
        #expect(refresh?.exposed == "MCb!Rt*$")
        #expect(userID == "d4e5f6a7b8c9d0e1")
    }

    @Test func refreshTokenAndUserIDAreOptional() throws {
        let result = try DesktopRedirect.parse(
            "https://login.live.com/oauth20_desktop.srf#access_token=abc&expires_in=3600&scope=s")
        #expect(result == .tokens(access: Secret("abc"), expiresIn: 3600, scope: "s", refreshToken: nil, userID: nil))
    }

    @Test func errorFragment() throws {
        let location =
            "https://login.live.com/oauth20_desktop.srf?lc=1033#error=invalid_request&error_description=The%20provided%20value%20for%20the%20input%20parameter%20%27redirect_uri%27%20is%20not%20valid."
        #expect(
            try DesktopRedirect.parse(location)
                == .error(
                    code: "invalid_request",
                    description: "The provided value for the input parameter 'redirect_uri' is not valid."))
    }

    @Test func errorWinsOverTokens() throws {
        let result = try DesktopRedirect.parse(
            "https://x/oauth20_desktop.srf#access_token=abc&expires_in=1&error=access_denied")
        #expect(result == .error(code: "access_denied", description: ""))
    }

    @Test func errorInTheQueryIsAccepted() throws {
        let result = try DesktopRedirect.parse(
            "https://login.live.com/oauth20_desktop.srf?error=access_denied&error_description=denied&lc=1033")
        #expect(result == .error(code: "access_denied", description: "denied"))
    }

    @Test(arguments: [
        "https://login.live.com/oauth20_desktop.srf?lc=1033",
        "https://login.live.com/oauth20_desktop.srf?lc=1033#",
        "https://login.live.com/oauth20_desktop.srf#token_type=bearer&state=1",
        "",
    ])
    func unusableRedirectsThrowUpstreamError(_ location: String) {
        #expect(throws: BrokerError.self) { try DesktopRedirect.parse(location) }
        do {
            _ = try DesktopRedirect.parse(location)
        } catch {
            #expect(error.code == .upstreamError)
        }
    }

    @Test func badExpiryThrowsWithoutQuotingTheToken() {
        let location =
            "https://login.live.com/oauth20_desktop.srf#access_token=SECRETACCESS&refresh_token=SECRETREFRESH&expires_in=soon"
        do {
            _ = try DesktopRedirect.parse(location)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .upstreamError)
            #expect(!error.message.contains("SECRET"))
            #expect(!error.description.contains("SECRET"))
        }
    }
}
