import BrokerCore
import BrokerStore
import Foundation
import LiveClient

/// The calls the engine makes to an identity provider: one per step of the refresh machine,
/// plus the sign-ins of an enrollment. `LiveIdentityClient` is the real one; tests may pass a
/// fake to drive the engine without a network.
package protocol IdentityProviding: Sendable {
    func refresh(realm: Realm, refreshToken: Secret, scope: Scope, now: Date) async throws(RefreshFailure) -> TokenGrant
    func signIn(realm: Realm, login: String, password: Secret, now: Date) async throws(BrokerError) -> SignInGrant
    func redeem(_ redirectURL: String, now: Date) throws(BrokerError) -> TokenGrant
    func skypetoken(realm: Realm, accessToken: Secret, now: Date) async throws(RefreshFailure) -> Credential
    func userInitialization(realm: Realm, cookies: Secret, now: Date) async throws(RefreshFailure) -> Credential
    func silentSignIn(realm: Realm, cookies: Secret, now: Date) async throws(RefreshFailure) -> SignInGrant
    func passwordSignIn(realm: Realm, login: String, password: Secret, now: Date) async throws(RefreshFailure)
        -> SignInGrant
    func rstTicket(realm: Realm, login: String, password: Secret, now: Date) async throws(RefreshFailure) -> Credential
    /// Every site of an `rst` realm from one RST.srf call, by site address.
    func rstSites(realm: Realm, login: String, password: Secret, sites: [RSTSite], now: Date)
        async throws(RefreshFailure) -> [String: Credential]
    /// A Passport 1.4 ticket for a `USR t TWN S` challenge string.
    func passport14(realm: Realm, login: String, password: Secret, challenge: String, now: Date)
        async throws(RefreshFailure) -> String
    /// Signed credentials from the realm's SkyLogin servers, verified on receipt: `value` is their
    /// base64, `subject` the Skype name, `proofKey` the RSA key they are bound to (`clientKey`,
    /// or a new one when it is nil).
    func skylogin(realm: Realm, request: SkyLoginSignIn, clientKey: Secret?, now: Date)
        async throws(RefreshFailure) -> Credential
}

/// What the engine writes: `CredentialStore` is the real one (SQLite); tests may pass a fake.
package protocol CredentialPersisting: Sendable {
    func loadAccounts() throws -> [AccountSeed]
    /// Up to `limit` accounts after row `afterID`, in row order, and the last row read (nil: no
    /// more). Start-up loads the store this way while reads are served.
    func loadAccounts(afterID: Int64, limit: Int) throws -> (seeds: [AccountSeed], lastID: Int64?)
    /// One account, for a read that comes before the background load reached it.
    func loadAccount(_ name: AccountName) throws -> AccountSeed?
    /// Every account, and those that need a new sign-in, without loading them.
    func accountCounts() throws -> (accounts: Int, needsReauth: Int)
    /// The account's refresh token, read when a refresh runs (memory does not keep it once it is
    /// stored). Nil: none is stored.
    func storedRefreshToken(_ name: AccountName) throws -> Secret?
    /// One transaction: the access token, a rotated refresh token, new cookies.
    func commit(_ write: PendingWrite, account: AccountName, now: Date) throws
    func setState(_ state: AccountState, reason: String?, for name: AccountName) throws
    /// Stores a new account, or a new grant of an existing one.
    func saveEnrollment(_ seed: AccountSeed, exists: Bool, now: Date) throws
    func deleteAccount(_ name: AccountName) throws -> Bool
    func rekey(to keyBytes: [UInt8]) throws -> CredentialStore.RekeyResult
}

/// A store that can only load everything at once (a test's) loads it as one batch.
extension CredentialPersisting {
    package func loadAccounts(afterID: Int64, limit: Int) throws -> (seeds: [AccountSeed], lastID: Int64?) {
        afterID == 0 ? (try loadAccounts(), 1) : ([], nil)
    }

    package func loadAccount(_ name: AccountName) throws -> AccountSeed? {
        try loadAccounts().first { $0.name == name }
    }

    package func storedRefreshToken(_ name: AccountName) throws -> Secret? {
        try loadAccount(name)?.refreshToken
    }

    package func accountCounts() throws -> (accounts: Int, needsReauth: Int) {
        let seeds = try loadAccounts()
        return (seeds.count, seeds.filter { $0.state == .needsReauth }.count)
    }
}

extension LiveIdentityClient: IdentityProviding {
    package func signIn(realm: Realm, login: String, password: Secret, now: Date) async throws(BrokerError)
        -> SignInGrant
    {
        let result: SignInResult = try await signIn(realm: realm, login: login, password: password, now: now)
        return SignInGrant(grant: result.grant, cookies: result.cookies, cookiesExpireAt: result.cookiesExpireAt)
    }

