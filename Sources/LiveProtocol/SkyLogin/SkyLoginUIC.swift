import Foundation

/// The UICs a SkyLogin client hands to the messenger server (MSNP24's `<uic>`), base64 without line
/// breaks.
package enum SkyLoginUIC {
    /// `WS-SecureConversationSESSION KEY TOKEN`, 38 bytes.
    package static let salt = Array("WS-SecureConversationSESSION KEY TOKEN".utf8)
    /// |m| = 20 + 38 + |nonce| must fit a 128-byte block with 23 bytes of padding.
    package static let maxNonceLength = 128 - 23 - 20 - 38

    /// After an OAuth login: the credentials blob itself, base64.
    package static func credentialsUIC(_ raw: [UInt8]) -> String {
        Data(raw).base64EncodedString()
    }

    /// For a Skype name and a server's nonce: `BE32(len) ‖ credentials ‖ sig`, base64, where sig is
    /// the raw private-key operation of the client key on
    /// `4B ‖ BB… ‖ BA ‖ m ‖ SHA1(m) ‖ BC`, m = SHA1(credentials ‖ salt) ‖ salt ‖ nonce.
    /// The nonce must be 1 to 47 bytes of printable ASCII.
    package static func uic(credentials raw: [UInt8], clientKey: SkyLoginClientKey, nonce: String)
        throws(SkyLoginError) -> String
    {
        let nonceBytes = Array(nonce.utf8)
        guard !nonceBytes.isEmpty, nonceBytes.count <= maxNonceLength else {
            throw .invalidInput("a UIC nonce is 1 to \(maxNonceLength) bytes, not \(nonceBytes.count)")
        }
        guard nonceBytes.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw .invalidInput("a UIC nonce is printable ASCII")
        }
        guard !raw.isEmpty, raw.count <= 0xFFFF else { throw .invalidInput("the credentials are empty or too large") }
        let m = SkyLoginCrypto.sha1(raw + salt) + salt + nonceBytes
        guard let block = SkyLoginMessageRecovery.pad(m, size: 128) else {
            throw .invalidInput("the UIC nonce is too long")
        }
        let signature = try clientKey.sign(block)
        let length = UInt32(raw.count)
        let bytes =
            [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + raw
            + signature
        return Data(bytes).base64EncodedString()
    }

    /// Base64 broken as SkyLogin's OpenSSL encoder did: a line feed after every 64 characters and
    /// after the last partial line.
    package static func skyLoginWrapped(_ base64: String) -> String {
        var out = ""
        var line = Substring(base64)
        while !line.isEmpty {
            out += line.prefix(64) + "\n"
            line = line.dropFirst(64)
        }
        return out
    }
}
