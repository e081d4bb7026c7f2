import Foundation

/// The padding of RSA with message recovery, as SkyLogin's credentials and UICs use it:
/// `4B ‖ BB×j ‖ BA ‖ M ‖ SHA1(M) ‖ BC`, the size of the modulus.
package enum SkyLoginMessageRecovery {
    /// The block for `message` in `size` bytes; nil when it does not fit (`|M| > size - 23`).
    package static func pad(_ message: [UInt8], size: Int) -> [UInt8]? {
        let filler = size - 23 - message.count
        guard filler >= 0 else { return nil }
        return [0x4B] + [UInt8](repeating: 0xBB, count: filler) + [0xBA] + message + SkyLoginCrypto.sha1(message)
            + [0xBC]
    }

    /// M from a block: the last byte BC; leading bytes whose low nibble is B (4B, BB), then one
    /// with low nibble A (BA); M up to the 21 last bytes, which must be SHA1(M) (all 20 bytes) and BC.
    package static func unpad(_ block: [UInt8]) throws(SkyLoginError) -> [UInt8] {
        guard block.count >= 22, block.last == 0xBC else { throw .badSignature("no BC trailer") }
        var i = 0
        while i < block.count && block[i] & 0x0F == 0x0B { i += 1 }
        guard i > 0, i < block.count, block[i] & 0x0F == 0x0A else { throw .badSignature("bad padding") }
        let start = i + 1
        let hashStart = block.count - 21
        guard start <= hashStart else { throw .badSignature("bad padding") }
        let message = Array(block[start..<hashStart])
        guard SkyLoginCrypto.constantTimeEqual(SkyLoginCrypto.sha1(message), Array(block[hashStart..<block.count - 1]))
        else { throw .badSignature("hash mismatch") }
        return message
    }
}

/// The signed credentials a SkyLogin server issues: `BE32 key index ‖ S`, where S opens with the
/// signer's public key to a list of the Skype name (tag 0), the client's modulus (tag 1) and the
/// expiry (tag 4, minutes since 1970). A secret (it is the OAuth login's UIC): the description
/// shows no bytes.
package struct SkyLoginCredentials: Sendable, Equatable, CustomStringConvertible {
    /// The blob as received.
    package let raw: [UInt8]
    package let keyIndex: UInt32
    package let skypeName: String
    /// The client modulus the server bound, big-endian as sent.
    package let modulus: [UInt8]
    package let expiresAt: Date

    /// Opens and checks the signature of a blob: its key index must name a trusted signer, the
    /// blob must be exactly 4 bytes plus the signer's modulus size, and the padding and hash must
    /// verify. The name, modulus and expiry must be present.
    package static func open(raw: [UInt8], trusted: SkyLoginKeys) throws(SkyLoginError) -> SkyLoginCredentials {
        guard raw.count >= 4 else { throw .malformed("the credentials are too short") }
        let index = raw.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard let modulus = trusted.signers[index] else { throw .untrustedKeyIndex(index) }
        guard raw.count == 4 + modulus.count else {
            throw .malformed("the credentials are \(raw.count) bytes, not \(4 + modulus.count) for key index \(index)")
        }
        let block: [UInt8]
        do throws(SkyLoginError) {
            block = try SkyLoginCrypto.rsaPublic(Array(raw.dropFirst(4)), modulus: modulus)
        } catch {
            guard case .malformed = error else { throw error }
            throw .badSignature("the signature is not smaller than the modulus")
        }
        let message = try SkyLoginMessageRecovery.unpad(block)
        let list: [SkyLoginObject]
        do {
            list = try SkyLoginObjects.decodeList(message)
        } catch {
            throw .malformed("the credentials' content: \(error)")
        }
        guard case .string(let name)? = try list.unique(0x00), let skypeName = String(validating: name, as: UTF8.self)
        else { throw .malformed("the credentials hold no Skype name") }
        guard case .blob(let boundModulus)? = try list.unique(0x01) else {
            throw .malformed("the credentials hold no modulus")
        }
        guard case .number(let minutes)? = try list.unique(0x04) else {
            throw .malformed("the credentials hold no expiry")
        }
        return SkyLoginCredentials(
            raw: raw, keyIndex: index, skypeName: skypeName, modulus: boundModulus,
            expiresAt: Date(timeIntervalSince1970: TimeInterval(minutes) * 60))
    }

    private init(raw: [UInt8], keyIndex: UInt32, skypeName: String, modulus: [UInt8], expiresAt: Date) {
        self.raw = raw
        self.keyIndex = keyIndex
        self.skypeName = skypeName
        self.modulus = modulus
        self.expiresAt = expiresAt
    }

    /// Checks that the credentials are for this client: the bound modulus is ours, they expire
    /// after `now + margin`, and (password logins) the name is the one we logged in with, compared
    /// case-insensitively.
    package func verify(now: Date, expectedModulus: [UInt8], expectedName: String?, margin: TimeInterval = 0)
        throws(SkyLoginError)
    {
        guard SkyLoginCrypto.stripLeadingZeros(modulus) == SkyLoginCrypto.stripLeadingZeros(expectedModulus) else {
            throw .credentialsMismatch("they are bound to another client key")
        }
        guard expiresAt > now.addingTimeInterval(margin) else {
            throw .credentialsMismatch("they expired at \(expiresAt.ISO8601Format())")
        }
        if let expectedName, Self.lowercased(expectedName) != Self.lowercased(skypeName) {
            throw .credentialsMismatch("they are for another Skype name")
        }
    }

    private static func lowercased(_ name: String) -> [UInt8] {
        Array(name.utf8).map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
    }

    package var description: String {
        "SkyLoginCredentials(\(skypeName), key index \(keyIndex), expires \(expiresAt.ISO8601Format()), "
            + "\(raw.count) bytes redacted)"
    }
}
