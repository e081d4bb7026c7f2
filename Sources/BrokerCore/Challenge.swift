#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// The MSNP11 challenge answer (`PUT MSGR\CHALLENGE`), as pidgin, Miranda and pyskype compute it.
package enum Challenge {
    /// The seed's pair.
    package static let defaultProductID = "PROD0090YUAUV{2B"
    package static let defaultProductKey = "YMM8C_H7KCQ2S_KL"

    /// The 32 lowercase hex characters that answer `nonce`.
    package static func answer(
        nonce: String, productID: String = defaultProductID, productKey: String = defaultProductKey
    ) -> String {
        let digest = MD5.hash(Array((nonce + productKey).utf8))
        var h = [UInt32](repeating: 0, count: 4)
        for i in 0..<4 {
            h[i] =
                UInt32(digest[4 * i]) | UInt32(digest[4 * i + 1]) << 8 | UInt32(digest[4 * i + 2]) << 16 | UInt32(
                    digest[4 * i + 3]) << 24
        }
        let m = h.map { UInt64($0 & 0x7FFF_FFFF) }

        var s = Array((nonce + productID).utf8)
        while s.count % 8 != 0 { s.append(UInt8(ascii: "0")) }
        var c: [UInt64] = []
        for i in stride(from: 0, to: s.count, by: 4) {
            c.append(UInt64(s[i]) | UInt64(s[i + 1]) << 8 | UInt64(s[i + 2]) << 16 | UInt64(s[i + 3]) << 24)
        }

        let modulus: UInt64 = 0x7FFF_FFFF
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in stride(from: 0, to: c.count, by: 2) {
            var t = (0x0E79_A9C1 * c[i]) % modulus
            t = (m[0] * ((t + high) % modulus) + m[1]) % modulus
            high = (m[2] * ((c[i + 1] + t) % modulus) + m[3]) % modulus
            low = low + high + t
        }
        high = (high + m[1]) % modulus
        low = (low + m[3]) % modulus

        let words = [
            h[0] ^ UInt32(truncatingIfNeeded: high), h[1] ^ UInt32(truncatingIfNeeded: low),
            h[2] ^ UInt32(truncatingIfNeeded: high), h[3] ^ UInt32(truncatingIfNeeded: low),
        ]
        var out = ""
        for word in words {
            for shift in stride(from: 0, to: 32, by: 8) {
                let byte = UInt8((word >> UInt32(shift)) & 0xFF)
                out += String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
            }
        }
        return out
    }
}

/// MD5 (RFC 1321), here because the challenge needs it and the core depends on nothing.
enum MD5 {
    static let shifts: [UInt32] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
        5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
        4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
        6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ]
    static let table: [UInt32] = (0..<64).map {
        UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296))
    }

    static func hash(_ message: [UInt8]) -> [UInt8] {
        var bytes = message
        let bitLength = UInt64(message.count) * 8
        bytes.append(0x80)
        while bytes.count % 64 != 56 { bytes.append(0) }
        for i in 0..<8 { bytes.append(UInt8((bitLength >> (8 * UInt64(i))) & 0xFF)) }

        var a0: UInt32 = 0x6745_2301
        var b0: UInt32 = 0xEFCD_AB89
        var c0: UInt32 = 0x98BA_DCFE
        var d0: UInt32 = 0x1032_5476
        for chunk in stride(from: 0, to: bytes.count, by: 64) {
            var w = [UInt32](repeating: 0, count: 16)
            for i in 0..<16 {
                let j = chunk + 4 * i
                w[i] =
                    UInt32(bytes[j]) | UInt32(bytes[j + 1]) << 8 | UInt32(bytes[j + 2]) << 16 | UInt32(bytes[j + 3])
                    << 24
            }
            var a = a0
            var b = b0
            var c = c0
            var d = d0
            for i in 0..<64 {
                var f: UInt32
                let g: Int
                switch i {
                case 0..<16:
                    f = (b & c) | (~b & d)
                    g = i
                case 16..<32:
                    f = (d & b) | (~d & c)
                    g = (5 * i + 1) % 16
                case 32..<48:
                    f = b ^ c ^ d
                    g = (3 * i + 5) % 16
                default:
                    f = c ^ (b | ~d)
                    g = (7 * i) % 16
                }
                f = f &+ a &+ table[i] &+ w[g]
                a = d
                d = c
                c = b
                b = b &+ ((f << shifts[i]) | (f >> (32 - shifts[i])))
            }
            a0 = a0 &+ a
            b0 = b0 &+ b
            c0 = c0 &+ c
            d0 = d0 &+ d
        }
        return [a0, b0, c0, d0].flatMap { word in (0..<4).map { UInt8((word >> (8 * UInt32($0))) & 0xFF) } }
    }
}
