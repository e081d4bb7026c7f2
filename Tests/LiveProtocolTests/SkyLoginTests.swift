import BrokerCore
import Foundation
import LiveProtocol
import Testing

/// The broker's half of the SkyLogin vectors, byte for byte.
@Suite("SkyLogin vectors")
struct SkyLoginVectorTests {
    typealias V = SkyLoginVectors

    @Test func checkValues() {
        #expect(SkyLoginCRC.crc32NoXor(Array("123456789".utf8)) == 0x340B_C6D9)
        #expect(V.string("crc32_noxor('123456789')") == "340bc6d9")
        #expect(
            loginHash(skypeName: "testuser", password: Secret("secret")) == V.bytes("md5('testuser\\nskyper\\nsecret')")
        )
        // Skype names are case-insensitive: the name is lowercased before hashing.
        #expect(
            loginHash(skypeName: "TestUser", password: Secret("secret")) == V.bytes("md5('testuser\\nskyper\\nsecret')")
        )
        #expect(
            loginHash(skypeName: "testuser", password: Secret("Secret")) != V.bytes("md5('testuser\\nskyper\\nsecret')")
        )
    }

    @Test func v4SessionKeyAndRecord1() throws {
        let session = try SkyLoginSession(sessionKey: V.bytes("V4.session_key"))
        #expect(session.aesKey == V.bytes("V4.aes256_key"))
        #expect(try session.encryptedSessionKey(to: V.bytes("server.n")) == V.bytes("V4.rsa_sk_testserver"))
        #expect(
            try session.encryptedSessionKey(to: SkyLoginKeys.skype.sessionModulus) == V.bytes("V4.rsa_sk_skype_1536_1"))
        #expect(try session.record1(sessionModulus: V.bytes("server.n")) == V.bytes("V4.record1"))
        #expect(try session.record1(sessionModulus: V.testKeys.sessionModulus).count == 5 + 0xCD)
        #expect(!"\(session)".contains(SkyLoginHex.encode(Array(session.sessionKey.prefix(8)))))
    }

    @Test func v4PasswordRecord2() throws {
        let session = try SkyLoginSession(sessionKey: V.bytes("V4.session_key"))
        let request = SkyLoginRequest.password(
            skypeName: "testuser", hash: loginHash(skypeName: "testuser", password: Secret("secret")))
        let plain = try SkyLoginSession.record2Plaintext(request, clientModulus: V.bytes("client.n"), host: V.host)
        #expect(plain == V.bytes("V4.record2_plain"))
        let record = try session.record2(request, clientModulus: V.bytes("client.n"), host: V.host)
        #expect(record == V.bytes("V4.record2"))
        #expect(Array(record[5..<record.count - 2]) == V.bytes("V4.record2_cipher"))
        #expect(Array(record.suffix(2)) == V.bytes("V4.record2_crc"))
        #expect(!"\(request)".contains("0435"))
    }

    @Test func v4OAuthRecord2() throws {
        let request = SkyLoginRequest.oauth(token: Secret("t=EXAMPLE-MBI_SSL-TOKEN"))
        let plain = try SkyLoginSession.record2Plaintext(request, clientModulus: V.bytes("client.n"), host: V.host)
        #expect(plain == V.bytes("V4.oauth_record2_plain"))
        #expect(!"\(request)".contains("EXAMPLE"))
    }

    @Test func v1OpensAndVerifies() throws {
        let credentials = try SkyLoginCredentials.open(raw: V.bytes("V1.creds"), trusted: V.testKeys)
        #expect(credentials.keyIndex == 1)
        #expect(credentials.skypeName == "testuser")
        #expect(credentials.modulus == V.bytes("client.n"))
        #expect(credentials.expiresAt == V.v1Expiry)
        #expect(credentials.raw.count == Int(V.string("V1.creds_len")))
        try credentials.verify(now: V.before, expectedModulus: V.bytes("client.n"), expectedName: "TestUser")
        try credentials.verify(now: V.before, expectedModulus: V.bytes("client.n"), expectedName: nil)
        #expect(!"\(credentials)".contains("7349b9d5"))
    }

    @Test func v1VerificationFailures() throws {
        let credentials = try SkyLoginCredentials.open(raw: V.bytes("V1.creds"), trusted: V.testKeys)
        let n = V.bytes("client.n")
        let other = try SkyLoginClientKey.generate().modulus
        #expect(throws: SkyLoginError.self) {
            try credentials.verify(now: V.before, expectedModulus: other, expectedName: "testuser")
        }
        #expect(throws: SkyLoginError.self) {
            try credentials.verify(now: V.v1Expiry, expectedModulus: n, expectedName: "testuser")
        }
        #expect(throws: SkyLoginError.self) {
            try credentials.verify(
                now: V.v1Expiry.addingTimeInterval(-30), expectedModulus: n, expectedName: "testuser", margin: 60)
        }
        #expect(throws: SkyLoginError.self) {
            try credentials.verify(now: V.before, expectedModulus: n, expectedName: "someoneelse")
        }
    }

    @Test func untrustedKeyIndexIsRefused() throws {
        let keys = try SkyLoginKeys(sessionModulus: V.bytes("server.n"), signers: [2: V.bytes("signer.n")])
        #expect(throws: SkyLoginError.untrustedKeyIndex(1)) {
            try SkyLoginCredentials.open(raw: V.bytes("V1.creds"), trusted: keys)
        }
        // Skype's real key 1 does not open the test signer's blob.
        #expect(throws: SkyLoginError.self) {
            try SkyLoginCredentials.open(raw: V.bytes("V1.creds"), trusted: .skype)
        }
        #expect("\(SkyLoginError.untrustedKeyIndex(7))" == "untrusted key index 7")
    }

    @Test func tamperedCredentialsAreRefused() throws {
        let raw = V.bytes("V1.creds")
        for position in [4, 5, 100, 200, raw.count - 1] {
            var tampered = raw
            tampered[position] ^= 0x01
            #expect(throws: SkyLoginError.self) { try SkyLoginCredentials.open(raw: tampered, trusted: V.testKeys) }
        }
        // A signature no smaller than the modulus, and blobs of the wrong size.
        #expect(throws: SkyLoginError.self) {
            try SkyLoginCredentials.open(raw: [0, 0, 0, 1] + [UInt8](repeating: 0xFF, count: 256), trusted: V.testKeys)
        }
        for bad in [Array(raw.dropLast()), raw + [0], Array(raw.prefix(3)), []] {
            #expect(throws: SkyLoginError.self) { try SkyLoginCredentials.open(raw: bad, trusted: V.testKeys) }
        }
    }

    @Test func credentialsPadding() throws {
        let plain = V.bytes("V1.cred_plain")
        #expect(SkyLoginMessageRecovery.pad(plain, size: 256) == V.bytes("V1.cred_block"))
        #expect(try SkyLoginMessageRecovery.unpad(V.bytes("V1.cred_block")) == plain)
        #expect(SkyLoginMessageRecovery.pad([UInt8](repeating: 1, count: 106), size: 128) == nil)
    }

    @Test func v2CredentialsUIC() {
        #expect(SkyLoginUIC.credentialsUIC(V.bytes("V1.creds")) == V.string("V2.b64"))
        #expect(SkyLoginUIC.skyLoginWrapped(V.string("V2.b64")) == V.string("V2.b64_openssl_wrapped"))
    }

    @Test func v3UIC() throws {
        let key = try V.clientKey
        let nonce = "5d679ff8-5bf4-fdff-ab76-d17c91413d78"
        #expect(SkyLoginMessageRecovery.pad(V.bytes("V3.m"), size: 128) == V.bytes("V3.block"))
        #expect(try key.sign(V.bytes("V3.block")) == V.bytes("V3.sig"))
        let uic = try SkyLoginUIC.uic(credentials: V.bytes("V1.creds"), clientKey: key, nonce: nonce)
        #expect(uic == V.string("V3.b64"))
        #expect(Data(base64Encoded: uic).map([UInt8].init) == V.bytes("V3.uic_bytes"))
        #expect(SkyLoginUIC.skyLoginWrapped(uic) == V.string("V3.b64_openssl_wrapped"))
    }

    @Test func nonceLimits() throws {
        let key = try V.clientKey
        let creds = V.bytes("V1.creds")
        let longest = String(repeating: "n", count: 47)
        let uic = try SkyLoginUIC.uic(credentials: creds, clientKey: key, nonce: longest)
        // The signature opens with the public key to m = SHA1(creds ‖ salt) ‖ salt ‖ nonce.
        let bytes = try #require(Data(base64Encoded: uic).map([UInt8].init))
        #expect(bytes.count == 4 + creds.count + 128)
        let block = try SkyLoginCrypto.rsaPublic(Array(bytes.suffix(128)), modulus: key.modulus)
        #expect(block.prefix(2) == [0x4B, 0xBA])
        let m = try SkyLoginMessageRecovery.unpad(block)
        #expect(m == SkyLoginCrypto.sha1(creds + SkyLoginUIC.salt) + SkyLoginUIC.salt + Array(longest.utf8))

        for bad in [
            String(repeating: "n", count: 48), String(repeating: "n", count: 300), "", "nonce\n", "nonce\u{0}", "é",
        ] {
            #expect(throws: SkyLoginError.self) { try SkyLoginUIC.uic(credentials: creds, clientKey: key, nonce: bad) }
        }
    }

    @Test func v5RepliesWithCredentials() throws {
        let session = try SkyLoginSession(sessionKey: V.bytes("V4.session_key"))
        let record = V.bytes("V5.reply_record")
        #expect(try session.decryptReplyBody(Array(record.dropFirst(5))) == V.bytes("V5.reply_plain"))
        #expect(Array(record[5..<record.count - 2]) == V.bytes("V5.reply_cipher"))
        #expect(Array(record.suffix(2)) == V.bytes("V5.reply_crc"))
        let reply = try session.readReply(record)
        #expect(reply == .credentials(V.bytes("V1.creds")))
        guard case .credentials(let raw) = reply else { return }
        let credentials = try SkyLoginCredentials.open(raw: raw, trusted: V.testKeys)
        try credentials.verify(now: V.before, expectedModulus: V.bytes("client.n"), expectedName: "testuser")
    }

    @Test func v6RefusesWith4201() throws {
        let session = try SkyLoginSession(sessionKey: V.bytes("V4.session_key"))
        let record = V.bytes("V6.fail_record")
        #expect(try session.decryptReplyBody(Array(record.dropFirst(5))) == V.bytes("V6.fail_plain"))
        #expect(try session.readReply(record) == .refused(code: 4201))
    }

    @Test func brokenRepliesThrow() throws {
        let session = try SkyLoginSession(sessionKey: V.bytes("V4.session_key"))
        let record = V.bytes("V5.reply_record")
        // Every truncation, and every extension.
        for length in 0..<record.count {
            #expect(throws: SkyLoginError.self) { try session.readReply(Array(record.prefix(length))) }
        }
        #expect(throws: SkyLoginError.self) { try session.readReply(record + [0]) }
        // A flipped bit anywhere fails the CRC or the framing.
        for position in stride(from: 0, to: record.count, by: 7) {
            var broken = record
            broken[position] ^= 0x10
            #expect(throws: SkyLoginError.self) { try session.readReply(broken) }
        }
        // Another session's key decrypts to garbage.
        let other = try SkyLoginSession.random()
        #expect(throws: SkyLoginError.self) { try other.readReply(record) }
        // Random records with a valid header and CRC: they may only throw or parse, never trap.
        var generator = SplitMix(seed: 42)
        for _ in 0..<2000 {
            let count = Int(generator.next() % 300)
            let cipher = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let body = cipher + SkyLoginCRC.trailer(cipher)
            let framed = try SkyLoginRecord.frame(SkyLoginRecord.dataMagic, body)
            _ = try? session.readReply(framed)
        }
    }

    @Test func repliesNeedAnAnswer() throws {
        func reply(_ lists: [[SkyLoginObject]]) throws -> SkyLoginReply {
            try SkyLoginSession.parseReply(SkyLoginObjects.encode(lists))
        }
        #expect(try reply([[SkyLoginObject(1, .number(4201))]]) == .refused(code: 4201))
        #expect(
            try reply([[SkyLoginObject(1, .number(4200))], [SkyLoginObject(0x24, .blob([1, 2]))]])
                == .credentials([1, 2]))
        #expect(throws: SkyLoginError.self) { try reply([[SkyLoginObject(1, .number(4200))]]) }
        #expect(throws: SkyLoginError.self) { try reply([[SkyLoginObject(0x24, .blob([1]))]]) }
        #expect(throws: SkyLoginError.self) { try reply([[SkyLoginObject(1, .string([0x41]))]]) }
        #expect(throws: SkyLoginError.self) {
            try reply([[SkyLoginObject(1, .number(4200))], [SkyLoginObject(0x24, .number(1))]])
        }
        #expect(throws: SkyLoginError.self) {
            try reply([[SkyLoginObject(1, .number(4200))], [SkyLoginObject(1, .number(4200))]])
        }
        #expect(throws: SkyLoginError.self) { try SkyLoginSession.parseReply([]) }
    }

    @Test func sessionKeys() throws {
        let session = try SkyLoginSession.random()
        #expect(session.sessionKey.count == 192 && session.sessionKey[0] == 1)
        #expect(try SkyLoginSession.random().sessionKey != session.sessionKey)
        #expect(throws: SkyLoginError.self) { try SkyLoginSession(sessionKey: [UInt8](repeating: 2, count: 192)) }
        #expect(throws: SkyLoginError.self) { try SkyLoginSession(sessionKey: [1] + [UInt8](repeating: 2, count: 190)) }
    }

    @Test func requestsRefuseUnsendableValues() throws {
        let n = V.bytes("client.n")
        let hash = [UInt8](repeating: 1, count: 16)
        for request in [
            SkyLoginRequest.password(skypeName: "", hash: hash), .password(skypeName: "a\u{0}b", hash: hash),
            .password(skypeName: String(repeating: "a", count: 256), hash: hash),
            .password(skypeName: "testuser", hash: [1]), .oauth(token: Secret("")), .oauth(token: Secret("a\u{0}")),
            .oauth(token: Secret(String(repeating: "t", count: 70_000))),
        ] {
            #expect(throws: SkyLoginError.self) {
                try SkyLoginSession.record2Plaintext(request, clientModulus: n, host: V.host)
            }
        }
        #expect(throws: SkyLoginError.self) {
            try SkyLoginSession.record2Plaintext(.oauth(token: Secret("t")), clientModulus: [1], host: V.host)
        }
    }

    @Test func derivedHostInfoIsStableAndKeyed() throws {
        let a = SkyLoginHostInfo.derived(from: V.bytes("client.n"))
        #expect(a == SkyLoginHostInfo.derived(from: V.bytes("client.n")))
        #expect(a.misc.count == 5 && a.misc[4] == 0)
        #expect(a != SkyLoginHostInfo.derived(from: try SkyLoginClientKey.generate().modulus))
    }
}

