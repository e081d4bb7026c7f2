// A stand-in for the real BrokerEngine module, for the fuzz build only.
//
// The router (Sources/BrokerServer/Router.swift) calls the engine through the API below. The
// real engine links the store (SQLite, swift-crypto) and the HTTPS client (AsyncHTTPClient,
// swift-nio-ssl, BoringSSL), which would triple the fuzz build and add nothing to what is fuzzed:
// the request parser, the router and the access checks. So the fuzz build compiles the real
// BrokerServer sources against this module of the same name, which answers from fixed data.
//
// The types mirror Sources/BrokerEngine/Engine.swift. When the router starts using something
// new from the engine, the fuzz build fails to compile: add it here (scripts/fuzz.sh builds it).

import BrokerCore
import Foundation

public struct EngineConfiguration: Sendable {
    public var realms: [Realm]
    public var scopes: [Scope]
    public var policy: RefreshPolicy

    public init(realms: [Realm], scopes: [Scope] = Scope.allCases, policy: RefreshPolicy = RefreshPolicy()) {
        self.realms = realms
        self.scopes = scopes
        self.policy = policy
    }
}

public struct ServedCredential: Sendable {
    public var kind: CredentialKind
    public var credential: Credential
    public var expiresAtText: String

    public var token: AccessToken {
        if case .scope(let scope) = kind { return credential.accessToken(scope: scope) }
        return credential.accessToken(scope: .skype)
    }
}

public enum CachedRead: Sendable {
    case fresh(ServedCredential)
    case stale
    case notFound
    case needsReauth(String)
    case unavailable(BrokerError)
}

public enum EnrollCredential: Sendable {
    case password(Secret, store: Bool)
    case redirectURL(String)
    case refreshToken(Secret)
}

public struct EnrollCommand: Sendable {
    public var login: String
    public var name: AccountName?
    public var realm: String?
    public var credential: EnrollCredential
    public var cookies: Secret?
    public var ticketMethod: TicketMethod

    public init(
        login: String, name: AccountName?, realm: String?, credential: EnrollCredential, cookies: Secret?,
        ticketMethod: TicketMethod = .oauth
    ) {
        self.login = login
        self.name = name
        self.realm = realm
        self.credential = credential
        self.cookies = cookies
        self.ticketMethod = ticketMethod
    }
}

public struct CredentialReport: Sendable {
    public var kind: CredentialKind
    public var expiresAt: Date?
    public var lastRefresh: Date?
    public var nextRefresh: Date?
    public var backoffUntil: Date?
    public var failures: Int
    public var lastError: BrokerError?
}

public struct AccountReport: Sendable {
    public var name: AccountName
    public var realm: String
    public var login: String
    public var state: AccountState
    public var stateReason: String?
    public var ticketMethod: TicketMethod
    public var credentials: [CredentialReport]
}

/// Mirrors BrokerStore's `CredentialStore.RekeyResult`, which the engine returns.
public enum CredentialStore {
    public struct RekeyResult: Sendable {
        public var keyID: String
        public var resealed: Int
        public var keyFileReplaced: String?
    }
}

/// Fixed accounts: `alice` and `bob` are fresh (bob's values are the secret a reader of alice
/// must never see), `carol` needs a new sign-in, `dave` lacks the credential asked for, `erin`
/// is stale (answered later, through the asynchronous path). Credentials asked with
/// `min_valid` of an hour or more are stale too.
public final class BrokerEngine: Sendable {
    public func recordRead(_ result: String, nanoseconds: UInt64? = nil) {}
    public func updateGauges() {}

    public static let accounts = ["alice", "bob", "carol", "dave", "erin"]
    /// The marker of values that belong to `bob`.
    public static let bobSecret = "SECRET-bob-"

    public let configuration = EngineConfiguration(realms: [Realm(name: "live")])
    private let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    public init() {}

    public func now() -> Date { epoch }

    public func counts() -> (accounts: Int, needsReauth: Int) { (Self.accounts.count, 1) }

