import BrokerCore
import Foundation
import LiveProtocol
import Testing

@Suite("SkyLogin keys")
struct SkyLoginKeysTests {
    typealias V = SkyLoginVectors

    @Test func skypeKeys() {
        let keys = SkyLoginKeys.skype
        #expect(keys.sessionModulus.count == 192)
        #expect(SkyLoginHex.encode(Array(keys.sessionModulus.prefix(4))) == "a8f22361")
        #expect(SkyLoginHex.encode(Array(keys.sessionModulus.suffix(4))) == "ba29700b")
        #expect(keys.signers.count == 14)
        let expected: [UInt32: (bits: Int, head: String, tail: String)] = [
            0x0000_0000: (1536, "c095de9e", "73df2ea7"), 0x0000_0001: (2048, "b8506aee", "2edc2855"),
            0x0000_1000: (2048, "bfe2db4b", "3248d6d5"), 0x0000_1001: (2048, "9f2a6038", "1ec8a919"),
            0x0000_1002: (2048, "bf137933", "5b49b209"), 0x0000_1003: (2048, "d7edafe4", "d347e341"),
            0x0000_1004: (2048, "d52af9c4", "cfb423df"), 0x0000_1005: (2048, "a4deafb4", "e7c856cb"),
            0x0000_1006: (2048, "a903c607", "dbb76b9d"), 0x0000_1007: (2048, "b4792d72", "202bd67f"),
            0x0000_2000: (1536, "a8f22361", "ba29700b"), 0x0000_2001: (1536, "aa4bc22b", "82137787"),
            0x8000_0000: (4096, "c3ac2b99", "57bd4985"), 0x8000_0001: (4096, "ba7463f3", "f7cd2de9"),
        ]
        for (index, key) in expected {
            let modulus = keys.signers[index] ?? []
            #expect(modulus.count * 8 == key.bits, "key index \(index)")
            #expect(SkyLoginHex.encode(Array(modulus.prefix(4))) == key.head, "key index \(index)")
            #expect(SkyLoginHex.encode(Array(modulus.suffix(4))) == key.tail, "key index \(index)")
        }
        // The checked initializer accepts Skype's own keys.
        #expect((try? SkyLoginKeys(sessionModulus: keys.sessionModulus, signers: keys.signers)) == keys)
    }

    @Test func keyFile() throws {
        let json = """
            {"session_modulus": "\(V.string("server.n").uppercased())",
             "signers": {"1": "\(V.string("signer.n"))", "4096": "00\(V.string("client.n"))"}}
            """
        let keys = try SkyLoginKeys(json: Data(json.utf8))
        #expect(keys.sessionModulus == V.bytes("server.n"))
        #expect(keys.signers == [1: V.bytes("signer.n"), 4096: V.bytes("client.n")])
        #expect(try SkyLoginCredentials.open(raw: V.bytes("V1.creds"), trusted: keys).skypeName == "testuser")
    }

    @Test func malformedKeyFilesAreRefused() {
        let session = V.string("server.n")
        let signer = V.string("signer.n")
        let files = [
            "",
            "[]",
            "{}",
            #"{"session_modulus": "\#(session)"}"#,
            #"{"signers": {"1": "\#(signer)"}}"#,
            #"{"session_modulus": "\#(session)", "signers": {}}"#,
            #"{"session_modulus": "\#(session)", "signers": {"1": "xyz"}}"#,
            #"{"session_modulus": "\#(session)", "signers": {"0x1": "\#(signer)"}}"#,
            #"{"session_modulus": "\#(session)", "signers": {"+1": "\#(signer)"}}"#,
            #"{"session_modulus": "\#(session)", "signers": {"4294967296": "\#(signer)"}}"#,
            #"{"session_modulus": "\#(session)", "signers": {"1": "\#(signer)", "01": "\#(signer)"}}"#,
            #"{"session_modulus": "\#(session)", "signers": {"1": "abcd"}}"#,
            #"{"session_modulus": "\#(session)", "signers": {"1": 5}}"#,
            #"{"session_modulus": "\#(signer)", "signers": {"1": "\#(signer)"}}"#,
            #"{"session_modulus": "\#(session.dropLast(2))", "signers": {"1": "\#(signer)"}}"#,
            #"{"session_modulus": "\#(session.dropLast(2))fe", "signers": {"1": "\#(signer)"}}"#,
        ]
        for file in files {
            #expect(throws: SkyLoginError.self, "\(file.prefix(60))") { try SkyLoginKeys(json: Data(file.utf8)) }
        }
        // The error says what the file should look like.
        do {
            _ = try SkyLoginKeys(json: Data("{}".utf8))
        } catch {
            #expect("\(error)".contains("session_modulus"))
        }
    }

    @Test func clientKeyGeneration() throws {
        let key = try SkyLoginClientKey.generate()
        #expect(key.modulus.count == 128)
        #expect(key.modulus[0] >= 0x80)
        var block = [UInt8](repeating: 0xBB, count: 128)
        block[0] = 0x4B
        let signature = try key.sign(block)
        #expect(signature.count == 128)
        #expect(try SkyLoginCrypto.rsaPublic(signature, modulus: key.modulus) == block)
        #expect(try SkyLoginClientKey.generate().modulus != key.modulus)
        #expect(throws: SkyLoginError.self) { try key.sign([1, 2, 3]) }
    }

    @Test func clientKeySerialization() throws {
        let key = try SkyLoginClientKey.generate()
        let serialized = key.serialized
        let restored = try SkyLoginClientKey(serialized: serialized)
        #expect(restored.modulus == key.modulus)
        var block = [UInt8](repeating: 0x11, count: 128)
        block[0] = 0x4B
        #expect(try restored.sign(block) == key.sign(block))
        // Redacted: neither the description nor the Secret's shows key material.
        for text in ["\(key)", String(reflecting: key), "\(serialized)"] {
            #expect(!text.contains(serialized.exposed.prefix(40)))
            #expect(!text.contains(SkyLoginHex.encode(Array(key.modulus.suffix(16)))))
        }
        // The vector key survives the round trip and still signs V3.
        let vectorKey = try V.clientKey
        #expect(try SkyLoginClientKey(serialized: vectorKey.serialized).sign(V.bytes("V3.block")) == V.bytes("V3.sig"))
    }

    @Test func badClientKeysAreRefused() throws {
        let n = V.bytes("client.n")
        let d = V.bytes("client.d")
        #expect(throws: SkyLoginError.self) { try SkyLoginClientKey(modulus: Array(n.dropFirst()), privateExponent: d) }
        #expect(throws: SkyLoginError.self) { try SkyLoginClientKey(modulus: n, privateExponent: d.map { $0 ^ 1 }) }
        #expect(throws: SkyLoginError.self) { try SkyLoginClientKey(modulus: n, privateExponent: []) }
        #expect(throws: SkyLoginError.self) { try SkyLoginClientKey(modulus: n, privateExponent: n) }
        #expect(throws: SkyLoginError.self) { try SkyLoginClientKey(modulus: V.bytes("signer.n"), privateExponent: d) }
        for bad in [
            "", "not base64", Data([1] + [UInt8](repeating: 0, count: 256)).base64EncodedString(),
            Data([2] + n + d).base64EncodedString(), Data([1] + n + d + [0]).base64EncodedString(),
        ] {
            #expect(throws: SkyLoginError.self) { try SkyLoginClientKey(serialized: Secret(bad)) }
        }
        #expect(try SkyLoginClientKey(serialized: Secret(Data([1] + n + d).base64EncodedString())).modulus == n)
    }
}
