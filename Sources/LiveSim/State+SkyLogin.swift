import Foundation
import Locks

/// A Skype-name account: it signs in to the SkyLogin server with its name and password.
struct SkypeAccount {
    var spec: AccountSpec
    /// The lowercased Skype name.
    var name: String
    var lifetimes: [CredentialKind: Int] = [:]

    /// MD5(name ‖ "\nskyper\n" ‖ password), the only thing the login server compares.
    var loginHash: [UInt8] { SkyCipher.loginHash(skypeName: name, password: spec.password) }
}

/// Signed credentials the login server issued.
struct SkyIssued {
    var credentials: [UInt8]
    var fields: SkyCredentials.Fields
    /// The Skype-name account, or the Microsoft login an OAuth login mapped to `live:...`.
    var account: String
    var microsoftAccount: Bool
    var keyIndex: UInt32
    var issuedAt: Date
    var revoked: String?
}

/// The login server's keys: the RSA-1536 session key pair and the RSA-2048 signer under key
/// index 1, generated at start. A second signer under index 7, which the keys file never lists,
/// serves the `untrusted` fault; it is made at its first use. The private halves never leave livesim.
final class SkyLoginKeys: Sendable {
    static let signerIndex: UInt32 = 1
    static let untrustedIndex: UInt32 = 7

    let session: SkyRSAKey
    let signer: SkyRSAKey
    private let untrustedKey = LockedValue<SkyRSAKey?>(nil)

    init(session: SkyRSAKey, signer: SkyRSAKey) {
        self.session = session
        self.signer = signer
    }

    struct GenerationFailed: Error, CustomStringConvertible {
        var description: String { "libcrypto could not generate the SkyLogin RSA keys" }
    }

    static func generate() throws -> SkyLoginKeys {
        guard let session = SkyRSAKey.generate(bits: 1536), let signer = SkyRSAKey.generate(bits: 2048) else {
            throw GenerationFailed()
        }
        return SkyLoginKeys(session: session, signer: signer)
    }

    /// The signer of the `untrusted` fault.
    func untrusted() -> SkyRSAKey? {
        untrustedKey.withLock { key in
            if key == nil { key = SkyRSAKey.generate(bits: 2048) }
            return key
        }
    }

    /// The signers livesim (and the realm given its keys file) trusts: index 1 only.
    var trusted: [UInt32: SkyRSAKey] { [Self.signerIndex: signer] }

    /// Every signer livesim made, for reporting on credentials it issued under a fault.
    var all: [UInt32: SkyRSAKey] {
        var out = trusted
        if let key = untrustedKey.withLock({ $0 }) { out[Self.untrustedIndex] = key }
        return out
    }

    /// The public halves in the realm's `skylogin_keys` format (e = 65537).
    var publicJSON: String {
        #"{"session_modulus": "\#(session.modulusHex)", "signers": {"\#(Self.signerIndex)": "\#(signer.modulusHex)"}}"#
    }
}

extension SimWorld {
    mutating func addSkypeAccount(_ spec: AccountSpec) -> Bool {
        guard let name = spec.skypeName?.lowercased(), skypeAccounts[name] == nil else { return false }
        skypeAccounts[name] = SkypeAccount(spec: spec, name: name)
        return true
    }

    /// `live:<local part of the login>`, lowercased: the Skype name of a Microsoft account.
    static func liveSkypeName(login: String) -> String {
        let key = Self.key(login)
        return "live:" + (key.split(separator: "@").first.map(String.init) ?? key)
    }

    /// The Microsoft account whose Skype name this is.
    func microsoftLogin(skypeName: String) -> String? {
        let name = skypeName.lowercased()
        guard name.hasPrefix("live:") else { return nil }
        return accounts.keys.filter { Self.liveSkypeName(login: $0) == name }.min()
    }

    /// The credentials' lifetime in seconds for a Skype-name account or a Microsoft login.
    func skyLoginLifetime(skypeName: String?, login: String?) -> Int {
        if let skypeName, let value = skypeAccounts[skypeName.lowercased()]?.lifetimes[.skylogin] { return value }
        if let login { return lifetime(.skylogin, login: login) }
        return settings.lifetimes[CredentialKind.skylogin.rawValue] ?? settings.tokenLifetime
    }

    /// The expiry on the wire: the first whole minute at or after now + lifetime.
    static func expiryMinutes(now: Date, lifetime: Int) -> UInt32 {
        let seconds = now.timeIntervalSince1970 + TimeInterval(lifetime)
        return UInt32(clamping: Int64((seconds / 60).rounded(.up)))
    }

    /// Revokes every credential issued so far to a Skype-name account.
    mutating func revokeSkyCredentials(skypeName: String) {
        let name = skypeName.lowercased()
        for (key, issued) in skyCredentials where !issued.microsoftAccount && issued.account == name {
            skyCredentials[key]?.revoked = "revoked"
        }
    }

    mutating func recordSkyLogin(_ issued: SkyIssued) {
        skyCredentials[Data(issued.credentials).base64EncodedString()] = issued
        counters.issued[CredentialKind.skylogin.rawValue, default: 0] += 1
        if counters.issued[CredentialKind.skylogin.rawValue, default: 0] % 10_000 == 0 { prune(now: issued.issuedAt) }
    }

    /// Why credentials are not valid now (their account, revocation, signer and expiry), or nil.
    func skyInvalidReason(_ issued: SkyIssued, now: Date) -> String? {
        if let revoked = issued.revoked { return revoked }
        if issued.microsoftAccount {
            guard accounts[issued.account] != nil else { return "account deleted" }
        } else {
            guard skypeAccounts[issued.account] != nil else { return "account deleted" }
        }
        if issued.keyIndex != SkyLoginKeys.signerIndex {
            return "signed under key index \(issued.keyIndex), which livesim's keys file does not list"
        }
        return Self.skyExpired(issued.fields, now: now) ? "expired" : nil
    }

    /// Expired once the expiry minute has begun.
    static func skyExpired(_ fields: SkyCredentials.Fields, now: Date) -> Bool {
        TimeInterval(fields.expiryMinutes) * 60 <= now.timeIntervalSince1970
    }

    /// The issued credentials a value names: their Base64, or a UIC (Base64 of BE32 L ‖ creds ‖ sig).
    func skyIssued(matching value: String) -> SkyIssued? {
        guard let bytes = SkyCredentials.decodeBase64(value) else { return nil }
        if let issued = skyCredentials[Data(bytes).base64EncodedString()] { return issued }
        guard let (credentials, _) = try? SkyCredentials.splitUIC(bytes) else { return nil }
        return skyCredentials[Data(credentials).base64EncodedString()]
    }

    /// Secrets of the client side that livesim knows: Skype-name passwords and login hashes, and
    /// the credentials it issued.
    var skySecrets: [String] {
        skypeAccounts.values.flatMap { account -> [String] in
            [account.spec.password, SkyHex.encode(account.loginHash), Data(account.loginHash).base64EncodedString()]
        } + Array(skyCredentials.keys)
    }
}
