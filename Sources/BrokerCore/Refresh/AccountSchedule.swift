#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What the machine knows of one credential of one account.
package struct CredentialSchedule: Sendable, Equatable {
    package var credential: Credential?
    /// When it is next refreshed (or retried).
    package var dueAt: Date
    package var lastRefresh: Date? {
        get { packedLastRefresh.date }
        set { packedLastRefresh = PackedDate(newValue) }
    }
    package var lastAttempt: Date? {
        get { packedLastAttempt.date }
        set { packedLastAttempt = PackedDate(newValue) }
    }
    private var packedLastRefresh = PackedDate(nil)
    private var packedLastAttempt = PackedDate(nil)
    /// Failed attempts in a row.
    package var failures: Int {
        get { trouble?.value.failures ?? 0 }
        set { changeTrouble { $0.failures = newValue } }
    }
    package var lastError: BrokerError? {
        get { trouble?.value.lastError }
        set { changeTrouble { $0.lastError = newValue } }
    }
    package var backoffUntil: Date? {
        get { trouble?.value.backoffUntil }
        set { changeTrouble { $0.backoffUntil = newValue } }
    }
    /// Failures, boxed: nearly always none, and every account holds a schedule per credential.
    private var trouble: Box<Trouble>?

    private struct Trouble: Sendable {
        var failures = 0
        var lastError: BrokerError?
        var backoffUntil: Date?
        var isEmpty: Bool { failures == 0 && lastError == nil && backoffUntil == nil }
    }

    private mutating func changeTrouble(_ change: (inout Trouble) -> Void) {
        var value = trouble?.value ?? Trouble()
        change(&value)
        trouble = value.isEmpty ? nil : Box(value)
    }

    package init(dueAt: Date) { self.dueAt = dueAt }

    package static func == (a: Self, b: Self) -> Bool {
        a.credential == b.credential && a.dueAt == b.dueAt && a.lastRefresh == b.lastRefresh
            && a.lastAttempt == b.lastAttempt && a.failures == b.failures && a.lastError == b.lastError
            && a.backoffUntil == b.backoffUntil
    }
}

/// An optional date in eight bytes (a `Date?` takes sixteen in a struct): nil is NaN.
private struct PackedDate: Sendable {
    private let interval: Double

    init(_ date: Date?) { interval = date?.timeIntervalSinceReferenceDate ?? .nan }

    var date: Date? { interval.isNaN ? nil : Date(timeIntervalSinceReferenceDate: interval) }
}

/// What an account brings when it is added to the machine: from the store at start, or from an
/// enrollment.
package struct AccountSeed: Sendable {
    package var name: AccountName
    package var realm: String
    package var login: String
    package var state: AccountState
    package var stateReason: String?
    package var refreshToken: Secret?
    package var password: Secret?
    package var ticketMethod: TicketMethod
    package var accessTokens: [AccessToken]
    /// Session cookies, with their expiry when known (the store does not keep it).
    package var cookies: (value: Secret, expiresAt: Date?)?
    /// RST site tickets (an `rst` realm's), by site key.
    package var sites: [String: Credential]
    /// Sites the server answered no ticket for at enrollment (by key): not asked for again.
    package var missingSites: Set<String> = []
    package var loginKind: LoginKind = .microsoft
    /// A Skype name's login hash (hex), the only secret its renewals need.
    package var loginHash: Secret?
    /// SkyLogin credentials held (with the account's RSA key as `proofKey`), from the store.
    package var skylogin: Credential?
    /// The account's SkyLogin RSA key, when it has one but no credentials.
    package var skyloginKey: Secret?
    /// The skypetoken and the UIC held, from the store.
    package var derived: [CredentialKind: Credential] = [:]

    package init(
        name: AccountName, realm: String, login: String, state: AccountState = .active, stateReason: String? = nil,
        refreshToken: Secret?, password: Secret? = nil, ticketMethod: TicketMethod = .oauth,
        accessTokens: [AccessToken] = [],
        cookies: (value: Secret, expiresAt: Date?)? = nil, sites: [String: Credential] = [:],
        missingSites: Set<String> = [], loginKind: LoginKind = .microsoft, loginHash: Secret? = nil,
        skylogin: Credential? = nil, skyloginKey: Secret? = nil, derived: [CredentialKind: Credential] = [:]
    ) {
        self.derived = derived
        self.sites = sites
        self.missingSites = missingSites
        self.loginKind = loginKind
        self.loginHash = loginHash
        self.skylogin = skylogin
        self.skyloginKey = skyloginKey
        self.name = name
        self.realm = realm
        self.login = login
        self.state = state
        self.stateReason = stateReason
        self.refreshToken = refreshToken
        self.password = password
        self.ticketMethod = ticketMethod
        self.accessTokens = accessTokens
        self.cookies = cookies
    }
}

