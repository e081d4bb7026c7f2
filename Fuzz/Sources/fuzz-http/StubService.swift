// The credential service the fuzzed router talks to, for the fuzz build only: fixed accounts
// instead of the real engine, which would bring the store (SQLite, swift-crypto) and the HTTPS
// client (AsyncHTTPClient, swift-nio-ssl, BoringSSL) and add nothing to what is fuzzed: the
// request parser, the router and the access checks.

import BrokerCore
import Foundation

/// Fixed accounts: `alice` and `bob` are fresh (bob's values are the secret a reader of alice
/// must never see), `carol` needs a new sign-in, `dave` lacks the credential asked for, `erin`
/// is stale (answered later, through the asynchronous path). Credentials asked with
/// `min_valid` of an hour or more are stale too.
final class StubService: CredentialService {
    static let accounts = ["alice", "bob", "carol", "dave", "erin"]
    /// The marker of values that belong to `bob`.
    static let bobSecret = "SECRET-bob-"

    let configuration = EngineConfiguration(realms: [Realm(name: "live")])
    let degraded: String? = nil
    private let epoch = Date(timeIntervalSince1970: 1_800_000_000)
    /// How long a stale read takes (a refresh); the loop fuzzer sets it, so that answers come
    /// back through the event loop's mailbox while other connections are being read.
    private let refreshDelay: Duration

    init(refreshDelay: Duration = .zero) { self.refreshDelay = refreshDelay }

    func now() -> Date { epoch }

    /// The accounts never change, and neither does the clock: one generation for good. Answers
    /// kept by the server's repeated reads are sent again, as they would be between changes.
    func cacheMark() -> CacheMark? { CacheMark(generation: 1, safetyMargin: 60) }
    func cacheGeneration() -> UInt64? { 1 }

    func cachedRead(account: AccountName, kind: CredentialKind, minValid: TimeInterval) -> CachedRead {
        switch account.rawValue {
        case "alice", "bob": minValid >= 3600 ? .stale : .fresh(served(account, kind))
        case "carol": .needsReauth("the grant was revoked")
        case "dave": .unavailable
        case "erin": .stale
        default: .notFound
        }
    }

    func read(account: AccountName, kind: CredentialKind, minValid: TimeInterval) async throws(BrokerError)
        -> ServedCredential
    {
        switch cachedRead(account: account, kind: kind, minValid: 0) {
        case .fresh(let served): return served
        case .stale:
            if refreshDelay > .zero { try? await Task.sleep(for: refreshDelay) }
            return served(account, kind)
        case .notFound: throw BrokerError(.notFound, "no account named \(account)")
        case .needsReauth(let reason): throw BrokerError(.needsReauth, reason)
        case .unavailable: throw BrokerError(.credentialUnavailable, "no stored password for \(kind.name)")
        }
    }

    func ticket(account: AccountName, minValid: TimeInterval) async throws(BrokerError) -> (
        ticket: String, method: TicketMethod, served: ServedCredential
    ) {
        let served = try await read(account: account, kind: .scope(.ssl), minValid: minValid)
        return ("t=" + served.credential.value.exposed, .oauth, served)
    }

    func perform(_ request: ServiceRequest) async throws(BrokerError) -> ServiceAnswer {
        switch request {
        case .challenge(let nonce, let productID, let productKey):
            return .challenge(response: Challenge.answer(nonce: nonce, productID: productID, productKey: productKey))
        case .ath(let account, let method, let site, let trid, let minValid, _):
            return try await athAnswer(account: account, method: method, site: site, trid: trid, minValid: minValid)
        case .sso(let account, _, let policy, let trid, let guid, let minValid):
            let served = try await read(account: account, kind: .site("messengerclear.live.com"), minValid: minValid)
            let ticket = served.credential.value.exposed
            return .sso(
                SSOAnswer(
                    ticket: ticket, proof: "cHJvb2Y=", policy: policy,
                    usr: SSOAnswer.usrLine(trid: trid, ticket: ticket, proof: "cHJvb2Y=", guid: guid),
                    expiresAt: served.credential.expiresAt))
        case .skyloginUIC(let account, let nonce, let minValid):
            let served = try await read(account: account, kind: .skylogin, minValid: minValid)
            return .skyloginUIC(
                uic: nonce == nil ? served.credential.value.exposed : "c2lnbmVk", skypeName: "live:stub",
                expiresAt: served.credential.expiresAt)
        case .passport14(let account, _):
            _ = try await read(account: account, kind: .site("messengerclear.live.com"), minValid: 0)
            return .passport14(ticket: "t=stub&p=")
        }
    }

    func accountNames() -> [AccountName] { Self.accounts.compactMap(AccountName.init(rawValue:)) }

    func status(_ name: AccountName) -> AccountReport? {
        guard Self.accounts.contains(name.rawValue) else { return nil }
        let reauth = name.rawValue == "carol"
        return AccountReport(
            name: name, realm: "live", login: name.rawValue + "@example.com", state: reauth ? .needsReauth : .active,
            stateReason: reauth ? "the grant was revoked" : nil, ticketMethod: .oauth,
            credentials: configuration.scopes.map { scope in
                CredentialReport(
                    kind: .scope(scope), expiresAt: epoch + 3600, lastRefresh: epoch - 60, nextRefresh: epoch + 3000,
                    backoffUntil: nil,
                    failures: reauth ? 3 : 0, lastError: reauth ? BrokerError(.needsReauth, "revoked") : nil)
            })
    }

    func counts() -> (accounts: Int, needsReauth: Int) { (Self.accounts.count, 1) }

    func enroll(_ command: EnrollCommand) async throws(BrokerError) -> AccountReport {
        guard let name = command.name ?? AccountName(rawValue: command.login) else {
            throw BrokerError(.badRequest, "the login is not a valid account name; choose one with name")
        }
        if Self.accounts.contains(name.rawValue) {
            throw BrokerError(.conflict, "\(name) is enrolled under another login")
        }
        if case .password(let password, _) = command.credential, password.exposed != "correct horse" {
            throw BrokerError(.invalidCredentials, "wrong password")
        }
        return AccountReport(
            name: name, realm: command.realm ?? "live", login: command.login, state: .active, stateReason: nil,
            ticketMethod: command.ticketMethod, credentials: [])
    }

    func logout(_ name: AccountName) throws(BrokerError) {
        guard Self.accounts.contains(name.rawValue) else { throw BrokerError(.notFound, "no account named \(name)") }
    }

    func rekey(to keyBytes: [UInt8]) throws(BrokerError) -> RekeyReport {
        guard keyBytes.count == 32 else {
            throw BrokerError(.badRequest, "a key is exactly 32 bytes (64 hex characters)")
        }
        return RekeyReport(keyID: "00112233aabbccdd", resealed: 12, keyFileReplaced: "/var/lib/tokenbroker/key")
    }

    func recordRead(_ outcome: ReadOutcome, nanoseconds: UInt64?) {}
    func updateGauges() {}

    private func served(_ account: AccountName, _ kind: CredentialKind) -> ServedCredential {
        let value = "SECRET-\(account.rawValue)-\(kind.name)"
        return ServedCredential(
            kind: kind, credential: Credential(value: Secret(value), obtainedAt: epoch - 60, expiresAt: epoch + 3600))
    }
}