/// A small deterministic generator for the hostile-input tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The SkyLogin test vectors (`Fixtures/skylogin-vectors.json`), by their names in the notes.
enum SkyLoginVectors {
    /// Every vector as text (numbers in decimal).
    static let all: [String: String] = {
        guard
            let url = Bundle.module.url(
                forResource: "skylogin-vectors", withExtension: "json", subdirectory: "Fixtures"),
            let data = try? Data(contentsOf: url),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return object.compactMapValues { ($0 as? String) ?? ($0 as? Int).map(String.init) }
    }()

    static func string(_ name: String) -> String {
        guard let value = all[name] else {
            Issue.record("no vector \(name)")
            return ""
        }
        return value
    }

    static func bytes(_ name: String) -> [UInt8] {
        guard let bytes = SkyLoginHex.decode(string(name)) else {
            Issue.record("vector \(name) is not hex")
            return []
        }
        return bytes
    }

    static var clientKey: SkyLoginClientKey {
        get throws { try SkyLoginClientKey(modulus: bytes("client.n"), privateExponent: bytes("client.d")) }
    }

    /// The vectors' signer under key index 1, and their login server's session modulus.
    static var testKeys: SkyLoginKeys {
        get throws { try SkyLoginKeys(sessionModulus: bytes("server.n"), signers: [1: bytes("signer.n")]) }
    }

    static let host = SkyLoginHostInfo(
        platformID: 0x0123_4567_89AB_CDEF, misc: [0x1111_1111, 0x2222_2222, 0x3333_3333, 0x4444_4444, 0])

    /// 35000000 minutes after 1970: 2036-07-18 13:20 UTC.
    static let v1Expiry = Date(timeIntervalSince1970: 35_000_000 * 60)
    static let before = Date(timeIntervalSince1970: 1_780_000_000)
}