/// What the machine knows of one account. The refresh token, password and cookies are the only
/// copies besides the store's.
///
/// Every account's schedule is stored inline in the machine's dictionary, whose buckets are at
/// most three quarters full, so each inline byte costs an account about a byte and a half: what
/// most accounts never have (a password, a Skype name's secrets, an `rst` realm's sites, a reason
/// for their state) is boxed in `rare`, and the one-byte fields sit together at the end.
package struct AccountSchedule: Sendable {
    package var realm: String
    package var login: String
    /// The refresh token while only memory has it (enrolled now, or rotated and not yet written).
    /// Once the store has it, it is dropped (`refreshTokenStored`): it is needed only when a
    /// refresh runs, and the executor reads it from the store then.
    package var refreshToken: Secret?
    package var credentials = KindTable<CredentialSchedule>()
    /// Secrets the store has not accepted yet (for example, a full disk). They are written before
    /// this account refreshes again.
    package var unsaved: PendingWrite? {
        get { unsavedBox?.value.write }
        set {
            unsavedBox = newValue.map { Box(Unsaved(write: $0, retryAt: unsavedBox?.value.retryAt ?? .distantPast)) }
        }
    }
    /// When to try writing `unsaved` again (kept with it: without one there is nothing to retry).
    package var retrySaveAt: Date {
        get { unsavedBox?.value.retryAt ?? .distantPast }
        set { unsavedBox = unsavedBox.map { Box(Unsaved(write: $0.value.write, retryAt: newValue)) } }
    }
    /// A write in flight: what to install once the store has answered.
    var committing: Commit? {
        get { committingBox?.value }
        set { committingBox = newValue.map(Box.init) }
    }
    // Boxed: both are large and nearly always nil.
    var unsavedBox: Box<Unsaved>? = nil
    var committingBox: Box<Commit>? = nil
    struct Unsaved: Sendable {
        var write: PendingWrite
        var retryAt: Date
    }
    /// The time of the account's entry in the machine's backlog, while it has one (the machine's
    /// bookkeeping).
    var queuedAt: Date? {
        get { packedQueuedAt.date }
        set { packedQueuedAt = PackedDate(newValue) }
    }
    private var packedQueuedAt = PackedDate(nil)
    /// Which enrollment this is: every `add` of an account gives it a new one.
    package var generation: UInt64 = 0
    private var rare: Box<Rare>?
    package var state: AccountState
    package var ticketMethod: TicketMethod
    /// A Skype name (SkyLogin only) or a Microsoft account.
    package var loginKind: LoginKind = .microsoft
    /// Whether the account's realm names SkyLogin servers.
    package var skyloginServers = false
    /// The store holds the account's current refresh token (and memory does not).
    package var refreshTokenStored = false

    package var stateReason: String? {
        get { rare?.value.stateReason }
        set { changeRare { $0.stateReason = newValue } }
    }
    package var password: Secret? {
        get { rare?.value.password }
        set { changeRare { $0.password = newValue } }
    }
    /// For an account of an `rst` realm: the sites RST.srf is asked for (nil: an OAuth realm).
    package var rstSites: [RSTSite]? {
        get { rare?.value.rstSites }
        set { changeRare { $0.rstSites = newValue } }
    }
    /// Sites (by key) RST.srf answers no ticket for: unavailable, and not refreshed, until the
    /// account is enrolled again or the realm's sites change.
    package var missingSites: Set<String> {
        get { rare?.value.missingSites ?? [] }
        set { changeRare { $0.missingSites = newValue } }
    }
    /// A Skype name's login hash (hex): what its renewals send instead of a password.
    package var loginHash: Secret? {
        get { rare?.value.loginHash }
        set { changeRare { $0.loginHash = newValue } }
    }
    /// The account's SkyLogin RSA key: made at first use (or at a Skype name's enrollment), kept
    /// for the account's life.
    package var skyloginKey: Secret? {
        get { rare?.value.skyloginKey }
        set { changeRare { $0.skyloginKey = newValue } }
    }
    /// Why the cookie-based credentials cannot be had, once silent sign-in stopped working.
    package var cookiesLost: String? {
        get { rare?.value.cookiesLost }
        set { changeRare { $0.cookiesLost = newValue } }
    }

    private struct Rare: Sendable {
        var stateReason: String?
        var password: Secret?
        var rstSites: [RSTSite]?
        var missingSites: Set<String> = []
        var loginHash: Secret?
        var skyloginKey: Secret?
        var cookiesLost: String?
        var isEmpty: Bool {
            stateReason == nil && password == nil && rstSites == nil && missingSites.isEmpty && loginHash == nil
                && skyloginKey == nil && cookiesLost == nil
        }
    }

    private mutating func changeRare(_ change: (inout Rare) -> Void) {
        var value = rare?.value ?? Rare()
        change(&value)
        rare = value.isEmpty ? nil : Box(value)
    }

    package init(
        realm: String, login: String, state: AccountState, stateReason: String?, refreshToken: Secret?,
        password: Secret?, ticketMethod: TicketMethod
    ) {
        self.realm = realm
        self.login = login
        self.state = state
        self.refreshToken = refreshToken
        self.ticketMethod = ticketMethod
        self.stateReason = stateReason
        self.password = password
    }

    package var cookies: Credential? { credentials[.cookies]?.credential }

    /// Whether the account has anything to refresh with: a refresh token, or (in an `rst`
    /// realm) the password.
    package var refreshable: Bool {
        if loginKind == .skype { return loginHash != nil }
        return rstSites != nil ? password != nil : hasRefreshToken
    }

    /// Whether there is a refresh token, in memory or in the store.
    package var hasRefreshToken: Bool { refreshToken != nil || refreshTokenStored }

    /// The call that refreshes `scope`: with the refresh token in memory, else the stored one.
    func refreshStep(_ scope: Scope) -> Step {
        guard hasRefreshToken else { return .impossible(.grantRevoked("no refresh token is stored")) }
        return .refreshScope(scope, refreshToken: refreshToken)
    }

    /// The site kinds an `rst` account keeps.
    var siteKinds: [CredentialKind] {
        (rstSites ?? []).filter { $0.keepsTicket && !missingSites.contains($0.key) }.map { .site($0.key) }
    }

    /// The kinds this account keeps fresh, given the configured scopes. The dependencies:
    /// the skypetoken is made from the skype scope's token, the cookies and the UIC need cookies
    /// or a password, and the RST ticket needs the `rst` method and a password.
    package func kinds(scopes: [Scope]) -> [CredentialKind] {
        if loginKind == .skype { return skyloginServers && loginHash != nil ? [.skylogin] : [] }
        if rstSites != nil { return password != nil ? siteKinds : [] }
        var kinds = scopes.map(CredentialKind.scope)
        if skyloginServers && scopes.contains(.loginSkype) { kinds.append(.skylogin) }
        if scopes.contains(.skype) { kinds.append(.skypetoken) }
        if (cookies != nil || password != nil) && cookiesLost == nil { kinds += [.cookies, .uic] }
        if ticketMethod == .rst && password != nil { kinds.append(.ticket) }
        return kinds
    }

    /// Why this account cannot have a credential of this kind, with the command that fixes it.
    package func unavailable(_ kind: CredentialKind, scopes: [Scope]) -> BrokerError? {
        if loginKind == .skype {
            if kind == .uic {
                return BrokerError(
                    .badRequest, "nonce required: a Skype name's UIC is signed over the CNT nonce",
                    hint: "uic?nonce=N, or uic?method=skylogin for its credentials")
            }
            guard kind == .skylogin else {
                return BrokerError(
                    .credentialUnavailable,
                    "\(login) is a Skype name (SkyLogin): it has UICs and SkyLogin credentials, not \(kind.name)")
            }
            if !skyloginServers {
                return BrokerError(.credentialUnavailable, "realm \(realm) names no skylogin_servers")
            }
            return loginHash == nil
                ? BrokerError(
                    .credentialUnavailable, "this Skype name has no stored login hash",
                    hint: "tokenctl login --skype \(login) --password-stdin") : nil
        }
        if kind == .skylogin {
            if rstSites != nil || !skyloginServers {
                return BrokerError(.credentialUnavailable, "realm \(realm) names no skylogin_servers")
            }
            return scopes.contains(.loginSkype)
                ? nil
                : BrokerError(
                    .credentialUnavailable,
                    "SkyLogin signs in with the login-skype token, and that scope is not kept fresh by this daemon")
        }
        if rstSites != nil {
            guard case .site = kind else {
                return BrokerError(
                    .credentialUnavailable,
                    "\(kind.name) is an OAuth credential, and realm \(realm) signs in with rst (RST.srf): "
                        + "it serves site tickets, SSO proofs and Passport 1.4 tickets")
            }
            if case .site(let key) = kind, missingSites.contains(key) {
                return BrokerError(
                    .credentialUnavailable, "the server of realm \(realm) issues no ticket for site \(key)",
                    hint: "take it out of rst_sites, or ask the server's operator")
            }
            guard siteKinds.contains(kind) else {
                return BrokerError(
                    .credentialUnavailable, "realm \(realm) does not keep a ticket for site \(kind.name) (rst_sites)")
            }
            if password == nil {
                return BrokerError(
                    .credentialUnavailable, "RST tickets need the stored password, and this account has none",
                    hint: "tokenctl login \(login) --realm \(realm) --password-stdin")
            }
            return nil
        }
        switch kind {
        case .scope(let scope):
            return scopes.contains(scope)
                ? nil : BrokerError(.unknownScope, "scope \(scope.alias) is not kept fresh by this daemon")
        case .skypetoken:
            return scopes.contains(.skype)
                ? nil : BrokerError(.credentialUnavailable, "the skype scope is not kept fresh by this daemon")
        case .cookies, .uic:
            if let lost = cookiesLost {
                return BrokerError(
                    .credentialUnavailable, "\(kind.name) needs the session cookies: \(lost)",
                    hint: "tokenctl login \(login)")
            }
            if cookies == nil && password == nil {
                return BrokerError(
                    .credentialUnavailable,
                    "\(kind.name) needs the session cookies (MSPAuth, MSPProf, WLSSC), and this account has none",
                    hint: "tokenctl login \(login), or tokenctl login --browser \(login) --cookies-stdin")
            }
            return nil
        case .ticket:
            if password == nil {
                return BrokerError(
                    .credentialUnavailable, "an RST ticket needs the stored password, and this account has none",
                    hint: "tokenctl login \(login) --store-password --ticket-method rst")
            }
            return nil
        case .site(let address):
            return BrokerError(
                .credentialUnavailable,
                "site \(address): realm \(realm) signs in with oauth; RST site tickets are kept for rst realms")
        case .skylogin:
            return nil
        }
    }

    /// How the account looks to reads.
    func view(scopes: [Scope]) -> AccountView {
        var unavailable = CredentialKinds()
        let missing = missingSites.sorted().map(CredentialKind.site)
        for kind in Scope.allCases.map(CredentialKind.scope) + [.skypetoken, .cookies, .uic, .ticket, .skylogin]
            + siteKinds + missing
        where self.unavailable(kind, scopes: scopes) != nil {
            unavailable.insert(kind)
        }
        return AccountView(state: state, reason: stateReason, unavailable: unavailable)
    }
}

/// A result waiting for the store's answer before it is installed and served.
struct Commit: Sendable {
    var job: Job
    /// The credential obtained, and the kind it is kept under.
    var kind: CredentialKind
    var credential: Credential
    /// Set by a sign-in: the new session cookies (and the grant family they started).
    var cookies: Credential?
    var rotated: Bool
    var write: PendingWrite
    /// Set by an RST.srf sign-in: the tickets of the other sites, installed together.
    var siblings: [CredentialKind: Credential] = [:]
}
