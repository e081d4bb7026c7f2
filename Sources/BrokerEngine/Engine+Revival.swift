import BrokerCore
import Foundation
import LiveProtocol
import Locks
import Logging

/// The on-demand answers of `rst` realms (revival servers): the `USR SSO S` proof and the
/// Passport 1.4 ticket. The BinarySecret and the password stay in here: only the proof and the
/// tickets leave.
extension BrokerEngine {
    /// The ticket of the site whose policy is `policy`, fresh for `minValid` seconds, and the
    /// proof for `nonce` keyed by the BinarySecret that arrived with that same ticket.
    func sso(account: AccountName, nonce: String, policy: String, trid: Int?, guid: String?, minValid: TimeInterval)
        async throws(BrokerError) -> SSOAnswer
    {
        let realm = try rstRealm(of: account)
        guard let site = realm.ssoSite(policy: policy) else {
            throw BrokerError(
                .badRequest, "realm \(realm.name) keeps no site with policy \(policy) (rst_sites)")
        }
        let served = try await read(account: account, kind: .site(site.key), minValid: minValid)
        guard let key = served.credential.proofKey else {
            throw BrokerError(
                .credentialUnavailable,
                "the server sent no BinarySecret with the \(site.address) ticket, so no proof can be made")
        }
        let proof = try MBIKeyOldProof.proof(binarySecret: key, nonce: nonce)
        let ticket = served.credential.value.exposed
        return SSOAnswer(
            ticket: ticket, proof: proof, policy: site.policy,
            usr: SSOAnswer.usrLine(trid: trid, ticket: ticket, proof: proof, guid: guid),
            expiresAt: served.credential.expiresAt)
    }

    /// A Passport 1.4 login with the stored password, for this challenge. A refused password
    /// puts the account in `needs_reauth`, as a refused refresh does.
    func passport14(account: AccountName, challenge: String) async throws(BrokerError) -> String {
        let realm = try rstRealm(of: account)
        try Passport14.check(challenge: challenge)
        let (login, password, state, reason, generation) = locked.withLock { locked in
            let schedule = locked.machine.accounts[account]
            return (schedule?.login, schedule?.password, schedule?.state, schedule?.stateReason, schedule?.generation)
        }
        guard let login else {
            throw BrokerError(.notFound, "no account named \(account)", hint: "tokenctl accounts lists them")
        }
        if state == .needsReauth {
            throw BrokerError(
                .needsReauth, "account \(account) needs a new sign-in: \(reason ?? "sign-in required")",
                hint: "tokenctl login")
        }
        guard let password else {
            throw BrokerError(.credentialUnavailable, "a Passport 1.4 login needs the stored password")
        }
        do {
            return try await identity.passport14(
                realm: realm, login: login, password: password, challenge: challenge, now: wallClock())
        } catch {
            if case .passwordRefused = error {
                // Only for the enrollment whose password was sent: a new one since is left alone.
                let now = wallClock()
                carryOut(
                    update { $0.passwordRefused(account, reason: error.message, now: now, generation: generation) })
                throw BrokerError(
                    .needsReauth, "account \(account) needs a new sign-in: \(error.message)",
                    hint: "tokenctl login \(login) --realm \(realm.name) --password-stdin")
            }
            throw error.brokerError
        }
    }

    /// Enrollment in an `rst` realm: RST.srf with the password, for every configured site. The
    /// password is always stored (sealed): renewing RST tickets needs it.
    func enrollRST(_ command: EnrollCommand, realm: Realm, name: AccountName, login: String)
        async throws(BrokerError) -> AccountReport
    {
        guard case .password(let password, _) = command.credential else {
            throw BrokerError(
                .badRequest,
                "realm \(realm.name) signs in with rst (RST.srf): enroll with the password "
                    + "(tokenctl login LOGIN --realm \(realm.name) --password-stdin)")
        }
        let now = wallClock()
        let sites: [String: Credential]
        do {
            sites = try await identity.rstSites(
                realm: realm, login: login, password: password, sites: realm.rstSites, now: now)
        } catch {
            switch error {
            case .passwordRefused(let by, let reason):
                throw BrokerError(.invalidCredentials, "\(by) refused the login or password (\(reason))")
            case .rejected(let code, let description) where code == "interaction_required":
                throw BrokerError(.interactionRequired, description)
            case .rejected(_, let description):
                throw BrokerError(.signInFailed, description)
            default:
                throw error.brokerError
            }
        }
        // Tolerant of a server that issues fewer sites than asked: those are marked missing.
        let missing = Set(realm.keptSites.map(\.key).filter { sites[$0] == nil })
        guard missing.count < realm.keptSites.count else {
            throw BrokerError(.signInFailed, "RST.srf answered no ticket for any site of rst_sites")
        }
        var seed = AccountSeed(
            name: name, realm: realm.name, login: login, refreshToken: nil, password: password, ticketMethod: .rst,
            sites: sites, missingSites: missing)
        let exists = locked.withLock { $0.machine.accounts[name] != nil }
        do { try persistence.saveEnrollment(seed, exists: exists, now: now) } catch { throw Self.brokerError(error) }
        seed.state = .active
        install(seed, existed: exists, now: now)
        logger.info(
            "account enrolled",
            metadata: [
                "broker.account": "\(name)", "broker.realm": "\(realm.name)", "broker.event": "enrolled",
                "broker.sign_in": "rst",
            ])
        return status(name)!
    }

    /// The realm of an account, which must sign in with `rst`.
    private func rstRealm(of account: AccountName) throws(BrokerError) -> Realm {
        guard let name = locked.withLock({ $0.machine.accounts[account]?.realm }) else {
            throw BrokerError(.notFound, "no account named \(account)", hint: "tokenctl accounts lists them")
        }
        let realm = try configuration.realm(named: name)
        guard realm.signIn == .rst else {
            throw BrokerError(
                .credentialUnavailable,
                "account \(account) is in realm \(realm.name), which signs in with oauth: SSO proofs and Passport 1.4 "
                    + "tickets are for rst realms")
        }
        return realm
    }
}
