import CLibcrypto
import Crypto
import Foundation

/// livesim's own check of the MBI_KEY_OLD proof a client sends in `USR t SSO S <ticket> <proof>`.
///
/// Written from the published description of the blob, independently of the client's
/// implementation: the two must agree, and the tests cross-check them.
///
///     blob = UInt32LE × 7: 28, 1 (CBC), 0x6603 (3DES), 0x8004 (SHA-1), 8 (IV length),
///                          20 (hash length), cipher length
///            ‖ IV (8) ‖ HMAC-SHA1(key2, nonce) (20) ‖ 3DES-EDE-CBC(key3, IV, PKCS#5(nonce))
///
/// where key2 and key3 are derived from the ticket's BinarySecret. The nonce is the ASCII string
/// the server sent, taken as bytes (never base64-decoded).
enum SSOProofVerifier {
    /// Why a proof is refused.
    enum Failure: Error, Equatable, CustomStringConvertible {
        case notBase64
        case badSecret
        case tooShort(Int)
        case badHeader(field: String, value: UInt32)
        case badLength(expected: Int, actual: Int)
        case hashMismatch
        case cipherMismatch
        case cipherUnavailable

        var description: String {
            switch self {
            case .notBase64: "the proof is not base64"
            case .badSecret: "the BinarySecret is not base64 of 24 bytes"
            case .tooShort(let count): "the blob has \(count) bytes, fewer than its 28-byte header"
            case .badHeader(let field, let value): "header field \(field) is \(value)"
            case .badLength(let expected, let actual): "the blob has \(actual) bytes, its header says \(expected)"
            case .hashMismatch: "the HMAC-SHA1 of the nonce does not match"
            case .cipherMismatch: "the 3DES cipher of the nonce does not match"
            case .cipherUnavailable: "3DES-EDE-CBC failed in libcrypto"
            }
        }
    }

    static let headerLength = 28
    static let ivLength = 8
    static let hashLength = 20
    static let hashMagic = Array("WS-SecureConversationSESSION KEY HASH".utf8)
    static let encryptionMagic = Array("WS-SecureConversationSESSION KEY ENCRYPTION".utf8)

    /// Checks a base64 proof against the base64 BinarySecret issued with the ticket and the nonce
    /// sent on this connection.
    static func check(proof: String, binarySecret: String, nonce: String) -> Failure? {
        guard let secret = Data(base64Encoded: binarySecret), secret.count == 24 else { return .badSecret }
        guard let blob = Data(base64Encoded: proof) else { return .notBase64 }
        return check(blob: Array(blob), key: Array(secret), nonce: Array(nonce.utf8))
    }

    static func verify(proof: String, binarySecret: String, nonce: String) -> Bool {
        check(proof: proof, binarySecret: binarySecret, nonce: nonce) == nil
    }

    /// Checks a decoded blob against the decoded key and the nonce bytes.
    static func check(blob: [UInt8], key: [UInt8], nonce: [UInt8]) -> Failure? {
        guard blob.count >= headerLength else { return .tooShort(blob.count) }
        let field = { (index: Int) -> UInt32 in
            (0..<4).reduce(UInt32(0)) { $0 | UInt32(blob[index * 4 + $1]) << (8 * UInt32($1)) }
        }
        let expected: [(String, UInt32)] = [
            ("header size", 28), ("mode (CBC)", 1), ("cipher (3DES)", 0x6603), ("hash (SHA-1)", 0x8004),
            ("IV length", UInt32(ivLength)), ("hash length", UInt32(hashLength)),
        ]
        for (index, (name, value)) in expected.enumerated() where field(index) != value {
            return .badHeader(field: name, value: field(index))
        }
        let cipherLength = Int(field(6))
        // PKCS#5 always adds 1...8 bytes, so a cipher is a non-empty multiple of the block size.
        guard cipherLength > 0, cipherLength % 8 == 0, cipherLength <= 1 << 16 else {
            return .badHeader(field: "cipher length", value: field(6))
        }
        let total = headerLength + ivLength + hashLength + cipherLength
        guard blob.count == total else { return .badLength(expected: total, actual: blob.count) }

        let iv = Array(blob[headerLength..<(headerLength + ivLength)])
        let hash = blob[(headerLength + ivLength)..<(headerLength + ivLength + hashLength)]
        let cipher = blob[(headerLength + ivLength + hashLength)...]

        let key2 = derive(key: key, magic: hashMagic)
        let key3 = derive(key: key, magic: encryptionMagic)
        guard constantTimeEqual(hmac(key: key2, message: nonce), hash) else { return .hashMismatch }
        guard let recomputed = tripleDESCBCEncrypt(key: key3, iv: iv, plaintext: nonce) else {
            return .cipherUnavailable
        }
        guard constantTimeEqual(recomputed, cipher) else { return .cipherMismatch }
        return nil
    }

    /// The key derivation: h1 = HMAC(k, m), h2 = HMAC(k, h1 ‖ m), h3 = HMAC(k, h1),
    /// h4 = HMAC(k, h3 ‖ m); the key is h2 followed by the first four bytes of h4.
    static func derive(key: [UInt8], magic: [UInt8]) -> [UInt8] {
        let h1 = hmac(key: key, message: magic)
        let h2 = hmac(key: key, message: h1 + magic)
        let h3 = hmac(key: key, message: h1)
        let h4 = hmac(key: key, message: h3 + magic)
        return h2 + h4.prefix(4)
    }

    static func hmac(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// DES-EDE3-CBC with PKCS#5 padding, from OpenSSL's libcrypto; nil if libcrypto refuses.
    static func tripleDESCBCEncrypt(key: [UInt8], iv: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        guard key.count == 24, iv.count == 8, let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_EncryptInit_ex(context, EVP_des_ede3_cbc(), nil, key, iv) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var written: Int32 = 0
        var final: Int32 = 0
        let ok = out.withUnsafeMutableBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress,
                EVP_EncryptUpdate(context, base, &written, plaintext, Int32(plaintext.count)) == 1
            else { return false }
            return EVP_EncryptFinal_ex(context, base + Int(written), &final) == 1
        }
        guard ok else { return nil }
        return Array(out.prefix(Int(written + final)))
    }

    private static func constantTimeEqual<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
