import BrokerCore
import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The store's key file: the 32-byte master key that seals every secret column.
///
/// Accepted contents: exactly 32 raw bytes, or 64 hexadecimal characters (either case),
/// optionally followed by one newline (so `openssl rand -hex 32 > key` works). Anything else
/// is refused. A generated key file holds 32 raw bytes and has mode 0600.
package enum KeyFile {
    /// Reads the key from `url`. Throws `BrokerError(.internalError)` when the file cannot be
    /// read or does not hold a key in one of the accepted forms.
    /// Writes a new key over `url` atomically (a temporary file, mode 0600, then rename).
    package static func replace(at url: URL, with bytes: [UInt8]) throws {
        let temporary = url.path + ".new"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw BrokerError(.internalError, "cannot write the new key file \(temporary): \(errnoText())")
        }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, url.path) == 0 else {
            unlink(temporary)
            throw BrokerError(.internalError, "cannot replace the key file \(url.path): \(errnoText())")
        }
    }

    package static func read(_ url: URL) throws -> SymmetricKey {
        let path = url.path
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw BrokerError(.internalError, "cannot read key file \(path): \(errnoText())")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw BrokerError(.internalError, "key file \(path) is not a regular file")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw BrokerError(
                .internalError,
                "key file \(path) is readable or writable by others (mode \(String(info.st_mode & 0o777, radix: 8))); refusing to use it",
                hint: "chmod 600 \(path)")
        }
        guard info.st_size <= 1024 else {
            throw BrokerError(
                .internalError,
                "key file \(path) must hold exactly 32 raw bytes or 64 hex characters; it holds \(info.st_size) bytes")
        }
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: url))
        } catch {
            throw BrokerError(.internalError, "cannot read key file \(path)", cause: error)
        }
        if let key = parse(bytes) { return key }
        throw BrokerError(
            .internalError,
            "key file \(path) must hold exactly 32 raw bytes or 64 hex characters; it holds \(bytes.count) bytes",
            hint: "generate one with `head -c 32 /dev/urandom > \(path)`, or let the daemon create it on a new database"
        )
    }

    /// The key in `bytes`, or nil if they are not 32 raw bytes or 64 hex characters
    /// (plus at most one trailing newline).
    static func parse(_ bytes: [UInt8]) -> SymmetricKey? {
        if bytes.count == StoreKey.byteCount {
            return SymmetricKey(data: bytes)
        }
        var text = bytes[...]
        if text.last == UInt8(ascii: "\n") { text = text.dropLast() }
        guard text.count == StoreKey.byteCount * 2 else { return nil }
        var key: [UInt8] = []
        key.reserveCapacity(StoreKey.byteCount)
        var iterator = text.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = hexValue(high), let l = hexValue(low) else { return nil }
            key.append(h << 4 | l)
        }
        return SymmetricKey(data: key)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Creates a key file with 32 random bytes and mode 0600, and returns the key.
    ///
    /// The key is written to a new temporary file (`O_CREAT|O_EXCL`, mode 0600 set with
    /// `fchmod` so the umask plays no part), synced, then linked to its final name, which fails
    /// if that name exists; the directory is synced afterwards. A crash therefore never leaves a
    /// short key file behind.
    package static func generate(at url: URL) throws -> SymmetricKey {
        let key = SymmetricKey(size: .bits256)
        let bytes = key.withUnsafeBytes { Array($0) }
        let path = url.path
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/.\(url.lastPathComponent).\(UInt64.random(in: 1...UInt64.max)).tmp"

        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw BrokerError(.internalError, "cannot create key file in \(directory): \(errnoText())")
        }
        var linked = false
        defer {
            if !linked { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            guard fchmod(fd, 0o600) == 0 else {
                throw BrokerError(.internalError, "cannot set the mode of key file \(path): \(errnoText())")
            }
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    throw BrokerError(.internalError, "cannot write key file \(path): \(errnoText())")
                }
                written += n
            }
            guard fsync(fd) == 0 else {
                throw BrokerError(.internalError, "cannot sync key file \(path): \(errnoText())")
            }
        }
        guard link(temporary, path) == 0 else {
            if errno == EEXIST {
                throw BrokerError(.internalError, "key file \(path) appeared while it was being created")
            }
            throw BrokerError(.internalError, "cannot create key file \(path): \(errnoText())")
        }
        linked = true
        unlink(temporary)
        syncDirectory(directory)
        return key
    }
}

func errnoText() -> String {
    String(cString: strerror(errno))
}

/// Best-effort fsync of a directory so a new entry in it survives a crash.
func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { return }
    _ = fsync(fd)
    close(fd)
}

/// Creates `path` with mode 0600 if it does not exist, and sets the mode of an existing file
/// to 0600. Missing files are not created when `create` is false.
func enforceOwnerOnlyMode(_ path: String, create: Bool) throws {
    let flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT : 0)
    let fd = open(path, flags, 0o600)
    guard fd >= 0 else {
        if !create && errno == ENOENT { return }
        throw BrokerError(.internalError, "cannot open \(path): \(errnoText())")
    }
    defer { close(fd) }
    guard fchmod(fd, 0o600) == 0 else {
        throw BrokerError(.internalError, "cannot set the mode of \(path) to 0600: \(errnoText())")
    }
}
