#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

// The bodies of the socket API, as they travel. Keys are snake_case, spelled out in each
// `CodingKeys`; optional fields are left out of the JSON when they are nil. Times are
// RFC 3339 strings in UTC ("2026-11-27T14:00:00Z"): `BrokerJSON.formatDate` writes them,
// `BrokerJSON.parseDate` reads them. docs/API.md is the reference for every field.

/// `GET /v1/health`.
public struct HealthResponse: Codable, Sendable, Hashable {
    /// "ok" while the daemon serves requests.
    public var status: String
    public var version: String
    /// How many accounts are enrolled.
    public var accounts: Int
    /// How many of them need a new sign-in by a person.
    public var needsReauth: Int
    /// Present while writes to the store fail (status is then "degraded"): refreshed tokens are
    /// kept in memory and served, and the writes are retried.
    public var storageError: String?

    public init(status: String = "ok", version: String, accounts: Int, needsReauth: Int, storageError: String? = nil) {
        self.storageError = storageError
        self.status = status
        self.version = version
        self.accounts = accounts
        self.needsReauth = needsReauth
    }

    enum CodingKeys: String, CodingKey {
        case status, version, accounts
        case needsReauth = "needs_reauth"
        case storageError = "storage_error"
    }
}

/// One configured identity-provider realm.
public struct RealmInfo: Codable, Sendable, Hashable {
    public var name: String
    /// How its accounts sign in: `oauth` (Microsoft account flows) or `rst` (RST.srf and
    /// Passport 1.4, as revival servers serve them).
    public var signIn: String
    /// The page a person opens in a browser to sign in (the `redirect_url` enrollment); absent
    /// for `rst` realms, which sign in with a password only.
    public var authorizeURL: String?
    /// Whether enrollments that name no realm use this one.
    public var isDefault: Bool

    public init(name: String, signIn: String = "oauth", authorizeURL: String?, isDefault: Bool) {
        self.name = name
        self.signIn = signIn
        self.authorizeURL = authorizeURL
        self.isDefault = isDefault
    }

    enum CodingKeys: String, CodingKey {
        case name
        case signIn = "sign_in"
        case authorizeURL = "authorize_url"
        case isDefault = "default"
    }

    /// A daemon from before `sign_in` existed had OAuth realms only.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        signIn = try container.decodeIfPresent(String.self, forKey: .signIn) ?? "oauth"
        authorizeURL = try container.decodeIfPresent(String.self, forKey: .authorizeURL)
        isDefault = try container.decode(Bool.self, forKey: .isDefault)
    }
}

/// `GET /v1/realms`.
public struct RealmsResponse: Codable, Sendable, Hashable {
    public var realms: [RealmInfo]

    public init(realms: [RealmInfo]) { self.realms = realms }
}

/// The values of an account's `state`.
public enum AccountStateValue {
    /// Refreshed by the daemon without a person.
    public static let active = "active"
    /// Only a new sign-in (`tokenctl login`) helps.
    public static let needsReauth = "needs_reauth"
}

/// One line of `GET /v1/accounts`. Holds no secret.
public struct AccountSummary: Codable, Sendable, Hashable {
    public var name: String
    public var realm: String
    public var login: String
    /// `active` or `needs_reauth` (see `AccountStateValue`).
    public var state: String

    public init(name: String, realm: String, login: String, state: String) {
        self.name = name
        self.realm = realm
        self.login = login
        self.state = state
    }
}

/// `GET /v1/accounts`.
public struct AccountsResponse: Codable, Sendable, Hashable {
    public var accounts: [AccountSummary]

    public init(accounts: [AccountSummary]) { self.accounts = accounts }
}

/// A code and a message: the `error` of an error body, and a scope's `last_error`.
public struct APIErrorInfo: Codable, Sendable, Hashable, CustomStringConvertible {
    /// One of the stable codes (docs/API.md, BrokerCore's `ErrorCode`).
    public var code: String
    /// For a person; never holds token material.
    public var message: String
    /// A command or action that fixes it, when there is one.
    public var hint: String?

    public init(code: String, message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { "\(code): \(message)" }
}

/// The body of every answer whose status is not 2xx: `{"error":{...}}`.
public struct ErrorResponse: Codable, Sendable, Hashable {
    public var error: APIErrorInfo

    public init(error: APIErrorInfo) { self.error = error }

    public init(code: String, message: String, hint: String? = nil) {
        self.error = APIErrorInfo(code: code, message: message, hint: hint)
    }
}

/// The refresh state of one scope of an account.
public struct ScopeStatus: Codable, Sendable, Hashable {
    /// The full scope name, e.g. `service::skype.com::MBI_SSL`.
    public var scope: String
    /// Its short name, e.g. `skype`.
    public var alias: String
    /// When the cached access token expires; nil when there is none.
    public var expiresAt: String?
    public var lastRefresh: String?
    public var nextRefresh: String?
    /// No refresh is tried before this time (after failures).
    public var backoffUntil: String?
    /// Failed refreshes in a row.
    public var failures: Int
    public var lastError: APIErrorInfo?

