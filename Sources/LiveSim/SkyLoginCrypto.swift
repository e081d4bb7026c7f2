import CLibcrypto
import Crypto
import Foundation

/// An RSA key for SkyLogin's raw (unpadded) RSA: the modulus, and the private exponent when
/// livesim holds it. The public exponent is always 65537. livesim's own implementation, on
/// libcrypto's big numbers.
struct SkyRSAKey: Sendable, Equatable {
    /// Big-endian, without leading zero bytes; its length is the key size k.
    let modulus: [UInt8]
    let privateExponent: [UInt8]?

    static let publicExponent: [UInt8] = [0x01, 0x00, 0x01]

    init(modulus: [UInt8], privateExponent: [UInt8]? = nil) {
        self.modulus = Array(modulus.drop { $0 == 0 })
        self.privateExponent = privateExponent
    }

    /// From hex strings (the notes' vectors).
    init?(modulusHex: String, privateExponentHex: String? = nil) {
        guard let n = SkyHex.decode(modulusHex) else { return nil }
        var d: [UInt8]?
        if let privateExponentHex {
            guard let value = SkyHex.decode(privateExponentHex) else { return nil }
            d = value
        }
        self.init(modulus: n, privateExponent: d)
    }

    /// k: the size of the modulus in bytes.
    var size: Int { modulus.count }

    var modulusHex: String { SkyHex.encode(modulus) }

    /// x^65537 mod n as k bytes; nil unless x < n.
    func publicOperation(_ input: [UInt8]) -> [UInt8]? {
        SkyBigNum.modExp(input, exponent: Self.publicExponent, modulus: modulus, secret: false)
    }

    /// x^d mod n as k bytes; nil without the private exponent or unless x < n.
    func privateOperation(_ input: [UInt8]) -> [UInt8]? {
        guard let privateExponent else { return nil }
        return SkyBigNum.modExp(input, exponent: privateExponent, modulus: modulus, secret: true)
    }

    /// A new key pair of exactly `bits` bits with e = 65537.
    static func generate(bits: Int) -> SkyRSAKey? {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else { return nil }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(context, Int32(bits)) == 1 else {
            return nil
        }
        var key: OpaquePointer?
        guard EVP_PKEY_keygen(context, &key) == 1, let key else { return nil }
        defer { EVP_PKEY_free(key) }
        func parameter(_ name: String) -> [UInt8]? {
            var number: OpaquePointer?
            guard EVP_PKEY_get_bn_param(key, name, &number) == 1, let number else { return nil }
            defer { BN_clear_free(number) }
            return SkyBigNum.bytes(number)
        }
        guard let n = parameter("n"), let e = parameter("e"), let d = parameter("d"), e == publicExponent,
            n.count * 8 == bits, n[0] & 0x80 != 0
        else { return nil }
        return SkyRSAKey(modulus: n, privateExponent: d)
    }
}

/// Modular exponentiation on byte strings.
enum SkyBigNum {
    static func bytes(_ number: OpaquePointer) -> [UInt8] {
        let count = (Int(BN_num_bits(number)) + 7) / 8
        var out = [UInt8](repeating: 0, count: count)
        _ = BN_bn2binpad(number, &out, Int32(count))
        return out
    }

    /// base^exponent mod modulus, left-padded to the modulus' size; nil unless base < modulus.
    static func modExp(_ base: [UInt8], exponent: [UInt8], modulus: [UInt8], secret: Bool) -> [UInt8]? {
        guard !modulus.isEmpty, base.count <= 8192, let context = BN_CTX_new() else { return nil }
        defer { BN_CTX_free(context) }
        guard let b = BN_bin2bn(base, Int32(base.count), nil) else { return nil }
        defer { BN_clear_free(b) }
        guard let e = BN_bin2bn(exponent, Int32(exponent.count), nil) else { return nil }
        defer { BN_clear_free(e) }
        guard let m = BN_bin2bn(modulus, Int32(modulus.count), nil) else { return nil }
        defer { BN_free(m) }
        guard let r = BN_new() else { return nil }
        defer { BN_clear_free(r) }
        guard BN_is_zero(m) == 0, BN_cmp(b, m) < 0 else { return nil }
        if secret { BN_set_flags(e, BN_FLG_CONSTTIME) }
        guard BN_mod_exp(r, b, e, m, context) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: modulus.count)
        guard BN_bn2binpad(r, &out, Int32(out.count)) == Int32(out.count) else { return nil }
        return out
    }
}

/// The symmetric layer, the CRC and the hashes.
enum SkyCipher {
    /// The AES-256 key: SHA1(00000000 ‖ SK) ‖ the first 12 bytes of SHA1(00000001 ‖ SK).
    static func aesKey(sessionKey: [UInt8]) -> [UInt8] {
        let first = Array(Insecure.SHA1.hash(data: [0, 0, 0, 0] + sessionKey))
        let second = Array(Insecure.SHA1.hash(data: [0, 0, 0, 1] + sessionKey))
        return first + second.prefix(12)
    }

    /// The request's initial counter: 16 zero bytes.
    static let requestCounter = [UInt8](repeating: 0, count: 16)

    /// The initial counter of reply record p: 00000001 00000001 00000000 BE32(p << 16).
    static func replyCounter(record: Int) -> [UInt8] {
        [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0] + SkyHex.be32(UInt32(truncatingIfNeeded: record) << 16)
    }

    /// AES-256-CTR (the same call encrypts and decrypts); nil only if libcrypto fails.
    static func ctr(key: [UInt8], counter: [UInt8], _ data: [UInt8]) -> [UInt8]? {
        guard key.count == 32, counter.count == 16, let context = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_EncryptInit_ex(context, EVP_aes_256_ctr(), nil, key, counter) == 1 else { return nil }
        if data.isEmpty { return [] }
        var out = [UInt8](repeating: 0, count: data.count + 16)
        var written: Int32 = 0
        guard EVP_EncryptUpdate(context, &out, &written, data, Int32(data.count)) == 1 else { return nil }
        return Array(out.prefix(Int(written)))
    }

    private static let crcTable: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1 }
        return value
    }

    /// Reflected CRC-32 (0xEDB88320), start 0xFFFFFFFF, no final XOR.
    static func crc32NoXor(_ data: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc
    }

    /// The two CRC bytes after a record's ciphertext: the low 16 bits XOR the record index, little-endian.
    static func crc16(_ ciphertext: some Sequence<UInt8>, record: Int = 0) -> [UInt8] {
        let value = UInt16(truncatingIfNeeded: crc32NoXor(ciphertext)) ^ UInt16(truncatingIfNeeded: record)
        return [UInt8(value & 0xFF), UInt8(value >> 8)]
    }

    static func sha1(_ data: [UInt8]) -> [UInt8] { Array(Insecure.SHA1.hash(data: data)) }

    /// The login hash the password request carries: MD5(name ‖ "\nskyper\n" ‖ password), over the
    /// lowercased Skype name.
    static func loginHash(skypeName: String, password: String) -> [UInt8] {
        Array(Insecure.MD5.hash(data: Array((skypeName.lowercased() + "\nskyper\n" + password).utf8)))
    }
}

enum SkyHex {
    static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8.filter { !($0 == 32 || $0 == 10 || $0 == 13 || $0 == 9) })
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }

    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func readBE32(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        guard bytes.count >= 4 else { return nil }
        let s = bytes.startIndex
        return UInt32(bytes[s]) << 24 | UInt32(bytes[s + 1]) << 16 | UInt32(bytes[s + 2]) << 8 | UInt32(bytes[s + 3])
    }
}