    package func redeem(_ redirectURL: String, now: Date) throws(BrokerError) -> TokenGrant {
        try Self.redeem(redirectURL, now: now).grant
    }

    package func silentSignIn(realm: Realm, cookies: Secret, now: Date) async throws(RefreshFailure) -> SignInGrant {
        let result: SignInResult = try await silentSignIn(realm: realm, cookies: cookies, now: now)
        return SignInGrant(grant: result.grant, cookies: result.cookies, cookiesExpireAt: result.cookiesExpireAt)
    }

    package func passwordSignIn(realm: Realm, login: String, password: Secret, now: Date) async throws(RefreshFailure)
        -> SignInGrant
    {
        let result: SignInResult = try await passwordSignIn(realm: realm, login: login, password: password, now: now)
        return SignInGrant(grant: result.grant, cookies: result.cookies, cookiesExpireAt: result.cookiesExpireAt)
    }
}

extension CredentialStore: CredentialPersisting {
    package func loadAccounts() throws -> [AccountSeed] {
        try loadAll().map(Self.seed)
    }

    package func loadAccounts(afterID: Int64, limit: Int) throws -> (seeds: [AccountSeed], lastID: Int64?) {
        let batch = try loadBatch(afterID: afterID, limit: limit)
        return (batch.accounts.map(Self.seed), batch.lastID)
    }

    package func loadAccount(_ name: AccountName) throws -> AccountSeed? {
        try load(name).map(Self.seed)
    }

    private static func seed(_ account: StoredAccount, _ credentials: StoredCredentials) -> AccountSeed {
        AccountSeed(
            name: account.name, realm: account.realm, login: account.login, state: account.state,
            stateReason: account.stateReason,
            refreshToken: credentials.refreshToken, password: credentials.password,
            ticketMethod: account.ticketMethod, accessTokens: Array(credentials.accessTokens.values),
            cookies: credentials.cookies.map { (value: $0, expiresAt: credentials.cookiesExpireAt) },
            sites: credentials.sites,
            loginKind: account.loginKind, loginHash: credentials.loginHash, skylogin: credentials.skylogin,
            skyloginKey: credentials.skyloginKey, derived: credentials.derived)
    }

    package func storedRefreshToken(_ name: AccountName) throws -> Secret? {
        try credentials(for: name).refreshToken
    }

    package func commit(_ write: PendingWrite, account: AccountName, now: Date) throws {
        try commitRefresh(
            account: account, accessToken: write.accessToken, rotatedRefreshToken: write.rotatedRefreshToken,
            cookies: write.cookies, cookiesExpireAt: write.cookiesExpireAt, sites: write.sites,
            skylogin: write.skylogin, derived: write.derived, now: now)
    }

    package func saveEnrollment(_ seed: AccountSeed, exists: Bool, now: Date) throws {
        if seed.loginKind == .skype {
            guard let hash = seed.loginHash, let skylogin = seed.skylogin else {
                throw BrokerError(.internalError, "a Skype name's enrollment without its login hash or credentials")
            }
            if exists {
                try replaceSkyLogin(account: seed.name, loginHash: hash, skylogin: skylogin)
            } else {
                try createAccount(
                    name: seed.name, realm: seed.realm, login: seed.login, refreshToken: nil, accessTokens: [],
                    password: nil, cookies: nil, loginKind: .skype, loginHash: hash, skylogin: skylogin, now: now)
            }
            return
        }
        guard seed.refreshToken != nil || (seed.password != nil && !seed.sites.isEmpty) else {
            throw BrokerError(.internalError, "an enrollment without a refresh token or RST tickets")
        }
        let refreshToken = seed.refreshToken
        if exists {
            try replaceGrant(
                account: seed.name, refreshToken: refreshToken, accessTokens: seed.accessTokens,
                cookies: seed.cookies?.value, cookiesExpireAt: seed.cookies?.expiresAt, sites: seed.sites, now: now)
            if let password = seed.password { try setSecret(password, kind: .password, account: seed.name, now: now) }
            try setTicketMethod(seed.ticketMethod, for: seed.name)
        } else {
            try createAccount(
                name: seed.name, realm: seed.realm, login: seed.login, refreshToken: refreshToken,
                accessTokens: seed.accessTokens,
                password: seed.password, cookies: seed.cookies?.value, ticketMethod: seed.ticketMethod,
                sites: seed.sites, cookiesExpireAt: seed.cookies?.expiresAt, now: now)
        }
    }
}
