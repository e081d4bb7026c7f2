import Foundation
import LiveProtocol
import Testing

@Suite("SkyLogin wire encoding")
struct SkyLoginWireTests {
    @Test func varints() {
        #expect(SkyLoginVarint.encode(0) == [0x00])
        #expect(SkyLoginVarint.encode(0x7F) == [0x7F])
        #expect(SkyLoginVarint.encode(0x2000) == [0x80, 0x40])
        #expect(SkyLoginVarint.encode(0x1399) == [0x99, 0x27])
        #expect(SkyLoginVarint.encode(4200) == [0xE8, 0x20])
        #expect(SkyLoginVarint.encode(0x7F00_0001) == [0x81, 0x80, 0x80, 0xF8, 0x07])
        #expect(SkyLoginVarint.encode(UInt32.max) == [0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
    }

    @Test func crc() {
        #expect(SkyLoginCRC.crc32NoXor(Array("123456789".utf8)) == 0x340B_C6D9)
        #expect(SkyLoginCRC.crc32NoXor([]) == 0xFFFF_FFFF)
        // The low 16 bits, little-endian, XOR the reply record's index.
        #expect(SkyLoginCRC.trailer(Array("123456789".utf8)) == [0xD9, 0xC6])
        #expect(SkyLoginCRC.trailer(Array("123456789".utf8), record: 1) == [0xD8, 0xC6])
    }

