import BrokerCore
import BrokerStore
import Foundation
import LiveProtocol
import Locks

/// The engine serves the socket through `CredentialService`. Most requirements are the engine's
/// own methods; the rest adapt them here.
extension BrokerEngine: CredentialService {
    package func perform(_ request: ServiceRequest) async throws(BrokerError) -> ServiceAnswer {
        if let account = request.account { try ensureLoaded(account) }
        switch request {
        case .challenge(let nonce, let productID, let productKey):
            return .challenge(response: Challenge.answer(nonce: nonce, productID: productID, productKey: productKey))
        case .ath(let account, .skypeUIC, _, let trid, let minValid, let nonce):
            guard let nonce else {
                throw BrokerError(.badRequest, "nonce required: the CNT nonce to sign the UIC over")
            }
            let (uic, served) = try await signedUIC(account: account, nonce: nonce, minValid: minValid)
            let payload = ATHPayload.render(
                method: .skypeUIC, uic: uic, trid: trid, id: served.credential.subject ?? status(account)?.login)
            return .ath(payload, expiresAt: served.credential.expiresAt)
        case .skyloginUIC(let account, let nonce, let minValid):
            if let nonce {
                let (uic, served) = try await signedUIC(account: account, nonce: nonce, minValid: minValid)
                return .skyloginUIC(
                    uic: uic, skypeName: served.credential.subject ?? "", expiresAt: served.credential.expiresAt)
            }
            let served = try await skyloginCredentials(account: account, minValid: minValid)
            return .skyloginUIC(
                uic: served.credential.value.exposed, skypeName: served.credential.subject ?? "",
                expiresAt: served.credential.expiresAt)
        case .ath(let account, let method, let site, let trid, let minValid, _):
            if let realm = locked.withLock({
                $0.machine.accounts[account]?.rstSites != nil ? $0.machine.accounts[account]?.realm : nil
            }) {
                throw BrokerError(
                    .credentialUnavailable,
                    "ATH payloads are MSNP24's, and realm \(realm) signs in with rst (RST.srf): use sso or passport14")
            }
            return try await athAnswer(account: account, method: method, site: site, trid: trid, minValid: minValid)
        case .sso(let account, let nonce, let policy, let trid, let guid, let minValid):
            return .sso(
                try await sso(
                    account: account, nonce: nonce, policy: policy, trid: trid, guid: guid, minValid: minValid))
        case .passport14(let account, let challenge):
            return .passport14(ticket: try await passport14(account: account, challenge: challenge))
        }
    }

    /// The account events (`ServiceEvent.account`) from now on, as the machine makes them, for
    /// as long as the caller listens.
    package func events() -> AsyncStream<ServiceEvent> { hub.subscribe() }

    package var accountsLoaded: Bool { loadComplete }

    package func rekey(to keyBytes: [UInt8]) throws(BrokerError) -> RekeyReport {
        let result: CredentialStore.RekeyResult = try rekey(keyBytes: keyBytes)
        return RekeyReport(keyID: result.keyID, resealed: result.resealed, keyFileReplaced: result.keyFileReplaced)
    }
}
