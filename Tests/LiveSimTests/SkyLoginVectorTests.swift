import Foundation
import Testing

@testable import LiveSim

/// The vectors' keys: the test login server, the test signer and the client.
enum SkyVectorKeys {
    static let server = SkyRSAKey(modulusHex: SkyVectors.serverN, privateExponentHex: SkyVectors.serverD)!
    static let signer = SkyRSAKey(modulusHex: SkyVectors.signerN, privateExponentHex: SkyVectors.signerD)!
    static let client = SkyRSAKey(modulusHex: SkyVectors.clientN, privateExponentHex: SkyVectors.clientD)!
}

@Suite("SkyLogin: livesim's half of the notes' vectors, byte for byte")
struct SkyLoginVectorTests {
    let bytes = SkyVectors.bytes

    @Test("check values: the CRC without final XOR, the login hash over the lowercased name, varints")
    func checkValues() throws {
        #expect(SkyCipher.crc32NoXor(Array("123456789".utf8)) == 0x340B_C6D9)
        let hash = SkyCipher.loginHash(skypeName: "testuser", password: "secret")
        #expect(SkyHex.encode(hash) == "043577a7ecdb5b9c2a4bfeabe4ff2141")
        #expect(SkyCipher.loginHash(skypeName: "TestUser", password: "secret") == hash)
        let varints: [(UInt32, [UInt8])] = [
            (0x2000, [0x80, 0x40]), (0x1399, [0x99, 0x27]), (4200, [0xE8, 0x20]),
            (0x7F00_0001, [0x81, 0x80, 0x80, 0xF8, 0x07]), (0, [0]), (UInt32.max, [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
        ]
        for (value, encoded) in varints {
            #expect(SkyObjects.varint(value) == encoded)
            var reader = SkyObjects.Reader(bytes: encoded)
            #expect(try reader.varint() == value)
        }
    }

    @Test("V4: record 1 opens to the session key with the test server key, record 2 to the request")
    func openV4() throws {
        let record1 = bytes(SkyVectors.v4Record1)
        #expect(Array(record1.prefix(5)) == [0x16, 0x03, 0x01, 0x00, 0xCD])
        let sk = try SkyRecord.openRecord1(body: Array(record1.dropFirst(5)), sessionKey: SkyVectorKeys.server)
        #expect(sk == bytes(SkyVectors.v4SessionKey))
        let aesKey = SkyCipher.aesKey(sessionKey: sk)
        #expect(aesKey == bytes(SkyVectors.v4AESKey))

        let record2 = bytes(SkyVectors.v4Record2)
        #expect(Array(record2.prefix(5)) == [0x17, 0x03, 0x01, 0x00, 0xEC])
        let plain = try SkyRecord.openRecord2(body: Array(record2.dropFirst(5)), aesKey: aesKey)
        #expect(plain == bytes(SkyVectors.v4Record2Plain))
        let request = try SkyLoginRequest.parse(plain)
        #expect(request.method == .password(name: "testuser", hash: bytes("043577a7ecdb5b9c2a4bfeabe4ff2141")))
        #expect(request.modulus == SkyVectorKeys.client.modulus)
        #expect(request.code == 0x1399)
        #expect(request.version == "0/7.44.0.104")

        // The OAuth request is read as OAuth because tag 0x3D is present.
        let oauth = try SkyLoginRequest.parse(bytes(SkyVectors.v4OAuthRecord2Plain))
        #expect(oauth.method == .oauth(token: "t=EXAMPLE-MBI_SSL-TOKEN"))
        #expect(oauth.code == 0x13A3)
        #expect(oauth.modulus == SkyVectorKeys.client.modulus)

        // One flipped bit of ciphertext fails the CRC; a record 1 for another key does not open.
        var flipped = Array(record2.dropFirst(5))
        flipped[10] ^= 0x01
        #expect(throws: SkyObjects.Malformed.self) { try SkyRecord.openRecord2(body: flipped, aesKey: aesKey) }
        let other = SkyRSAKey(modulus: SkyVectorKeys.server.modulus, privateExponent: SkyVectorKeys.signer.modulus)
        #expect(throws: SkyObjects.Malformed.self) {
            try SkyRecord.openRecord1(body: Array(record1.dropFirst(5)), sessionKey: other)
        }
    }

    @Test("V1: the credentials for testuser, expiry 35000000 min, under the vector signer with key index 1")
    func produceV1() throws {
        let fields = SkyCredentials.Fields(
            skypeName: "testuser", modulus: SkyVectorKeys.client.modulus, expiryMinutes: 35_000_000)
        let message = SkyCredentials.message(fields)
        #expect(message == bytes(SkyVectors.v1CredPlain))
        #expect(SkyCredentials.pad(message, size: 256) == bytes(SkyVectors.v1CredBlock))
        let credentials = try #require(SkyCredentials.sign(fields, signer: SkyVectorKeys.signer, keyIndex: 1))
        #expect(credentials == bytes(SkyVectors.v1Creds))
        #expect(credentials.count == 260)
        #expect(Data(credentials).base64EncodedString() == SkyVectors.unwrapped(SkyVectors.v2Base64))
        #expect(fields.expiresAt == Date(timeIntervalSince1970: 2_100_000_000))

        #expect(try SkyCredentials.open(credentials, signers: [1: SkyVectorKeys.signer]) == fields)
        #expect(throws: SkyCredentials.Invalid.self) {
            try SkyCredentials.open(credentials, signers: [7: SkyVectorKeys.signer])
        }
        var tampered = credentials
        tampered[100] ^= 0x40
        #expect(throws: SkyCredentials.Invalid.self) {
            try SkyCredentials.open(tampered, signers: [1: SkyVectorKeys.signer])
        }
    }

    @Test("V5/V6: the success and failure replies, record 0 under the V4 session key")
    func produceV5V6() throws {
        let aesKey = SkyCipher.aesKey(sessionKey: bytes(SkyVectors.v4SessionKey))
        let success = SkyRecord.replyPlain(code: 4200, credentials: bytes(SkyVectors.v1Creds))
        #expect(success == bytes(SkyVectors.v5ReplyPlain))
        #expect(SkyRecord.sealReply(success, aesKey: aesKey) == bytes(SkyVectors.v5ReplyRecord))
        let failure = SkyRecord.replyPlain(code: 4201, credentials: nil)
        #expect(failure == bytes(SkyVectors.v6FailPlain))
        #expect(SkyRecord.sealReply(failure, aesKey: aesKey) == bytes(SkyVectors.v6FailRecord))
        let outcome = SkyLoginService.Outcome(code: 4200, credentials: bytes(SkyVectors.v1Creds))
        #expect(SkyLoginService.reply(outcome, aesKey: aesKey) == bytes(SkyVectors.v5ReplyRecord))
    }

    @Test("V3: the UIC verifies for its nonce, wrapped or not, and is refused for another nonce")
    func verifyV3() throws {
        let signers: [UInt32: SkyRSAKey] = [1: SkyVectorKeys.signer]
        let nonce = SkyVectors.nonce
        #expect(
            SkyCredentials.uicMessage(credentials: bytes(SkyVectors.v1Creds), nonce: nonce) == bytes(SkyVectors.v3M))
        #expect(SkyVectorKeys.client.publicOperation(bytes(SkyVectors.v3Sig)) == bytes(SkyVectors.v3Block))
        for text in [SkyVectors.unwrapped(SkyVectors.v3Base64), SkyVectors.v3Base64Wrapped, SkyVectors.v3Base64] {
            let uic = try #require(SkyCredentials.decodeBase64(text))
            #expect(uic == bytes(SkyVectors.v3UICBytes))
            let (credentials, fields) = try SkyCredentials.verifyUIC(uic, nonce: nonce, signers: signers)
            #expect(credentials == bytes(SkyVectors.v1Creds))
            #expect(fields.skypeName == "testuser")
            #expect(fields.expiryMinutes == 35_000_000)
        }
        let uic = bytes(SkyVectors.v3UICBytes)
        for other in ["5d679ff8-5bf4-fdff-ab76-d17c91413d79", "", nonce.uppercased(), nonce + " "] {
            #expect(throws: SkyCredentials.Invalid.self) {
                try SkyCredentials.verifyUIC(uic, nonce: other, signers: signers)
            }
        }
        #expect(throws: SkyCredentials.Invalid.self) { try SkyCredentials.verifyUIC(uic, nonce: nonce, signers: [:]) }
        #expect(throws: SkyCredentials.Invalid.self) {
            try SkyCredentials.verifyUIC(Array(uic.dropLast()), nonce: nonce, signers: signers)
        }
    }

    @Test("hostile input: truncated, oversized, deep and random lists and records are refused, never a crash")
    func hostileInput() {
        let cases: [[UInt8]] = [
            [0x41], [0x41, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], [0x41, 0x01, 0x04, 0x05, 0xFF, 0xFF, 0xFF, 0x7F],
            [0x41, 0x01, 0x00, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], [0x41, 0x01, 0x03, 0x04, 0x61, 0x62],
            [0x42, 0x01], [0x41, 0x01, 0x07, 0x01, 0x00], [0x41, 0x01, 0x06, 0x33, 0xFF, 0xFF, 0x03],
            [0x41, 0x01, 0x01, 0x31, 0x00], Array(repeating: 0x41, count: 4) + [0x01, 0x05, 0x01],
            [0x41, 0x01] + Array([0x05, 0x01, 0x41, 0x01].repeated(40)) + [0x00, 0x01, 0x01],
        ]
        for input in cases {
            #expect(throws: SkyObjects.Malformed.self) { try SkyObjects.decodeLists(input) }
        }
        var generator = SystemRandomNumberGenerator()
        for round in 0..<3000 {
            let count = Int.random(in: 0...300, using: &generator)
            var input = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if round % 2 == 0, !input.isEmpty { input[0] = 0x41 }
            _ = try? SkyObjects.decodeLists(input)
            _ = try? SkyLoginRequest.parse(input)
            _ = SkyCredentials.unpad(input)
            _ = try? SkyCredentials.splitUIC(input)
            _ = try? SkyCredentials.open(input, signers: [1: SkyVectorKeys.signer])
            if round % 50 == 0 {
                _ = try? SkyRecord.openRecord1(body: input, sessionKey: SkyVectorKeys.server)
            }
        }
        // An encrypted session key at or above the modulus does not open.
        let tooBig = [UInt8](repeating: 0xFF, count: SkyVectorKeys.server.size)
        #expect(SkyVectorKeys.server.privateOperation(tooBig) == nil)
    }
}

/// The public keys livesim writes, read back the way a realm would.
enum SkyKeysFile {
    static func parse(_ json: String) throws -> (session: SkyRSAKey, signers: [UInt32: SkyRSAKey]) {
        struct File: Decodable {
            var sessionModulus: String
            var signers: [String: String]

            enum CodingKeys: String, CodingKey {
                case sessionModulus = "session_modulus"
                case signers
            }
        }
        let file = try JSONDecoder().decode(File.self, from: Data(json.utf8))
        var signers: [UInt32: SkyRSAKey] = [:]
        for (index, hex) in file.signers {
            let key: SkyRSAKey = try #require(SkyRSAKey(modulusHex: hex))
            signers[try #require(UInt32(index))] = key
        }
        return (try #require(SkyRSAKey(modulusHex: file.sessionModulus)), signers)
    }
}

extension Array {
    fileprivate func repeated(_ times: Int) -> [Element] { (0..<times).flatMap { _ in self } }
}
