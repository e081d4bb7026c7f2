import BrokerCore
import Foundation
import Testing

/// A service with one account whose credentials expire at different times.
private final class FixedService: CredentialService {
    let configuration = EngineConfiguration(realms: [Realm(name: "live")])
    let degraded: String? = nil
    let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    func now() -> Date { epoch }

    func cachedRead(account: AccountName, kind: CredentialKind, minValid: TimeInterval) -> CachedRead {
        guard account.rawValue == "alice" else { return .notFound }
        let lifetime: TimeInterval = kind == .uic ? 600 : 3600
        return .fresh(
            ServedCredential(
                kind: kind,
                credential: Credential(
                    value: Secret("\(kind.name)-value"), obtainedAt: epoch, expiresAt: epoch + lifetime)))
    }

    func read(account: AccountName, kind: CredentialKind, minValid: TimeInterval) async throws(BrokerError)
        -> ServedCredential
    {
        guard case .fresh(let served) = cachedRead(account: account, kind: kind, minValid: minValid) else {
            throw BrokerError(.notFound, "no account named \(account)")
        }
        return served
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
        case .sso, .passport14, .skyloginUIC:
            throw BrokerError(.credentialUnavailable, "this service has no rst realm")
        }
    }

    func accountNames() -> [AccountName] { [AccountName(rawValue: "alice")!] }
    func status(_ name: AccountName) -> AccountReport? { nil }
    func counts() -> (accounts: Int, needsReauth: Int) { (1, 0) }
    func enroll(_ command: EnrollCommand) async throws(BrokerError) -> AccountReport {
        throw BrokerError(.forbidden, "no")
    }
    func logout(_ name: AccountName) throws(BrokerError) {}
    func rekey(to keyBytes: [UInt8]) throws(BrokerError) -> RekeyReport {
        RekeyReport(keyID: "", resealed: 0, keyFileReplaced: nil)
    }
    func recordRead(_ outcome: ReadOutcome, nanoseconds: UInt64?) {}
    func updateGauges() {}
}

@Suite("The credential service protocol")
struct CredentialServiceTests {
    @Test("an ATH answer carries the credentials its method needs and expires with the first of them")
    func athAnswer() async throws {
        let service = FixedService()
        let alice = try #require(AccountName(rawValue: "alice"))
        let answer = try await service.perform(
            .ath(account: alice, method: .sslCompactTicketUIC, site: ATHPayload.defaultSite, trid: 4, minValid: 0))
        guard case .ath(let payload, let expiresAt) = answer else {
            Issue.record("expected an ATH answer, got \(answer)")
            return
        }
        #expect(
            payload == ATHPayload.render(method: .sslCompactTicketUIC, ticket: "t=ssl-value", uic: "uic-value", trid: 4)
        )
        #expect(expiresAt == service.epoch + 600)
        await #expect(throws: BrokerError.self) {
            _ = try await service.perform(
                .ath(
                    account: AccountName(rawValue: "bob")!, method: .sslCompactTicket, site: "x", trid: nil, minValid: 0
                ))
        }
    }

    @Test("the default event stream finishes at once")
    func noEvents() async {
        var received: [ServiceEvent] = []
        for await event in FixedService().events() { received.append(event) }
        #expect(received.isEmpty)
    }

    @Test("read outcomes keep the metric's label values")
    func readOutcomeLabels() {
        #expect(ReadOutcome.allCases.map(\.rawValue) == ["fresh", "refreshed", "denied", "error"])
    }

    @Test("an error's cause is kept for the code, but neither described nor mirrored beyond its type")
    func causeIsNotDescribed() {
        struct Leaky: Error, CustomStringConvertible {
            var description: String { "SELECT secret FROM secrets WHERE value = 'TOKEN-MATERIAL'" }
        }
        let error = BrokerError(.internalError, "cannot read the store", cause: Leaky())
        #expect(error.cause is Leaky)
        #expect(error.causeTypeName?.hasSuffix("Leaky") == true)
        for text in [
            "\(error)", String(reflecting: error),
            {
                var out = ""
                dump(error, to: &out)
                return out
            }(),
        ] {
            #expect(!text.contains("TOKEN-MATERIAL"), "\(text)")
        }
        #expect(BrokerError(.notFound, "x").cause == nil)
    }
}
