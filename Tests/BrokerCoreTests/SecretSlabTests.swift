import BrokerCore
import Foundation
import Testing

/// The secret slab: secrets' bytes outside malloc's heap, slots reused, out of core dumps.
@Suite struct SecretSlabTests {
    /// A value of `count` bytes unlike any other test's (the slab is process-wide and tests run
    /// in parallel, so every figure here is a lower or upper bound, not an equality).
    private func value(_ i: Int, count: Int) -> String {
        let head = "slab-test-\(i)-"
        return head + String(repeating: "x", count: count - head.utf8.count)
    }

    @Test("a secret reads back byte for byte, compares and hashes by value, and describes itself redacted")
    func roundTrip() throws {
        let text = value(1, count: 1_234) + "é€😀"
        let a = Secret(text)
        let b = Secret(text)
        #expect(a.exposed == text)
        #expect(a.utf8Count == text.utf8.count)
        #expect(a.withUTF8 { Array($0) } == Array(text.utf8))
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a != Secret(value(2, count: 1_234)))
        #expect("\(a)" == "<redacted \(text.utf8.count) bytes>")
        #expect(!String(reflecting: a).contains("slab-test"))
        #expect(Secret("").exposed == "" && Secret("").utf8Count == 0 && Secret("") == Secret(""))
        let big = value(3, count: 20_000)
        #expect(Secret(big).exposed == big)
        // Lengths at and past 65,535 bytes, which the secret keeps beside its bytes rather than
        // in its handle's top bits, and the last length that fits there.
        for count in [65_534, 65_535, 65_536, 200_001] {
            let long = value(4, count: count)
            let secret = Secret(long)
            #expect(secret.utf8Count == count)
            #expect(secret.exposed == long)
            #expect(secret == Secret(long) && secret != Secret(value(5, count: count)))
        }
        let decoded = try JSONDecoder().decode([Secret].self, from: JSONEncoder().encode([a]))
        #expect(decoded == [a])
    }

    @Test("secrets replaced by secrets of the same size reuse the slots: the slab maps nothing more")
    func slotsAreReused() {
        let count = 7_000 // a size class no other secret of the tests uses
        let before = SecretMemory.current()
        var secrets = (0..<1_000).map { Secret(value($0, count: count)) }
        let full = SecretMemory.current()
        // 1,000 secrets of 7,000 bytes take 7,008-byte slots: at least 7 MB more in use and mapped.
        #expect(full.slots >= before.slots + 1_000 * 7_008 - 4_000_000)
        #expect(full.mapped >= before.mapped + 1_000 * 7_008)
        // Replace every one, the way refreshes replace tokens.
        for round in 1...3 {
            for i in secrets.indices { secrets[i] = Secret(value(round * 1_000 + i, count: count)) }
        }
        let after = SecretMemory.current()
        // Three rounds of 1,000 replacements mapped less than one round's worth (other tests'
        // secrets may take a few new chunks meanwhile).
        #expect(after.mapped < full.mapped + 1_000 * 7_008 / 2)
        #expect(secrets.count == 1_000)
        secrets.removeAll()
        let freed = SecretMemory.current()
        #expect(freed.slots + 1_000 * 7_008 - 4_000_000 <= after.slots)
    }

    @Test("the slab's pages are left out of core dumps (MADV_DONTDUMP: dd in /proc/self/smaps)")
    func excludedFromCoreDumps() throws {
        let secret = Secret(value(4, count: 1_500))
        let address = secret.withUTF8 { UInt(bitPattern: $0.baseAddress!) }
        // Read to the end: /proc files report a size of 0, and a whole-file read stops at one page.
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/smaps"))
        defer { try? handle.close() }
        let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        var inRegion = false
        var flags: String?
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if let range = fields.first, range.contains("-"), fields.count >= 5,
                let dash = range.firstIndex(of: "-"), let start = UInt(range[..<dash], radix: 16),
                let end = UInt(range[range.index(after: dash)...], radix: 16)
            {
                inRegion = (start..<end).contains(address)
            } else if inRegion, line.hasPrefix("VmFlags:") {
                flags = String(line)
                break
            }
        }
        let found = try #require(
            flags,
            "the secret's mapping is in /proc/self/smaps (\(smaps.utf8.count) bytes read, address \(String(address, radix: 16)))"
        )
        #expect(found.split(separator: " ").contains("dd"), "\(found)")
        withExtendedLifetime(secret) {}
    }
}
