import CLibcrypto

/// The primitives SkyLogin needs, all from OpenSSL's libcrypto: SHA-1, MD5, AES-256-CTR, random
/// bytes and raw (unpadded) RSA as a modular exponentiation.
package enum SkyLoginCrypto {
    /// e = 65537, big-endian.
    package static let publicExponent: [UInt8] = [0x01, 0x00, 0x01]

    package static func sha1(_ data: [UInt8]) -> [UInt8] { digest(data, EVP_sha1(), 20) }

    package static func md5(_ data: [UInt8]) -> [UInt8] { digest(data, EVP_md5(), 16) }

    private static func digest(_ data: [UInt8], _ md: OpaquePointer?, _ size: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = data.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &out, &length, md, nil) }
        // EVP_Digest fails only when the digest is not available or memory runs out.
        precondition(ok == 1 && Int(length) == size, "libcrypto digest failed")
        return Array(out.prefix(size))
    }

    /// AES-256 in CTR mode (encryption and decryption are the same), the 16-byte counter block
    /// incremented as one big-endian integer.
    package static func aes256CTR(key: [UInt8], counter: [UInt8], _ input: [UInt8]) throws(SkyLoginError)
        -> [UInt8]
    {
        guard key.count == 32, counter.count == 16 else { throw .crypto("AES-256-CTR needs a 32-byte key") }
        guard input.count < Int(Int32.max) - 32 else { throw .invalidInput("the data is too large") }
        guard let context = EVP_CIPHER_CTX_new() else { throw .crypto("no cipher context") }
        defer { EVP_CIPHER_CTX_free(context) }
        var out = [UInt8](repeating: 0, count: input.count + 32)
        var written: Int32 = 0
        var final: Int32 = 0
        let ok = out.withUnsafeMutableBufferPointer { out in
            guard let base = out.baseAddress,
                EVP_EncryptInit_ex(context, EVP_aes_256_ctr(), nil, key, counter) == 1,
                EVP_EncryptUpdate(context, base, &written, input, Int32(input.count)) == 1
            else { return false }
            return EVP_EncryptFinal_ex(context, base + Int(written), &final) == 1
        }
        guard ok else { throw .crypto("AES-256-CTR failed") }
        return Array(out.prefix(Int(written + final)))
    }

    package static func randomBytes(_ count: Int) throws(SkyLoginError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard count == 0 || RAND_bytes(&out, Int32(count)) == 1 else { throw .crypto("no random bytes") }
        return out
    }

    /// `base^exponent mod modulus`, big-endian, left-padded to the modulus' length. The base must
    /// be smaller than the modulus (raw RSA), and the modulus odd. With `secretExponent`, the
    /// constant-time exponentiation is used and the exponent is wiped from memory afterwards.
    package static func modExp(
        _ base: [UInt8], _ exponent: [UInt8], _ modulus: [UInt8], secretExponent: Bool = false
    ) throws(SkyLoginError) -> [UInt8] {
        guard !modulus.isEmpty, modulus.count <= 1024, (modulus.last ?? 0) & 1 == 1 else {
            throw .crypto("RSA needs an odd modulus of at most 8192 bits")
        }
        guard base.count <= 4096, exponent.count <= 1024 else { throw .malformed("an RSA input is too large") }
        guard let context = BN_CTX_new() else { throw .crypto("no big-number context") }
        defer { BN_CTX_free(context) }
        let a = BN_bin2bn(base, Int32(base.count), nil)
        let p = BN_bin2bn(exponent, Int32(exponent.count), nil)
        let m = BN_bin2bn(modulus, Int32(modulus.count), nil)
        let r = BN_new()
        defer {
            BN_free(a)
            if secretExponent { BN_clear_free(p) } else { BN_free(p) }
            BN_free(m)
            BN_clear_free(r)
        }
        guard let a, let p, let m, let r else { throw .crypto("out of memory") }
        guard BN_cmp(a, m) < 0 else { throw .malformed("an RSA input is not smaller than the modulus") }
        let ok =
            secretExponent
            ? BN_mod_exp_mont_consttime(r, a, p, m, context, nil) : BN_mod_exp(r, a, p, m, context)
        guard ok == 1 else { throw .crypto("modular exponentiation failed") }
        var out = [UInt8](repeating: 0, count: modulus.count)
        guard BN_bn2binpad(r, &out, Int32(out.count)) == Int32(out.count) else {
            throw .crypto("the RSA result does not fit")
        }
        return out
    }

    /// The raw RSA public operation with e = 65537.
    package static func rsaPublic(_ input: [UInt8], modulus: [UInt8]) throws(SkyLoginError) -> [UInt8] {
        try modExp(input, publicExponent, modulus)
    }

    /// Constant-time equality for hashes and signatures.
    package static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    /// Big-endian bytes without leading zeros.
    static func stripLeadingZeros(_ bytes: [UInt8]) -> [UInt8] {
        Array(bytes.drop { $0 == 0 })
    }
}
