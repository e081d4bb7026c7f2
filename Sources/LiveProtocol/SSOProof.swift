import BrokerCore
import CLibcrypto
import Foundation

/// The MBI_KEY_OLD proof of `USR t SSO S <ticket> <proof>` (MSNP15–18): the client shows that it
/// holds the `BinarySecret` that came with the messengerclear.live.com ticket, without sending it.
///
/// Two keys are derived from the secret; the proof is a 28-byte header, a random IV, the
/// HMAC-SHA1 of the nonce under the first key, and the nonce encrypted with 3DES-EDE-CBC under
/// the second key, base64-encoded. 3DES and HMAC-SHA1 come from OpenSSL's libcrypto.
package enum MBIKeyOldProof {
    static let hashKeyLabel = Array("WS-SecureConversationSESSION KEY HASH".utf8)
    static let encryptionKeyLabel = Array("WS-SecureConversationSESSION KEY ENCRYPTION".utf8)

    /// The proof for `nonce` (its bytes as the server sent them), base64-encoded, with a random IV.
    package static func proof(binarySecret: Secret, nonce: String) throws(BrokerError) -> String {
        guard let data = Data(base64Encoded: binarySecret.exposed.trimmingASCIIWhitespace()), !data.isEmpty else {
            throw BrokerError(.upstreamError, "the server's BinarySecret is not base64")
        }
        let key = [UInt8](data)
        var iv = [UInt8](repeating: 0, count: 8)
        guard RAND_bytes(&iv, 8) == 1 else { throw BrokerError(.internalError, "no random bytes for the proof") }
        return try proof(key: key, nonce: Array(nonce.utf8), iv: iv)
    }

    /// The proof with a given IV, base64-encoded.
    package static func proof(key: [UInt8], nonce: [UInt8], iv: [UInt8]) throws(BrokerError) -> String {
        Data(try blob(key: key, nonce: nonce, iv: iv)).base64EncodedString()
    }

    /// The 128-byte structure (for a 64-byte nonce): seven little-endian UInt32s (28, CBC,
    /// CALG_3DES, CALG_SHA1, IV length, hash length, cipher length), then IV, hash and cipher.
    package static func blob(key: [UInt8], nonce: [UInt8], iv: [UInt8]) throws(BrokerError) -> [UInt8] {
        precondition(iv.count == 8, "the 3DES IV is 8 bytes")
        let hashKey = derive(key, hashKeyLabel)
        let encryptionKey = derive(key, encryptionKeyLabel)
        let hash = hmacSHA1(key: hashKey, nonce)
        let cipher = try encrypt(key: encryptionKey, iv: iv, nonce)
        var out: [UInt8] = []
        out.reserveCapacity(28 + iv.count + hash.count + cipher.count)
        for field in [28, 1, 0x6603, 0x8004, UInt32(iv.count), UInt32(hash.count), UInt32(cipher.count)] as [UInt32] {
            withUnsafeBytes(of: field.littleEndian) { out += $0 }
        }
        return out + iv + hash + cipher
    }

    /// The WS-SecureConversation key derivation: HMAC chain, 20 + 4 bytes.
    package static func derive(_ key: [UInt8], _ label: [UInt8]) -> [UInt8] {
        let h1 = hmacSHA1(key: key, label)
        let h2 = hmacSHA1(key: key, h1 + label)
        let h3 = hmacSHA1(key: key, h1)
        let h4 = hmacSHA1(key: key, h3 + label)
        return h2 + h4.prefix(4)
    }

    package static func hmacSHA1(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                HMAC(
                    EVP_sha1(), k.baseAddress, Int32(k.count), m.bindMemory(to: UInt8.self).baseAddress, m.count,
                    &out, &length)
            }
        }
        return Array(out.prefix(Int(length)))
    }

    /// 3DES-EDE-CBC with PKCS#5 padding: a 64-byte nonce gets eight 0x08 bytes.
    static func encrypt(key: [UInt8], iv: [UInt8], _ plain: [UInt8]) throws(BrokerError) -> [UInt8] {
        guard let context = EVP_CIPHER_CTX_new() else { throw BrokerError(.internalError, "no cipher context") }
        defer { EVP_CIPHER_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: plain.count + 8)
        var written: Int32 = 0
        var final: Int32 = 0
        let ok =
            EVP_EncryptInit_ex(context, EVP_des_ede3_cbc(), nil, key, iv) == 1
            && EVP_EncryptUpdate(context, &out, &written, plain, Int32(plain.count)) == 1
            && out.withUnsafeMutableBufferPointer {
                EVP_EncryptFinal_ex(context, $0.baseAddress! + Int(written), &final)
            }
                == 1
        guard ok else { throw BrokerError(.internalError, "3DES-EDE-CBC failed") }
        return Array(out.prefix(Int(written + final)))
    }
}
