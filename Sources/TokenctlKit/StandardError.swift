#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes to fd 2 directly (no shared stdio state).
package func writeStandardError(_ text: String) { _ = writeAll(2, text) }

/// Writes to fd 1 at once, unbuffered: a line of `tokenctl events` reaches a pipe as it happens.
/// False when it could not (the reading end is gone).
package func writeStandardOutput(_ text: String) -> Bool { writeAll(1, text) }

private func writeAll(_ fd: Int32, _ text: String) -> Bool {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return false }
        offset += written
    }
    return true
}
