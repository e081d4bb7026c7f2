import AsyncHTTPClient
import BrokerCore
import Foundation
import LiveProtocol
import NIOCore
import NIOHTTP1

/// The credentials built on top of the OAuth tokens and the session cookies.
extension LiveIdentityClient {
    /// A skypetoken for a skype.com access token, sending the parameters both as headers (the
    /// seed) and as a form body (what worked in practice).
    package func skypetoken(realm: Realm, accessToken: Secret, now: Date) async throws(RefreshFailure) -> Credential {
        let parameters = SkypeTokenRequest(accessToken: accessToken)
        var request = HTTPClientRequest(url: realm.skypetokenEndpoint)
        request.method = .POST
        for header in parameters.headers { request.headers.add(name: header.name, value: header.value) }
        request.headers.add(name: "Content-Type", value: SkypeTokenRequest.contentType)
        request.body = .bytes(ByteBuffer(string: parameters.formBody))
        let (status, headers, body) = try await call(realm, request, what: "rps/skypetoken")
        if status == 429 { throw .rateLimited(retryAfter: Self.retryAfter(headers, now: now)) }
        let parsed: SkypeTokenResponse
        do { parsed = try SkypeTokenResponse.parse(status: status, body: body) } catch {
            throw .transient(error.message)
        }
        switch parsed {
        case .success(let token, let expiresIn):
            return Credential(value: token, obtainedAt: now, expiresAt: now.addingTimeInterval(TimeInterval(expiresIn)))
        case .failure(let code, let text):
            throw .rejected(code: "skypetoken_\(code)", description: text)
        }
    }

    /// The UIC from User/Initialization with the session cookies.
    package func userInitialization(realm: Realm, cookies: Secret, now: Date) async throws(RefreshFailure) -> Credential
    {
        var request = HTTPClientRequest(url: realm.userInitializationEndpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: UserInitialization.contentType)
        request.headers.add(name: "Cookie", value: cookies.exposed)
        request.body = .bytes(ByteBuffer(string: UserInitialization.requestBody))
        let (status, headers, body) = try await call(realm, request, what: "User/Initialization")
        if status == 429 { throw .rateLimited(retryAfter: Self.retryAfter(headers, now: now)) }
        if status == 401 || status == 403 {
            throw .rejected(code: "cookies_refused", description: "User/Initialization refused the session cookies")
        }
        if (500..<600).contains(status) { throw .transient("User/Initialization answered HTTP \(status)") }
        guard status == 200 else {
            throw .rejected(code: "http_\(status)", description: "User/Initialization answered HTTP \(status)")
        }
        let parsed: UserInitialization
        do { parsed = try UserInitialization.parse(body) } catch { throw .transient(error.message) }
        // The refresh machine refreshes it at its refresh point of St..Se, or by this deadline when earlier.
        let refreshBy = parsed.registrationTTLRefreshSeconds.map { now.addingTimeInterval(TimeInterval($0)) }
        return Credential(
            value: parsed.uic, obtainedAt: now, expiresAt: parsed.expiresAt, refreshBy: refreshBy,
            issuedAt: parsed.issuedAt)
    }

    /// A silent sign-in with the session cookies: the authorize URL answers straight with the
    /// desktop redirect, fresh tokens (a new grant family) and fresh cookies.
    package func silentSignIn(realm: Realm, cookies: Secret, now: Date) async throws(RefreshFailure) -> SignInResult {
        let url = AuthorizeURL.make(
            base: realm.loginBase, clientID: realm.clientID, scope: Scope.skype.rawValue, redirectURI: realm.redirectURI
        )
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Cookie", value: cookies.exposed)
        let (status, headers, _) = try await call(realm, request, what: "the authorize page")
        if status == 429 { throw .rateLimited(retryAfter: Self.retryAfter(headers, now: now)) }
        if (500..<600).contains(status) { throw .transient("the authorize page answered HTTP \(status)") }
        guard (300..<400).contains(status), let location = headers.first(name: "Location"),
            Self.isDesktop(location, realm: realm)
        else {
            throw .rejected(code: "cookies_refused", description: "the session cookies no longer sign in silently")
        }
        var jar = Self.cookieJar(cookies.exposed)
        for header in headers[canonicalForm: "set-cookie"] {
            let pair = header.split(separator: ";", maxSplits: 1).first ?? ""
            if let eq = pair.firstIndex(of: "=") { jar[String(pair[..<eq])] = String(pair[pair.index(after: eq)...]) }
        }
        do {
            var result = try Self.redeem(location, cookies: jar, now: now)
            result.cookiesExpireAt = Self.cookieExpiry(headers, now: now)
            return result
        } catch {
            throw .rejected(code: "silent_sign_in", description: error.message)
        }
    }

    /// A password sign-in for the cookies, for accounts that stored their password.
    package func passwordSignIn(realm: Realm, login: String, password: Secret, now: Date) async throws(RefreshFailure)
        -> SignInResult
    {
        do {
            return try await signIn(realm: realm, login: login, password: password, now: now)
        } catch {
            switch error.code {
            case .temporarilyUnavailable: throw .transient(error.message)
            case .rateLimited: throw .rateLimited(retryAfter: nil)
            default: throw .rejected(code: error.code.rawValue, description: error.message)
            }
        }
    }

    static func cookieJar(_ header: String) -> [String: String] {
        var jar: [String: String] = [:]
        for pair in header.split(separator: ";") {
            let trimmed = pair.trimmingCharacters(in: .whitespaces)
            if let eq = trimmed.firstIndex(of: "=") {
                jar[String(trimmed[..<eq])] = String(trimmed[trimmed.index(after: eq)...])
            }
        }
        return jar
    }
}
