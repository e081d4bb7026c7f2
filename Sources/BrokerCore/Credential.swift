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
    /// The compact ticket of one RST.srf site (its `wsa:Address`) of an `rst` realm, with the
    /// BinarySecret that came with it, if any.
    case site(String)
    /// Signed credentials from a SkyLogin login server (the Skype name bound to the account's
    /// RSA key, with an expiry); `proofKey` is that RSA key, `subject` the Skype name.
    case skylogin

    package var name: String {
        switch self {
        case .scope(let scope): scope.alias
        case .skypetoken: "skypetoken"
        case .uic: "uic"
        case .ticket: "ticket"
        case .cookies: "cookies"
        case .site(let address): address
        case .skylogin: "skylogin"
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
        case .site: 14
        case .skylogin: 15
        }
    }

    package static func < (lhs: CredentialKind, rhs: CredentialKind) -> Bool {
        if case .site(let a) = lhs, case .site(let b) = rhs { return a < b }
        return lhs.order < rhs.order
    }
}

/// One credential value with its validity.
package struct Credential: Sendable, Hashable {
    package var value: Secret
    package var obtainedAt: Date
    package var expiresAt: Date
    /// A refresh deadline the server set apart from expiry (the UIC's registrationTTLRefreshSeconds).
    package var refreshBy: Date? {
        get { extras?.value.refreshBy }
        set { changeExtras { $0.refreshBy = newValue } }
    }
    /// When the server says it issued the credential, where that differs from when it was
    /// fetched (the UIC's St): the refresh point is taken from issue to expiry as well.
    package var issuedAt: Date? {
        get { extras?.value.issuedAt }
        set { changeExtras { $0.issuedAt = newValue } }
    }
    /// The key that proves possession of the credential (an RST site's BinarySecret). It is
    /// used inside the daemon only: no answer carries it.
    package var proofKey: Secret? {
        get { extras?.value.proofKey }
        set { changeExtras { $0.proofKey = newValue } }
    }
    /// Whom the credential names, where it says (the Skype name of SkyLogin credentials).
    package var subject: String? {
        get { extras?.value.subject }
        set { changeExtras { $0.subject = newValue } }
    }

    /// What only some kinds carry, boxed: most credentials are access tokens, which have none of
    /// it, and every account holds several credentials twice (the machine's and the cache's).
    private var extras: Box<Extras>?

    private struct Extras: Sendable, Hashable {
        var refreshBy: Date?
        var issuedAt: Date?
        var proofKey: Secret?
        var subject: String?
        var isEmpty: Bool { refreshBy == nil && issuedAt == nil && proofKey == nil && subject == nil }
    }

    private mutating func changeExtras(_ change: (inout Extras) -> Void) {
        var value = extras?.value ?? Extras()
        change(&value)
        extras = value.isEmpty ? nil : Box(value)
    }

    package init(
        value: Secret, obtainedAt: Date, expiresAt: Date, refreshBy: Date? = nil, issuedAt: Date? = nil,
        proofKey: Secret? = nil, subject: String? = nil
    ) {
        self.value = value
        self.obtainedAt = obtainedAt
        self.expiresAt = expiresAt
        let extras = Extras(refreshBy: refreshBy, issuedAt: issuedAt, proofKey: proofKey, subject: subject)
        self.extras = extras.isEmpty ? nil : Box(extras)
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
