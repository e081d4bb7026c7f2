import BrokerAPI
import BrokerCore
import BrokerEngine
import Foundation
import LiveProtocol
import Logging
import NIOConcurrencyHelpers
import NIOHTTP1

/// A parsed request as the router sees it.
struct APIRequest {
    var method: HTTPMethod
    var segments: [String]
    var query: [String: String]
    var body: [UInt8]
}

/// What the router decided: answer now from memory, or run something asynchronous.
enum Routed {
    case now(APIResponse)
    case later(@Sendable () async -> APIResponse)
}

/// Maps requests to the engine, checks the peer against the access policy, and maps errors to
/// the API's codes.
final class Router: Sendable {
    let engine: BrokerEngine
    private let policyBox: NIOLockedValueBox<AccessPolicy>
    let logger: Logger

    init(engine: BrokerEngine, policy: AccessPolicy, logger: Logger) {
        self.engine = engine
        self.policyBox = NIOLockedValueBox(policy)
        self.logger = logger
    }

    var policy: AccessPolicy {
        get { policyBox.withLockedValue { $0 } }
        set { policyBox.withLockedValue { $0 = newValue } }
    }

    static func parse(method: HTTPMethod, uri: String, body: [UInt8]) -> APIRequest {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let segments = parts[0].split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        var query: [String: String] = [:]
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                query[String(kv[0]).removingPercentEncoding ?? String(kv[0])] =
                    kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
            }
        }
        return APIRequest(method: method, segments: segments, query: query, body: body)
    }

    func route(_ request: APIRequest, peer: Peer) -> Routed {
        let s = request.segments
        guard s.first == "v1" else { return .now(.error(BrokerError(.notFound, "no such endpoint"))) }
        switch (request.method, s.count, s.count > 1 ? s[1] : "") {
        case (.GET, 2, "health"):
            let (accounts, needsReauth) = engine.counts()
            return .now(.json(HealthResponse(version: BrokerDefaults.version, accounts: accounts, needsReauth: needsReauth)))
        case (.GET, 2, "realms"):
            let realms = engine.configuration.realms
            return .now(.json(RealmsResponse(realms: realms.map { realm in
                RealmInfo(
                    name: realm.name,
                    authorizeURL: AuthorizeURL.make(base: realm.loginBase, clientID: realm.clientID, scope: Scope.skype.rawValue, redirectURI: realm.redirectURI),
                    isDefault: realms.count == 1)
            })))
        case (.GET, 2, "accounts"):
            let policy = self.policy
            let visible = engine.accountNames().filter { policy.mayRead(peer, account: $0) }
            return .now(.json(AccountsResponse(accounts: visible.compactMap { engine.status($0)?.detail.summary })))
        case (.POST, 2, "accounts"):
            guard policy.isAdmin(peer) else { return .now(deny(peer, "enroll")) }
            return enroll(request)
        case (_, 4, "accounts") where s[3] != "token":
            return .now(.error(BrokerError(.notFound, "no such endpoint")))
        case (.GET, 3, "accounts"), (.DELETE, 3, "accounts"), (.GET, 4, "accounts"):
            guard let name = AccountName(rawValue: s[2]) else {
                return .now(.error(BrokerError(.notFound, "no account named \(s[2].prefix(64))")))
            }
            switch (request.method, s.count) {
            case (.GET, 3):
                guard policy.mayRead(peer, account: name) else { return .now(deny(peer, "read", account: name)) }
                guard let report = engine.status(name) else { return .now(.error(BrokerError(.notFound, "no account named \(name)"))) }
                return .now(.json(report.detail))
            case (.DELETE, 3):
                guard policy.isAdmin(peer) else { return .now(deny(peer, "logout", account: name)) }
                do {
                    try engine.logout(name)
                    return .now(.json(DeleteResponse(deleted: name.rawValue)))
                } catch {
                    return .now(.error(error))
                }
            default:
                return token(request, account: name, peer: peer)
            }
        case (_, 2, "health"), (_, 2, "realms"), (_, 2, "accounts"), (_, 3, "accounts"), (_, 4, "accounts"):
            return .now(.error(BrokerError(.methodNotAllowed, "\(request.method.rawValue) is not allowed here")))
        default:
            return .now(.error(BrokerError(.notFound, "no such endpoint")))
        }
    }

    static func brokerError(_ error: any Error) -> BrokerError {
        error as? BrokerError ?? BrokerError(.internalError, "internal error: \(type(of: error))")
    }

    private func deny(_ peer: Peer, _ action: String, account: AccountName? = nil) -> APIResponse {
        var metadata: Logger.Metadata = [
            "broker.event": "denied", "broker.action": "\(action)", "broker.peer.uid": "\(peer.uid)",
            "broker.peer.pid": "\(peer.pid)", "broker.peer.comm": "\(peer.command ?? "?")",
        ]
        if let account { metadata["broker.account"] = "\(account)" }
        logger.warning("request denied", metadata: metadata)
        return .error(BrokerError(.forbidden, "uid \(peer.uid) may not \(action)" + (account.map { " account \($0)" } ?? "")))
    }

    private func token(_ request: APIRequest, account: AccountName, peer: Peer) -> Routed {
        guard policy.mayRead(peer, account: account) else { return .now(deny(peer, "read", account: account)) }
        guard let scopeName = request.query["scope"], !scopeName.isEmpty else {
            return .now(.error(BrokerError(.badRequest, "the scope parameter is required (skype, ssl, login-skype, contacts, hotmail)")))
        }
        guard let scope = Scope(nameOrAlias: scopeName), engine.configuration.scopes.contains(scope) else {
            return .now(.error(BrokerError(.unknownScope, "unknown scope \(scopeName.prefix(80))", hint: "use skype, ssl, login-skype, contacts or hotmail")))
        }
        var minValid: TimeInterval = 0
        if let raw = request.query["min_valid"] {
            guard let value = Int(raw), value >= 0, value <= 366 * 86_400 else {
                return .now(.error(BrokerError(.badRequest, "min_valid must be a whole number of seconds, 0 or more")))
            }
            minValid = TimeInterval(value)
        }
        switch engine.cachedRead(account: account, scope: scope, minValid: minValid) {
        case .fresh(let served):
            logger.debug("token served", metadata: [
                "broker.account": "\(account)", "broker.scope": "\(scope.alias)", "broker.event": "served", "broker.peer.uid": "\(peer.uid)",
            ])
            return .now(.token(served, now: engine.now()))
        case .notFound:
            return .now(.error(BrokerError(.notFound, "no account named \(account)", hint: "tokenctl accounts lists them")))
        case .needsReauth, .stale:
            let engine = self.engine
            let minValid = minValid
            return .later {
                do {
                    return .token(try await engine.token(account: account, scope: scope, minValid: minValid), now: engine.now())
                } catch {
                    return .error(Router.brokerError(error))
                }
            }
        }
    }

    private func enroll(_ request: APIRequest) -> Routed {
        let body: EnrollRequest
        do {
            body = try BrokerJSON.decode(EnrollRequest.self, from: request.body)
        } catch {
            return .now(.error(BrokerError(.badRequest, "invalid enrollment request: \(BrokerJSON.describe(decodingError: error))")))
        }
        var name: AccountName?
        if let raw = body.name {
            guard let valid = AccountName(rawValue: raw) else {
                return .now(.error(BrokerError(.badRequest, "names are 1-128 letters, digits and @._+-")))
            }
            name = valid
        }
        let credential: EnrollCredential
        switch body.method {
        case .password:
            guard let password = body.password, !password.isEmpty else { return .now(.error(BrokerError(.badRequest, "password is required"))) }
            credential = .password(Secret(password), store: body.storePassword ?? false)
        case .redirectURL:
            guard let url = body.redirectURL else { return .now(.error(BrokerError(.badRequest, "redirect_url is required"))) }
            credential = .redirectURL(url)
        case .refreshToken:
            guard let token = body.refreshToken, !token.isEmpty else { return .now(.error(BrokerError(.badRequest, "refresh_token is required"))) }
            credential = .refreshToken(Secret(token))
        }
        let command = EnrollCommand(login: body.login, name: name, realm: body.realm, credential: credential, cookies: body.cookies.map(Secret.init))
        let engine = self.engine
        return .later {
            do {
                return .json(try await engine.enroll(command).detail, status: .created)
            } catch {
                return .error(Router.brokerError(error))
            }
        }
    }
}
