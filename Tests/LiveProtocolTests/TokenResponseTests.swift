import BrokerCore
import Foundation
import LiveProtocol
import Testing

@Suite("oauth20_token.srf response")
struct TokenResponseTests {
    static func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func successWithRotatedRefreshToken() throws {
        let body =
            #"{ "access_token":"EwBAAq1DBAAU+tok/en==", "expires_in":86400, "refresh_token":"MCRnew!*", "scope":"service::ssl.live.com::MBI_SSL", "token_type":"bearer", "user_id":"a1b2c3d4e5f6a7b8" }"#
        let result = try TokenResponse.parse(status: 200, body: Self.bytes(body))
        #expect(
            result
                == .success(
                    access: Secret("EwBAAq1DBAAU+tok/en=="), expiresIn: 86400, refreshToken: Secret("MCRnew!*"),
                    scope: "service::ssl.live.com::MBI_SSL", userID: "a1b2c3d4e5f6a7b8"))
    }

    @Test func expiresInAsStringAndNoRefreshToken() throws {
        let body = #"{"access_token":"tok","expires_in":"3600","scope":"s","token_type":"bearer"}"#
        let result = try TokenResponse.parse(status: 200, body: Data(body.utf8))
        #expect(result == .success(access: Secret("tok"), expiresIn: 3600, refreshToken: nil, scope: "s", userID: nil))
    }

    @Test(arguments: [
        "invalid_grant", "invalid_scope", "invalid_request", "invalid_client", "unauthorized_client",
        "temporarily_unavailable",
    ])
    func oauthErrors(_ code: String) throws {
        let body =
            #"{"error":"\#(code)","error_description":"The user could not be authenticated or the grant is expired."}"#
        #expect(
            try TokenResponse.parse(status: 400, body: Self.bytes(body))
                == .failure(error: code, description: "The user could not be authenticated or the grant is expired."))
    }

    @Test func errorWithoutDescription() throws {
        #expect(
            try TokenResponse.parse(status: 400, body: Self.bytes(#"{"error":"invalid_grant"}"#))
                == .failure(error: "invalid_grant", description: ""))
    }

    @Test func rateLimitBody() throws {
        let body = #"{"errorCode":803,"message":"Login Rate limit exceeded"}"#
        #expect(
            try TokenResponse.parse(status: 429, body: Self.bytes(body))
                == .rateLimited(message: "Login Rate limit exceeded"))
        // The same body with another status is still the rate limit.
        #expect(
            try TokenResponse.parse(status: 400, body: Self.bytes(body))
                == .rateLimited(message: "Login Rate limit exceeded"))
    }

    @Test func rateLimitWithoutJSONBody() throws {
        guard case .rateLimited = try TokenResponse.parse(status: 429, body: Self.bytes("Too Many Requests")) else {
            Issue.record("expected rateLimited")
            return
        }
    }

    @Test(arguments: [
        #"{"access_token":"SECRETACCESS","#, // truncated JSON
        "<html><body>Service Unavailable</body></html>",
        "",
        #"["access_token"]"#,
        #"{"access_token":"SECRETACCESS","refresh_token":"SECRETREFRESH"}"#, // no expires_in
        #"{"expires_in":86400,"refresh_token":"SECRETREFRESH"}"#, // no access_token
        #"{"access_token":"","expires_in":86400}"#,
        #"{"access_token":"SECRETACCESS","expires_in":"tomorrow"}"#,
        #"{"access_token":"SECRETACCESS","expires_in":-5}"#,
    ])
    func malformedSuccessBodiesThrowWithoutSecrets(_ body: String) {
        do {
            let result = try TokenResponse.parse(status: 200, body: Self.bytes(body))
            Issue.record("expected an error, got \(result)")
        } catch {
            #expect(error.code == .upstreamError)
            #expect(error.message.hasPrefix("malformed token response: "))
            #expect(!error.description.contains("SECRET"))
        }
    }

    @Test func serverErrorWithoutOAuthErrorIsTransient() {
        do {
            _ = try TokenResponse.parse(status: 503, body: Self.bytes("<html>busy</html>"))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .temporarilyUnavailable)
        }
    }

    @Test func clientErrorWithoutOAuthErrorIsUpstreamError() {
        do {
            _ = try TokenResponse.parse(status: 400, body: Self.bytes(#"{"something":"else"}"#))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .upstreamError)
        }
    }
}