    @Test func everyFamilyRoundTrips() throws {
        let lists: [[SkyLoginObject]] = [
            [
                SkyLoginObject(0, .number(0)), SkyLoginObject(0x7F00_0001, .number(UInt32.max)),
                SkyLoginObject(0x31, .qword(0x0123_4567_89AB_CDEF)),
                SkyLoginObject(2, .address(ip: [127, 0, 0, 1], port: 33033)),
                SkyLoginObject(3, .string(Array("hello".utf8))), SkyLoginObject(4, .string([])),
                SkyLoginObject(5, .blob([])), SkyLoginObject(6, .blob([UInt8](repeating: 0xAB, count: 300))),
                SkyLoginObject(7, .list([SkyLoginObject(1, .number(2)), SkyLoginObject(2, .list([]))])),
                SkyLoginObject(8, .intList([1, 0x80, UInt32.max])), SkyLoginObject(9, .intList([])),
            ],
            [],
            [SkyLoginObject(1, .number(4200))],
        ]
        let encoded = try SkyLoginObjects.encode(lists)
        #expect(try SkyLoginObjects.decodeLists(encoded) == lists)
        #expect(try SkyLoginObjects.decodeList(SkyLoginObjects.encode(list: lists[0])) == lists[0])
        // Fixed layouts: qword big-endian, address then port big-endian.
        #expect(
            try SkyLoginObjects.encode(list: [SkyLoginObject(0x3E, .qword(999))]) == [
                0x41, 1, 1, 0x3E, 0, 0, 0, 0, 0, 0, 3, 0xE7,
            ])
        #expect(
            try SkyLoginObjects.encode(list: [SkyLoginObject(1, .address(ip: [10, 0, 0, 1], port: 0x8109))])
                == [0x41, 1, 2, 1, 10, 0, 0, 1, 0x81, 0x09])
    }

    @Test func encoderRefusesWhatCannotBeSent() {
        #expect(throws: SkyLoginError.self) {
            try SkyLoginObjects.encode(list: [SkyLoginObject(1, .string([0x61, 0]))])
        }
        #expect(throws: SkyLoginError.self) {
            try SkyLoginObjects.encode(list: [SkyLoginObject(1, .address(ip: [1, 2, 3], port: 1))])
        }
        var deep: [SkyLoginObject] = []
        for _ in 0..<20 { deep = [SkyLoginObject(1, .list(deep))] }
        #expect(throws: SkyLoginError.self) { try SkyLoginObjects.encode(list: deep) }
    }

    @Test func decoderIsStrict() {
        let refused: [[UInt8]] = [
            [0x42, 0x01], // compressed lists
            [0x40], // not a list
            [0x41], // no count
            [0x41, 0x01], // count beyond the data
            [0x41, 0x01, 0x00, 0x01], // number without value
            [0x41, 0x01, 0x00, 0x01, 0x80], // truncated varint
            [0x41, 0x01, 0x00, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x1F], // varint beyond 32 bits
            [0x41, 0x01, 0x00, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // six-byte varint
            [0x41, 0x01, 0x01, 0x01, 1, 2, 3], // short qword
            [0x41, 0x01, 0x02, 0x01, 1, 2, 3, 4, 5], // short address
            [0x41, 0x01, 0x03, 0x01, 0x61, 0x62], // unterminated string
            [0x41, 0x01, 0x04, 0x01, 0x05, 1, 2], // blob longer than the data
            [0x41, 0x01, 0x04, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], // 4 GiB blob
            [0x41, 0x01, 0x05, 0x01, 0x41, 0x05], // nested count beyond the data
            [0x41, 0x01, 0x06, 0x01, 0x03, 1, 2], // int list shorter than its count
            [0x41, 0x01, 0x06, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], // 4 G int list
            [0x41, 0x01, 0x07, 0x01, 0x00], // unknown family
            [0x41, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0, 0, 0], // 4 G objects
        ]
        for bytes in refused {
            #expect(throws: SkyLoginError.self, "\(bytes)") { try SkyLoginObjects.decodeLists(bytes) }
        }
        // Deep nesting is refused before it can exhaust the stack.
        var deep: [UInt8] = []
        for _ in 0..<10_000 { deep += [0x41, 0x01, 0x05, 0x01] }
        #expect(throws: SkyLoginError.self) { try SkyLoginObjects.decodeLists(deep) }
        // One list, nothing after it.
        #expect(throws: SkyLoginError.self) { try SkyLoginObjects.decodeList([0x41, 0x00, 0x00]) }
        #expect(throws: SkyLoginError.self) { try SkyLoginObjects.decodeList([0x41, 0x00, 0x41, 0x00]) }
        #expect(throws: SkyLoginError.self) { try SkyLoginObjects.decodeList([]) }
    }

    @Test func decoderSurvivesRandomAndMutatedInput() throws {
        var generator = SplitMix(seed: 7)
        for _ in 0..<5000 {
            let count = Int(generator.next() % 64)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if !bytes.isEmpty { bytes[0] = 0x41 }
            _ = try? SkyLoginObjects.decodeLists(bytes)
        }
        let valid = try SkyLoginObjects.encode([
            [SkyLoginObject(1, .number(4200)), SkyLoginObject(2, .intList([1, 2, 3]))],
            [SkyLoginObject(0x24, .blob([UInt8](repeating: 7, count: 40))), SkyLoginObject(3, .string([0x61]))],
            [SkyLoginObject(5, .list([SkyLoginObject(1, .qword(5))]))],
        ])
        for _ in 0..<5000 {
            var bytes = valid
            for _ in 0..<(1 + generator.next() % 3) {
                bytes[Int(generator.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: generator.next())
            }
            _ = try? SkyLoginObjects.decodeLists(Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count + 1)))))
        }
    }

    @Test func records() throws {
        #expect(SkyLoginRecord.hello == [0x16, 0x03, 0x01, 0x00, 0x00])
        #expect(try SkyLoginRecord.frame(SkyLoginRecord.dataMagic, [9, 9]) == [0x17, 0x03, 0x01, 0x00, 0x02, 9, 9])
        #expect(throws: SkyLoginError.self) {
            try SkyLoginRecord.frame(SkyLoginRecord.dataMagic, [UInt8](repeating: 0, count: 0x10000))
        }
        #expect(try SkyLoginRecord.bodyLength(header: [0x17, 0x03, 0x01, 0x01, 0x12]) == 0x112)
        #expect(throws: SkyLoginError.self) { try SkyLoginRecord.bodyLength(header: [0x16, 0x03, 0x01, 0x00, 0x00]) }
        #expect(throws: SkyLoginError.self) { try SkyLoginRecord.bodyLength(header: [0x17, 0x03, 0x01, 0x00]) }
        #expect(
            try SkyLoginRecord.bodyLength(header: SkyLoginRecord.hello, magic: SkyLoginRecord.handshakeMagic) == 0)
    }

    @Test func hex() {
        #expect(SkyLoginHex.decode("00ff10Ab") == [0x00, 0xFF, 0x10, 0xAB])
        #expect(SkyLoginHex.encode([0x00, 0xFF, 0x10, 0xAB]) == "00ff10ab")
        for bad in ["", "0", "0g", "0x00", "00 11", "é0"] { #expect(SkyLoginHex.decode(bad) == nil) }
    }
}
