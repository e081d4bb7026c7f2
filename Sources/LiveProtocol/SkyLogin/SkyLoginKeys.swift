import Foundation

/// The keys a SkyLogin client trusts: the modulus it encrypts its session key to (the login
/// server's, 1536 bits), and the moduli that may sign credentials, by key index. All use e = 65537.
package struct SkyLoginKeys: Sendable, Equatable {
    /// Exactly 192 bytes, big-endian, top bit set.
    package let sessionModulus: [UInt8]
    /// Key index → modulus (big-endian, no leading zero bytes).
    package let signers: [UInt32: [UInt8]]

    /// Checks the moduli: the session modulus exactly 1536 bits, every signer between 1024 and
    /// 8192 bits, all odd. Leading zero bytes are dropped.
    package init(sessionModulus: [UInt8], signers: [UInt32: [UInt8]]) throws(SkyLoginError) {
        let session = SkyLoginCrypto.stripLeadingZeros(sessionModulus)
        guard session.count == 192, session[0] & 0x80 != 0, session[191] & 1 == 1 else {
            throw .invalidInput("the session modulus must be an odd 1536-bit number")
        }
        guard !signers.isEmpty else { throw .invalidInput("no credential signer is trusted") }
        var checked: [UInt32: [UInt8]] = [:]
        for (index, modulus) in signers {
            let m = SkyLoginCrypto.stripLeadingZeros(modulus)
            guard (128...1024).contains(m.count), m[m.count - 1] & 1 == 1 else {
                throw .invalidInput("the signer modulus of key index \(index) must be an odd 1024- to 8192-bit number")
            }
            checked[index] = m
        }
        self.sessionModulus = session
        self.signers = checked
    }

    private init(unchecked sessionModulus: [UInt8], signers: [UInt32: [UInt8]]) {
        self.sessionModulus = sessionModulus
        self.signers = signers
    }

    /// Skype's own keys: the session modulus SkypeModulus1536[1], and every public modulus of
    /// Skype's key table as a signer (credentials were signed under key index 1 in practice).
    package static let skype = SkyLoginKeys(
        unchecked: SkypePublicKeys.sessionModulus, signers: SkypePublicKeys.table)

    /// A realm's key file:
    /// `{"session_modulus": "<hex>", "signers": {"1": "<hex>", ...}}`, where the keys of
    /// `signers` are decimal key indexes.
    package init(json: Data) throws(SkyLoginError) {
        struct File: Decodable {
            var session_modulus: String
            var signers: [String: String]
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: json)
        } catch {
            throw .invalidInput(
                "a SkyLogin key file is {\"session_modulus\": \"<hex>\", \"signers\": {\"<key index>\": \"<hex>\"}}")
        }
        guard let session = SkyLoginHex.decode(file.session_modulus) else {
            throw .invalidInput("the session_modulus of the SkyLogin key file is not hex")
        }
        var signers: [UInt32: [UInt8]] = [:]
        for (key, value) in file.signers {
            guard !key.isEmpty, key.utf8.count <= 10, key.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                let index = UInt32(key)
            else {
                throw .invalidInput("the SkyLogin key file's signer \"\(key.prefix(20))\" is not a decimal key index")
            }
            guard signers[index] == nil else {
                throw .invalidInput("the SkyLogin key file names key index \(index) twice")
            }
            guard let modulus = SkyLoginHex.decode(value) else {
                throw .invalidInput("the SkyLogin key file's signer \(index) is not hex")
            }
            signers[index] = modulus
        }
        try self.init(sessionModulus: session, signers: signers)
    }
}

/// Hex strings of the key files and constants.
package enum SkyLoginHex {
    /// Case-insensitive, an even number of digits, nothing else (no whitespace, no 0x prefix).
    package static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = digits[i].hexValue, let low = digits[i + 1].hexValue else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    package static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
