import BrokerCore
import Foundation

/// An enrolled account as the store keeps it, without its secrets.
package struct StoredAccount: Sendable, Hashable {
    package var name: AccountName
    /// The configured identity-provider realm the account signs in at.
    package var realm: String
    /// The login (e-mail address) as enrolled. Stored sealed.
    package var login: String
    package var state: AccountState
    /// Why the account is in its state (for `needs_reauth`: what the server said).
    package var stateReason: String?
    package var createdAt: Date
    package var hasRefreshToken: Bool
    package var hasPassword: Bool
    package var hasCookies: Bool
    /// How the ssl-compact-ticket is obtained.
    package var ticketMethod: TicketMethod
    /// A Microsoft account or a Skype name.
    package var loginKind: LoginKind = .microsoft

    package init(
        name: AccountName, realm: String, login: String, state: AccountState, stateReason: String?,
        createdAt: Date, hasRefreshToken: Bool, hasPassword: Bool, hasCookies: Bool, ticketMethod: TicketMethod = .oauth
    ) {
        self.ticketMethod = ticketMethod
        self.name = name
        self.realm = realm
        self.login = login
        self.state = state
        self.stateReason = stateReason
        self.createdAt = createdAt
        self.hasRefreshToken = hasRefreshToken
        self.hasPassword = hasPassword
        self.hasCookies = hasCookies
    }
}

/// The secrets of one account. Its description and mirror are redacted.
package struct StoredCredentials: Sendable, Hashable, CustomStringConvertible,
    CustomDebugStringConvertible, CustomReflectable
{
    package var refreshToken: Secret?
    package var accessTokens: [Scope: AccessToken]
    package var password: Secret?
    package var cookies: Secret?
    /// RST site tickets with their BinarySecrets, by site address.
    package var sites: [String: Credential]
    /// The SkyLogin RSA key, a Skype name's login hash, and the signed credentials (their
    /// `proofKey` is the RSA key).
    package var skyloginKey: Secret?
    package var loginHash: Secret?
    package var skylogin: Credential?
    /// The skypetoken and the UIC (kinds `.skypetoken`, `.uic`).
    package var derived: [CredentialKind: Credential] = [:]
    /// When the cookies expire, when the store knows.
    package var cookiesExpireAt: Date?

    package init(
        refreshToken: Secret? = nil, accessTokens: [Scope: AccessToken] = [:], password: Secret? = nil,
        cookies: Secret? = nil, sites: [String: Credential] = [:]
    ) {
        self.sites = sites
        self.refreshToken = refreshToken
        self.accessTokens = accessTokens
        self.password = password
        self.cookies = cookies
    }

    package var description: String {
        let scopes = accessTokens.keys.sorted().map(\.alias).joined(separator: ",")
        return "StoredCredentials(refreshToken: \(refreshToken.map { "\($0)" } ?? "none"), "
            + "accessTokens: [\(scopes)], password: \(password.map { "\($0)" } ?? "none"), "
            + "cookies: \(cookies.map { "\($0)" } ?? "none"), sites: [\(sites.keys.sorted().joined(separator: ","))], "
            + "skylogin: \(skyloginKey == nil ? "none" : "key")\(loginHash == nil ? "" : ", hash")\(skylogin == nil ? "" : ", credentials")), "
            + "derived: [\(derived.keys.sorted().map(\.name).joined(separator: ","))])"
    }

    package var debugDescription: String { description }

    /// `dump` and `Mirror` see only the redacted description.
    package var customMirror: Mirror {
        Mirror(self, children: ["redacted": description], displayStyle: .struct)
    }
}
