import BrokerCore
import Foundation
import LiveProtocol
import Locks
import Logging

/// SkyLogin: Skype names enrolled with their password (of which only the login hash is kept), and
/// the UICs made from signed credentials. The account's RSA key signs inside the daemon; only
/// UICs leave it, the way ssh-agent signs.
extension BrokerEngine {
    /// A Skype name's enrollment: a new RSA key, a login at the realm's SkyLogin server with the
    /// login hash, and the verified credentials, stored with the key and the hash (never the
    /// password).
    func enrollSkype(_ command: EnrollCommand, password: Secret, realm: Realm, name: AccountName?)
        async throws(BrokerError) -> AccountReport
    {
        // Skype names are ASCII letters, digits and . , - _ : (live:...); both sides lowercase
        // the same letters.
        let skypeName = command.login.trimmingCharacters(in: .whitespaces).lowercased()
        guard !skypeName.isEmpty, skypeName.utf8.count <= 255,
            skypeName.unicodeScalars.allSatisfy({
                ("a"..."z").contains($0) || ("0"..."9").contains($0) || ".,-_:".unicodeScalars.contains($0)
            })
        else {
            throw BrokerError(.badRequest, "a Skype name is 1-255 ASCII letters, digits and . , - _ :")
        }
        guard !realm.skyloginServers.isEmpty else {
            throw BrokerError(
                .badRequest, "realm \(realm.name) names no skylogin_servers: Skype names sign in at a SkyLogin server")
        }
        guard let name = command.name ?? AccountName(rawValue: skypeName) else {
            throw BrokerError(.badRequest, "the Skype name is not a valid account name; choose one with name")
        }
        let existing = locked.withLock { $0.machine.accounts[name] }.map { ($0.login, $0.realm, $0.loginKind) }
        if let existing, existing.0.lowercased() != skypeName || existing.1 != realm.name || existing.2 != .skype {
            throw BrokerError(.conflict, "account \(name) is already enrolled for another login or realm")
        }
        let hash = Secret(SkyLoginHex.encode(loginHash(skypeName: skypeName, password: password)))
        let now = wallClock()
        let credential: Credential
        do {
            // No key given: a new one, as every enrollment of a Skype name makes.
            credential = try await identity.skylogin(
                realm: realm, request: .password(skypeName: skypeName, loginHash: hash), clientKey: nil, now: now)
        } catch {
            switch error {
            case .passwordRefused(let by, let reason):
                throw BrokerError(.invalidCredentials, "\(by) refused the Skype name or password (\(reason))")
            case .rejected(_, let description):
                throw BrokerError(.signInFailed, description)
            default:
                throw error.brokerError
            }
        }
        let seed = AccountSeed(
            name: name, realm: realm.name, login: skypeName, refreshToken: nil, loginKind: .skype, loginHash: hash,
            skylogin: credential)
        do {
            try persistence.saveEnrollment(seed, exists: existing != nil, now: now)
        } catch {
            throw Self.brokerError(error)
        }
        install(seed, existed: existing != nil, now: now)
        logger.info(
            "account enrolled",
            metadata: [
                "broker.account": "\(name)", "broker.realm": "\(realm.name)", "broker.event": "enrolled",
                "broker.sign_in": "skylogin",
            ])
        return status(name)!
    }

    /// The account's SkyLogin credentials, fresh for `minValid` seconds, with the Skype name they
    /// name and their base64 (the UIC of a Microsoft account, `uic?method=skylogin`).
    func skyloginCredentials(account: AccountName, minValid: TimeInterval) async throws(BrokerError)
        -> ServedCredential
    {
        try await read(account: account, kind: .skylogin, minValid: minValid)
    }

    /// A UIC signed over `nonce` with the account's RSA key, from credentials fresh for
    /// `minValid` seconds (a Skype name's `uic?nonce=`).
    func signedUIC(account: AccountName, nonce: String, minValid: TimeInterval) async throws(BrokerError) -> (
        uic: String, served: ServedCredential
    ) {
        guard
            let kind = locked.withLock({ $0.machine.accounts[account]?.loginKind })
        else {
            throw BrokerError(.notFound, "no account named \(account)", hint: "tokenctl accounts lists them")
        }
        guard kind == .skype else {
            throw BrokerError(
                .credentialUnavailable,
                "account \(account) is a Microsoft account: its UIC is uic?method=skylogin, not one signed over a nonce"
            )
        }
        let served = try await skyloginCredentials(account: account, minValid: minValid)
        guard let raw = Data(base64Encoded: served.credential.value.exposed), let key = served.credential.proofKey
        else {
            throw BrokerError(.internalError, "the SkyLogin credentials of \(account) are unreadable")
        }
        let clientKey: SkyLoginClientKey
        do {
            clientKey = try SkyLoginClientKey(serialized: key)
        } catch {
            throw BrokerError(.internalError, "the SkyLogin key of \(account) is unusable")
        }
        do {
            return (try SkyLoginUIC.uic(credentials: [UInt8](raw), clientKey: clientKey, nonce: nonce), served)
        } catch .invalidInput(let why) {
            throw BrokerError(.badRequest, "cannot sign a UIC: \(why)")
        } catch {
            throw BrokerError(.internalError, "cannot sign a UIC for \(account)")
        }
    }
}
