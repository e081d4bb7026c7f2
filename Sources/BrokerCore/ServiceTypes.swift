#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The engine's configuration; a reload replaces it whole.
public struct EngineConfiguration: Sendable {
    public var realms: [Realm]
    /// The scopes kept fresh for every account.
    public var scopes: [Scope]
    public var policy: RefreshPolicy

    public init(realms: [Realm], scopes: [Scope] = Scope.allCases, policy: RefreshPolicy = RefreshPolicy()) {
        self.realms = realms
        self.scopes = scopes
        self.policy = policy
    }

    public var defaultRealm: Realm? { realms.count == 1 ? realms[0] : nil }

    public func realm(named name: String?) throws(BrokerError) -> Realm {
        if let name {
            guard let realm = realms.first(where: { $0.name == name }) else {
                throw BrokerError(.badRequest, "no realm named \(name) is configured")
            }
            return realm
        }
        guard let realm = defaultRealm else {
            throw BrokerError(.badRequest, "several realms are configured; name one with realm")
        }
        return realm
    }
}

/// A credential as the server hands it out.
public struct ServedCredential: Sendable {
    public var kind: CredentialKind
    public var credential: Credential
    /// RFC 3339, formatted once when the credential was obtained.
    public var expiresAtText: String

    public init(kind: CredentialKind, credential: Credential, expiresAtText: String) {
        self.kind = kind
        self.credential = credential
        self.expiresAtText = expiresAtText
    }

    public var token: AccessToken {
        if case .scope(let scope) = kind { return credential.accessToken(scope: scope) }
        return credential.accessToken(scope: .skype)
    }
}

/// What a cache lookup found.
public enum CachedRead: Sendable {
    case fresh(ServedCredential)
    /// Missing or inside the safety margin: a refresh is needed first.
    case stale
    case notFound
    case needsReauth(String)
    case unavailable(BrokerError)
}

/// How a read on the socket ended, for the `tokenbroker_reads_total` counter (the raw values
/// are its `result` labels).
public enum ReadOutcome: String, Sendable, CaseIterable {
    /// Answered from memory.
    case fresh
    /// Answered after a refresh (or a wait for one).
    case refreshed
    /// Refused by the access policy.
    case denied
    /// Failed.
    case error
}

/// How an account is enrolled.
public enum EnrollCredential: Sendable {
    case password(Secret, store: Bool)
    case redirectURL(String)
    case refreshToken(Secret)
}

public struct EnrollCommand: Sendable {
    public var login: String
    public var name: AccountName?
    public var realm: String?
    public var credential: EnrollCredential
    public var cookies: Secret?
    public var ticketMethod: TicketMethod

    public init(
        login: String, name: AccountName?, realm: String?, credential: EnrollCredential, cookies: Secret?,
        ticketMethod: TicketMethod = .oauth
    ) {
        self.login = login
        self.name = name
        self.realm = realm
        self.credential = credential
        self.cookies = cookies
        self.ticketMethod = ticketMethod
    }
}

/// Status of one credential, for the API and tokenctl.
public struct CredentialReport: Sendable {
    public var kind: CredentialKind
    public var expiresAt: Date?
    public var lastRefresh: Date?
    public var nextRefresh: Date?
    public var backoffUntil: Date?
    public var failures: Int
    public var lastError: BrokerError?

    public init(
        kind: CredentialKind, expiresAt: Date?, lastRefresh: Date?, nextRefresh: Date?, backoffUntil: Date?, failures: Int,
        lastError: BrokerError?
    ) {
        self.kind = kind
        self.expiresAt = expiresAt
        self.lastRefresh = lastRefresh
        self.nextRefresh = nextRefresh
        self.backoffUntil = backoffUntil
        self.failures = failures
        self.lastError = lastError
    }
}

public struct AccountReport: Sendable {
    public var name: AccountName
    public var realm: String
    public var login: String
    public var state: AccountState
    public var stateReason: String?
    public var ticketMethod: TicketMethod
    public var credentials: [CredentialReport]

    public init(
        name: AccountName, realm: String, login: String, state: AccountState, stateReason: String?, ticketMethod: TicketMethod,
        credentials: [CredentialReport]
    ) {
        self.name = name
        self.realm = realm
        self.login = login
        self.state = state
        self.stateReason = stateReason
        self.ticketMethod = ticketMethod
        self.credentials = credentials
    }
}

/// What a rekey of the credential store did.
public struct RekeyReport: Sendable, Equatable {
    /// The id of the new key (16 hex digits).
    public var keyID: String
    /// How many sealed values were re-sealed.
    public var resealed: Int
    /// The key file now holding the new key; nil when the key came from elsewhere (a systemd
    /// credential), which the operator must replace.
    public var keyFileReplaced: String?

    public init(keyID: String, resealed: Int, keyFileReplaced: String?) {
        self.keyID = keyID
        self.resealed = resealed
        self.keyFileReplaced = keyFileReplaced
    }
}
