import Crypto
import Foundation

/// One MSNP24 command as it travels: `CMD TRID TARGET LENGTH\r\n`, then LENGTH bytes of payload,
/// which is a header block, a blank line and the body. livesim's own reader and writer.
struct MSNPCommand {
    var name: String
    var trid: Int
    var target: String
    var headers: [(name: String, value: String)] = []
    var body: String = ""

    /// The first header with this name, compared without regard to case.
    func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// The command framed for the wire; LENGTH counts the header block, the blank line and the body.
    var wire: [UInt8] {
        var payload: [UInt8] = []
        for header in headers { payload += Array("\(header.name): \(header.value)\r\n".utf8) }
        payload += [13, 10]
        payload += Array(body.utf8)
        return Array("\(name) \(trid) \(target) \(payload.count)\r\n".utf8) + payload
    }

    /// An error reply: `CODE TRID 0\r\n`, with no payload.
    static func error(_ code: Int, trid: Int) -> [UInt8] { Array("\(code) \(trid) 0\r\n".utf8) }
}

/// Splits a byte stream into MSNP commands.
enum MSNPFrame {
    enum Parsed {
        case command(MSNPCommand, consumed: Int)
        /// More bytes are needed.
        case incomplete
        /// Not a command; `trid` is the transaction id when the line had a readable one, else 0.
        case malformed(trid: Int, reason: String)
    }

    static let maxLine = 512
    static let maxPayload = 64 * 1024

    static func parse(_ bytes: ArraySlice<UInt8>) -> Parsed {
        guard let lineEnd = find([13, 10], in: bytes) else {
            return bytes.count > maxLine ? .malformed(trid: 0, reason: "command line too long") : .incomplete
        }
        guard lineEnd - bytes.startIndex <= maxLine,
            let line = String(validating: bytes[bytes.startIndex..<lineEnd], as: UTF8.self)
        else {
            return .malformed(trid: 0, reason: "unreadable command line")
        }
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        let trid = fields.count > 1 ? Int(fields[1]).flatMap { $0 >= 0 ? $0 : nil } : nil
        guard fields.count == 4 else {
            return .malformed(trid: trid ?? 0, reason: "expected CMD TRID TARGET LENGTH")
        }
        let name = String(fields[0])
        guard name.count == 3, name.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) }) else {
            return .malformed(trid: trid ?? 0, reason: "bad command name")
        }
        guard let trid, trid <= Int(UInt32.max) else { return .malformed(trid: 0, reason: "bad transaction id") }
        guard !fields[2].isEmpty, let length = Int(fields[3]), (0...maxPayload).contains(length) else {
            return .malformed(trid: trid, reason: "bad target or length")
        }
        let payloadStart = lineEnd + 2
        guard bytes.endIndex - payloadStart >= length else { return .incomplete }
        let payload = bytes[payloadStart..<(payloadStart + length)]
        var command = MSNPCommand(name: name, trid: trid, target: String(fields[2]))
        if !payload.isEmpty {
            let bodyStart: Int
            if payload.starts(with: [13, 10]) {
                bodyStart = payload.startIndex + 2
            } else {
                guard let blank = find([13, 10, 13, 10], in: payload),
                    let block = String(validating: payload[payload.startIndex..<blank], as: UTF8.self)
                else { return .malformed(trid: trid, reason: "payload without a blank line after its headers") }
                for headerLine in block.components(separatedBy: "\r\n") {
                    guard let colon = headerLine.firstIndex(of: ":"), colon != headerLine.startIndex else {
                        return .malformed(trid: trid, reason: "bad header line")
                    }
                    command.headers.append(
                        (
                            String(headerLine[..<colon]),
                            headerLine[headerLine.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                        ))
                }
                bodyStart = blank + 4
            }
            guard let body = String(validating: payload[bodyStart...], as: UTF8.self) else {
                return .malformed(trid: trid, reason: "body is not UTF-8")
            }
            command.body = body
        }
        return .command(command, consumed: payloadStart + length - bytes.startIndex)
    }

    private static func find(_ needle: [UInt8], in bytes: ArraySlice<UInt8>) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        var index = bytes.startIndex
        while index <= bytes.endIndex - needle.count {
            if bytes[index] == needle[0], bytes[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}

/// The MSNP11 challenge (`PUT MSGR\CHALLENGE`), livesim's own implementation on swift-crypto's MD5;
/// the client side has its own, and the two must agree.
enum NSChallenge {
    /// The product ids livesim knows, with their keys (the seed's pair).
    static let productKeys = ["PROD0090YUAUV{2B": "YMM8C_H7KCQ2S_KL"]

    static func answer(nonce: String, productID: String, productKey: String) -> String {
        let digest = Array(Insecure.MD5.hash(data: Array((nonce + productKey).utf8)))
        let hash = littleEndianWords(digest[...])
        let m = hash.map { UInt64($0 & 0x7FFF_FFFF) }

        var text = Array((nonce + productID).utf8)
        text += [UInt8](repeating: UInt8(ascii: "0"), count: (8 - text.count % 8) % 8)
        let chunks = littleEndianWords(text[...]).map(UInt64.init)

        let mod: UInt64 = 0x7FFF_FFFF
        var high: UInt64 = 0
        var low: UInt64 = 0
        var pair = 0
        while pair < chunks.count {
            let t = (m[0] * ((0x0E79_A9C1 * chunks[pair]) % mod + high) + m[1]) % mod
            high = (m[2] * ((chunks[pair + 1] + t) % mod) + m[3]) % mod
            low += high + t
            pair += 2
        }
        high = (high + m[1]) % mod
        low = (low + m[3]) % mod

        let mixed = [hash[0] ^ UInt32(high), hash[1] ^ UInt32(low), hash[2] ^ UInt32(high), hash[3] ^ UInt32(low)]
        let hexDigits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for word in mixed {
            for byte in withUnsafeBytes(of: word.littleEndian, Array.init) {
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func littleEndianWords(_ bytes: ArraySlice<UInt8>) -> [UInt32] {
        stride(from: bytes.startIndex, to: bytes.endIndex, by: 4).map { i in
            bytes[i..<(i + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
    }
}
