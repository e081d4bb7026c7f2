import AsyncHTTPClient
import BrokerCore
import Foundation
import LiveProtocol
import Locks
import NIOCore
import NIOHTTP1

/// RST.srf (the ssl-compact-ticket of the `rst` ticket method, and every site of an `rst`
/// realm) and Passport 1.4 (the on-demand ticket of MSNP8–14 logins at revival servers).
extension LiveIdentityClient {
    /// An ssl-compact-ticket from RST.srf for chatservice.live.com / MBI_SSL.
    package func rstTicket(realm: Realm, login: String, password: Secret, now: Date) async throws(RefreshFailure)
        -> Credential
    {
        let tokens = try await rstTokens(realm: realm, login: login, password: password, sites: [.chatService])
        guard let token = tokens.first(where: { $0.address.lowercased() == RSTSite.chatService.address }) else {
            throw .transient("RST.srf returned no ticket for chatservice.live.com")
        }
        return Self.credential(token, now: now)
    }

    /// The tickets of every site RST.srf is asked for, by site key (the address lowercased), each with
    /// the BinarySecret of its own answer. A site the server sent nothing for is missing.
    package func rstSites(realm: Realm, login: String, password: Secret, sites: [RSTSite], now: Date)
        async throws(RefreshFailure) -> [String: Credential]
    {
        let tokens = try await rstTokens(realm: realm, login: login, password: password, sites: sites)
        var result: [String: Credential] = [:]
        for site in sites where site.keepsTicket {
            // By `wsa:Address`, never by the Compact<N> number: servers count differently.
            guard let token = tokens.first(where: { $0.address.lowercased() == site.address.lowercased() }) else {
                continue
            }
            result[site.key] = Self.credential(token, now: now)
        }
        return result
    }

