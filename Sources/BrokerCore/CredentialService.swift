#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What the socket server asks of the daemon's credential engine, and all it may ask: the server
/// depends on this protocol, not on the engine, so that it builds (and is fuzzed) without the
/// store and the HTTPS client.
///
/// The surface grows by adding cases, not members: a new on-demand computation is a new
/// `ServiceRequest` case (with its `ServiceAnswer`), a new kind of notification a new
/// `ServiceEvent` case.
package protocol CredentialService: Sendable {
    // MARK: Configuration and clock

    /// The configuration in force: realms, the scopes kept fresh, the refresh policy.
    var configuration: EngineConfiguration { get }

    /// The wall clock credentials are dated with; `expires_in` counts from it.
    func now() -> Date

    /// Whether every stored account is loaded. Until then, listing every account waits for the
    /// load, so the server asks for the list off its own thread.
    var accountsLoaded: Bool { get }

    // MARK: Credentials

    /// A credential from memory, without waiting. Called on the server's event loop for every
    /// read, so it must neither block (beyond a short lock) nor suspend: the hot path.
    func cachedRead(account: AccountName, kind: CredentialKind, minValid: TimeInterval) -> CachedRead

    /// The read cache's state, taken before a `cachedRead`: while `cacheGeneration()` still
    /// returns its generation, nothing in the cache has changed, so an answer made from that
    /// read may be sent again (if its credential still has the mark's margin left). nil: the
    /// service has no such marks, and every read looks the cache up.
    func cacheMark() -> CacheMark?

    /// The cache's generation now: one atomic load, changed by every update of the cache.
    func cacheGeneration() -> UInt64?

    /// A credential valid for at least `minValid` seconds, refreshed first when needed
    /// (concurrent reads of one credential share one refresh).
    func read(account: AccountName, kind: CredentialKind, minValid: TimeInterval) async throws(BrokerError)
        -> ServedCredential

    /// The account's Passport ticket, by its ticket method, and the credential it came from.
    func ticket(account: AccountName, minValid: TimeInterval) async throws(BrokerError) -> (
        ticket: String, method: TicketMethod, served: ServedCredential
    )

    /// Computes something on demand (see `ServiceRequest`).
    func perform(_ request: ServiceRequest) async throws(BrokerError) -> ServiceAnswer

    // MARK: Accounts

    /// Every enrolled account, sorted.
    func accountNames() -> [AccountName]

    /// One account's state and credentials; nil when no account has that name.
    func status(_ name: AccountName) -> AccountReport?

    /// How many accounts are enrolled, and how many of them need a new sign-in.
    func counts() -> (accounts: Int, needsReauth: Int)

    /// Signs in (or redeems a redirect, or imports a refresh token), stores the grant and
    /// schedules the account's credentials.
    func enroll(_ command: EnrollCommand) async throws(BrokerError) -> AccountReport

    /// Removes an account and everything stored for it.
    func logout(_ name: AccountName) throws(BrokerError)

    /// Re-seals the credential store under a new 32-byte key.
    func rekey(to keyBytes: [UInt8]) throws(BrokerError) -> RekeyReport

    // MARK: Health and metrics

    /// Why writes to the store fail, while they do: the daemon is degraded but serving.
    var degraded: String? { get }

    /// Counts a read on the socket, with its duration when it was served.
    func recordRead(_ outcome: ReadOutcome, nanoseconds: UInt64?)

    /// Brings the gauges up to date, just before the metrics are scraped.
    func updateGauges()

    // MARK: Events

    /// State changes, as they happen, for as long as the caller listens; each call is a
    /// subscriber of its own. The default implementation (below) publishes nothing: its stream
    /// finishes at once.
    func events() -> AsyncStream<ServiceEvent>
}

/// An on-demand computation: answered when asked, never kept or scheduled.
package enum ServiceRequest: Sendable {
    /// The answer to a notification server's `QRY` challenge (`Challenge.answer`). Needs no
    /// account.
    case challenge(nonce: String, productID: String, productKey: String)
    /// The `<user>` payload of an MSNP `ATH`, from the account's credentials, each valid for at
    /// least `minValid` seconds (refreshed first when needed). `trid` nil leaves a placeholder.
    /// `nonce` is the CNT nonce a `skype-uic` UIC is signed over.
    case ath(
        account: AccountName, method: ATHMethod, site: String, trid: Int?, minValid: TimeInterval,
        nonce: String? = nil)
    /// A UIC from SkyLogin credentials fresh for `minValid` seconds: signed over `nonce` with the
    /// account's RSA key (a Skype name), or, with no nonce, the credentials' base64 (either kind).
    case skyloginUIC(account: AccountName, nonce: String?, minValid: TimeInterval)
    /// The `USR t SSO S` answer of an account of an `rst` realm: the ticket of the site whose
    /// policy is `policy`, and the proof for `nonce` keyed by the BinarySecret that came with
    /// that ticket. `trid` nil leaves a placeholder; `guid` nil leaves the guid out.
    case sso(account: AccountName, nonce: String, policy: String, trid: Int?, guid: String?, minValid: TimeInterval)
    /// A Passport 1.4 ticket for a `USR t TWN S` challenge string, from a login with the stored
    /// password. Made for immediate use: it is never kept.
    case passport14(account: AccountName, challenge: String)

    /// The account the request is about, if any.
    package var account: AccountName? {
        switch self {
        case .challenge: nil
        case .ath(let account, _, _, _, _, _), .skyloginUIC(let account, _, _), .sso(let account, _, _, _, _, _),
            .passport14(let account, _):
            account
        }
    }
}

