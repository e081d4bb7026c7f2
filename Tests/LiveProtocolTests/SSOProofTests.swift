import BrokerCore
import Foundation
import LiveProtocol
import Testing

@Suite("MBI_KEY_OLD proof")
struct SSOProofTests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    /// The published vector: 24 zero bytes as the BinarySecret, a 64-byte nonce, a zero IV.
    static let secret = [UInt8](repeating: 0, count: 24)
    static let nonce = Array("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v".utf8)
    static let iv = [UInt8](repeating: 0, count: 8)

    @Test func keysAreDerivedAsPublished() {
        #expect(
            Self.hex(MBIKeyOldProof.derive(Self.secret, Array("WS-SecureConversationSESSION KEY HASH".utf8)))
                == "51fecc58efdcf0b3a156dd7fb63b2b35525abb6e44fb28bc")
        #expect(
            Self.hex(MBIKeyOldProof.derive(Self.secret, Array("WS-SecureConversationSESSION KEY ENCRYPTION".utf8)))
                == "5fb82627f21ddea543ca19997f4ad06e16aa09a623b78152")
    }

    @Test func theVectorIsReproduced() throws {
        let blob = try MBIKeyOldProof.blob(key: Self.secret, nonce: Self.nonce, iv: Self.iv)
        #expect(blob.count == 128)
        #expect(Self.hex(Array(blob[36..<56])) == "f20f7b1483b7e9b814cd97fe74d604ba3a50d6f4")
        #expect(
            try MBIKeyOldProof.proof(key: Self.secret, nonce: Self.nonce, iv: Self.iv)
                == "HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAAAAAAAAAAAAA8g97FIO36bgUzZf+dNYEujpQ1vT+aS1V/hS3ba9AuvwTeTvzG5XugmwsnK30g95koO50epTLsaNmJubWmXCTRS9H8zICXwBbjja2i+xRxk1taFRl5n/f2eNyuJg="
        )
    }

    @Test func aSixtyFourByteNoncePadsWithEightEights() throws {
        // The cipher is 72 bytes: the nonce and one whole block of 0x08, as every client sent.
        let blob = try MBIKeyOldProof.blob(key: Self.secret, nonce: Self.nonce, iv: Self.iv)
        #expect(Array(blob[24..<28]) == [72, 0, 0, 0])
        #expect(Array(blob[56...]).count == 72)
    }

    @Test(arguments: [1, 7, 8, 9, 63, 65, 256])
    func otherNonceLengthsArePaddedToTheNextBlock(length: Int) throws {
        let nonce = [UInt8](repeating: 0x41, count: length)
        let blob = try MBIKeyOldProof.blob(key: Self.secret, nonce: nonce, iv: Self.iv)
        let cipherLength = (length / 8 + 1) * 8
        #expect(blob.count == 28 + 8 + 20 + cipherLength)
        #expect(Int(blob[24]) | Int(blob[25]) << 8 == cipherLength)
    }

    @Test func theRandomIVIsInTheProofAndChangesIt() throws {
        let secret = Secret(Data(Self.secret).base64EncodedString())
        let nonce = String(decoding: Self.nonce, as: UTF8.self)
        let one = try MBIKeyOldProof.proof(binarySecret: secret, nonce: nonce)
        let two = try MBIKeyOldProof.proof(binarySecret: secret, nonce: nonce)
        #expect(one != two)
        #expect(one.hasPrefix("HAAAAAEAAAADZgAABIAAAAgAAAAUAAAASAAAA"))
        // The same IV gives the same proof: the IV is the only randomness.
        let blob = try #require(Data(base64Encoded: one))
        let iv = Array(blob[28..<36])
        #expect(try MBIKeyOldProof.proof(key: Self.secret, nonce: Self.nonce, iv: iv) == one)
    }

    @Test func aSecretThatIsNotBase64IsAnUpstreamError() {
        #expect(throws: BrokerError.self) { try MBIKeyOldProof.proof(binarySecret: Secret("not base64!"), nonce: "n") }
    }
}
