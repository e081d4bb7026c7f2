#if canImport(Glibc)
    import Glibc
#endif

/// The process's resident set from `/proc/self/status`: anonymous pages (the heap, the secret
/// slab, stacks) and file-backed ones (the binary and its libraries).
struct ResidentMemory {
    var anonymous: UInt64
    var fileBacked: UInt64

    static func current() -> ResidentMemory? {
        guard let file = fopen("/proc/self/status", "r") else { return nil }
        defer { fclose(file) }
        var anonymous: UInt64?
        var fileBacked: UInt64?
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if text.hasPrefix("RssAnon:") {
                anonymous = kilobytes(text)
            } else if text.hasPrefix("RssFile:") {
                fileBacked = kilobytes(text)
            }
        }
        guard let anonymous, let fileBacked else { return nil }
        return ResidentMemory(anonymous: anonymous, fileBacked: fileBacked)
    }

    /// `RssAnon:	  123456 kB` → bytes.
    private static func kilobytes(_ line: String) -> UInt64? {
        let digits = line.drop { !$0.isNumber }.prefix { $0.isNumber }
        return UInt64(digits).map { $0 * 1024 }
    }
}
