#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The engine's configuration; a reload replaces it whole.
package struct EngineConfiguration: Sendable {
    package var realms: [Realm]
    /// The scopes kept fresh for every account.
    package var scopes: [Scope]
    package var policy: RefreshPolicy

    package init(realms: [Realm], scopes: [Scope] = Scope.allCases, policy: RefreshPolicy = RefreshPolicy()) {
        self.realms = realms
        self.scopes = scopes
        self.policy = policy
    }

    package var defaultRealm: Realm? { realms.count == 1 ? realms[0] : nil }

    package func realm(named name: String?) throws(BrokerError) -> Realm {
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
package struct ServedCredential: Sendable {
    package var kind: CredentialKind
    package var credential: Credential

    package init(kind: CredentialKind, credential: Credential) {
        self.kind = kind
        self.credential = credential
    }

    package var token: AccessToken {
        if case .scope(let scope) = kind { return credential.accessToken(scope: scope) }
        return credential.accessToken(scope: .skype)
    }
}

/// What a cache lookup found.
package enum CachedRead: Sendable {
    case fresh(ServedCredential)
    /// Missing or inside the safety margin: a refresh is needed first.
    case stale
    case notFound
    case needsReauth(String)
    /// A kind the account cannot have: the slow path asks the machine why.
    case unavailable
}

/// A state of the read cache (`CredentialService.cacheMark()`): its generation, and the safety
/// margin in force then (a change of margin is an update too, so it holds while the generation
/// does).
package struct CacheMark: Sendable, Equatable {
    package var generation: UInt64
    package var safetyMargin: TimeInterval

    package init(generation: UInt64, safetyMargin: TimeInterval) {
        self.generation = generation
        self.safetyMargin = safetyMargin
    }
}

/// How a read on the socket ended, for the `tokenbroker_reads_total` counter (the raw values
/// are its `result` labels).
package enum ReadOutcome: String, Sendable, CaseIterable {
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
package enum EnrollCredential: Sendable {
    case password(Secret, store: Bool)
    case redirectURL(String)
    case refreshToken(Secret)
    /// A Skype name (the command's login) with its password, at the realm's SkyLogin server.
    case skypePassword(Secret)
}

package struct EnrollCommand: Sendable {
    package var login: String
    package var name: AccountName?
    package var realm: String?
    package var credential: EnrollCredential
    package var cookies: Secret?
    package var ticketMethod: TicketMethod

    package init(
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
package struct CredentialReport: Sendable {
    package var kind: CredentialKind
    package var expiresAt: Date?
    package var lastRefresh: Date?
    package var nextRefresh: Date?
    package var backoffUntil: Date?
    package var failures: Int
    package var lastError: BrokerError?

    package init(
        kind: CredentialKind, expiresAt: Date?, lastRefresh: Date?, nextRefresh: Date?, backoffUntil: Date?,
        failures: Int,
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

package struct AccountReport: Sendable {
    package var name: AccountName
    package var realm: String
    package var login: String
    package var state: AccountState
    package var stateReason: String?
    package var ticketMethod: TicketMethod
    package var credentials: [CredentialReport]
    package var loginKind: LoginKind = .microsoft

    package init(
        name: AccountName, realm: String, login: String, state: AccountState, stateReason: String?,
        ticketMethod: TicketMethod,
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
package struct RekeyReport: Sendable, Equatable {
    /// The id of the new key (16 hex digits).
    package var keyID: String
    /// How many sealed values were re-sealed.
    package var resealed: Int
    /// The key file now holding the new key; nil when the key came from elsewhere (a systemd
    /// credential), which the operator must replace.
    package var keyFileReplaced: String?

    package init(keyID: String, resealed: Int, keyFileReplaced: String?) {
        self.keyID = keyID
        self.resealed = resealed
        self.keyFileReplaced = keyFileReplaced
    }
}
