import AsyncHTTPClient
import BrokerCore
import Foundation
import LiveProtocol
import Locks
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// What a completed sign-in yields: the tokens from the desktop redirect, and the session
/// cookies (MSPAuth, MSPProf, WLSSC) when the server set them.
package struct SignInResult: Sendable {
    package var grant: TokenGrant
    package var cookies: Secret?
    /// From the cookies' Max-Age, when the server set one.
    package var cookiesExpireAt: Date?

    package init(grant: TokenGrant, cookies: Secret?, cookiesExpireAt: Date? = nil) {
        self.grant = grant
        self.cookies = cookies
        self.cookiesExpireAt = cookiesExpireAt
    }
}

/// The sign-in and refresh flows over HTTPS (AsyncHTTPClient), with one client per realm so that
/// each trusts its own CA file.
package final class LiveIdentityClient: Sendable {
    /// Every request gets at most this long, so no refresh is ever stuck.
    package static let requestTimeout: TimeAmount = .seconds(20)
    static let maxBody = 1 << 20
    /// Redirects followed during sign-in, at most.
    static let maxHops = 3

    /// The current client of each realm, and the clients replaced by reloads: those finish their
    /// requests and are shut down with the rest.
    private let clients: LockedValue<(current: [String: HTTPClient], retired: [HTTPClient])>
    private let logger: Logger
    /// Each `rst` realm's Passport 1.4 DALogin, once its nexus has named it.
    let daLogins = LockedValue<[String: String]>([:])
    /// Each SkyLogin realm's trusted keys.
    let skylogin: LockedValue<[String: SkyLoginKeys]>

    package init(realms: [Realm], logger: Logger) throws(BrokerError) {
        self.skylogin = LockedValue(try Self.skyloginKeys(realms))
        self.clients = LockedValue((current: Self.makeClients(try Self.tlsConfigurations(realms)), retired: []))
        self.logger = logger
    }

    /// Takes a reloaded set of realms: every realm gets a new client (its `ca_file` read again);
    /// requests in flight finish on the old ones. Nothing changes if a `ca_file` cannot be read.
    package func update(realms: [Realm]) throws(BrokerError) {
        let keys = try Self.skyloginKeys(realms)
        let fresh = Self.makeClients(try Self.tlsConfigurations(realms))
        skylogin.withLock { $0 = keys }
        clients.withLock { clients in
            clients.retired += clients.current.values
            clients.current = fresh
        }
        // A realm's nexus is asked again after a reload: its origins may have changed.
        daLogins.withLock { $0.removeAll() }
    }

    /// Reads each realm's CA file; fails before any client exists, so that none is left running.
    static func tlsConfigurations(_ realms: [Realm]) throws(BrokerError) -> [String: TLSConfiguration] {
        var result: [String: TLSConfiguration] = [:]
        for realm in realms {
            var tls = TLSConfiguration.makeClientConfiguration()
            // A server that hangs never answers close_notify: wait 1 s for it, not 5, so that
            // a stop during a stuck request ends promptly.
            tls.shutdownTimeout = .seconds(1)
            if let caFile = realm.caFile {
                do {
                    tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(caFile))]
                } catch {
                    throw BrokerError(.badRequest, "realm \(realm.name): cannot read ca_file \(caFile): \(error)")
                }
            }
            result[realm.name] = tls
        }
        return result
    }

    static func makeClients(_ tls: [String: TLSConfiguration]) -> [String: HTTPClient] {
        tls.mapValues { tls in
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
            configuration.timeout = .init(connect: .seconds(10), read: .seconds(15))
            configuration.connectionPool = .init(
                idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 8)
            return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        }
    }

    package func shutdown() async throws {
        let all = clients.withLock { clients in
            defer { clients = (current: [:], retired: []) }
            return Array(clients.current.values) + clients.retired
        }
        // Every client is shut down, even when one fails (requests abandoned at shutdown still
        // open); the first error is reported.
        var failure: (any Error)?
        for client in all {
            do { try await client.shutdown() } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }

    private func client(for realm: Realm) -> HTTPClient? { clients.withLock { $0.current[realm.name] } }

    // MARK: - Refresh

    package func refresh(realm: Realm, refreshToken: Secret, scope: Scope, now: Date) async throws(RefreshFailure)
        -> TokenGrant
    {
        guard let client = client(for: realm) else {
            throw .rejected(code: "unknown_realm", description: "realm \(realm.name) is not configured")
        }
        var request = HTTPClientRequest(url: realm.tokenEndpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: FormEncoding.contentType)
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(
            ByteBuffer(
                string: TokenRequest.refreshBody(clientID: realm.clientID, scope: scope, refreshToken: refreshToken)))
        let status: Int
        let headers: HTTPHeaders
        let body: [UInt8]
        do {
            (status, headers, body) = try await execute(client, request)
        } catch {
            throw .transient("token endpoint unreachable: \(Self.describe(error))")
        }
        if status == 429 {
            throw .rateLimited(retryAfter: Self.retryAfter(headers, now: now))
        }
        let parsed: TokenResponse
        do {
            parsed = try TokenResponse.parse(status: status, body: body)
        } catch {
            throw .transient(error.message)
        }
        switch parsed {
        case .success(let access, let expiresIn, let rotated, let returnedScope, let userID):
            if !returnedScope.isEmpty, returnedScope != scope.rawValue {
                throw .transient("the token endpoint answered for another scope")
            }
            guard Self.isPlainToken(access) else {
                throw .transient("the token endpoint returned a token with unexpected characters")
            }
            let token = AccessToken(
                value: access, scope: scope, obtainedAt: now, expiresAt: now.addingTimeInterval(TimeInterval(expiresIn))
            )
            return TokenGrant(accessToken: token, refreshToken: rotated, userID: userID)
        case .failure(let error, let description):
            switch error {
            case "invalid_grant": throw .grantRevoked(description)
            case "temporarily_unavailable", "server_error": throw .transient("\(error): \(description)")
            default: throw .rejected(code: error, description: description)
            }
        case .rateLimited:
            throw .rateLimited(retryAfter: Self.retryAfter(headers, now: now))
        }
    }

    // MARK: - Password sign-in

    package func signIn(realm: Realm, login: String, password: Secret, now: Date) async throws(BrokerError)
        -> SignInResult
    {
        guard let client = client(for: realm) else {
            throw BrokerError(.badRequest, "realm \(realm.name) is not configured")
        }
        var jar: [String: String] = [:]
        let authorize = AuthorizeURL.make(
            base: realm.loginBase, clientID: realm.clientID, scope: Scope.skype.rawValue, redirectURI: realm.redirectURI
        )
        var response = try await get(client, authorize, jar: &jar)
        if (300..<400).contains(response.status) {
            return try await finish(client, realm: realm, response: response, jar: &jar, now: now, hops: 0)
        }
        guard response.status == 200 else { throw Self.unexpected(response.status, at: "the authorize page") }
        let page = LoginPage.parse(String(decoding: response.body, as: UTF8.self))
        guard let ppft = page.ppft else {
            throw BrokerError(.upstreamError, "the authorize page carries no PPFT")
        }
        let post =
            page.urlPost
            ?? AuthorizeURL.fallbackPost(
                base: realm.loginBase, clientID: realm.clientID, scope: Scope.skype.rawValue,
                redirectURI: realm.redirectURI)
        guard realm.mayFollow(post) else {
            throw BrokerError(
                .upstreamError,
                "the login page posts to \(Realm.origin(of: post) ?? "an invalid URL"), which is not one of realm \(realm.name)'s origins"
            )
        }
        var request = HTTPClientRequest(url: post)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: FormEncoding.contentType)
        Self.addCookies(jar, to: &request)
        request.body = .bytes(ByteBuffer(string: LoginForm.body(login: login, password: password, ppft: ppft)))
        response = try await send(client, request, jar: &jar, what: "the sign-in form")
        return try await finish(client, realm: realm, response: response, jar: &jar, now: now, hops: 0)
    }

    /// Reads what the server answered to the password: the desktop redirect, an error text,
    /// a page that wants more, or a redirect to follow.
    private func finish(
        _ client: HTTPClient, realm: Realm, response: Response, jar: inout [String: String], now: Date, hops: Int
    ) async throws(BrokerError) -> SignInResult {
        switch response.status {
        case 301, 302, 303, 307, 308:
            guard let location = response.headers.first(name: "Location") else {
                throw BrokerError(.upstreamError, "a redirect without a Location")
            }
            if Self.isDesktop(location, realm: realm) {
                var result = try Self.redeem(location, cookies: jar, now: now)
                result.cookiesExpireAt = Self.cookieExpiry(response.headers, now: now)
                return result
            }
            if let path = URLComponents(string: location)?.path, path.lowercased().hasSuffix("/abuse") {
                throw BrokerError(
                    .accountLocked, "the account is locked: the server sent the sign-in to its Abuse page",
                    hint: "unlock the account with the provider, then sign in again")
            }
            guard hops < Self.maxHops else { throw BrokerError(.upstreamError, "too many redirects during sign-in") }
            guard realm.mayFollow(location) else {
                throw BrokerError(
                    .interactionRequired,
                    "interactive sign-in required: the server redirected to \(Self.safeURL(location))",
                    hint: "use tokenctl login --browser")
            }
            let next = try await get(client, location, jar: &jar)
            return try await finish(client, realm: realm, response: next, jar: &jar, now: now, hops: hops + 1)
        case 429:
            throw BrokerError(.rateLimited, "the server is rate-limiting sign-ins; try again later")
        case 200:
            let page = LoginPage.parse(String(decoding: response.body, as: UTF8.self))
            if let text = page.errorPlainText ?? page.errorText {
                throw BrokerError(.invalidCredentials, text)
            }
            throw BrokerError(
                .interactionRequired, "interactive sign-in required: the server asked for more than a password",
                hint: "use tokenctl login --browser")
        default:
            throw Self.unexpected(response.status, at: "the sign-in form")
        }
    }

    static func isDesktop(_ location: String, realm: Realm) -> Bool {
        let target = location.split(separator: "#", maxSplits: 1).first.map(String.init) ?? location
        let base = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        return base == realm.redirectURI || URLComponents(string: base)?.path == "/oauth20_desktop.srf"
    }

    /// Tokens are served inside JSON without escaping: only printable ASCII other than `"` and `\`.
    static func isPlainToken(_ token: Secret) -> Bool {
        token.exposed.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }
    }

    /// Tokens from the final desktop redirect's fragment. It is never fetched.
    package static func redeem(_ location: String, cookies: [String: String] = [:], now: Date) throws(BrokerError)
        -> SignInResult
    {
        let parsed: DesktopRedirect
        do {
            parsed = try DesktopRedirect.parse(location)
        } catch {
            throw BrokerError(
                .badRequest, "that is not the final sign-in URL: it must carry the tokens after '#' (\(error.message))")
        }
        switch parsed {
        case .error(let code, let description):
            throw BrokerError(.signInFailed, "sign-in refused: \(code): \(description)")
        case .tokens(let access, let expiresIn, let scopeName, let refreshToken, let userID):
            guard let refreshToken else { throw BrokerError(.signInFailed, "the redirect carries no refresh token") }
            guard isPlainToken(access) else {
                throw BrokerError(.signInFailed, "the redirect carries a token with unexpected characters")
            }
            guard let scope = Scope(rawValue: scopeName) ?? Scope(nameOrAlias: scopeName) else {
                throw BrokerError(.signInFailed, "the redirect is for an unknown scope")
            }
            let token = AccessToken(
                value: access, scope: scope, obtainedAt: now, expiresAt: now.addingTimeInterval(TimeInterval(expiresIn))
            )
            let session = ["MSPAuth", "MSPProf", "WLSSC"].compactMap { name in cookies[name].map { "\(name)=\($0)" } }
            return SignInResult(
                grant: TokenGrant(accessToken: token, refreshToken: refreshToken, userID: userID),
                cookies: session.count == 3 ? Secret(session.joined(separator: "; ")) : nil)
        }
    }

    // MARK: - HTTP

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// One request for a refresh: transport errors become transient failures.
    func call(_ realm: Realm, _ request: HTTPClientRequest, what: String) async throws(RefreshFailure) -> (
        Int, HTTPHeaders, [UInt8]
    ) {
        guard let client = client(for: realm) else {
            throw .rejected(code: "unknown_realm", description: "realm \(realm.name) is not configured")
        }
        do {
            return try await execute(client, request)
        } catch {
            throw .transient("\(what) unreachable: \(Self.describe(error))")
        }
    }

    private func execute(_ client: HTTPClient, _ request: HTTPClientRequest) async throws -> (Int, HTTPHeaders, [UInt8])
    {
        let response = try await client.execute(request, timeout: Self.requestTimeout)
        let buffer = try await response.body.collect(upTo: Self.maxBody)
        return (Int(response.status.code), response.headers, Array(buffer.readableBytesView))
    }

    private func get(_ client: HTTPClient, _ url: String, jar: inout [String: String]) async throws(BrokerError)
        -> Response
    {
        var request = HTTPClientRequest(url: url)
        Self.addCookies(jar, to: &request)
        return try await send(client, request, jar: &jar, what: "the login service")
    }

    private func send(_ client: HTTPClient, _ request: HTTPClientRequest, jar: inout [String: String], what: String)
        async throws(BrokerError) -> Response
    {
        do {
            let (status, headers, body) = try await execute(client, request)
            for header in headers[canonicalForm: "set-cookie"] {
                let pair = header.split(separator: ";", maxSplits: 1).first ?? ""
                if let eq = pair.firstIndex(of: "=") {
                    jar[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
                }
            }
            return Response(status: status, headers: headers, body: body)
        } catch {
            throw BrokerError(.temporarilyUnavailable, "\(what) is unreachable: \(Self.describe(error))")
        }
    }

    private static func addCookies(_ jar: [String: String], to request: inout HTTPClientRequest) {
        guard !jar.isEmpty else { return }
        request.headers.replaceOrAdd(
            name: "Cookie",
            value: jar.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))
    }

    /// When MSPAuth expires, from its Max-Age.
    static func cookieExpiry(_ headers: HTTPHeaders, now: Date) -> Date? {
        for header in headers[canonicalForm: "set-cookie"] where header.hasPrefix("MSPAuth=") {
            for attribute in header.split(separator: ";").dropFirst() {
                let parts = attribute.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].lowercased() == "max-age", let seconds = TimeInterval(parts[1]) {
                    return now.addingTimeInterval(seconds)
                }
            }
        }
        return nil
    }

    static func unexpected(_ status: Int, at place: String) -> BrokerError {
        (500..<600).contains(status)
            ? BrokerError(.temporarilyUnavailable, "\(place) answered HTTP \(status)")
            : BrokerError(.upstreamError, "\(place) answered HTTP \(status)")
    }

    /// A URL for messages: scheme, host and path, never the query or fragment.
    static func safeURL(_ url: String) -> String {
        guard let c = URLComponents(string: url) else { return "an invalid URL" }
        return "\(c.scheme ?? "")://\(c.host ?? "")\(c.port.map { ":\($0)" } ?? "")\(c.path)"
    }

    /// Names the failure without any request or response content.
    static func describe(_ error: any Error) -> String {
        // Its short description has no associated values: a header value (a password) never shows.
        if let error = error as? HTTPClientError { return error.shortDescription }
        if let error = error as? NIOSSLError { return "TLS: \(error)" }
        if error is CancellationError { return "cancelled" }
        return String(describing: type(of: error)) + ": " + String(describing: error).prefix(200)
    }

    static func retryAfter(_ headers: HTTPHeaders, now: Date) -> TimeInterval? {
        guard let value = headers.first(name: "Retry-After")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = TimeInterval(value) { return max(0, seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: value).map { max(0, $0.timeIntervalSince(now)) }
    }
}
