#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Everything the engine keeps fresh for an account: one access token per OAuth scope, and the
/// credentials built on them or on the session cookies.
package enum CredentialKind: Hashable, Sendable, Comparable, CustomStringConvertible {
    case scope(Scope)
    /// From the skype.com access token, at rps/skypetoken.
    case skypetoken
    /// The UIC from User/Initialization, with the session cookies.
    case uic
    /// An ssl-compact-ticket from RST.srf, with the stored password (ticket method `rst`).
    case ticket
    /// The MSPAuth/MSPProf/WLSSC session cookies (the web-compact-ticket).
    case cookies

    package var name: String {
        switch self {
        case .scope(let scope): scope.alias
        case .skypetoken: "skypetoken"
        case .uic: "uic"
        case .ticket: "ticket"
        case .cookies: "cookies"
        }
    }

    package var description: String { name }

    var order: Int {
        switch self {
        case .scope(let scope): Scope.allCases.firstIndex(of: scope)!
        case .cookies: 10
        case .skypetoken: 11
        case .uic: 12
        case .ticket: 13
        }
    }

    package static func < (lhs: CredentialKind, rhs: CredentialKind) -> Bool { lhs.order < rhs.order }
}

/// One credential value with its validity.
package struct Credential: Sendable, Hashable {
    package var value: Secret
    package var obtainedAt: Date
    package var expiresAt: Date
    /// A refresh deadline the server set apart from expiry (the UIC's registrationTTLRefreshSeconds).
    package var refreshBy: Date?
    /// When the server says it issued the credential, where that differs from when it was
    /// fetched (the UIC's St): the refresh point is taken from issue to expiry as well.
    package var issuedAt: Date?

    package init(value: Secret, obtainedAt: Date, expiresAt: Date, refreshBy: Date? = nil, issuedAt: Date? = nil) {
        self.value = value
        self.obtainedAt = obtainedAt
        self.expiresAt = expiresAt
        self.refreshBy = refreshBy
        self.issuedAt = issuedAt
    }

    package init(_ token: AccessToken) {
        self.init(value: token.value, obtainedAt: token.obtainedAt, expiresAt: token.expiresAt)
    }

    package func accessToken(scope: Scope) -> AccessToken {
        AccessToken(value: value, scope: scope, obtainedAt: obtainedAt, expiresAt: expiresAt)
    }
}

/// How an account's ssl-compact-ticket is obtained.
package enum TicketMethod: String, Sendable, Codable, CaseIterable {
    /// The `service::ssl.live.com::MBI_SSL` access token, as `t=...`.
    case oauth
    /// RST.srf for chatservice.live.com / MBI_SSL, with the stored password.
    case rst
}
