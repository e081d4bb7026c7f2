#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reading secrets: lines of standard input, and a password from the terminal without echo.
package enum Input {
    /// Whether standard input is a terminal (a person types rather than a pipe).
    package static var standardInputIsTerminal: Bool { isatty(0) == 1 }

    /// The next line of standard input, without its line ending and surrounding blanks.
    /// - Parameter what: names the missing value in the error, e.g. "the refresh token".
    package static func line(_ what: String) throws(Failure) -> String {
        try value(readLine(strippingNewline: true), what)
    }

    /// A line read for `what` (nil: input ended), without its surrounding blanks; a missing or
    /// blank line is a usage error.
    package static func value(_ line: String?, _ what: String) throws(Failure) -> String {
        guard let line else {
            throw Failure("standard input ended before \(what)", exitStatus: ExitStatus.usage)
        }
        let trimmed = trimmed(line)
        guard !trimmed.isEmpty else {
            throw Failure("\(what) on standard input is empty", exitStatus: ExitStatus.usage)
        }
        return trimmed
    }

    package static func trimmed(_ text: String) -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        guard let first = text.firstIndex(where: { !blank($0) }),
            let last = text.lastIndex(where: { !blank($0) })
        else { return "" }
        return String(text[first...last])
    }

    /// Asks for a password on /dev/tty with echo off, like readpassphrase(3). The terminal
    /// is restored before this returns or the process dies of a signal; Ctrl-Z suspends with
    /// echo on and asks again on resume.
    package static func password(prompt: String) throws(Failure) -> String {
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard tty >= 0 else {
            throw Failure(
                "no terminal to ask the password on",
                hint: "Pipe it in with --password-stdin.", exitStatus: ExitStatus.usage)
        }
        defer { close(tty) }

        while true {
            var signals = CaughtSignals()
            var bytes: [UInt8] = []
            defer {
                for index in bytes.indices { bytes[index] = 0 }
            }

            var saved = termios()
            let hasTermios = tcgetattr(tty, &saved) == 0
            if hasTermios {
                var quiet = saved
                quiet.c_lflag &= ~tcflag_t(ECHO)
                _ = tcsetattr(tty, TCSAFLUSH, &quiet)
            }
            writeAll(tty, Array(prompt.utf8))

            var byte: UInt8 = 0
            var ended = false
            while !ended {
                let count = read(tty, &byte, 1)
                if count == 1 {
                    if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { break }
                    bytes.append(byte)
                } else if count < 0 && errno == EINTR && !signals.anyCaught {
                    continue
                } else {
                    ended = true // EOF, error, or a signal
                }
            }

            if hasTermios { _ = tcsetattr(tty, TCSAFLUSH, &saved) }
            writeAll(tty, Array("\n".utf8))
            let caught = signals.restore()

            // Deliver the caught signals as if we had not been there: the default action
            // of SIGINT and the like ends the process, with the terminal already restored.
            for signal in caught { kill(getpid(), signal) }
            if caught.contains(where: { [SIGTSTP, SIGTTIN, SIGTTOU].contains($0) }) {
                bytes.removeAll()
                continue // suspended and resumed: ask again
            }
            if !caught.isEmpty || ended {
                throw Failure("no password was entered", exitStatus: ExitStatus.usage)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}

/// Flags set by the signal handler: one per signal number. A raw pointer, since a handler
/// may touch nothing that allocates or locks.
nonisolated(unsafe) private let caughtFlags: UnsafeMutablePointer<sig_atomic_t> = {
    let flags = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 65)
    flags.initialize(repeating: 0, count: 65)
    return flags
}()

/// Catches the signals that would leave the terminal without echo, for as long as the
/// password is read. The handler only records the signal; read() then fails with EINTR
/// (no SA_RESTART), and the reader restores the terminal before re-raising it.
private struct CaughtSignals {
    static let watched: [Int32] = [SIGALRM, SIGHUP, SIGINT, SIGPIPE, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU]
    private var previous: [(Int32, sigaction)] = []

    init() {
        for signal in Self.watched {
            caughtFlags[Int(signal)] = 0
            var action = sigaction()
            #if canImport(Darwin)
                action.__sigaction_u.__sa_handler = { caughtFlags[Int($0)] = 1 }
            #else
                action.__sigaction_handler.sa_handler = { caughtFlags[Int($0)] = 1 }
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            var old = sigaction()
            if sigaction(signal, &action, &old) == 0 { previous.append((signal, old)) }
        }
    }

    var anyCaught: Bool { Self.watched.contains { caughtFlags[Int($0)] != 0 } }

    /// Puts the previous handlers back; answers the signals that arrived meanwhile.
    mutating func restore() -> [Int32] {
        for (signal, old) in previous {
            var old = old
            sigaction(signal, &old, nil)
        }
        previous.removeAll()
        return Self.watched.filter { caughtFlags[Int($0)] != 0 }
    }
}
