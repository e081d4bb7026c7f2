import Foundation

/// Signed credentials (`BE32 key_index ‖ S`) and UICs, livesim's own implementation.
///
/// S opens with the signer's public key to `4B ‖ BB×j ‖ BA ‖ M ‖ SHA1(M) ‖ BC` (k bytes), and M is
/// a 0x41 list {0x00: Skype name, 0x01: the client's modulus, 0x04: expiry in minutes since 1970}.
enum SkyCredentials {
    /// What the credentials say.
    struct Fields: Equatable, Sendable {
        var skypeName: String
        var modulus: [UInt8]
        var expiryMinutes: UInt32

        var expiresAt: Date { Date(timeIntervalSince1970: TimeInterval(expiryMinutes) * 60) }
    }

    struct Invalid: Error, Equatable {
        var reason: String
    }

    /// The UIC salt.
    static let salt = Array("WS-SecureConversationSESSION KEY TOKEN".utf8)
    /// The UIC's signature block is 128 bytes: the nonce may be at most 47 bytes.
    static let maxNonce = 47

    /// The message-recovery padding for a k-byte key; nil when M does not fit.
    static func pad(_ message: [UInt8], size: Int) -> [UInt8]? {
        let filler = size - 23 - message.count
        guard filler >= 0 else { return nil }
        return [0x4B] + [UInt8](repeating: 0xBB, count: filler) + [0xBA] + message + SkyCipher.sha1(message) + [0xBC]
    }

    /// Undoes `pad`: checks the layout and the SHA-1, and returns M.
    static func unpad(_ block: [UInt8]) -> [UInt8]? {
        guard block.count >= 23, block.first == 0x4B, block.last == 0xBC else { return nil }
        var index = 1
        while index < block.count, block[index] == 0xBB { index += 1 }
        guard index < block.count - 21, block[index] == 0xBA else { return nil }
        let message = Array(block[(index + 1)..<(block.count - 21)])
        guard SkyCipher.sha1(message) == Array(block[(block.count - 21)..<(block.count - 1)]) else { return nil }
        return message
    }

    /// M for these fields, in the order of the real blobs.
    static func message(_ fields: Fields) -> [UInt8] {
        SkyObjects.encode(list: [
            SkyObject(0x00, .string(Array(fields.skypeName.utf8))), SkyObject(0x01, .blob(fields.modulus)),
            SkyObject(0x04, .number(fields.expiryMinutes)),
        ])
    }

    /// `BE32(keyIndex) ‖ pad(M)^d mod n`; nil when M does not fit the signer.
    static func sign(_ fields: Fields, signer: SkyRSAKey, keyIndex: UInt32) -> [UInt8]? {
        guard let block = pad(message(fields), size: signer.size), let signature = signer.privateOperation(block) else {
            return nil
        }
        return SkyHex.be32(keyIndex) + signature
    }

    /// Opens and checks credentials with the signer their key index names (`signers` maps the
    /// trusted indexes to keys), and reads the three fields.
    static func open(_ credentials: [UInt8], signers: [UInt32: SkyRSAKey]) throws(Invalid) -> Fields {
        guard let keyIndex = SkyHex.readBE32(credentials[...]) else { throw Invalid(reason: "credentials too short") }
        guard let signer = signers[keyIndex] else {
            throw Invalid(reason: "credentials signed under key index \(keyIndex), which is not trusted")
        }
        let signature = Array(credentials.dropFirst(4))
        guard signature.count == signer.size, let block = signer.publicOperation(signature),
            let message = unpad(block)
        else { throw Invalid(reason: "the credentials' signature does not verify") }
        let objects: [SkyObject]
        do throws(SkyObjects.Malformed) {
            objects = try SkyObjects.decodeLists(message).flatMap { $0 }
        } catch {
            throw Invalid(reason: "the credentials' list is malformed: \(error.reason)")
        }
        func value(_ tag: UInt32) -> SkyValue? { objects.first { $0.tag == tag }?.value }
        guard case .string(let nameBytes)? = value(0x00), let name = String(validating: nameBytes, as: UTF8.self)
        else { throw Invalid(reason: "the credentials name no Skype name") }
        guard case .blob(let modulus)? = value(0x01) else { throw Invalid(reason: "the credentials hold no modulus") }
        guard case .number(let expiry)? = value(0x04) else { throw Invalid(reason: "the credentials have no expiry") }
        return Fields(skypeName: name, modulus: modulus, expiryMinutes: expiry)
    }

    /// Base64 with every whitespace character ignored.
    static func decodeBase64(_ text: String) -> [UInt8]? {
        let compact = String(text.unicodeScalars.filter { !CharacterSet.whitespacesAndNewlines.contains($0) })
        guard !compact.isEmpty, let data = Data(base64Encoded: compact) else { return nil }
        return Array(data)
    }

    /// m = SHA1(creds ‖ salt) ‖ salt ‖ nonce, which the UIC's signature block carries.
    static func uicMessage(credentials: [UInt8], nonce: String) -> [UInt8] {
        SkyCipher.sha1(credentials + salt) + salt + Array(nonce.utf8)
    }

    /// A UIC's parts: `BE32(L) ‖ creds(L) ‖ sig(128)`.
    static func splitUIC(_ bytes: [UInt8]) throws(Invalid) -> (credentials: [UInt8], signature: [UInt8]) {
        guard let length = SkyHex.readBE32(bytes[...]), Int(length) <= bytes.count,
            bytes.count == 4 + Int(length) + 128
        else { throw Invalid(reason: "the UIC is not BE32(L) ‖ credentials(L) ‖ signature(128)") }
        return (Array(bytes[4..<(4 + Int(length))]), Array(bytes.suffix(128)))
    }

    /// Verifies a UIC for a nonce: the credentials open with a trusted signer, and the client's
    /// signature, checked with the modulus inside them, covers SHA1(creds ‖ salt) ‖ salt ‖ nonce.
    /// Expiry and the name are the caller's to check.
    static func verifyUIC(_ uic: [UInt8], nonce: String, signers: [UInt32: SkyRSAKey]) throws(Invalid) -> (
        credentials: [UInt8], fields: Fields
    ) {
        let (credentials, signature) = try splitUIC(uic)
        let fields = try open(credentials, signers: signers)
        let client = SkyRSAKey(modulus: fields.modulus)
        guard client.size == 128 else { throw Invalid(reason: "the credentials' modulus is not 1024 bits") }
        guard let block = client.publicOperation(signature), let message = unpad(block) else {
            throw Invalid(reason: "the UIC's signature does not verify with the credentials' modulus")
        }
        guard message == uicMessage(credentials: credentials, nonce: nonce) else {
            throw Invalid(reason: "the UIC was signed over another nonce or other credentials")
        }
        return (credentials, fields)
    }
}
