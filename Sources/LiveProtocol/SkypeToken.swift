import BrokerCore
import Foundation

/// The request to api.skype.com/rps/skypetoken. The seed sends the fields as headers, a client
/// that worked in 2017 as a form body; sending both satisfies either kind of server.
package struct SkypeTokenRequest: Sendable {
    package static let defaultClientVersion = "0/7.4.85.102/259/"

    package var accessToken: Secret
    package var clientVersion: String

    /// `accessToken` is the `service::skype.com::MBI_SSL` OAuth token.
    package init(accessToken: Secret, clientVersion: String = SkypeTokenRequest.defaultClientVersion) {
        self.accessToken = accessToken
        self.clientVersion = clientVersion
    }

    private var fields: [(String, String)] {
        [
            ("scopes", "client"),
            ("clientVersion", clientVersion),
            ("access_token", accessToken.exposed),
            ("partner", "999"),
        ]
    }

    package var headers: [(name: String, value: String)] { fields.map { (name: $0.0, value: $0.1) } }

    /// The same four fields, `application/x-www-form-urlencoded`.
    package var formBody: String { FormEncoding.encode(fields) }
    package static let contentType = FormEncoding.contentType
}

/// The answer of rps/skypetoken.
package enum SkypeTokenResponse: Sendable, Hashable {
    case success(token: Secret, expiresIn: Int)
    /// `{"status":{"code":40120,"text":"Authentication failed. ..."}}`.
    case failure(code: Int, text: String)

    package static func parse(status: Int, body: [UInt8]) throws(BrokerError) -> SkypeTokenResponse {
        try parse(status: status, body: Data(body))
    }

    /// Throws `.upstreamError` for a body that is neither a token nor a status, and
    /// `.temporarilyUnavailable` for such a body with a 5xx. Messages never quote the body.
    package static func parse(status: Int, body: Data) throws(BrokerError) -> SkypeTokenResponse {
        let json = JSONValue.object(from: body)
        if let statusObject = json?["status"]?.objectValue, let code = statusObject["code"]?.int {
            return .failure(code: code, text: statusObject["text"]?.string ?? "")
        }
        if let json, let code = json["errorCode"]?.int {
            return .failure(code: code, text: json["message"]?.string ?? "")
        }
        if (200...299).contains(status), let json, let token = json.nonEmptyString("skypetoken") {
            guard let expiresIn = json["expiresIn"]?.int, expiresIn >= 0 else {
                throw BrokerError(.upstreamError, "malformed skypetoken response: no valid expiresIn")
            }
            return .success(token: Secret(token), expiresIn: expiresIn)
        }
        if (500...599).contains(status) {
            throw BrokerError(.temporarilyUnavailable, "skypetoken endpoint answered HTTP \(status)")
        }
        throw BrokerError(.upstreamError, "malformed skypetoken response (HTTP \(status))")
    }
}
