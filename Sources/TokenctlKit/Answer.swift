import BrokerAPI

/// How the token and credential commands print an answer: the bare value, for use as
/// $(tokenctl token alice), or with --json the whole answer.
package enum Answer {
    package static func text<T: Encodable>(_ answer: T, bare: String, json: Bool) throws -> String {
        json ? String(decoding: try BrokerJSON.encode(answer), as: UTF8.self) : bare
    }

    /// `tokenctl token`: the access token, or the whole `TokenResponse`.
    package static func token(_ token: TokenResponse, json: Bool) throws -> String {
        try text(token, bare: token.accessToken, json: json)
    }
}