/// What a `ServiceRequest` computed; one case per request.
package enum ServiceAnswer: Sendable {
    case challenge(response: String)
    /// The payload, and when the first of the credentials in it expires.
    case ath(ATHPayload, expiresAt: Date)
    case sso(SSOAnswer)
    case passport14(ticket: String)
    case skyloginUIC(uic: String, skypeName: String, expiresAt: Date)
}

/// What `ServiceRequest.sso` computed. No field holds the BinarySecret.
package struct SSOAnswer: Sendable, Equatable {
    /// The compact ticket, as RST.srf issued it (`t=...&p=`).
    package var ticket: String
    /// The base64 MBI_KEY_OLD proof.
    package var proof: String
    package var policy: String
    /// `USR {trid} SSO S <ticket> <proof>[ {guid}]`.
    package var usr: String
    package var expiresAt: Date

    package init(ticket: String, proof: String, policy: String, usr: String, expiresAt: Date) {
        self.ticket = ticket
        self.proof = proof
        self.policy = policy
        self.usr = usr
        self.expiresAt = expiresAt
    }

    /// The command line: `{trid}` when no trid is given, and the guid in braces (whether or not
    /// the caller wrote them) only when one is given.
    package static func usrLine(trid: Int?, ticket: String, proof: String, guid: String?) -> String {
        var line = "USR \(trid.map(String.init) ?? "{trid}") SSO S \(ticket) \(proof)"
        if let guid {
            var bare = Substring(guid)
            if bare.hasPrefix("{") { bare = bare.dropFirst() }
            if bare.hasSuffix("}") { bare = bare.dropLast() }
            line += " {\(bare)}"
        }
        return line
    }
}

/// A change of state a service announces through `events()`.
package enum ServiceEvent: Sendable, Equatable {
    /// An account was enrolled or removed, or its state changed (active, needs a new sign-in).
    case accountChanged(AccountName)
    /// Store writes began failing (the reason) or succeed again (nil).
    case degradedChanged(String?)
    /// A credential was refreshed or failed to be, an account needs a new sign-in, was
    /// enrolled, signed in again or removed: what `GET /v1/events` streams.
    case account(AccountEvent)
}

extension CredentialService {
    package var accountsLoaded: Bool { true }

    package func cacheMark() -> CacheMark? { nil }
    package func cacheGeneration() -> UInt64? { nil }

    /// No events: the stream finishes at once. A service that publishes its state changes
    /// implements `events()` itself.
    package func events() -> AsyncStream<ServiceEvent> {
        AsyncStream { $0.finish() }
    }

    /// Answers `ServiceRequest.ath` from `read` and `ticket`: the session cookies for
    /// `web-compact-ticket`, the ticket for the SSL methods, and the UIC for the method that
    /// carries it.
    package func athAnswer(
        account: AccountName, method: ATHMethod, site: String, trid: Int?, minValid: TimeInterval
    ) async throws(BrokerError) -> ServiceAnswer {
        var expiries: [Date] = []
        var ticketValue: String?
        var uic: String?
        var id: String?
        var alias: String?
        if method == .webCompactTicket {
            expiries.append(try await read(account: account, kind: .cookies, minValid: minValid).credential.expiresAt)
        }
        if method.needsTicket {
            let result = try await ticket(account: account, minValid: minValid)
            ticketValue = result.ticket
            expiries.append(result.served.credential.expiresAt)
        }
        if method.needsUIC {
            let served = try await read(account: account, kind: .uic, minValid: minValid)
            uic = served.credential.value.exposed
            expiries.append(served.credential.expiresAt)
        }
        if method == .sslCompactTicketSkylogin {
            let served = try await read(account: account, kind: .skylogin, minValid: minValid)
            uic = served.credential.value.exposed
            alias = served.credential.subject
            id = status(account)?.login
            expiries.append(served.credential.expiresAt)
        }
        let payload = ATHPayload.render(
            method: method, ticket: ticketValue, uic: uic, site: site, trid: trid, id: id, alias: alias)
        return .ath(payload, expiresAt: expiries.min() ?? now())
    }
}
