import BrokerAPI
import BrokerCore
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOHTTP1
import Synchronization

/// A parsed request as the router sees it.
struct APIRequest {
    var method: HTTPMethod
    var segments: [String]
    var query: [String: String]
    var body: [UInt8]
}

/// What the router decided: answer now from memory, run something asynchronous, or turn the
/// connection into an event stream (`GET /v1/events`).
enum Routed {
    case now(APIResponse)
    case later(@Sendable () async -> APIResponse)
    case stream(EventSubscription)
}

/// Maps requests to the credential service, checks the peer against the access policy, and
/// maps errors to the API's codes.
final class Router: Sendable {
    let service: any CredentialService
    private let policyBox: NIOLockedValueBox<AccessPolicy>
    let logger: Logger

    /// The Prometheus text of the metrics, when the daemon exposes them.
    let metrics: (@Sendable () -> [UInt8])?

    init(
        service: any CredentialService, policy: AccessPolicy, logger: Logger, metrics: (@Sendable () -> [UInt8])? = nil
    ) {
        self.metrics = metrics
        self.service = service
        self.policyBox = NIOLockedValueBox(policy)
        self.usesGroups = Synchronization.Atomic(policy.usesGroups)
        self.logger = logger
        self.logsReads = Synchronization.Atomic(logger.logLevel <= .debug)
    }

    var policy: AccessPolicy {
        get { policyBox.withLockedValue { $0 } }
        set {
            policyBox.withLockedValue {
                $0 = newValue
                usesGroups.store(newValue.usesGroups, ordering: .relaxed)
            }
        }
    }

    /// Whether the policy looks at supplementary groups (see `AccessPolicy.usesGroups`): asked on
    /// every accepted connection, so kept apart from the policy rather than computed under its lock.
    var policyUsesGroups: Bool { usesGroups.load(ordering: .relaxed) }
    private let usesGroups: Synchronization.Atomic<Bool>

    /// Whether each read's debug line is written: the logger's level, looked at when the router is
    /// made and when the level may have changed (`followLogLevel`), not on every read, where
    /// swift-log's own check copies the handler out of the logger (a retain, a release and an
    /// exclusivity check per read).
    private let logsReads: Synchronization.Atomic<Bool>

    /// Takes up the logger's level again, after its handler's level changed.
    func followLogLevel() { logsReads.store(logger.logLevel <= .debug, ordering: .relaxed) }

    /// Percent-decodes a path segment or query part; most have no `%`, and skip Foundation's decoder.
    static func decode(_ part: Substring) -> String {
        let text = String(part)
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
        return text.removingPercentEncoding ?? text
    }

