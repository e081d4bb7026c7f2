#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// An (account, credential kind) pair: the unit the refresh machine schedules.
package struct CredentialKey: Hashable, Sendable, CustomStringConvertible {
    package var account: AccountName
    package var kind: CredentialKind

    package init(account: AccountName, kind: CredentialKind) {
        self.account = account
        self.kind = kind
    }

    package var description: String { "\(account)/\(kind.name)" }
}

/// The provider endpoint a step calls. A 429 rests one endpoint of one realm.
package enum Endpoint: String, Hashable, Sendable, CaseIterable {
    /// oauth20_token.srf: every OAuth scope.
    case token
    /// rps/skypetoken.
    case skypetoken
    /// oauth20_authorize.srf and post.srf: silent and password sign-in, for the session cookies.
    case signIn = "sign_in"
    /// v1/User/Initialization: the UIC.
    case userInitialization = "user_initialization"
    /// RST.srf: the ssl-compact-ticket of the `rst` ticket method, and an `rst` realm's sites.
    case rst
    /// A SkyLogin login server (TCP): signed credentials.
    case skylogin
}

/// How an account signs in at a SkyLogin login server.
package enum SkyLoginSignIn: Sendable, Equatable {
    /// A Microsoft account, with its `service::login.skype.com::MBI_SSL` access token.
    case oauth(token: Secret)
    /// A Skype name, with MD5(name ‖ "\nskyper\n" ‖ password) (hex): the password is not kept.
    case password(skypeName: String, loginHash: Secret)
}

/// One call to the provider, with everything it needs: the executor reads nothing back from
/// the machine while it runs a step.
package enum Step: Sendable, Equatable {
    /// The token endpoint with the refresh token, for one scope. Nil: the one in the store (the
    /// machine keeps a refresh token in memory only until the store has it), which the executor
    /// reads, and puts in the job it reports back so that rotation is judged against it.
    case refreshScope(Scope, refreshToken: Secret?)
    /// rps/skypetoken with the skype.com access token.
    case skypetoken(accessToken: Secret)
    /// The authorize page with the session cookies: new cookies and a new grant family.
    case silentSignIn(cookies: Secret)
    /// A password sign-in, for accounts that stored their password.
    case passwordSignIn(login: String, password: Secret)
    /// User/Initialization with the session cookies.
    case userInitialization(cookies: Secret)
    /// RST.srf with the stored password.
    case rstTicket(login: String, password: Secret)
    /// RST.srf with the stored password, for every site of an `rst` realm at once.
    case rstSites(login: String, password: Secret, sites: [RSTSite])
    /// The SkyLogin login server, with the account's RSA key (nil: make one, at first use).
    case skylogin(SkyLoginSignIn, clientKey: Secret?)
    /// Write a result the store refused earlier.
    case persist(PendingWrite)
    /// Nothing can be called: the step fails at once with this.
    case impossible(RefreshFailure)

    package var endpoint: Endpoint? {
        switch self {
        case .refreshScope: .token
        case .skypetoken: .skypetoken
        case .silentSignIn, .passwordSignIn: .signIn
        case .userInitialization: .userInitialization
        case .rstTicket, .rstSites: .rst
        case .skylogin: .skylogin
        case .persist, .impossible: nil
        }
    }
}

/// Work for the executor: one step towards a fresh credential of one account. An account has at
/// most one job running; a job may continue with further steps (`Effect.run`) in the same slot.
package struct Job: Sendable, Equatable {
    /// The credential this job is for; a failure of any of its steps is that credential's failure.
    package var key: CredentialKey
    package var realm: String
    package var step: Step
    /// When the credential was due: the executor measures how late it started.
    package var dueAt: Date
    /// A retry after a refusal already happened in this job: it is not retried again.
    package var retried: Bool
    /// The account's generation when the job started: an outcome for an account enrolled again
    /// since (a new grant family) is dropped.
    package var generation: UInt64

    package init(
        key: CredentialKey, realm: String, step: Step, dueAt: Date, retried: Bool = false, generation: UInt64 = 0
    ) {
        self.key = key
        self.realm = realm
        self.step = step
        self.dueAt = dueAt
        self.retried = retried
        self.generation = generation
    }
}

/// What a sign-in step returns: a grant from a new family, and the session cookies it set.
package struct SignInGrant: Sendable, Equatable {
    package var grant: TokenGrant
    package var cookies: Secret?
    package var cookiesExpireAt: Date?

    package init(grant: TokenGrant, cookies: Secret?, cookiesExpireAt: Date?) {
        self.grant = grant
        self.cookies = cookies
        self.cookiesExpireAt = cookiesExpireAt
    }
}

