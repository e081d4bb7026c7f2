import Foundation
import Testing

@testable import SystemdSupport

#if canImport(Glibc)
    import Glibc
#endif

/// sd_notify and socket activation in-process. They read the environment, so the suite runs
/// serialized and restores it.
@Suite("sd_notify and socket activation", .serialized)
struct NotifyTests {
    /// Binds a datagram socket, points NOTIFY_SOCKET at it, runs `body`, returns what arrived.
    func collect(_ body: () -> Void) throws -> [String] {
        let path = NSTemporaryDirectory() + "notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer {
            close(fd)
            unlink(path)
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(bound == 0)
        setenv("NOTIFY_SOCKET", path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        body()
        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if n <= 0 { break }
            messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        return messages
    }

    @Test("each call sends its assignments as one datagram")
    func messages() throws {
        let messages = try collect {
            #expect(SystemdNotifier.isAvailable)
            SystemdNotifier.ready(status: "starting\nup")
            SystemdNotifier.status("2 accounts")
            SystemdNotifier.watchdog()
            SystemdNotifier.reloading()
            SystemdNotifier.stopping()
        }
        #expect(messages.count == 5)
        #expect(messages[0] == "READY=1\nSTATUS=starting up")
        #expect(messages[1] == "STATUS=2 accounts")
        #expect(messages[2] == "WATCHDOG=1")
        #expect(messages[3].hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        let usec = UInt64(messages[3].split(separator: "=").last ?? "") ?? 0
        #expect(usec > 0 && usec <= SystemdNotifier.monotonicMicroseconds())
        #expect(messages[4] == "STOPPING=1")
    }

    @Test("without NOTIFY_SOCKET nothing is sent and nothing fails")
    func unavailable() {
        unsetenv("NOTIFY_SOCKET")
        #expect(!SystemdNotifier.isAvailable)
        #expect(!SystemdNotifier.ready())
    }

    @Test("the watchdog interval comes from WATCHDOG_USEC, for this process only")
    func watchdogInterval() {
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
        #expect(SystemdNotifier.watchdogInterval() == nil)
        setenv("WATCHDOG_USEC", "3000000", 1)
        #expect(SystemdNotifier.watchdogInterval() == .seconds(3))
        setenv("WATCHDOG_PID", "1", 1)
        #expect(SystemdNotifier.watchdogInterval() == nil)
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
    }

    @Test("not socket-activated: no sockets")
    func noSockets() {
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_PID")
        #expect(SocketActivation.takeListeningSockets().isEmpty)
    }

    @Test("JOURNAL_STREAM must name standard error's file")
    func journalStream() {
        unsetenv("JOURNAL_STREAM")
        #expect(!JournalFields.standardErrorIsJournal())
        var info = stat()
        fstat(2, &info)
        setenv("JOURNAL_STREAM", "\(info.st_dev):\(info.st_ino)", 1)
        #expect(JournalFields.standardErrorIsJournal())
        setenv("JOURNAL_STREAM", "\(info.st_dev):\(info.st_ino &+ 1)", 1)
        #expect(!JournalFields.standardErrorIsJournal())
        unsetenv("JOURNAL_STREAM")
    }
}
