import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The control API under `/_livesim/`, served only on the control listener.
///
/// Every route takes and returns JSON. New capabilities get new routes or new optional fields;
/// existing fields keep their meaning.
final class ControlAPI: SimApplication {
    let state: SimState
    let logger: Logger?

    init(state: SimState, logger: Logger?) {
        self.state = state
        self.logger = logger
    }

    func log(_ request: SimRequest, endpoint: String, response: SimResponse?, outcome: String, elapsed: Double) {
        logger?.info(
            "control",
            metadata: [
                "method": "\(request.method.rawValue)", "path": "\(request.path)",
                "status": "\(response.map { String($0.status.code) } ?? "-")",
            ])
    }

    struct APIError: Error {
        var status: HTTPResponseStatus
        var message: String
    }

    func handle(_ request: SimRequest) -> (action: SimAction, endpoint: String) {
        let response: SimResponse
        do {
            response = try route(request)
        } catch let error as APIError {
            response = .json(error.status, encoding: ["error": error.message])
        } catch {
            response = .json(.badRequest, encoding: ["error": "invalid request body: \(error)"])
        }
        return (.respond(response), "control")
    }

    func decode<T: Decodable>(_ type: T.Type, _ request: SimRequest) throws -> T {
        let body = request.body.isEmpty ? Array("{}".utf8) : request.body
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw APIError(status: .badRequest, message: "invalid JSON body: \(error)")
        }
    }

    private func route(_ request: SimRequest) throws -> SimResponse {
        guard request.path.hasPrefix("/_livesim/") else { throw APIError(status: .notFound, message: "not found") }
        let parts = request.path.dropFirst("/_livesim/".count).split(separator: "/").map {
            String($0).removingPercentEncoding ?? String($0)
        }
        switch (request.method, parts.first ?? "", parts.count) {
        case (.GET, "health", 1):
            return .json(.ok, #"{"status":"ok"}"#)
        case (.GET, "settings", 1):
            return .json(.ok, encoding: state.withLock { $0.settings })
        case (.PUT, "settings", 1), (.PATCH, "settings", 1):
            return try updateSettings(decode(SettingsPatch.self, request))
        case (.GET, "accounts", 1):
            return .json(.ok, encoding: accountList())
        case (.POST, "accounts", 1):
            let spec = try decode(AccountSpec.self, request)
            if let name = spec.skypeName {
                guard state.withLock({ $0.addAccount(spec) }) else {
                    throw APIError(status: .conflict, message: "account exists: \(name)")
                }
                return .json(.created, encoding: try skypeAccount(name))
            }
            guard state.withLock({ $0.addAccount(spec) }) else {
                throw APIError(status: .conflict, message: "account exists: \(spec.login)")
            }
            return .json(.created, encoding: try account(spec.login))
        case (.GET, "accounts", 2) where isSkypeAccount(parts[1]):
            return .json(.ok, encoding: try skypeAccount(parts[1]))
        case (.GET, "accounts", 2):
            return .json(.ok, encoding: try account(parts[1]))
        case (.PATCH, "accounts", 2) where isSkypeAccount(parts[1]),
            (.PUT, "accounts", 2) where isSkypeAccount(parts[1]):
            return try updateSkypeAccount(parts[1], decode(AccountPatch.self, request))
        case (.PATCH, "accounts", 2), (.PUT, "accounts", 2):
            return try updateAccount(parts[1], decode(AccountPatch.self, request))
        case (.DELETE, "accounts", 2) where isSkypeAccount(parts[1]):
            state.withLock { _ = $0.skypeAccounts.removeValue(forKey: parts[1].lowercased()) }
            return .json(.ok, encoding: ["deleted": parts[1]])
        case (.POST, "accounts", 3) where parts[2] == "revoke" && isSkypeAccount(parts[1]):
            state.withLock { $0.revokeSkyCredentials(skypeName: parts[1]) }
            return .json(.ok, encoding: ["revoked": "all"])
        case (.DELETE, "accounts", 2):
            let removed = state.withLock { world -> Bool in
                let key = SimWorld.key(parts[1])
                guard world.accounts[key] != nil else { return false }
                _ = world.revoke(login: key, scope: nil)
                world.accounts[key] = nil
                return true
            }
            guard removed else { throw APIError(status: .notFound, message: "no such account") }
            return .json(.ok, encoding: ["deleted": parts[1]])
        case (.POST, "accounts", 3) where parts[2] == "revoke":
            let body = try decode(RevokeRequest.self, request)
            if let scope = body.scope, !SimScopes.all.contains(scope) {
                throw APIError(status: .badRequest, message: "unknown scope")
            }
            guard state.withLock({ $0.revoke(login: parts[1], scope: body.scope) }) else {
                throw APIError(status: .notFound, message: "no such account")
            }
            return .json(.ok, encoding: ["revoked": body.scope ?? "all"])
        case (.POST, "accounts", 3) where parts[2] == "grant":
            return try grant(parts[1], decode(GrantRequest.self, request))
        case (.GET, "faults", 1):
            return .json(.ok, encoding: ["faults": state.withLock { $0.faults }])
        case (.POST, "faults", 1):
            return try addFault(decode(FaultRequest.self, request))
        case (.DELETE, "faults", 1):
            state.withLock { $0.faults.removeAll() }
            return .json(.ok, #"{"cleared":true}"#)
        case (.DELETE, "faults", 2):
            guard let id = Int(parts[1]) else { throw APIError(status: .badRequest, message: "fault ids are numbers") }
            let removed = state.withLock { world -> Bool in
                let before = world.faults.count
                world.faults.removeAll { $0.id == id }
                return world.faults.count != before
            }
            guard removed else { throw APIError(status: .notFound, message: "no such fault") }
            return .json(.ok, #"{"cleared":true}"#)
        case (.GET, "counters", 1):
            return .json(.ok, encoding: state.withLock { $0.counters })
        case (.POST, "validate", 1):
            return validate(try decode(ValidateRequest.self, request))
        case (.GET, "secrets", 1):
            return .json(
                .ok,
                encoding: [
                    "secrets": state.withLock { world in
                        Array(world.credentials.keys) + world.credentials.values.compactMap(\.binarySecret)
                            + world.accounts.values.map(\.spec.password) + world.skySecrets
                    }
                ])
        default:
            throw APIError(
                status: .notFound, message: "no such control route: \(request.method.rawValue) \(request.path)")
        }
    }

    // MARK: - Bodies

    struct SettingsPatch: Decodable {
        var tokenLifetime: Int?
        var lifetimes: [String: Int]?
        var rotation: RotationMode?
        var rotationGrace: Int?
        var pageStyle: PageStyle?
        var rstNumbering: RSTNumbering?
        var passportURLsHeader: PassportURLsHeader?

        enum CodingKeys: String, CodingKey {
            case tokenLifetime = "token_lifetime"
            case lifetimes, rotation
            case rotationGrace = "rotation_grace"
            case pageStyle = "page_style"
            case rstNumbering = "rst_numbering"
            case passportURLsHeader = "pprdr_header"
        }
    }

    struct AccountPatch: Decodable {
        var password: String?
        var twoFactor: Bool?
        var locked: Bool?
        var rateLimited: Bool?
        var lifetimes: [String: Int]?
        var rotation: RotationMode?

        enum CodingKeys: String, CodingKey {
            case password
            case twoFactor = "two_factor"
            case locked
            case rateLimited = "rate_limited"
            case lifetimes, rotation
        }
    }

    struct AccountView: Encodable {
        var login: String
        var userID: String
        var twoFactor: Bool
        var locked: Bool
        var rateLimited: Bool
        var lifetimes: [String: Int]
        var rotation: RotationMode?
        var revokedScopes: [String]

        init(_ account: SimAccount) {
            login = account.spec.login
            userID = account.userID
            twoFactor = account.spec.twoFactor
            locked = account.spec.locked
            rateLimited = account.spec.rateLimited
            lifetimes = Dictionary(uniqueKeysWithValues: account.lifetimes.map { ($0.key.rawValue, $0.value) })
            rotation = account.rotation
            revokedScopes = account.revokedScopes.sorted()
        }

        enum CodingKeys: String, CodingKey {
            case login
            case userID = "user_id"
            case twoFactor = "two_factor"
            case locked
            case rateLimited = "rate_limited"
            case lifetimes, rotation
            case revokedScopes = "revoked_scopes"
        }
    }

    struct RevokeRequest: Decodable { var scope: String? }

    struct GrantRequest: Decodable { var scope: String? }

    struct GrantResponse: Encodable {
        var accessToken: String
        var refreshToken: String
        var expiresIn: Int
        var scope: String
        var userID: String
        var cookies: String

        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token"
            case refreshToken = "refresh_token"
            case expiresIn = "expires_in"
            case scope
            case userID = "user_id"
            case cookies
        }
    }

    struct FaultRequest: Decodable {
        var endpoint: String
        var kind: FaultKind
        var count: Int?
        var durationSeconds: Double?
        var latencyMs: Int?
        var status: Int?
        var retryAfter: Int?
        var soapFault: SOAPFaultKind?
        var code: Int?
        var afterProcessing: Bool?

        enum CodingKeys: String, CodingKey {
            case endpoint, kind, count, code
            case durationSeconds = "duration_seconds"
            case latencyMs = "latency_ms"
            case status
            case retryAfter = "retry_after"
            case soapFault = "soap_fault"
            case afterProcessing = "after_processing"
        }
    }

    struct ValidateRequest: Decodable { var credential: String }

    struct Validation: Encodable {
        var issued: Bool
        var kind: String?
        var account: String?
        var scope: String?
        var valid: Bool
        var reason: String?
        var issuedAt: Date?
        var expiresAt: Date?
        /// SkyLogin credentials: the Skype name they carry.
        var skypeName: String? = nil
        /// Tokens of a grant: its family, and, once the family is revoked, why and when (Unix
        /// seconds, fractional: finer than `issued_at`).
        var family: Int? = nil
        var familyRevoked: String? = nil
        var familyRevokedAt: Double? = nil

        enum CodingKeys: String, CodingKey {
            case issued, kind, account, scope, valid, reason, family
            case familyRevoked = "family_revoked"
            case familyRevokedAt = "family_revoked_at"
            case skypeName = "skype_name"
            case issuedAt = "issued_at"
            case expiresAt = "expires_at"
        }
    }

    // MARK: - Handlers

    private func lifetimes(_ raw: [String: Int]) throws -> [CredentialKind: Int] {
        var out: [CredentialKind: Int] = [:]
        for (name, seconds) in raw {
            guard let kind = CredentialKind(rawValue: name) else {
                throw APIError(
                    status: .badRequest,
                    message: "unknown credential kind \(name); known: \(CredentialKind.allCases.map(\.rawValue))")
            }
            guard seconds > 0 else { throw APIError(status: .badRequest, message: "lifetimes must be positive") }
            out[kind] = seconds
        }
        return out
    }

    private func updateSettings(_ patch: SettingsPatch) throws -> SimResponse {
        let kinds = try lifetimes(patch.lifetimes ?? [:])
        if let lifetime = patch.tokenLifetime, lifetime <= 0 {
            throw APIError(status: .badRequest, message: "token_lifetime must be positive")
        }
        let settings = state.withLock { world -> SimSettings in
            if let v = patch.tokenLifetime { world.settings.tokenLifetime = v }
            for (kind, seconds) in kinds { world.settings.lifetimes[kind.rawValue] = seconds }
            if let v = patch.rotation { world.settings.rotation = v }
            if let v = patch.rotationGrace { world.settings.rotationGrace = v }
            if let v = patch.pageStyle { world.settings.pageStyle = v }
            if let v = patch.rstNumbering { world.settings.rstNumbering = v }
            if let v = patch.passportURLsHeader { world.settings.passportURLsHeader = v }
            return world.settings
        }
        return .json(.ok, encoding: settings)
    }

    private func account(_ login: String) throws -> AccountView {
        guard let account = state.withLock({ $0.accounts[SimWorld.key(login)] }) else {
            throw APIError(status: .notFound, message: "no such account")
        }
        return AccountView(account)
    }

    private func updateAccount(_ login: String, _ patch: AccountPatch) throws -> SimResponse {
        let kinds = try lifetimes(patch.lifetimes ?? [:])
        let found = state.withLock { world -> Bool in
            let key = SimWorld.key(login)
            guard var account = world.accounts[key] else { return false }
            if let v = patch.password { account.spec.password = v }
            if let v = patch.twoFactor { account.spec.twoFactor = v }
            if let v = patch.locked { account.spec.locked = v }
            if let v = patch.rateLimited { account.spec.rateLimited = v }
            for (kind, seconds) in kinds { account.lifetimes[kind] = seconds }
            if let v = patch.rotation { account.rotation = v }
            world.accounts[key] = account
            return true
        }
        guard found else { throw APIError(status: .notFound, message: "no such account") }
        return .json(.ok, encoding: try account(login))
    }

    /// Issues a grant directly, as a completed sign-in would, for tests and for `import`.
    private func grant(_ login: String, _ request: GrantRequest) throws -> SimResponse {
        let scope = request.scope ?? SimScopes.skype
        guard SimScopes.all.contains(scope) else { throw APIError(status: .badRequest, message: "unknown scope") }
        let now = Date()
        let access = TokenFactory.accessToken()
        let refresh = TokenFactory.refreshToken()
        let result = state.withLock { world -> GrantResponse? in
            let key = SimWorld.key(login)
            guard let account = world.accounts[key] else { return nil }
            let family = world.newFamily(login: key)
            let issued = world.issue(.accessToken, value: access, login: key, scope: scope, family: family, now: now)
            _ = world.issue(.refreshToken, value: refresh, login: key, family: family, now: now)
            let cookies = world.newCookies(login: key, now: now).map { "\($0.name)=\($0.value)" }.joined(
                separator: "; ")
            return GrantResponse(
                accessToken: access, refreshToken: refresh,
                expiresIn: Int(issued.expiresAt.timeIntervalSince(now).rounded()),
                scope: scope, userID: account.userID, cookies: cookies)
        }
        guard let result else { throw APIError(status: .notFound, message: "no such account") }
        return .json(.created, encoding: result)
    }

    private func addFault(_ request: FaultRequest) throws -> SimResponse {
        guard request.endpoint == "*" || SimEndpoint(rawValue: request.endpoint) != nil else {
            throw APIError(
                status: .badRequest,
                message:
                    "unknown endpoint \(request.endpoint); known: * \(SimEndpoint.allCases.map(\.rawValue).joined(separator: " "))"
            )
        }
        guard request.count != nil || request.durationSeconds != nil else {
            throw APIError(status: .badRequest, message: "a fault needs count or duration_seconds")
        }
        if request.kind == .status, !(100...599).contains(request.status ?? 0) {
            throw APIError(status: .badRequest, message: "kind status needs status 100-599")
        }
        try checkSkyLoginFault(request)
        let now = Date()
        let rule = state.withLock { world -> FaultRule in
            let rule = FaultRule(
                id: world.newID(), endpoint: request.endpoint, kind: request.kind, count: request.count,
                durationSeconds: request.durationSeconds, latencyMs: request.latencyMs, status: request.status,
                retryAfter: request.retryAfter, soapFault: request.soapFault, code: request.code,
                afterProcessing: request.afterProcessing,
                until: request.durationSeconds.map { now.addingTimeInterval($0) }, applied: 0)
            world.faults.append(rule)
            return rule
        }
        return .json(.created, encoding: rule)
    }

    private func validate(_ request: ValidateRequest) -> SimResponse {
        var value = request.credential
        if value.hasPrefix("t=") { value.removeFirst(2) }
        if value.hasSuffix("&p=") { value.removeLast(3) }
        let now = Date()
        let result = state.withLock { world -> Validation in
            guard let issued = world.credentials[value] ?? world.credentials[request.credential] else {
                if let sky = world.skyIssued(matching: request.credential) { return Self.validation(sky, world, now) }
                return Validation(issued: false, valid: false, reason: "not issued by livesim")
            }
            let reason = world.invalidReason(issued, now: now)
            let family = issued.family.flatMap { world.families[$0] }
            return Validation(
                issued: true, kind: issued.kind.rawValue, account: issued.login, scope: issued.scope,
                valid: reason == nil,
                reason: reason, issuedAt: issued.issuedAt, expiresAt: issued.expiresAt, family: issued.family,
                familyRevoked: family?.revoked, familyRevokedAt: family?.revokedAt?.timeIntervalSince1970)
        }
        return .json(.ok, encoding: result)
    }
}
