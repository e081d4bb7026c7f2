import BrokerCore

/// The login hash the server compares: MD5(name ‖ "\nskyper\n" ‖ password), with the Skype name
/// lowercased first (Skype names are case-insensitive; the product lowercased them before hashing).
/// Only ASCII letters are lowercased: Skype names are ASCII.
package func loginHash(skypeName: String, password: Secret) -> [UInt8] {
    let name = Array(skypeName.utf8).map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }
    return SkyLoginCrypto.md5(name + Array("\nskyper\n".utf8) + Array(password.exposed.utf8))
}

/// What record 2 asks for.
package enum SkyLoginRequest: Sendable, Equatable, CustomStringConvertible {
    /// Request code 0x1399: the Skype name and its 16-byte `loginHash`.
    case password(skypeName: String, hash: [UInt8])
    /// Request code 0x13A3: a `service::login.skype.com::MBI_SSL` access token, verbatim.
    case oauth(token: Secret)

    package var description: String {
        switch self {
        case .password(let name, _): "SkyLoginRequest.password(\(name), hash redacted)"
        case .oauth: "SkyLoginRequest.oauth(token redacted)"
        }
    }
}

/// The host description of record 2. The original client sent fingerprints of the machine; this
/// one never does: the values are fixed, or derived from the client key (a per-install random).
package struct SkyLoginHostInfo: Sendable, Equatable {
    /// Tag 0x31.
    package var platformID: UInt64
    /// Tag 0x33: five numbers, the last one 0 in the original client.
    package var misc: [UInt32]

    package init(platformID: UInt64, misc: [UInt32]) {
        self.platformID = platformID
        self.misc = misc
    }

    /// Values that say nothing about the host: hashes of the client modulus, which is itself random
    /// and stays the same for as long as the key does.
    package static func derived(from clientModulus: [UInt8]) -> SkyLoginHostInfo {
        let platform = SkyLoginCrypto.sha1(Array("skylogin platform id".utf8) + clientModulus)
        let misc = SkyLoginCrypto.sha1(Array("skylogin misc data".utf8) + clientModulus)
        func be32(_ b: ArraySlice<UInt8>) -> UInt32 { b.reduce(0) { $0 << 8 | UInt32($1) } }
        let base = misc.startIndex
        return SkyLoginHostInfo(
            platformID: platform.prefix(8).reduce(0) { $0 << 8 | UInt64($1) },
            misc: [
                be32(misc[base..<base + 4]), be32(misc[base + 4..<base + 8]), be32(misc[base + 8..<base + 12]),
                be32(misc[base + 12..<base + 16]), 0,
            ])
    }
}

/// The outcome of a login, from the server's reply.
package enum SkyLoginReply: Sendable, Equatable, CustomStringConvertible {
    /// Answer 4200, with the signed credentials blob (not yet opened or verified).
    case credentials([UInt8])
    /// Any other answer code.
    case refused(code: UInt32)

    package var description: String {
        switch self {
        case .credentials(let raw): "SkyLoginReply.credentials(\(raw.count) bytes)"
        case .refused(let code): "SkyLoginReply.refused(\(code))"
        }
    }
}

