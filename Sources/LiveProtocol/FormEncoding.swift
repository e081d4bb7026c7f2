import BrokerCore

/// `application/x-www-form-urlencoded`, written strictly: only RFC 3986 unreserved characters
/// stay literal, so a password or token can never change the shape of a body or query.
public enum FormEncoding {
    public static let contentType = "application/x-www-form-urlencoded"

    public static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }

    /// Splits on `&` and the first `=`, and decodes `%XX` and `+` (a space in this format).
    /// Empty segments are skipped; a segment without `=` has an empty value.
    public static func decode(_ body: String) -> [(String, String)] {
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
    public static func percentEncode(_ s: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for c in s.utf8 {
            switch c {
            case .ascii("A")...UInt8.ascii("Z"), .ascii("a")...UInt8.ascii("z"), .ascii("0")...UInt8.ascii("9"),
                .ascii("-"), .ascii("."), .ascii("_"), .ascii("~"):
                out.append(c)
            default:
                out.append(.ascii("%"))
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 0x0F)])
            }
        }
        return String(utf8Bytes: out)
    }
}

/// The body of a refresh at oauth20_token.srf.
public enum TokenRequest {
    public static func refreshBody(clientID: String = messengerClientID, scope: String, refreshToken: Secret) -> String
    {
        FormEncoding.encode([
            ("client_id", clientID),
            ("scope", scope),
            ("grant_type", "refresh_token"),
            ("refresh_token", refreshToken.exposed),
        ])
    }

    public static func refreshBody(clientID: String = messengerClientID, scope: Scope, refreshToken: Secret) -> String {
        refreshBody(clientID: clientID, scope: scope.rawValue, refreshToken: refreshToken)
    }
}

/// The credentials POST to the page's `urlPost`.
public enum LoginForm {
    /// The fields working clients sent: the password goes in `passwd` (the seed's `password`
    /// was not what the server read), the login in both `login` and `loginfmt`.
    public static func body(login: String, password: Secret, ppft: String) -> String {
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

/// The URLs of the browserless sign-in. The base is per realm: revival and test servers stand
/// in for login.live.com.
public enum AuthorizeURL {
    /// `{base}/oauth20_authorize.srf?client_id=...&scope=...&response_type=token&redirect_uri=...`
    public static func make(
        base: String, clientID: String = messengerClientID, scope: String,
        redirectURI: String = defaultDesktopRedirect
    ) -> String {
        "\(trimmed(base))/oauth20_authorize.srf?\(query(clientID: clientID, scope: scope, redirectURI: redirectURI))"
    }

    /// The seed's post target, `{base}/ppsecure/post.srf` with the authorize query, for pages
    /// that carry no `urlPost`.
    public static func fallbackPost(
        base: String, clientID: String = messengerClientID, scope: String,
        redirectURI: String = defaultDesktopRedirect
    ) -> String {
        "\(trimmed(base))/ppsecure/post.srf?\(query(clientID: clientID, scope: scope, redirectURI: redirectURI))"
    }

    private static func query(clientID: String, scope: String, redirectURI: String) -> String {
        FormEncoding.encode([
            ("client_id", clientID),
            ("scope", scope),
            ("response_type", "token"),
            ("redirect_uri", redirectURI),
        ])
    }

    private static func trimmed(_ base: String) -> Substring {
        var b = Substring(base)
        while b.hasSuffix("/") { b = b.dropLast() }
        return b
    }
}