/// Secrets that must reach the store: an access token, a rotated refresh token, new cookies,
/// RST site tickets with their BinarySecrets, SkyLogin credentials, a skypetoken or a UIC.
package struct PendingWrite: Sendable, Equatable {
    package var accessToken: AccessToken?
    package var rotatedRefreshToken: Secret?
    package var cookies: Secret?
    /// By site key.
    package var sites: [String: Credential]
    /// SkyLogin credentials, with the RSA key (`proofKey`) they are bound to.
    package var skylogin: Credential?
    /// When `cookies` expire, when known.
    package var cookiesExpireAt: Date?
    /// A skypetoken or a UIC (kinds `.skypetoken`, `.uic`).
    package var derived: [CredentialKind: Credential]

    package init(
        accessToken: AccessToken?, rotatedRefreshToken: Secret?, cookies: Secret?, sites: [String: Credential] = [:],
        skylogin: Credential? = nil, cookiesExpireAt: Date? = nil, derived: [CredentialKind: Credential] = [:]
    ) {
        self.cookiesExpireAt = cookiesExpireAt
        self.derived = derived
        self.accessToken = accessToken
        self.rotatedRefreshToken = rotatedRefreshToken
        self.cookies = cookies
        self.sites = sites
        self.skylogin = skylogin
    }

    /// The credential the write is filed under (for a retried write's job).
    package var kind: CredentialKind {
        if let accessToken { return .scope(accessToken.scope) }
        if skylogin != nil { return .skylogin }
        if let kind = derived.keys.min() { return kind }
        return sites.keys.min().map(CredentialKind.site) ?? .cookies
    }
}

/// What the executor reports back to the machine.
package enum Outcome: Sendable {
    /// `refreshScope` succeeded.
    case granted(Job, TokenGrant)
    /// `silentSignIn` or `passwordSignIn` succeeded.
    case signedIn(Job, SignInGrant)
    /// `skypetoken`, `userInitialization`, `rstTicket` or `skylogin` succeeded.
    case obtained(Job, Credential)
    /// `rstSites` succeeded: the tickets, by site address (those the server sent).
    case obtainedSites(Job, [String: Credential])
    case failed(Job, RefreshFailure)
    /// The store took a write (`Effect.persist`), or refused it with this reason.
    case persisted(AccountName, failure: String?)
}

/// What a waiting read is handed when an attempt for its credential ends.
package enum AttemptResult: Sendable, Equatable {
    /// A new credential.
    case refreshed(Credential)
    /// The attempt failed. `current` is the credential still held (maybe expired); `final` says
    /// that waiting for another attempt cannot help (a revoked grant, lost cookies, no account).
    case failed(BrokerError, current: Credential?, final: Bool)
}

/// How a finished refresh is counted.
package enum RefreshResult: String, Sendable, CaseIterable {
    case ok
    case failed
    case needsReauth = "needs_reauth"
    case rateLimited = "rate_limited"
}

/// A journal event the machine asks for. Metadata holds names, codes and numbers, never secrets.
package struct LogEvent: Sendable, Equatable {
    package enum Level: Sendable, Equatable { case info, notice, warning, error }
    package var level: Level
    package var message: String
    package var metadata: [String: String]

    package init(_ level: Level, _ message: String, _ metadata: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }
}

/// How an account looks to a read: its state, and why a credential kind cannot be had.
package struct AccountView: Sendable, Equatable {
    package var state: AccountState
    package var reason: String?
    /// The kinds the account cannot have. Why (the error, with the command that fixes it) is
    /// asked of the machine when such a read comes, not kept for every account.
    package var unavailable: CredentialKinds

    package init(state: AccountState, reason: String?, unavailable: CredentialKinds) {
        self.state = state
        self.reason = reason
        self.unavailable = unavailable
    }
}

/// A small set of credential kinds: a bit for each kind but sites, and sites by key (only an
/// `rst` account has any).
package struct CredentialKinds: Sendable, Equatable {
    private var bits: UInt16 = 0
    private var sites: [String] = []

    package init() {}

    package var isEmpty: Bool { bits == 0 && sites.isEmpty }

    package mutating func insert(_ kind: CredentialKind) {
        if let bit = Self.bit(kind) {
            bits |= bit
        } else if case .site(let key) = kind, !sites.contains(key) {
            sites.append(key)
        }
    }

    package func contains(_ kind: CredentialKind) -> Bool {
        if let bit = Self.bit(kind) { return bits & bit != 0 }
        if case .site(let key) = kind { return sites.contains(key) }
        return false
    }

    private static func bit(_ kind: CredentialKind) -> UInt16? {
        let index: Int
        switch kind {
        case .scope(let scope):
            switch scope {
            case .skype: index = 0
            case .ssl: index = 1
            case .loginSkype: index = 2
            case .contacts: index = 3
            case .hotmail: index = 4
            }
        case .skypetoken: index = 8
        case .uic: index = 9
        case .ticket: index = 10
        case .cookies: index = 11
        case .skylogin: index = 12
        case .site: return nil
        }
        return 1 << UInt16(index)
    }
}

/// What the machine asks its executor to do.
package enum Effect: Sendable {
    /// Write these secrets, then report `Outcome.persisted`. Nothing of the write is served
    /// before the store has answered.
    case persist(AccountName, PendingWrite)
    /// Record the account's state in the store.
    case saveState(AccountName, AccountState, reason: String?)
    /// Replace what reads are served for this credential (nil: nothing to serve).
    case publish(CredentialKey, Credential?)
    /// Replace how the account looks to reads (nil: the account is gone).
    case publishAccount(AccountName, AccountView?)
    /// Hand this result to every read waiting on the credential.
    case deliver(CredentialKey, AttemptResult)
    /// Run the next step of the same job, in the account's slot.
    case run(Job)
    case count(RefreshResult)
    case log(LogEvent)
    /// Tell the readers of the event stream (`GET /v1/events`).
    case announce(AccountEvent)
}