    public init(
        scope: String, alias: String, expiresAt: String? = nil, lastRefresh: String? = nil,
        nextRefresh: String? = nil, backoffUntil: String? = nil, failures: Int = 0,
        lastError: APIErrorInfo? = nil
    ) {
        self.scope = scope
        self.alias = alias
        self.expiresAt = expiresAt
        self.lastRefresh = lastRefresh
        self.nextRefresh = nextRefresh
        self.backoffUntil = backoffUntil
        self.failures = failures
        self.lastError = lastError
    }

    enum CodingKeys: String, CodingKey {
        case scope, alias, failures
        case expiresAt = "expires_at"
        case lastRefresh = "last_refresh"
        case nextRefresh = "next_refresh"
        case backoffUntil = "backoff_until"
        case lastError = "last_error"
    }
}

/// `GET /v1/accounts/{name}`, and the answer to an enrollment. Holds no secret.
public struct AccountDetail: Codable, Sendable, Hashable {
    public var name: String
    public var realm: String
    public var login: String
    /// `active` or `needs_reauth` (see `AccountStateValue`).
    public var state: String
    /// Why the account needs a new sign-in, when it does.
    public var stateReason: String?
    public var scopes: [ScopeStatus]
    /// Who may read this account's credentials besides root and the admin groups.
    public var readers: Readers?

    /// The uids and groups an access rule lets read an account.
    public struct Readers: Codable, Sendable, Hashable {
        public var uids: [UInt32]
        public var groups: [UInt32]

        public init(uids: [UInt32], groups: [UInt32]) {
            self.uids = uids
            self.groups = groups
        }
    }

    public init(
        name: String, realm: String, login: String, state: String, stateReason: String? = nil,
        scopes: [ScopeStatus], readers: Readers? = nil
    ) {
        self.readers = readers
        self.name = name
        self.realm = realm
        self.login = login
        self.state = state
        self.stateReason = stateReason
        self.scopes = scopes
    }

    enum CodingKeys: String, CodingKey {
        case name, realm, login, state, scopes, readers
        case stateReason = "state_reason"
    }

    /// The summary line of this account.
    public var summary: AccountSummary {
        AccountSummary(name: name, realm: realm, login: login, state: state)
    }
}

/// `GET /v1/accounts/{name}/token`. Its descriptions and mirror redact the token.
public struct TokenResponse: Codable, Sendable, Hashable, CustomStringConvertible,
    CustomDebugStringConvertible, CustomReflectable
{
    public var accessToken: String
    /// Always "bearer".
    public var tokenType: String
    /// The full scope name, also when the request named an alias.
    public var scope: String
    public var expiresAt: String
    /// Whole seconds from the answer until `expires_at`.
    public var expiresIn: Int

    public init(
        accessToken: String, tokenType: String = "bearer", scope: String, expiresAt: String,
        expiresIn: Int
    ) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.scope = scope
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case scope
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresAt = "expires_at"
        case expiresIn = "expires_in"
    }

    public var description: String {
        "TokenResponse(access_token: <redacted>, scope: \(scope), expires_at: \(expiresAt), expires_in: \(expiresIn))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "accessToken": "<redacted>", "tokenType": tokenType, "scope": scope,
                "expiresAt": expiresAt, "expiresIn": expiresIn,
            ])
    }
}

/// How an enrollment proves the account.
public enum EnrollMethod: String, Codable, Sendable, Hashable, CaseIterable {
    /// `login` and `password`: the daemon signs in itself.
    case password
    /// `redirect_url`: the final URL of a browser sign-in at the realm's `authorize_url`.
    case redirectURL = "redirect_url"
    /// `refresh_token`: a refresh token obtained elsewhere.
    case refreshToken = "refresh_token"
    /// `skype_name` and `password`: a Skype name signs in at the realm's SkyLogin server; only
    /// its login hash is kept.
    case skypePassword = "skype_password"
}