    static func parse(method: HTTPMethod, uri: String, body: [UInt8]) -> APIRequest {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let segments = parts[0].split(separator: "/").map(decode)
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
            }
        }
        return APIRequest(method: method, segments: segments, query: query, body: body)
    }

    func route(_ request: ParsedRequest, peer: Peer) -> Routed {
        route(Self.parse(method: request.method, uri: request.target, body: request.body), peer: peer)
    }

    func route(_ request: APIRequest, peer: Peer) -> Routed {
        let s = request.segments
        // Only the routes of `Router.routes` go further.
        if let error = Self.unrouted(request.method, s) { return .now(.error(error)) }
        if s == ["metrics"] {
            guard request.method == .GET else { return .now(.error(BrokerError(.methodNotAllowed, "GET only"))) }
            guard policy.mayReadMetrics(peer) else { return .now(deny(peer, "read metrics")) }
            guard let metrics else { return .now(.error(BrokerError(.notFound, "metrics are not enabled"))) }
            service.updateGauges()
            return .now(
                APIResponse(status: .ok, body: metrics(), contentType: "text/plain; version=0.0.4; charset=utf-8"))
        }
        guard s.first == "v1" else { return .now(.error(Self.noSuchEndpoint)) }
        switch (request.method, s.count, s.count > 1 ? s[1] : "") {
        case (.GET, 2, "health"):
            let (accounts, needsReauth) = service.counts()
            let degraded = service.degraded
            return .now(
                .json(
                    HealthResponse(
                        status: degraded == nil ? "ok" : "degraded", version: BrokerDefaults.version,
                        accounts: accounts, needsReauth: needsReauth,
                        storageError: degraded)))
        case (.GET, 2, "realms"):
            let realms = service.configuration.realms
            return .now(
                .json(
                    RealmsResponse(
                        realms: realms.map { realm in
                            RealmInfo(
                                name: realm.name, signIn: realm.signIn.rawValue,
                                authorizeURL: realm.signIn == .rst
                                    ? nil
                                    : AuthorizeURL.make(
                                        base: realm.loginBase, clientID: realm.clientID, scope: Scope.skype.rawValue,
                                        redirectURI: realm.redirectURI),
                                isDefault: realms.count == 1)
                        })))
        case (.GET, 2, "events"):
            return events(request, peer: peer)
        case (.GET, 2, "accounts"):
            let policy = self.policy
            let service = self.service
            let list = { @Sendable in
                let visible = service.accountNames().filter { policy.mayRead(peer, account: $0) }
                return APIResponse.json(
                    AccountsResponse(accounts: visible.compactMap { service.status($0)?.detail.summary }))
            }
            // While the store is still loading, the list waits for it: off the server's thread.
            return service.accountsLoaded ? .now(list()) : .later { list() }
        case (.POST, 2, "accounts"):
            guard policy.isAdmin(peer) else { return .now(deny(peer, "enroll")) }
            return enroll(request)
        case (.POST, 3, "admin") where s[2] == "rekey":
            guard policy.isAdmin(peer) else { return .now(deny(peer, "rekey")) }
            return .now(rekey(request))
        case (.POST, 2, "challenge"):
            return challenge(request)
        case (.GET, 3, "accounts"), (.DELETE, 3, "accounts"):
            guard let name = AccountName(rawValue: s[2]) else {
                return .now(.error(BrokerError(.notFound, "no account named \(s[2].prefix(64))")))
            }
            if request.method == .GET {
                guard policy.mayRead(peer, account: name) else { return .now(deny(peer, "read", account: name)) }
                guard let report = service.status(name) else {
                    return .now(.error(BrokerError(.notFound, "no account named \(name)")))
                }
                var detail = report.detail
                let readers = policy.readers(of: name)
                detail.readers = AccountDetail.Readers(uids: readers.uids, groups: readers.groups)
                return .now(.json(detail))
            }
            guard policy.isAdmin(peer) else { return .now(deny(peer, "logout", account: name)) }
            do {
                try service.logout(name)
                return .now(.json(DeleteResponse(deleted: name.rawValue)))
            } catch {
                return .now(.error(error))
            }
        case (.GET, 4, "accounts") where Self.credentialEndpoints.contains(s[3]):
            guard let name = AccountName(rawValue: s[2]) else {
                return .now(.error(BrokerError(.notFound, "no account named \(s[2].prefix(64))")))
            }
            guard policy.mayRead(peer, account: name) else { return .now(deny(peer, "read", account: name)) }
            return credential(s[3], request, account: name, peer: peer)
        case (_, 4, "accounts") where !Self.credentialEndpoints.contains(s[3]):
            return .now(.error(Self.noSuchEndpoint))
        case (_, 2, "health"), (_, 2, "realms"), (_, 2, "accounts"), (_, 3, "accounts"), (_, 4, "accounts"),
            (_, 2, "challenge"), (_, 2, "events"):
            return .now(.error(BrokerError(.methodNotAllowed, "\(request.method.rawValue) is not allowed here")))
        default:
            return .now(.error(Self.noSuchEndpoint))
        }
    }

    static func brokerError(_ error: any Error) -> BrokerError {
        error as? BrokerError ?? BrokerError(.internalError, "internal error: \(type(of: error))", cause: error)
    }

    func deny(_ peer: Peer, _ action: String, account: AccountName? = nil) -> APIResponse {
        if action == "read" { service.recordRead(.denied, nanoseconds: nil) }
        var metadata: Logger.Metadata = [
            "broker.event": "denied", "broker.action": "\(action)", "broker.peer.uid": "\(peer.uid)",
            "broker.peer.pid": "\(peer.pid)",
            "broker.peer.comm": "\(PeerCredentials.command(of: peer.pid) ?? "?")",
        ]
        if let account { metadata["broker.account"] = "\(account)" }
        logger.warning("request denied", metadata: metadata)
        return .error(
            BrokerError(.forbidden, "uid \(peer.uid) may not \(action)" + (account.map { " account \($0)" } ?? "")))
    }

    /// The credential endpoints: answered from the cache when fresh, else after the service's
    /// shared refresh.
    private func credential(_ endpoint: String, _ request: APIRequest, account: AccountName, peer: Peer) -> Routed {
        var minValid: TimeInterval = 0
        if let raw = request.query["min_valid"] {
            guard let value = Int(raw), value >= 0, value <= 366 * 86_400 else {
                return .now(.error(BrokerError(.badRequest, "min_valid must be a whole number of seconds, 0 or more")))
            }
            minValid = TimeInterval(value)
        }
        let service = self.service
        let wanted = minValid
        switch endpoint {
        case "token":
            guard let scopeName = request.query["scope"], !scopeName.isEmpty else {
                return .now(
                    .error(
                        BrokerError(
                            .badRequest, "the scope parameter is required (skype, ssl, login-skype, contacts, hotmail)")
                    ))
            }
            guard let scope = Scope(nameOrAlias: scopeName), service.configuration.scopes.contains(scope) else {
                return .now(
                    .error(
                        BrokerError(
                            .unknownScope, "unknown scope \(scopeName.prefix(80))",
                            hint: "use skype, ssl, login-skype, contacts or hotmail")))
            }
            return read(account: account, kind: .scope(scope), minValid: minValid, peer: peer) {
                APIResponse.token($0, now: $1)
            }
        case "skypetoken":
            return read(account: account, kind: .skypetoken, minValid: minValid, peer: peer) { served, now in
                .json(
                    SkypetokenResult(
                        skypetoken: served.credential.value.exposed, expiresAt: served.expiresAtText,
                        expiresIn: Self.left(served, now)))
            }
        case "uic":
            // A Skype name's plain uic is refused by the cache lookup itself ("nonce required").
            if request.query["nonce"] != nil || request.query["method"] != nil {
                return skyloginUIC(request, account: account, minValid: minValid)
            }
            return read(account: account, kind: .uic, minValid: minValid, peer: peer) { served, now in
                .json(
                    UICResult(
                        uic: served.credential.value.exposed, expiresAt: served.expiresAtText,
                        expiresIn: Self.left(served, now)))
            }
        case "web-ticket":
            return read(account: account, kind: .cookies, minValid: minValid, peer: peer) { served, now in
                let cookies = served.credential.value.exposed
                return .json(
                    WebTicketResult(
                        cookies: cookies, headers: ["X-MSN-Auth": "Use-Cookie", "Cookie": cookies],
                        expiresAt: served.expiresAtText,
                        expiresIn: Self.left(served, now)))
            }
        case "ticket":
            if let asked = request.query["site"] {
                // Sites are filed by their address lowercased: host names are case-insensitive.
                let site = asked.lowercased()
                guard Self.isPrintableASCII(site, max: 253), !site.contains(" ") else {
                    return .now(.error(BrokerError(.badRequest, "site must be a site address, like contacts.msn.com")))
                }
                return read(account: account, kind: .site(site), minValid: minValid, peer: peer) { served, now in
                    .json(
                        TicketResult(
                            ticket: served.credential.value.exposed, method: TicketMethod.rst.rawValue, site: site,
                            expiresAt: served.expiresAtText, expiresIn: Self.left(served, now)))
                }
            }
            return .later {
                do {
                    let (ticket, method, served) = try await service.ticket(account: account, minValid: wanted)
                    var site = ATHPayload.defaultSite
                    if case .site(let address) = served.kind { site = address }
                    return .json(
                        TicketResult(
                            ticket: ticket, method: method.rawValue, site: site,
                            expiresAt: served.expiresAtText,
                            expiresIn: Self.left(served, service.now())))
                } catch {
                    return .error(Router.brokerError(error))
                }
            }
        case "sso":
            return sso(request, account: account, minValid: minValid)
        case "passport14":
            return passport14(request, account: account)
        default:
            return ath(request, account: account, minValid: minValid)
        }
    }

    /// A read answered from memory: counted, timed and logged (at debug) the same on both paths.
    private func servedFromCache(account: AccountName, kind: CredentialKind, peer: Peer, started: UInt64) {
        service.recordRead(.fresh, nanoseconds: ServerLoop.nanoseconds(since: started))
        guard logsReads.load(ordering: .relaxed) else { return }
        logger.debug(
            "credential served",
            metadata: [
                "broker.account": "\(account)", "broker.credential": "\(kind.name)", "broker.event": "served",
                "broker.peer.uid": "\(peer.uid)",
            ])
    }

    static func left(_ served: ServedCredential, _ now: Date) -> Int { left(served.credential.expiresAt, now) }

    /// The whole seconds left until `expiresAt`: the `expires_in` an answer says.
    static func left(_ expiresAt: Date, _ now: Date) -> Int {
        max(0, Int(expiresAt.timeIntervalSince(now).rounded(.down)))
    }

    /// One credential: from memory on the event loop when fresh, else through the service.
    private func read(
        account: AccountName, kind: CredentialKind, minValid: TimeInterval, peer: Peer,
        encode: @escaping @Sendable (ServedCredential, Date) -> APIResponse
    ) -> Routed {
        let started = ServerLoop.monotonicNow()
        switch service.cachedRead(account: account, kind: kind, minValid: minValid) {
        case .fresh(let served):
            servedFromCache(account: account, kind: kind, peer: peer, started: started)
            return .now(encode(served, service.now()))
        case .notFound:
            return .now(
                .error(BrokerError(.notFound, "no account named \(account)", hint: "tokenctl accounts lists them")))
        case .needsReauth, .stale, .unavailable:
            let service = self.service
            return .later {
                do {
                    let served = try await service.read(account: account, kind: kind, minValid: minValid)
                    service.recordRead(.refreshed, nanoseconds: ServerLoop.nanoseconds(since: started))
                    return encode(served, service.now())
                } catch {
                    service.recordRead(.error, nanoseconds: ServerLoop.nanoseconds(since: started))
                    return .error(Router.brokerError(error))
                }
            }
        }
    }
}

