import BrokerCore
import CLibcrypto
import Foundation

/// The client's RSA-1024 key pair (e = 65537). The login server sees only the modulus and binds it
/// into the credentials; the private exponent signs UICs. A secret: its description is redacted.
package struct SkyLoginClientKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// n, exactly 128 bytes big-endian, with the top bit set.
    package let modulus: [UInt8]
    /// d, exactly 128 bytes big-endian.
    private let privateExponent: [UInt8]

    /// Version 1 of `serialized`: `01 ‖ n (128) ‖ d (128)`, base64.
    private static let formatVersion: UInt8 = 1

    /// A key from its modulus and private exponent (big-endian; shorter values are left-padded).
    /// Refuses a modulus that is not exactly 1024 bits, and a pair that does not invert.
    package init(modulus: [UInt8], privateExponent: [UInt8]) throws(SkyLoginError) {
        let n = SkyLoginCrypto.stripLeadingZeros(modulus)
        guard n.count == 128, n[0] & 0x80 != 0, n[127] & 1 == 1 else {
            throw .invalidInput("the SkyLogin client key must have an odd 1024-bit modulus")
        }
        let d = SkyLoginCrypto.stripLeadingZeros(privateExponent)
        guard !d.isEmpty, d.count <= 128 else { throw .invalidInput("the SkyLogin client key is not valid") }
        let padded = [UInt8](repeating: 0, count: 128 - d.count) + d
        guard padded.lexicographicallyPrecedes(n) else { throw .invalidInput("the SkyLogin client key is not valid") }
        self.modulus = n
        self.privateExponent = padded
        // d must undo e: sign a fixed block and open it again.
        var probe = [UInt8](repeating: 0x5A, count: 128)
        probe[0] = 0x4B
        let signed: [UInt8]
        do {
            signed = try sign(probe)
        } catch {
            throw .invalidInput("the SkyLogin client key is not valid")
        }
        guard (try? SkyLoginCrypto.rsaPublic(signed, modulus: n)) == probe else {
            throw .invalidInput("the SkyLogin client key's exponents do not match")
        }
    }

    /// A fresh key pair from libcrypto's RSA key generation (1024 bits, e = 65537).
    package static func generate() throws(SkyLoginError) -> SkyLoginClientKey {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else { throw .crypto("no RSA context") }
        defer { EVP_PKEY_CTX_free(context) }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(context, 1024) == 1,
            EVP_PKEY_keygen(context, &key) == 1, let key
        else { throw .crypto("RSA key generation failed") }
        defer { EVP_PKEY_free(key) }
        let e = try parameter(key, "e", size: 3)
        guard e == SkyLoginCrypto.publicExponent else { throw .crypto("RSA key generation chose another exponent") }
        return try SkyLoginClientKey(
            modulus: parameter(key, "n", size: 128), privateExponent: parameter(key, "d", size: 128))
    }

    private static func parameter(_ key: OpaquePointer, _ name: String, size: Int) throws(SkyLoginError) -> [UInt8] {
        var bn: OpaquePointer?
        guard EVP_PKEY_get_bn_param(key, name, &bn) == 1, let bn else { throw .crypto("no RSA parameter \(name)") }
        defer { BN_clear_free(bn) }
        var out = [UInt8](repeating: 0, count: size)
        guard BN_bn2binpad(bn, &out, Int32(size)) == Int32(size) else {
            throw .crypto("RSA parameter \(name) too large")
        }
        return out
    }

    /// The key for storage (seal it like every other secret): base64 of `01 ‖ n ‖ d`.
    package var serialized: Secret {
        Secret(Data([Self.formatVersion] + modulus + privateExponent).base64EncodedString())
    }

    package init(serialized: Secret) throws(SkyLoginError) {
        guard let data = Data(base64Encoded: serialized.exposed), data.count == 257,
            data.first == Self.formatVersion
        else { throw .invalidInput("the stored SkyLogin client key is not in a known format") }
        let bytes = [UInt8](data)
        try self.init(modulus: Array(bytes[1..<129]), privateExponent: Array(bytes[129..<257]))
    }

    /// The raw private-key operation on a 128-byte block smaller than the modulus:
    /// `block^d mod n`, 128 bytes big-endian (RSA without padding).
    package func sign(_ block: [UInt8]) throws(SkyLoginError) -> [UInt8] {
        guard block.count == 128 else { throw .invalidInput("a SkyLogin signature block is 128 bytes") }
        return try SkyLoginCrypto.modExp(block, privateExponent, modulus, secretExponent: true)
    }

    package var description: String {
        "SkyLoginClientKey(modulus \(SkyLoginHex.encode(Array(modulus.prefix(4))))…, private key redacted)"
    }

    package var debugDescription: String { description }
}
