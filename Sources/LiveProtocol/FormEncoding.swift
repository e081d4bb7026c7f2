import BrokerCore

/// `application/x-www-form-urlencoded`, written strictly: only RFC 3986 unreserved characters
/// stay literal, so a password or token can never change the shape of a body or query.
package enum FormEncoding {
    package static let contentType = "application/x-www-form-urlencoded"

    package static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }

    /// Splits on `&` and the first `=`, and decodes `%XX` and `+` (a space in this format).
    /// Empty segments are skipped; a segment without `=` has an empty value.
    package static func decode(_ body: String) -> [(String, String)] {
        body.split(separator: "&", omittingEmptySubsequences: true).map { segment in
            if let eq = segment.firstIndex(of: "=") {
                return (
                    percentDecode(segment[..<eq], plusAsSpace: true),
                    percentDecode(segment[segment.index(after: eq)...], plusAsSpace: true)
                )
            }
            return (percentDecode(segment, plusAsSpace: true), "")
        }
    }

    /// Percent-encodes everything except `A-Z a-z 0-9 - . _ ~`, with upper-case hex.
    package static func percentEncode(_ s: String) -> String { URLEncoding.percentEncode(s) }
}

/// The body of a refresh at oauth20_token.srf.
package enum TokenRequest {
    package static func refreshBody(clientID: String = messengerClientID, scope: String, refreshToken: Secret) -> String
    {
        FormEncoding.encode([
            ("client_id", clientID),
            ("scope", scope),
            ("grant_type", "refresh_token"),
            ("refresh_token", refreshToken.exposed),
        ])
    }

    package static func refreshBody(clientID: String = messengerClientID, scope: Scope, refreshToken: Secret) -> String
    {
        refreshBody(clientID: clientID, scope: scope.rawValue, refreshToken: refreshToken)
    }
}

/// The credentials POST to the page's `urlPost`.
package enum LoginForm {
    /// The fields working clients sent: the password goes in `passwd` (the seed's `password`
    /// was not what the server read), the login in both `login` and `loginfmt`.
    package static func body(login: String, password: Secret, ppft: String) -> String {
        FormEncoding.encode([
            ("login", login),
            ("loginfmt", login),
            ("passwd", password.exposed),
            ("PPFT", ppft),
            ("PPSX", "Passpor"),
            ("type", "11"),
            ("LoginOptions", "3"),
        ])
    }
}