// MARK: - The hot path

/// A plain token read: the account, the scope and `min_valid`.
struct TokenRead: Equatable {
    var account: AccountName
    var scope: Scope
    var minValid: TimeInterval
}

/// A token answer as written, head and body, kept (in the secret slab) to be sent again while
/// it is still the answer: see `Router.serveToken`.
struct TokenAnswer {
    let bytes: Secret
    /// The cache's generation before the lookup it was made from.
    let generation: UInt64
    let expiresAt: Date
    /// The `expires_in` it says.
    let expiresIn: Int
    /// What the credential must have left to be served: `max(safety margin, min_valid)`.
    let threshold: TimeInterval

    /// Whether a lookup at `now`, with the cache at `generation`, would write the same bytes:
    /// the same credential, still with `threshold` left, and the same whole seconds left.
    func repeatable(generation: UInt64, now: Date) -> Bool {
        guard generation == self.generation else { return false }
        return expiresAt.timeIntervalSince(now) >= threshold && Router.left(expiresAt, now) == expiresIn
    }
}

extension Router {
    /// The token read a request asks for, if it is a plain one the hot path answers (a GET: the
    /// answer always has its body).
    func tokenRead(_ request: ParsedRequest) -> TokenRead? {
        guard request.method == .GET, request.body.isEmpty else { return nil }
        var target = request.target
        guard let (name, scope, minValid) = target.withUTF8({ Self.tokenTarget($0) }) else { return nil }
        return TokenRead(account: name, scope: scope, minValid: minValid)
    }

