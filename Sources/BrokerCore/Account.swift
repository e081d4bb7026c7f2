#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The daemon-wide unique name of an enrolled account (by default its login).
package struct AccountName: RawRepresentable, Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    package let rawValue: String

    /// Names are 1-128 characters of letters, digits and `@._+-`, so they are safe in URLs,
    /// file names and journal fields.
    package init?(rawValue: String) {
        guard (1...128).contains(rawValue.utf8.count),
            rawValue.utf8.allSatisfy({ AccountName.allowed($0) })
        else { return nil }
        self.rawValue = rawValue
    }

    private static func allowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "@"), UInt8(ascii: "."),
            UInt8(ascii: "_"), UInt8(ascii: "+"), UInt8(ascii: "-"):
            true
        default: false
        }
    }

    package var description: String { rawValue }
    package static func < (lhs: AccountName, rhs: AccountName) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Whether an account can be refreshed without a person.
/// Who an account is: a Microsoft account (an e-mail login, OAuth or RST.srf), or a Skype name
/// that signs in at a SkyLogin login server with its password.
package enum LoginKind: String, Sendable, Codable, Hashable, CaseIterable {
    case microsoft
    case skype
}

package enum AccountState: String, Sendable, Codable, Hashable {
    case active
    /// The grant was revoked or expired: only a new sign-in helps.
    case needsReauth = "needs_reauth"
}

/// An access token for one scope, as served to clients.
package struct AccessToken: Sendable, Hashable {
    package var value: Secret
    package var scope: Scope
    /// Wall-clock time the token was obtained.
    package var obtainedAt: Date
    /// Wall-clock expiry, from the server's `expires_in`.
    package var expiresAt: Date

    package init(value: Secret, scope: Scope, obtainedAt: Date, expiresAt: Date) {
        self.value = value
        self.scope = scope
        self.obtainedAt = obtainedAt
        self.expiresAt = expiresAt
    }

    package var lifetime: TimeInterval { expiresAt.timeIntervalSince(obtainedAt) }
}

/// What a refresh or a sign-in returns: a token, and possibly a rotated refresh token.
package struct TokenGrant: Sendable, Hashable {
    package var accessToken: AccessToken
    package var refreshToken: Secret?
    package var userID: String?

    package init(accessToken: AccessToken, refreshToken: Secret?, userID: String?) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.userID = userID
    }
}
