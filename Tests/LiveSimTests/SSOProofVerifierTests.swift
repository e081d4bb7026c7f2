import Foundation
import LiveProtocol
import Testing

@testable import LiveSim

private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// The published vector: 24 zero bytes of BinarySecret, a 64-character nonce, a zero IV.
private enum Vector {
    static let secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    static let nonce = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"
    static let proof =
        "HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAAAAAAAAAAAAA8g97FIO36bgUzZf+dNYEujpQ1vT+aS1V/hS3ba9AuvwTeTvzG5XugmwsnK30g95koO50epTLsaNmJubWmXCTRS9H8zICXwBbjja2i+xRxk1taFRl5n/f2eNyuJg="
}

@Suite("livesim's MBI_KEY_OLD proof check")
struct SSOProofVerifierTests {
    @Test("the published vector: its keys, its hash, and its proof verifies")
    func vector() throws {
        let key = [UInt8](repeating: 0, count: 24)
        #expect(
            hex(SSOProofVerifier.derive(key: key, magic: SSOProofVerifier.hashMagic))
                == "51fecc58efdcf0b3a156dd7fb63b2b35525abb6e44fb28bc")
        let key3 = SSOProofVerifier.derive(key: key, magic: SSOProofVerifier.encryptionMagic)
        #expect(hex(key3) == "5fb82627f21ddea543ca19997f4ad06e16aa09a623b78152")
        let key2 = SSOProofVerifier.derive(key: key, magic: SSOProofVerifier.hashMagic)
        #expect(
            hex(SSOProofVerifier.hmac(key: key2, message: Array(Vector.nonce.utf8)))
                == "f20f7b1483b7e9b814cd97fe74d604ba3a50d6f4")
        #expect(Vector.proof.hasPrefix("HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAA"))
        #expect(Data(base64Encoded: Vector.proof)?.count == 128)
        #expect(SSOProofVerifier.check(proof: Vector.proof, binarySecret: Vector.secret, nonce: Vector.nonce) == nil)
        #expect(SSOProofVerifier.verify(proof: Vector.proof, binarySecret: Vector.secret, nonce: Vector.nonce))
    }

    @Test("a one-bit change anywhere in the blob is refused, and so is another nonce or another key")
    func oneBitChanges() throws {
        let blob = Array(try #require(Data(base64Encoded: Vector.proof)))
        let key = [UInt8](repeating: 0, count: 24)
        let nonce = Array(Vector.nonce.utf8)
        #expect(SSOProofVerifier.check(blob: blob, key: key, nonce: nonce) == nil)
        for index in blob.indices {
            for bit in [0, 7, index % 8] {
                var changed = blob
                changed[index] ^= 1 << bit
                #expect(
                    SSOProofVerifier.check(blob: changed, key: key, nonce: nonce) != nil, "byte \(index) bit \(bit)")
            }
        }
        // What each part's change is refused for.
        var header = blob
        header[8] ^= 1
        #expect(
            SSOProofVerifier.check(blob: header, key: key, nonce: nonce)
                == .badHeader(field: "cipher (3DES)", value: 0x6602))
        var hash = blob
        hash[40] ^= 0x80
        #expect(SSOProofVerifier.check(blob: hash, key: key, nonce: nonce) == .hashMismatch)
        var cipher = blob
        cipher[127] ^= 1
        #expect(SSOProofVerifier.check(blob: cipher, key: key, nonce: nonce) == .cipherMismatch)
        var iv = blob
        iv[28] ^= 1
        #expect(SSOProofVerifier.check(blob: iv, key: key, nonce: nonce) == .cipherMismatch)

        var otherNonce = nonce
        otherNonce[63] ^= 1
        #expect(SSOProofVerifier.check(blob: blob, key: key, nonce: otherNonce) == .hashMismatch)
        var otherKey = key
        otherKey[23] = 1
        #expect(SSOProofVerifier.check(blob: blob, key: otherKey, nonce: nonce) == .hashMismatch)
        #expect(SSOProofVerifier.check(blob: Array(blob.dropLast(8)), key: key, nonce: nonce) != nil)
        #expect(SSOProofVerifier.check(blob: blob + [0], key: key, nonce: nonce) != nil)
        #expect(SSOProofVerifier.check(blob: Array(blob.prefix(20)), key: key, nonce: nonce) == .tooShort(20))
        #expect(
            SSOProofVerifier.check(proof: "not base64!", binarySecret: Vector.secret, nonce: Vector.nonce) == .notBase64
        )
        #expect(SSOProofVerifier.check(proof: Vector.proof, binarySecret: "AAAA", nonce: Vector.nonce) == .badSecret)
    }

    @Test("the client's proof for the vector is the published one, and livesim accepts it")
    func clientAgrees() throws {
        let key = [UInt8](repeating: 0, count: 24)
        let proof = try MBIKeyOldProof.proof(
            key: key, nonce: Array(Vector.nonce.utf8), iv: [UInt8](repeating: 0, count: 8))
        #expect(proof == Vector.proof)
    }

    @Test(
        "property: for random keys and printable nonces of 1...256 bytes, the client's proof verifies, and not for another nonce"
    )
    func property() throws {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<200 {
            let key = (0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let length = round < 8 ? [1, 7, 8, 9, 63, 64, 65, 256][round] : Int.random(in: 1...256, using: &generator)
            let nonce = (0..<length).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
            let iv = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let blob = try MBIKeyOldProof.blob(key: key, nonce: nonce, iv: iv)
            #expect(blob.count == 28 + 8 + 20 + (length / 8 + 1) * 8)
            let failure = SSOProofVerifier.check(blob: blob, key: key, nonce: nonce)
            #expect(
                failure == nil,
                "key \(hex(key)) nonce \(String(decoding: nonce, as: UTF8.self)): \(failure.map { "\($0)" } ?? "")")

            var other = nonce
            if Bool.random(using: &generator) {
                let index = Int.random(in: 0..<other.count, using: &generator)
                other[index] = other[index] == 0x7E ? 0x20 : other[index] + 1
            } else {
                other = other.count > 1 && Bool.random(using: &generator) ? Array(other.dropLast()) : other + [0x41]
            }
            #expect(SSOProofVerifier.check(blob: blob, key: key, nonce: other) != nil, "another nonce verified")

            if round % 50 == 0 {
                let text = String(decoding: nonce, as: UTF8.self)
                let proof = Data(blob).base64EncodedString()
                let secret = Data(key).base64EncodedString()
                #expect(SSOProofVerifier.verify(proof: proof, binarySecret: secret, nonce: text))
            }
        }
    }
}