    /// `GET /v1/accounts/NAME/token?scope=S[&min_valid=N]` for a token in memory: checked and
    /// written straight into `out`, without building the generic request or an intermediate body.
    /// Returns false for anything else (a denial, a token to refresh, a kind the account cannot
    /// have); the generic route then answers, with the same checks.
    ///
    /// `answer` is the last answer made for this read on this connection. It is sent again, as
    /// is, when the cache has not changed since it was made (`generation`, the caller's load of
    /// `CredentialService.cacheGeneration`; nil sends none again) and the token's `expires_in` is
    /// still the one it says: then a lookup would find the same
    /// credential and write the same bytes. Otherwise the cache is looked up and a new answer
    /// kept (when `generation` is given). The access check, the count, the latency and the log line are
    /// the same either way.
    /// `answer` belongs to one head, so its `keepAlive` is always the one it was made with.
    /// `started`: when the server's loop woke up to the bytes of this request (its monotonic
    /// clock), from which the read's duration counts.
    func serveToken(
        _ read: TokenRead, peer: Peer, keepAlive: Bool, answer: inout TokenAnswer?, generation current: UInt64?,
        started: UInt64, into out: inout [UInt8]
    ) -> Bool {
        guard policyBox.withLockedValue({ $0.mayRead(peer, account: read.account) }) else { return false }
        let now = service.now()
        let kind = CredentialKind.scope(read.scope)
        if let current, answer?.repeatable(generation: current, now: now) == true {
            answer!.bytes.withUTF8 { out.append(contentsOf: $0) }
            servedFromCache(account: read.account, kind: kind, peer: peer, started: started)
            return true
        }
        answer = nil
        // The mark comes first: a change after it makes the answer kept here one never repeated.
        let mark = current != nil ? service.cacheMark() : nil
        guard case .fresh(let served) = service.cachedRead(account: read.account, kind: kind, minValid: read.minValid)
        else { return false }
        servedFromCache(account: read.account, kind: kind, peer: peer, started: started)
        let from = out.count
        APIResponse.writeToken(served, now: now, keepAlive: keepAlive, omitBody: false, into: &out)
        if let mark {
            answer = out.withUnsafeBytes { all in
                TokenAnswer(
                    bytes: Secret(copying: UnsafeRawBufferPointer(rebasing: all[from...])), generation: mark.generation,
                    expiresAt: served.credential.expiresAt, expiresIn: Self.left(served, now),
                    threshold: max(mark.safetyMargin, read.minValid))
            }
        }
        return true
    }