/// `POST /v1/accounts`. Its descriptions and mirror redact every secret.
public struct EnrollRequest: Codable, Sendable, Hashable, CustomStringConvertible,
    CustomDebugStringConvertible, CustomReflectable
{
    public var method: EnrollMethod
    public var login: String
    /// The account's name in the daemon; defaults to the login.
    public var name: String?
    /// Defaults to the daemon's default realm.
    public var realm: String?
    public var password: String?
    public var redirectURL: String?
    public var refreshToken: String?
    /// Browser cookies, `MSPAuth=...; MSPProf=...; WLSSC=...`, for the flows that need them.
    public var cookies: String?
    /// Whether the daemon keeps the password (sealed) for RST tickets and cookie renewal (default false).
    public var storePassword: Bool?
    /// How the ssl-compact-ticket is obtained: `oauth` (default) or `rst` (needs the stored password).
    public var ticketMethod: String?
    /// The Skype name of a `skype_password` enrollment (then `login` may be left out).
    public var skypeName: String?

    public init(
        method: EnrollMethod, login: String, name: String? = nil, realm: String? = nil,
        password: String? = nil, redirectURL: String? = nil, refreshToken: String? = nil,
        cookies: String? = nil, storePassword: Bool? = nil, ticketMethod: String? = nil
    ) {
        self.ticketMethod = ticketMethod
        self.method = method
        self.login = login
        self.name = name
        self.realm = realm
        self.password = password
        self.redirectURL = redirectURL
        self.refreshToken = refreshToken
        self.cookies = cookies
        self.storePassword = storePassword
    }

    public static func password(
        login: String, password: String, name: String? = nil, realm: String? = nil,
        storePassword: Bool = false
    ) -> EnrollRequest {
        EnrollRequest(
            method: .password, login: login, name: name, realm: realm, password: password,
            storePassword: storePassword)
    }

    public static func skypePassword(
        skypeName: String, password: String, name: String? = nil, realm: String? = nil
    ) -> EnrollRequest {
        var request = EnrollRequest(
            method: .skypePassword, login: skypeName, name: name, realm: realm, password: password)
        request.skypeName = skypeName
        return request
    }

    public static func redirectURL(
        login: String, redirectURL: String, name: String? = nil, realm: String? = nil,
        cookies: String? = nil
    ) -> EnrollRequest {
        EnrollRequest(
            method: .redirectURL, login: login, name: name, realm: realm,
            redirectURL: redirectURL, cookies: cookies)
    }

    public static func refreshToken(
        login: String, refreshToken: String, name: String? = nil, realm: String? = nil,
        cookies: String? = nil
    ) -> EnrollRequest {
        EnrollRequest(
            method: .refreshToken, login: login, name: name, realm: realm,
            refreshToken: refreshToken, cookies: cookies)
    }

    enum CodingKeys: String, CodingKey {
        case method, login, name, realm, password, cookies
        case redirectURL = "redirect_url"
        case refreshToken = "refresh_token"
        case storePassword = "store_password"
        case ticketMethod = "ticket_method"
        case skypeName = "skype_name"
    }

    /// `login` may be left out of a `skype_password` enrollment: it is the Skype name.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        method = try c.decode(EnrollMethod.self, forKey: .method)
        skypeName = try c.decodeIfPresent(String.self, forKey: .skypeName)
        if method == .skypePassword, let skypeName {
            login = try c.decodeIfPresent(String.self, forKey: .login) ?? skypeName
        } else {
            login = try c.decode(String.self, forKey: .login)
        }
        name = try c.decodeIfPresent(String.self, forKey: .name)
        realm = try c.decodeIfPresent(String.self, forKey: .realm)
        password = try c.decodeIfPresent(String.self, forKey: .password)
        redirectURL = try c.decodeIfPresent(String.self, forKey: .redirectURL)
        refreshToken = try c.decodeIfPresent(String.self, forKey: .refreshToken)
        cookies = try c.decodeIfPresent(String.self, forKey: .cookies)
        storePassword = try c.decodeIfPresent(Bool.self, forKey: .storePassword)
        ticketMethod = try c.decodeIfPresent(String.self, forKey: .ticketMethod)
    }

    public var description: String {
        func redacted(_ value: String?) -> String { value == nil ? "nil" : "<redacted>" }
        return "EnrollRequest(method: \(method.rawValue), login: \(login), name: \(name ?? "nil"), "
            + "realm: \(realm ?? "nil"), password: \(redacted(password)), "
            + "redirect_url: \(redacted(redirectURL)), refresh_token: \(redacted(refreshToken)), "
            + "cookies: \(redacted(cookies)), store_password: \(storePassword.map(String.init) ?? "nil"))"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        func redacted(_ value: String?) -> String? { value == nil ? nil : "<redacted>" }
        return Mirror(
            self,
            children: [
                "method": method, "login": login, "name": name as Any, "realm": realm as Any,
                "password": redacted(password) as Any, "redirectURL": redacted(redirectURL) as Any,
                "refreshToken": redacted(refreshToken) as Any, "cookies": redacted(cookies) as Any,
                "storePassword": storePassword as Any,
            ])
    }
}

/// `DELETE /v1/accounts/{name}`.
public struct DeleteResponse: Codable, Sendable, Hashable {
    /// The name of the account that was forgotten.
    public var deleted: String

    public init(deleted: String) { self.deleted = deleted }
}