/// One connection's cryptographic state: the 192-byte session key SK and the AES-256 key derived
/// from it. A secret: its description is redacted.
package struct SkyLoginSession: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    package static let sessionKeySize = 192
    package static let passwordRequestCode: UInt32 = 0x1399
    package static let oauthRequestCode: UInt32 = 0x13A3
    package static let loginOK: UInt32 = 4200
    package static let version = "0/7.44.0.104"
    package static let language = "en"
    package static let partnerID: UInt64 = 999
    /// Tag 0x0E: the client's own IPv4 as a host-order number; the original client sent 127.0.0.1.
    package static let publicAddress: UInt32 = 0x7F00_0001

    /// SK: 0x01 ‖ 191 bytes.
    package let sessionKey: [UInt8]
    /// SHA1(00000000 ‖ SK) ‖ SHA1(00000001 ‖ SK)[0..<12].
    package let aesKey: [UInt8]

    /// A session with a given key (tests); it must be 192 bytes and start with 0x01.
    package init(sessionKey: [UInt8]) throws(SkyLoginError) {
        guard sessionKey.count == Self.sessionKeySize, sessionKey[0] == 0x01 else {
            throw .invalidInput("a SkyLogin session key is 192 bytes starting with 01")
        }
        self.sessionKey = sessionKey
        self.aesKey =
            SkyLoginCrypto.sha1([0, 0, 0, 0] + sessionKey) + SkyLoginCrypto.sha1([0, 0, 0, 1] + sessionKey).prefix(12)
    }

    /// A session with a fresh key from the CSPRNG.
    package static func random() throws(SkyLoginError) -> SkyLoginSession {
        try SkyLoginSession(sessionKey: [0x01] + SkyLoginCrypto.randomBytes(sessionKeySize - 1))
    }

    package var description: String { "SkyLoginSession(key redacted)" }
    package var debugDescription: String { description }

    /// SK encrypted with raw RSA (e = 65537) to the login server's 1536-bit modulus, 192 bytes.
    package func encryptedSessionKey(to sessionModulus: [UInt8]) throws(SkyLoginError) -> [UInt8] {
        guard sessionModulus.count == Self.sessionKeySize, sessionModulus[0] & 0x80 != 0 else {
            throw .invalidInput("the session modulus must be 1536 bits")
        }
        return try SkyLoginCrypto.rsaPublic(sessionKey, modulus: sessionModulus)
    }

    /// Record 1, in clear: `16 03 01 00 CD` and the list {0x09: 0x2000, 0x08: RSA(SK), 0x0C: 1}.
    package func record1(sessionModulus: [UInt8]) throws(SkyLoginError) -> [UInt8] {
        let list: [SkyLoginObject] = [
            SkyLoginObject(0x09, .number(0x2000)),
            SkyLoginObject(0x08, .blob(try encryptedSessionKey(to: sessionModulus))),
            SkyLoginObject(0x0C, .number(1)),
        ]
        return try SkyLoginRecord.frame(SkyLoginRecord.handshakeMagic, SkyLoginObjects.encode(list: list))
    }

    /// The plaintext of record 2: two lists, in the original client's order for each kind of login.
    package static func record2Plaintext(
        _ request: SkyLoginRequest, clientModulus: [UInt8], host: SkyLoginHostInfo
    ) throws(SkyLoginError) -> [UInt8] {
        guard clientModulus.count == 128 else { throw .invalidInput("the client modulus must be 128 bytes") }
        guard host.misc.count == 5 else { throw .invalidInput("the misc data is five numbers") }
        let version = SkyLoginObject(0x0D, .string(Array(version.utf8)))
        let address = SkyLoginObject(0x0E, .number(publicAddress))
        let modulus = SkyLoginObject(0x21, .blob(clientModulus))
        let platform = SkyLoginObject(0x31, .qword(host.platformID))
        let misc = SkyLoginObject(0x33, .intList(host.misc))
        let language = SkyLoginObject(0x36, .string(Array(language.utf8)))
        switch request {
        case .password(let name, let hash):
            let nameBytes = Array(name.utf8)
            guard !nameBytes.isEmpty, nameBytes.count <= 255, !nameBytes.contains(0) else {
                throw .invalidInput("a Skype name is 1 to 255 bytes without NUL")
            }
            guard hash.count == 16 else { throw .invalidInput("the login hash is 16 bytes") }
            return try SkyLoginObjects.encode([
                [
                    SkyLoginObject(0x00, .number(passwordRequestCode)), SkyLoginObject(0x02, .number(1)),
                    SkyLoginObject(0x04, .string(nameBytes)), SkyLoginObject(0x05, .blob(hash)),
                ],
                [modulus, platform, language, misc, version, address],
            ])
        case .oauth(let token):
            let tokenBytes = Array(token.exposed.utf8)
            // The record's 16-bit length bounds the token; leave room for the rest of the request.
            guard !tokenBytes.isEmpty, tokenBytes.count <= 60_000, !tokenBytes.contains(0) else {
                throw .invalidInput("the OAuth token is empty, too long or holds a NUL byte")
            }
            return try SkyLoginObjects.encode([
                [SkyLoginObject(0x00, .number(oauthRequestCode)), SkyLoginObject(0x02, .number(0x3D))],
                [
                    modulus, platform, misc, language, SkyLoginObject(0x3E, .qword(partnerID)),
                    SkyLoginObject(0x3D, .string(tokenBytes)), version, address,
                ],
            ])
        }
    }

    /// Record 2: `17 03 01 ‖ BE16(len + 2) ‖ AES-CTR(plaintext, counter 0) ‖ LE16(crc)`.
    package func record2(
        _ request: SkyLoginRequest, clientModulus: [UInt8], host: SkyLoginHostInfo
    ) throws(SkyLoginError) -> [UInt8] {
        let plain = try Self.record2Plaintext(request, clientModulus: clientModulus, host: host)
        let cipher = try SkyLoginCrypto.aes256CTR(key: aesKey, counter: [UInt8](repeating: 0, count: 16), plain)
        return try SkyLoginRecord.frame(SkyLoginRecord.dataMagic, cipher + SkyLoginCRC.trailer(cipher))
    }

    /// The counter block of reply record `index`: `00000001 00000001 00000000 BE32(index << 16)`.
    package static func replyCounter(record index: UInt16 = 0) -> [UInt8] {
        [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, UInt8(index >> 8), UInt8(index & 0xFF), 0, 0]
    }

    /// Decrypts the body of reply record 0 (ciphertext ‖ CRC16) and checks the CRC.
    package func decryptReplyBody(_ body: [UInt8]) throws(SkyLoginError) -> [UInt8] {
        guard body.count >= 2 else { throw .malformed("the reply record is too short") }
        let cipher = Array(body.dropLast(2))
        guard Array(body.suffix(2)) == SkyLoginCRC.trailer(cipher, record: 0) else {
            throw .malformed("the reply's CRC does not match")
        }
        return try SkyLoginCrypto.aes256CTR(key: aesKey, counter: Self.replyCounter(record: 0), cipher)
    }

    /// Reads one whole reply record (`17 03 01 ‖ BE16 length ‖ body`, nothing after it): the
    /// answer code (tag 0x01) and, for 4200, the credentials (tag 0x24) from any of its lists.
    package func readReply(_ record: [UInt8]) throws(SkyLoginError) -> SkyLoginReply {
        guard record.count >= SkyLoginRecord.headerSize else { throw .malformed("the reply record is too short") }
        let length = try SkyLoginRecord.bodyLength(header: Array(record.prefix(SkyLoginRecord.headerSize)))
        guard record.count == SkyLoginRecord.headerSize + length else {
            throw .malformed("the reply record's length does not match its header")
        }
        return try Self.parseReply(decryptReplyBody(Array(record.dropFirst(SkyLoginRecord.headerSize))))
    }

    /// The answer in a decrypted reply. The lists are merged, as the original client did; tags
    /// 0x01 and 0x24 may appear once each.
    package static func parseReply(_ plain: [UInt8]) throws(SkyLoginError) -> SkyLoginReply {
        let objects = try SkyLoginObjects.decodeLists(plain).flatMap { $0 }
        guard let answer = try objects.unique(0x01) else { throw .malformed("the reply has no answer code") }
        guard case .number(let code) = answer else { throw .malformed("the reply's answer code is not a number") }
        guard code == loginOK else { return .refused(code: code) }
        guard let credentials = try objects.unique(0x24) else { throw .malformed("the reply has no credentials") }
        guard case .blob(let raw) = credentials else { throw .malformed("the reply's credentials are not a blob") }
        return .credentials(raw)
    }
}