    private static let tokenPrefix = Array("/v1/accounts/".utf8)
    private static let tokenSuffix = Array("/token?".utf8)
    private static let scopeKey = Array("scope".utf8)
    private static let minValidKey = Array("min_valid".utf8)
    private static let scopeNames: [([UInt8], Scope)] = Scope.allCases.flatMap {
        [(Array($0.alias.utf8), $0), (Array($0.rawValue.utf8), $0)]
    }

    /// The account, scope and min_valid of a plain token target; nil for anything the generic
    /// parser should see (escapes, other keys, repeated keys, bad values).
    static func tokenTarget(_ bytes: UnsafeBufferPointer<UInt8>) -> (AccountName, Scope, TimeInterval)? {
        guard bytes.starts(with: tokenPrefix) else { return nil }
        var i = tokenPrefix.count
        let nameStart = i
        while i < bytes.count, bytes[i] != 0x2F { i += 1 }
        let nameEnd = i
        guard nameEnd > nameStart, UnsafeBufferPointer(rebasing: bytes[i...]).starts(with: tokenSuffix) else {
            return nil
        }
        i += tokenSuffix.count
        var scope: Scope?
        var minValid: Int?
        while i < bytes.count {
            var end = i
            while end < bytes.count, bytes[end] != 0x26 { end += 1 }
            let pair = UnsafeBufferPointer(rebasing: bytes[i..<end])
            guard let equals = pair.firstIndex(of: 0x3D) else { return nil }
            let key = UnsafeBufferPointer(rebasing: pair[..<equals])
            let value = UnsafeBufferPointer(rebasing: pair[(equals + 1)...])
            if key.elementsEqual(scopeKey), scope == nil {
                guard let match = scopeNames.first(where: { value.elementsEqual($0.0) }) else { return nil }
                scope = match.1
            } else if key.elementsEqual(minValidKey), minValid == nil {
                guard !value.isEmpty, value.count <= 8, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    return nil
                }
                let number = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                guard number <= 366 * 86_400 else { return nil }
                minValid = number
            } else {
                return nil
            }
            i = end + 1
        }
        guard let scope, let name = AccountName(rawValue: String(decoding: bytes[nameStart..<nameEnd], as: UTF8.self))
        else { return nil }
        return (name, scope, TimeInterval(minValid ?? 0))
    }
}