    /// The one RST.srf path: a RequestMultipleSecurityTokens for `sites`, following psf:Redirect
    /// only to the realm's origins, at most three times.
    func rstTokens(realm: Realm, login: String, password: Secret, sites: [RSTSite]) async throws(RefreshFailure)
        -> [RSTToken]
    {
        var url = realm.rstEndpoint
        let envelope = RSTRequest.render(username: login, password: password, sites: sites)
        for _ in 0...Self.maxHops {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: RSTRequest.contentType)
            request.body = .bytes(ByteBuffer(string: envelope))
            let (status, headers, body) = try await call(realm, request, what: "RST.srf")
            if status == 429 { throw .rateLimited(retryAfter: Self.retryAfter(headers, now: Date())) }
            let parsed: RSTResponse
            do {
                parsed = try RSTResponse.parse(String(decoding: body, as: UTF8.self))
            } catch {
                if (500..<600).contains(status) { throw .transient("RST.srf answered HTTP \(status)") }
                throw .transient(error.message)
            }
            switch parsed {
            case .tokens(let tokens):
                return tokens
            case .fault(let fault):
                switch fault.kind {
                case .redirect(let target):
                    guard realm.mayFollow(target) else {
                        throw .rejected(
                            code: "rst_redirect", description: "RST.srf redirected outside the realm's origins")
                    }
                    url = target
                case .badCredentials:
                    throw .passwordRefused(
                        by: "RST.srf",
                        reason: "\(fault.faultcode ?? "FailedAuthentication"): "
                            + (fault.internalErrorText ?? fault.faultstring ?? "Authentication Failure"))
                case .profileAccrualRequired:
                    throw .rejected(
                        code: "interaction_required",
                        description:
                            "interactive sign-in required: \(fault.faultstring ?? "profile accrual is required")")
                case .other:
                    throw .rejected(
                        code: "rst_fault",
                        description: "RST.srf fault \(fault.faultcode ?? "?"): \(fault.faultstring ?? "")")
                }
            }
        }
        throw .transient("RST.srf redirected too many times")
    }

    /// A ticket's validity is the server's `Created`..`Expires` span counted from now, so that a
    /// server whose clock is off does not shorten or stretch it; `Expires` alone when there is no
    /// `Created`, and an hour when there is neither.
    static func credential(_ token: RSTToken, now: Date) -> Credential {
        var expires = token.expires ?? now.addingTimeInterval(3600)
        if let created = token.created, let stated = token.expires, stated > created {
            expires = now.addingTimeInterval(stated.timeIntervalSince(created))
        }
        return Credential(value: token.ticket, obtainedAt: now, expiresAt: expires, proofKey: token.binarySecret)
    }

    // MARK: - Passport 1.4

    /// A Passport 1.4 ticket for `challenge` (the string of `USR t TWN S`), with the password.
    /// The nexus is asked for the DALogin once per realm; a 302 from the DALogin is followed
    /// within the realm's origins.
    package func passport14(realm: Realm, login: String, password: Secret, challenge: String, now: Date)
        async throws(RefreshFailure) -> String
    {
        let authorization: Secret
        do {
            authorization = try Passport14.authorization(login: login, password: password, challenge: challenge)
        } catch {
            throw .rejected(code: "bad_challenge", description: error.message)
        }
        var url = try await daLogin(realm, now: now)
        for _ in 0...Self.maxHops {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "Authorization", value: authorization.exposed)
            request.headers.add(name: "User-Agent", value: "MSMSGS")
            let (status, headers, _) = try await call(realm, request, what: "the Passport 1.4 login")
            switch status {
            case 200:
                guard let info = headers.first(name: "Authentication-Info"),
                    let ticket = Passport14.ticket(authenticationInfo: info)
                else {
                    throw .transient("the Passport 1.4 login answered 200 without a ticket (Authentication-Info)")
                }
                return ticket
            case 401:
                let status = headers.first(name: "WWW-Authenticate").flatMap(Passport14.status(wwwAuthenticate:))
                throw .passwordRefused(by: "the Passport 1.4 login", reason: "da-status=\(status ?? "failed")")
            case 300..<400:
                // A relative Location is taken against the URL that answered.
                let location = headers.first(name: "Location").flatMap {
                    URL(string: $0, relativeTo: URL(string: url))
                }?
                .absoluteString
                guard let location, realm.mayFollow(location) else {
                    throw .rejected(
                        code: "passport14_redirect",
                        description: "the Passport 1.4 login redirected outside the realm's origins")
                }
                url = location
            case 429:
                throw .rateLimited(retryAfter: Self.retryAfter(headers, now: now))
            case 500..<600:
                throw .transient("the Passport 1.4 login answered HTTP \(status)")
            default:
                throw .rejected(code: "http_\(status)", description: "the Passport 1.4 login answered HTTP \(status)")
            }
        }
        throw .transient("the Passport 1.4 login redirected too many times")
    }

    /// The realm's DALogin: asked of the nexus once, then cached (a reload that changes the
    /// nexus asks again).
    func daLogin(_ realm: Realm, now: Date) async throws(RefreshFailure) -> String {
        let key = realm.name + " " + realm.nexusEndpoint
        if let cached = daLogins.withLock({ $0[key] }), realm.mayFollow(cached) { return cached }
        let request = HTTPClientRequest(url: realm.nexusEndpoint)
        let (status, headers, _) = try await call(realm, request, what: "the nexus (rdr/pprdr.asp)")
        if status == 429 { throw .rateLimited(retryAfter: Self.retryAfter(headers, now: now)) }
        if (500..<600).contains(status) { throw .transient("the nexus answered HTTP \(status)") }
        guard status == 200, let value = headers.first(name: Passport14.passportURLsHeader),
            let url = Passport14.daLogin(passportURLs: value)
        else {
            throw .rejected(code: "nexus", description: "the nexus answered HTTP \(status) without a DALogin")
        }
        guard realm.mayFollow(url) else {
            throw .rejected(
                code: "nexus",
                description:
                    "the nexus named a DALogin outside the realm's origins (set passport14_url to allow its origin)")
        }
        daLogins.withLock { $0[key] = url }
        return url
    }
}
