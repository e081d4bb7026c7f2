import BrokerCore
import Foundation
import LiveProtocol
import Locks
import NIOCore
import NIOPosix

/// A login at a SkyLogin login server, over one TCP connection per attempt: the hello, records 1
/// and 2 in one write, one reply record, close. The servers are tried in order until one answers.
package struct SkyLoginClient: Sendable {
    /// "host:port" ("[v6 address]:port" for IPv6), tried in order.
    package var servers: [String]
    package var keys: SkyLoginKeys
    /// Bounds each attempt: the connection, the writes and every read.
    package var timeout: Duration
    /// Record 2's platform id and misc data; by default derived from the client key, never from the host.
    package var hostInfo: SkyLoginHostInfo?
    package var group: any EventLoopGroup

    /// A reply record is at most this large (the 16-bit length allows a little more).
    static let maxReply = 64 * 1024
    static let serverName = "the SkyLogin server"

    package init(
        servers: [String], keys: SkyLoginKeys, timeout: Duration = .seconds(20), hostInfo: SkyLoginHostInfo? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.servers = servers
        self.keys = keys
        self.timeout = timeout
        self.hostInfo = hostInfo
        self.group = group
    }

    /// Logs in and returns the credentials, opened with `keys` and verified: bound to the client
    /// key's modulus, not expired at `now`, and for a password login issued to the Skype name asked for.
    ///
    /// - Throws: `.transient` when no server gave a usable answer (the last one's failure is named);
    ///   `.passwordRefused` for an answer code other than 4200; `.rejected(code: "skylogin_credentials")`
    ///   for credentials that do not verify, `"skylogin_request"` for a request that cannot be sent.
    package func login(_ request: SkyLoginRequest, clientKey: SkyLoginClientKey, now: Date) async throws(RefreshFailure)
        -> SkyLoginCredentials
    {
        let host = hostInfo ?? SkyLoginHostInfo.derived(from: clientKey.modulus)
        do {
            // Checks the request once, before any connection.
            _ = try SkyLoginSession.record2Plaintext(request, clientModulus: clientKey.modulus, host: host)
        } catch {
            throw .rejected(code: "skylogin_request", description: "\(error)")
        }
        guard !servers.isEmpty else {
            throw .rejected(code: "skylogin_request", description: "no SkyLogin server is configured")
        }
        var lastFailure = ""
        for server in servers {
            let reply: SkyLoginReply
            do {
                reply = try await attempt(
                    server: server, request: request, clientModulus: clientKey.modulus, host: host)
            } catch {
                lastFailure = "\(Self.serverName) \(server): \(error.message)"
                continue
            }
            switch reply {
            case .refused(let code):
                throw .passwordRefused(by: Self.serverName, reason: "answer code \(code)")
            case .credentials(let raw):
                do {
                    let credentials = try SkyLoginCredentials.open(raw: raw, trusted: keys)
                    let expectedName: String? =
                        switch request {
                        case .password(let name, _): name
                        case .oauth: nil
                        }
                    try credentials.verify(now: now, expectedModulus: clientKey.modulus, expectedName: expectedName)
                    return credentials
                } catch {
                    throw .rejected(code: "skylogin_credentials", description: "\(error)")
                }
            }
        }
        throw .transient(lastFailure)
    }

    /// One server: a fresh session key, the exchange within the timeout, the reply decrypted and read.
    private func attempt(server: String, request: SkyLoginRequest, clientModulus: [UInt8], host: SkyLoginHostInfo)
        async throws(AttemptFailure) -> SkyLoginReply
    {
        guard let (hostname, port) = Self.parse(server: server) else { throw AttemptFailure("not a host:port address") }
        let session: SkyLoginSession
        let records: [UInt8]
        do {
            session = try SkyLoginSession.random()
            records =
                try session.record1(sessionModulus: keys.sessionModulus)
                + session.record2(request, clientModulus: clientModulus, host: host)
        } catch {
            throw AttemptFailure("\(error)")
        }
        let stage = Stage()
        let record: [UInt8]
        do {
            record = try await withThrowingTaskGroup(of: [UInt8].self) { group in
                group.addTask { [loops = self.group, timeout] in
                    try await Self.exchange(
                        host: hostname, port: port, records: records, group: loops, timeout: timeout, stage: stage)
                }
                group.addTask { [timeout] in
                    try await Task.sleep(for: timeout)
                    throw AttemptFailure("timed out \(stage.current)")
                }
                defer { group.cancelAll() }
                guard let first = try await group.next() else { throw AttemptFailure("no exchange") }
                return first
            }
        } catch let failure as AttemptFailure {
            throw failure
        } catch {
            let during = stage.current
            throw AttemptFailure(Self.describe(error) + (during == "connecting" ? "" : " while \(during)"))
        }
        do {
            return try session.readReply(record)
        } catch {
            throw AttemptFailure("garbage reply: \(error)")
        }
    }

    /// The bytes on the wire. Cancellation (the timeout) closes the channel, which ends every read.
    private static func exchange(
        host: String, port: Int, records: [UInt8], group: any EventLoopGroup, timeout: Duration, stage: Stage
    ) async throws -> [UInt8] {
        stage.set("connecting")
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(timeout))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await withTaskCancellationHandler {
            try await channel.executeThenClose { inbound, outbound in
                var reader = Reader(inbound.makeAsyncIterator(), stage: stage)
                stage.set("sending the hello")
                try await outbound.write(ByteBuffer(bytes: SkyLoginRecord.hello))
                stage.set("waiting for the hello reply")
                let helloReply = try await reader.read(SkyLoginRecord.headerSize)
                guard Array(helloReply.prefix(3)) == SkyLoginRecord.dataMagic else {
                    throw AttemptFailure("the hello reply is not a SkyLogin record")
                }
                stage.set("sending the login request")
                try await outbound.write(ByteBuffer(bytes: records))
                stage.set("waiting for the reply")
                let header = try await reader.read(SkyLoginRecord.headerSize)
                let length: Int
                do {
                    length = try SkyLoginRecord.bodyLength(header: header)
                } catch {
                    throw AttemptFailure("garbage reply: \(error)")
                }
                guard SkyLoginRecord.headerSize + length <= maxReply else {
                    throw AttemptFailure("the reply record is too large")
                }
                return header + (try await reader.read(length))
            }
        } onCancel: {
            channel.channel.close(promise: nil)
        }
    }

    /// Exact reads over the inbound stream.
    private struct Reader {
        var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        let stage: Stage
        var buffer = ByteBuffer()

        init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, stage: Stage) {
            self.iterator = iterator
            self.stage = stage
        }

        mutating func read(_ count: Int) async throws -> [UInt8] {
            while buffer.readableBytes < count {
                guard var chunk = try await iterator.next() else {
                    throw AttemptFailure("the server closed the connection while \(stage.current)")
                }
                buffer.writeBuffer(&chunk)
                guard buffer.readableBytes <= 2 * SkyLoginClient.maxReply else {
                    throw AttemptFailure("the server sent too much")
                }
            }
            return buffer.readBytes(length: count) ?? []
        }
    }

    /// What the attempt was doing, for the timeout's message.
    private final class Stage: Sendable {
        private let value = LockedValue("connecting")
        var current: String { value.withLock { $0 } }
        func set(_ stage: String) { value.withLock { $0 = stage } }
    }

    private struct AttemptFailure: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    /// "host:port" or "[v6]:port", with a port from 1 to 65535.
    static func parse(server: String) -> (host: String, port: Int)? {
        let host: Substring
        let portText: Substring
        if server.hasPrefix("[") {
            guard let close = server.firstIndex(of: "]"), server[server.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = server[server.index(after: server.startIndex)..<close]
            portText = server[server.index(close, offsetBy: 2)...]
        } else {
            guard let colon = server.lastIndex(of: ":") else { return nil }
            host = server[..<colon]
            portText = server[server.index(after: colon)...]
            guard !host.contains(":") else { return nil }
        }
        guard !host.isEmpty, !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCII),
            portText.allSatisfy(\.isNumber), let port = Int(portText), (1...65535).contains(port)
        else { return nil }
        return (String(host), port)
    }

    /// A transport failure in words; NIO's errors hold addresses and errno values, never payload.
    static func describe(_ error: any Error) -> String {
        switch error {
        case ChannelError.connectTimeout: return "connection timed out"
        case is NIOConnectionError: return "cannot connect"
        case ChannelError.ioOnClosedChannel, ChannelError.alreadyClosed, ChannelError.eof:
            return "the connection was closed"
        case let error as IOError: return "I/O error: \(error.description.prefix(200))"
        case is CancellationError: return "cancelled"
        default: return String(describing: type(of: error)) + ": " + String(describing: error).prefix(200)
        }
    }
}

/// Logs in at the first SkyLogin server of `servers` that answers; see `SkyLoginClient.login`.
package func skylogin(
    servers: [String], keys: SkyLoginKeys, request: SkyLoginRequest, clientKey: SkyLoginClientKey, now: Date,
    timeout: Duration
) async throws(RefreshFailure) -> SkyLoginCredentials {
    try await SkyLoginClient(servers: servers, keys: keys, timeout: timeout).login(
        request, clientKey: clientKey, now: now)
}
