import BrokerCore
import Foundation

/// An enrolled account as the store keeps it, without its secrets.
public struct StoredAccount: Sendable, Hashable {
    public var name: AccountName
    /// The configured identity-provider realm the account signs in at.
    public var realm: String
    /// The login (e-mail address) as enrolled. Stored sealed.
    public var login: String
    public var state: AccountState
    /// Why the account is in its state (for `needs_reauth`: what the server said).
    public var stateReason: String?
    public var createdAt: Date
    public var hasRefreshToken: Bool
    public var hasPassword: Bool
    public var hasCookies: Bool
    /// How the ssl-compact-ticket is obtained.
    public var ticketMethod: TicketMethod

    public init(
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
public struct StoredCredentials: Sendable, Hashable, CustomStringConvertible,
    CustomDebugStringConvertible, CustomReflectable
{
    public var refreshToken: Secret?
    public var accessTokens: [Scope: AccessToken]
    public var password: Secret?
    public var cookies: Secret?

    public init(
        refreshToken: Secret? = nil, accessTokens: [Scope: AccessToken] = [:], password: Secret? = nil,
        cookies: Secret? = nil
    ) {
        self.refreshToken = refreshToken
        self.accessTokens = accessTokens
        self.password = password
        self.cookies = cookies
    }

    public var description: String {
        let scopes = accessTokens.keys.sorted().map(\.alias).joined(separator: ",")
        return "StoredCredentials(refreshToken: \(refreshToken.map { "\($0)" } ?? "none"), "
            + "accessTokens: [\(scopes)], password: \(password.map { "\($0)" } ?? "none"), "
            + "cookies: \(cookies.map { "\($0)" } ?? "none"))"
    }

    public var debugDescription: String { description }

    /// `dump` and `Mirror` see only the redacted description.
    public var customMirror: Mirror {
        Mirror(self, children: ["redacted": description], displayStyle: .struct)
    }
}
