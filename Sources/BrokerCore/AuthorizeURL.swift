/// The URLs of the browserless sign-in. The base is per realm: revival and test servers stand
/// in for login.live.com.
package enum AuthorizeURL {
    /// `{base}/oauth20_authorize.srf?client_id=...&scope=...&response_type=token&redirect_uri=...`
    package static func make(
        base: String, clientID: String = messengerClientID, scope: String,
        redirectURI: String = defaultDesktopRedirect
    ) -> String {
        "\(trimmed(base))/oauth20_authorize.srf?\(query(clientID: clientID, scope: scope, redirectURI: redirectURI))"
    }

    /// The seed's post target, `{base}/ppsecure/post.srf` with the authorize query, for pages
    /// that carry no `urlPost`.
    package static func fallbackPost(
        base: String, clientID: String = messengerClientID, scope: String,
        redirectURI: String = defaultDesktopRedirect
    ) -> String {
        "\(trimmed(base))/ppsecure/post.srf?\(query(clientID: clientID, scope: scope, redirectURI: redirectURI))"
    }

    private static func query(clientID: String, scope: String, redirectURI: String) -> String {
        [("client_id", clientID), ("scope", scope), ("response_type", "token"), ("redirect_uri", redirectURI)]
            .map { "\(URLEncoding.percentEncode($0.0))=\(URLEncoding.percentEncode($0.1))" }.joined(separator: "&")
    }

    private static func trimmed(_ base: String) -> Substring {
        var b = Substring(base)
        while b.hasSuffix("/") { b = b.dropLast() }
        return b
    }
}

/// Strict percent-encoding for queries and form bodies.
package enum URLEncoding {
    /// Percent-encodes everything except the RFC 3986 unreserved characters
    /// `A-Z a-z 0-9 - . _ ~`, with upper-case hex: a password or token can never change the shape
    /// of a body or query.
    package static func percentEncode(_ s: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(c)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