    /// Why store writes fail, while they do.
    public var degraded: String? { nil }

    public func accountNames() -> [AccountName] { Self.accounts.compactMap(AccountName.init(rawValue:)) }

    public func status(_ name: AccountName) -> AccountReport? {
        guard Self.accounts.contains(name.rawValue) else { return nil }
        let reauth = name.rawValue == "carol"
        return AccountReport(
            name: name, realm: "live", login: name.rawValue + "@example.com", state: reauth ? .needsReauth : .active,
            stateReason: reauth ? "the grant was revoked" : nil, ticketMethod: .oauth,
            credentials: configuration.scopes.map { scope in
                CredentialReport(
                    kind: .scope(scope), expiresAt: epoch + 3600, lastRefresh: epoch - 60, nextRefresh: epoch + 3000, backoffUntil: nil,
                    failures: reauth ? 3 : 0, lastError: reauth ? BrokerError(.needsReauth, "revoked") : nil)
            })
    }

    public func logout(_ name: AccountName) throws(BrokerError) {
        guard Self.accounts.contains(name.rawValue) else { throw BrokerError(.notFound, "no account named \(name)") }
    }

    public func enroll(_ command: EnrollCommand) async throws(BrokerError) -> AccountReport {
        guard let name = command.name ?? AccountName(rawValue: command.login) else {
            throw BrokerError(.badRequest, "the login is not a valid account name; choose one with name")
        }
        if Self.accounts.contains(name.rawValue) { throw BrokerError(.conflict, "\(name) is enrolled under another login") }
        if case .password(let password, _) = command.credential, password.exposed != "correct horse" {
            throw BrokerError(.invalidCredentials, "wrong password")
        }
        return AccountReport(
            name: name, realm: command.realm ?? "live", login: command.login, state: .active, stateReason: nil,
            ticketMethod: command.ticketMethod, credentials: [])
    }

    public func rekey(keyBytes: [UInt8]) throws(BrokerError) -> CredentialStore.RekeyResult {
        guard keyBytes.count == 32 else { throw BrokerError(.badRequest, "a key is exactly 32 bytes (64 hex characters)") }
        return CredentialStore.RekeyResult(keyID: "00112233aabbccdd", resealed: 12, keyFileReplaced: "/var/lib/tokenbroker/key")
    }

    public func cachedRead(account: AccountName, kind: CredentialKind, minValid: TimeInterval) -> CachedRead {
        switch account.rawValue {
        case "alice", "bob": minValid >= 3600 ? .stale : .fresh(served(account, kind))
        case "carol": .needsReauth("the grant was revoked")
        case "dave": .unavailable(BrokerError(.credentialUnavailable, "no stored password for \(kind.name)"))
        case "erin": .stale
        default: .notFound
        }
    }

    public func read(account: AccountName, kind: CredentialKind, minValid: TimeInterval = 0) async throws(BrokerError) -> ServedCredential {
        switch cachedRead(account: account, kind: kind, minValid: 0) {
        case .fresh(let served): return served
        case .stale: return served(account, kind)
        case .notFound: throw BrokerError(.notFound, "no account named \(account)")
        case .needsReauth(let reason): throw BrokerError(.needsReauth, reason)
        case .unavailable(let error): throw error
        }
    }

    public func ticket(account: AccountName, minValid: TimeInterval = 0) async throws(BrokerError) -> (ticket: String, method: TicketMethod, served: ServedCredential) {
        let served = try await read(account: account, kind: .scope(.ssl), minValid: minValid)
        return ("t=" + served.credential.value.exposed, .oauth, served)
    }

    private func served(_ account: AccountName, _ kind: CredentialKind) -> ServedCredential {
        let value = "SECRET-\(account.rawValue)-\(kind.name)"
        return ServedCredential(
            kind: kind, credential: Credential(value: Secret(value), obtainedAt: epoch - 60, expiresAt: epoch + 3600),
            expiresAtText: "2027-01-15T08:00:00Z")
    }
}
