import Foundation
import Testing

@testable import SystemdSupport

#if canImport(Glibc)
    import Glibc
#endif

/// sd_notify, the watchdog interval and the journal check, in-process. Each is given its socket
/// or environment explicitly: nothing here changes this process's environment, which daemons that
/// other tests spawn meanwhile inherit. `SystemdTests` (integration) checks the real daemon with
/// NOTIFY_SOCKET, WATCHDOG_USEC and LISTEN_FDS in its own environment.
@Suite("sd_notify and the systemd environment")
struct NotifyTests {
    /// Binds a datagram socket, runs `body` with its path, returns what arrived.
    func collect(_ body: (String) -> Void) throws -> [String] {
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
        body(path)
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
        let messages = try collect { socket in
            #expect(SystemdNotifier.ready(status: "starting\nup", socket: socket))
            #expect(SystemdNotifier.status("2 accounts", socket: socket))
            #expect(SystemdNotifier.watchdog(socket: socket))
            #expect(SystemdNotifier.reloading(socket: socket))
            #expect(SystemdNotifier.stopping(socket: socket))
        }
        #expect(messages.count == 5)
        guard messages.count == 5 else { return }
        #expect(messages[0] == "READY=1\nSTATUS=starting up")
        #expect(messages[1] == "STATUS=2 accounts")
        #expect(messages[2] == "WATCHDOG=1")
        #expect(messages[3].hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        let usec = UInt64(messages[3].split(separator: "=").last ?? "") ?? 0
        #expect(usec > 0 && usec <= SystemdNotifier.monotonicMicroseconds())
        #expect(messages[4] == "STOPPING=1")
    }

    @Test("without NOTIFY_SOCKET no manager listens; a socket nobody binds takes nothing, and nothing fails")
    func unavailable() {
        #expect(!SystemdNotifier.isAvailable(environment: [:]))
        #expect(!SystemdNotifier.isAvailable(environment: ["NOTIFY_SOCKET": ""]))
        #expect(SystemdNotifier.isAvailable(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"]))
        #expect(!SystemdNotifier.ready(socket: NSTemporaryDirectory() + "notify-nobody-\(getpid()).sock"))
    }

    @Test("the watchdog interval comes from WATCHDOG_USEC, for this process only")
    func watchdogInterval() {
        #expect(SystemdNotifier.watchdogInterval(environment: [:]) == nil)
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "3000000"]) == .seconds(3))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "0"]) == nil)
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "3s"]) == nil)
        let ours = ["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "\(getpid())"]
        #expect(SystemdNotifier.watchdogInterval(environment: ours) == .seconds(3))
        let another = ["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"]
        #expect(SystemdNotifier.watchdogInterval(environment: another) == nil)
        #expect(SystemdNotifier.watchdogInterval(environment: another, pid: 1) == .seconds(3))
    }

    @Test("JOURNAL_STREAM must name standard error's file")
    func journalStream() {
        #expect(!JournalFields.standardErrorIsJournal(environment: [:]))
        var info = stat()
        fstat(2, &info)
        #expect(JournalFields.standardErrorIsJournal(environment: ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)"]))
        #expect(
            !JournalFields.standardErrorIsJournal(environment: ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino &+ 1)"])
        )
        #expect(!JournalFields.standardErrorIsJournal(environment: ["JOURNAL_STREAM": "garbage"]))
    }
}
