import Foundation
import Testing

@testable import BrokerCore

@Suite("MSNP challenge answers")
struct ChallengeTests {
    @Test("the published vector")
    func publishedVector() {
        #expect(Challenge.answer(nonce: "22210219642164014968") == "85ecb0db8f32113df79ce0892b9a102c")
        #expect(
            Challenge.answer(
                nonce: "22210219642164014968", productID: "PROD0090YUAUV{2B", productKey: "YMM8C_H7KCQ2S_KL")
                == "85ecb0db8f32113df79ce0892b9a102c")
    }

    @Test("MD5 matches RFC 1321's test suite")
    func md5() {
        let vectors = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"), ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"), ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a"
            ),
        ]
        for (input, expected) in vectors {
            #expect(MD5.hash(Array(input.utf8)).map { String(format: "%02x", $0) }.joined() == expected)
        }
    }

    @Test("answers are 32 lowercase hex characters, deterministic, and depend on every input")
    func properties() {
        let nonces = [
            "1489346893432768563572687681", "x", "", "1234567", "12345678", "3d97e3ac-4df8-3d88-c35f-e96242d1efcd",
        ]
        for nonce in nonces {
            let answer = Challenge.answer(nonce: nonce)
            #expect(answer.count == 32)
            #expect(answer.allSatisfy { "0123456789abcdef".contains($0) })
            #expect(Challenge.answer(nonce: nonce) == answer)
            #expect(Challenge.answer(nonce: nonce + "1") != answer)
            #expect(Challenge.answer(nonce: nonce, productID: "PROD0119GSJUC$18") != answer)
            #expect(Challenge.answer(nonce: nonce, productKey: "ILTXC!4IXB5FB*PX") != answer)
        }
    }
}
