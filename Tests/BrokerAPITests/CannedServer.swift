import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A tiny HTTP server on a Unix socket: one thread accepts the connections in turn, reads
/// each request, and answers it with canned bytes. It records the requests it read.
final class CannedServer: @unchecked Sendable {
    struct Reply: Sendable {
        /// Written one after another, with a short pause between, to split the answer
        /// across reads.
        var parts: [[UInt8]]
        /// Keep the connection open after answering until the client closes it, so a
        /// client that waits for EOF instead of honoring the framing would time out.
        var keepOpen = false
        /// Close without answering.
        var silentClose = false
        /// Read the request, then never answer (until the client gives up).
        var neverAnswer = false

        init(_ parts: [[UInt8]], keepOpen: Bool = false) {
            self.parts = parts
            self.keepOpen = keepOpen
        }

        init(_ text: String, keepOpen: Bool = false) {
            self.init([Array(text.utf8)], keepOpen: keepOpen)
        }

        static let silentClose: Reply = {
            var reply = Reply([])
            reply.silentClose = true
            return reply
        }()

        static let neverAnswer: Reply = {
            var reply = Reply([])
            reply.neverAnswer = true
            return reply
        }()
    }

    let path: String
    private let listener: Int32
    private let replies: [Reply]
    private let recorded = Mutex<[[UInt8]]>([])
    private let finished = DispatchSemaphore(value: 0)

    init(_ replies: [Reply]) throws {
        self.replies = replies
        self.path = CannedServer.temporarySocketPath()
        self.listener = try CannedServer.makeListener(at: path)
        Thread.detachNewThread { [self] in
            serve()
            finished.signal()
        }
    }

    convenience init(_ reply: Reply) throws { try self.init([reply]) }

    /// Waits for the serving thread to finish, then removes the socket; answers the
    /// requests it read.
    func requests() -> [String] {
        finished.wait()
        return recorded.withLock { $0 }.map { String(decoding: $0, as: UTF8.self) }
    }

    deinit {
        close(listener)
        unlink(path)
    }

    static func temporarySocketPath() -> String {
        "/tmp/brokerapi-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
    }

    private static func makeListener(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, streamSocketType, 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, listen(fd, 8) == 0 else {
            let error = errno
            close(fd)
            throw POSIXError(.init(rawValue: error)!)
        }
        return fd
    }

    private func serve() {
        for reply in replies {
            // Give up after a few seconds so a broken test never hangs.
            var pollFD = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&pollFD, 1, 5000) == 1 else { return }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

            let request = readRequest(connection)
            recorded.withLock { $0.append(request) }

            if !reply.silentClose {
                for (index, part) in reply.parts.enumerated() {
                    if index > 0 { usleep(20_000) }
                    _ = part.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, noSignalFlag) }
                }
                if reply.keepOpen || reply.neverAnswer { waitForClose(connection) }
            }
            close(connection)
        }
    }

    /// Reads the head and a Content-Length body.
    private func readRequest(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let separator = Array("\r\n\r\n".utf8)
        while true {
            if let headEnd = bytes.firstRange(of: separator)?.upperBound {
                let head = String(decoding: bytes[..<headEnd], as: UTF8.self).lowercased()
                var length = 0
                if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }) {
                    length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                }
                if bytes.count >= headEnd + length { return bytes }
            }
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { return bytes }
            bytes += buffer[..<count]
        }
    }

    private func waitForClose(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 256)
        while read(fd, &buffer, buffer.count) > 0 {}
    }
}

#if canImport(Glibc)
    let streamSocketType = Int32(SOCK_STREAM.rawValue)
    let noSignalFlag = Int32(MSG_NOSIGNAL)
#else
    let streamSocketType = SOCK_STREAM
    let noSignalFlag: Int32 = 0
#endif

/// An HTTP answer with a Content-Length.
func httpResponse(
    _ status: Int, _ reason: String, json: String, extraHeaders: String = ""
) -> String {
    "HTTP/1.1 \(status) \(reason)\r\nContent-Type: application/json\r\n\(extraHeaders)"
        + "Content-Length: \(json.utf8.count)\r\n\r\n\(json)"
}
