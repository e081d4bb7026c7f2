import BrokerCore
import Foundation
import LiveProtocol
import Testing

@Suite("rps/skypetoken")
struct SkypeTokenTests {
    @Test func requestCarriesTheFourFieldsAsHeadersAndBody() {
        let request = SkypeTokenRequest(accessToken: Secret("Ew+A/b=="))
        #expect(request.headers.map(\.name) == ["scopes", "clientVersion", "access_token", "partner"])
        #expect(request.headers.map(\.value) == ["client", "0/7.4.85.102/259/", "Ew+A/b==", "999"])
        #expect(
            request.formBody
                == "scopes=client&clientVersion=0%2F7.4.85.102%2F259%2F&access_token=Ew%2BA%2Fb%3D%3D&partner=999")
        #expect(SkypeTokenRequest.contentType == "application/x-www-form-urlencoded")
    }

    @Test func success() throws {
        let body = #"{"expiresIn": 86400, "skypetoken": "eyJhbGciOi.skype.token"}"#
        #expect(
            try SkypeTokenResponse.parse(status: 200, body: Array(body.utf8))
                == .success(token: Secret("eyJhbGciOi.skype.token"), expiresIn: 86400))
        let stringExpiry = #"{"skypetoken":"t","expiresIn":"3600"}"#
        #expect(
            try SkypeTokenResponse.parse(status: 200, body: Data(stringExpiry.utf8))
                == .success(token: Secret("t"), expiresIn: 3600))
    }

    @Test func statusFailure() throws {
        let body = #"{"status":{"code":40120,"text":"Authentication failed. Bad username or password."}}"#
        #expect(
            try SkypeTokenResponse.parse(status: 401, body: Array(body.utf8))
                == .failure(code: 40120, text: "Authentication failed. Bad username or password."))
        // Even when the HTTP status says OK.
        #expect(
            try SkypeTokenResponse.parse(status: 200, body: Array(body.utf8))
                == .failure(code: 40120, text: "Authentication failed. Bad username or password."))
    }

    @Test(arguments: [
        "", "<html/>", #"{"skypetoken":"SECRETTOKEN"}"#, #"{"expiresIn":86400}"#,
        #"{"skypetoken":"SECRETTOKEN","expiresIn":"x"}"#,
    ])
    func malformedAnswersThrow(_ body: String) {
        do {
            let result = try SkypeTokenResponse.parse(status: 200, body: Array(body.utf8))
            Issue.record("expected an error, got \(result)")
        } catch {
            #expect(error.code == .upstreamError)
            #expect(!error.description.contains("SECRET"))
        }
    }

    @Test func serverErrorIsTransient() {
        do {
            _ = try SkypeTokenResponse.parse(status: 502, body: Array("bad gateway".utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .temporarilyUnavailable)
        }
    }
}
