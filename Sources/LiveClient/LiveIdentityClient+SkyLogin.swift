import BrokerCore
import Foundation
import LiveProtocol
import Locks

/// SkyLogin through the realm's login servers, with the realm's trusted keys.
extension LiveIdentityClient {
    /// Each realm's SkyLogin keys: its `skylogin_keys` file, or Skype's own keys. Read at start and
    /// at every reload; a file that cannot be read or parsed stops the start or refuses the reload.
    static func skyloginKeys(_ realms: [Realm]) throws(BrokerError) -> [String: SkyLoginKeys] {
        var keys: [String: SkyLoginKeys] = [:]
        for realm in realms where !realm.skyloginServers.isEmpty {
            guard let file = realm.skyloginKeysFile else {
                keys[realm.name] = SkyLoginKeys.skype
                continue
            }
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw BrokerError(.badRequest, "realm \(realm.name): cannot read skylogin_keys \(file)")
            }
            do {
                keys[realm.name] = try SkyLoginKeys(json: data)
            } catch {
                throw BrokerError(.badRequest, "realm \(realm.name): skylogin_keys \(file): \(error)")
            }
        }
        return keys
    }

    /// Signs in at the realm's login servers (in order) and returns the verified credentials:
    /// `value` their base64, `subject` the Skype name, `proofKey` the account's RSA key (`clientKey`,
    /// or a new one).
    package func skylogin(realm: Realm, request: SkyLoginSignIn, clientKey: Secret?, now: Date)
        async throws(RefreshFailure) -> Credential
    {
        guard let keys = skylogin.withLock({ $0[realm.name] }) else {
            throw .rejected(code: "unknown_realm", description: "realm \(realm.name) names no skylogin_servers")
        }
        let key: SkyLoginClientKey
        do {
            key = try clientKey.map { try SkyLoginClientKey(serialized: $0) } ?? SkyLoginClientKey.generate()
        } catch {
            throw .rejected(code: "skylogin_key", description: "the account's SkyLogin key is unusable: \(error)")
        }
        let wire: SkyLoginRequest
        switch request {
        case .oauth(let token):
            wire = .oauth(token: token)
        case .password(let skypeName, let loginHash):
            guard let hash = SkyLoginHex.decode(loginHash.exposed), hash.count == 16 else {
                throw .rejected(code: "skylogin_key", description: "the stored login hash is unreadable")
            }
            wire = .password(skypeName: skypeName, hash: hash)
        }
        let client = SkyLoginClient(servers: realm.skyloginServers, keys: keys, timeout: .seconds(20))
        let credentials = try await client.login(wire, clientKey: key, now: now)
        return Credential(
            value: Secret(SkyLoginUIC.credentialsUIC(credentials.raw)), obtainedAt: now,
            expiresAt: credentials.expiresAt, proofKey: key.serialized, subject: credentials.skypeName)
    }
}
