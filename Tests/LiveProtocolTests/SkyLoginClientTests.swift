import BrokerCore
import Foundation
import Glibc
import LiveClient
import LiveProtocol
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The client against a small in-test login server that speaks the vectors' keys.
@Suite("SkyLogin client")
struct SkyLoginClientTests {
    typealias V = SkyLoginVectors

    static let now = Date(timeIntervalSince1970: 1_780_000_000)

    func login(
        // The product's own timeout: the whole suite runs at once on two cores, and a login that
        // waits for its turn is not a login that failed. `SkyLoginTimeoutTests` times the timeout.
        _ servers: [String], _ request: SkyLoginRequest, key: SkyLoginClientKey, timeout: Duration = .seconds(20)
    ) async throws(RefreshFailure) -> SkyLoginCredentials {
        try await skylogin(
            servers: servers, keys: try! V.testKeys, request: request, clientKey: key, now: Self.now, timeout: timeout)
    }

    static func password(_ name: String = "testuser") -> SkyLoginRequest {
        .password(skypeName: name, hash: loginHash(skypeName: name, password: Secret("secret")))
    }

    @Test func passwordLogin() async throws {
        let server = try await FakeSkyLoginServer.start(.ok)
        defer { server.stop() }
        let key = try SkyLoginClientKey.generate()
        let credentials = try await login([server.address], Self.password("TestUser"), key: key)
        #expect(credentials.skypeName == "testuser")
        #expect(credentials.modulus == key.modulus)
        #expect(credentials.expiresAt > Self.now)
        // The UIC of these credentials opens with the client's modulus.
        let uic = try SkyLoginUIC.uic(credentials: credentials.raw, clientKey: key, nonce: "nonce")
        #expect(Data(base64Encoded: uic)?.count == 4 + credentials.raw.count + 128)
        #expect(server.requests.first?.name == "TestUser")
        #expect(server.requests.first?.hash == V.bytes("md5('testuser\\nskyper\\nsecret')"))
    }

    @Test func oauthLogin() async throws {
        let server = try await FakeSkyLoginServer.start(.ok)
        defer { server.stop() }
        let key = try SkyLoginClientKey.generate()
        let credentials = try await login([server.address], .oauth(token: Secret("t=TOKEN")), key: key)
        #expect(credentials.skypeName == "live:alice")
        #expect(server.requests.first?.token == "t=TOKEN")
    }

    @Test func refusalIsAPasswordRefusal() async throws {
        let server = try await FakeSkyLoginServer.start(.refuse(4201))
        defer { server.stop() }
        await #expect(throws: RefreshFailure.passwordRefused(by: "the SkyLogin server", reason: "answer code 4201")) {
            try await login([server.address], Self.password(), key: V.clientKey)
        }
    }

    @Test func credentialsForAnotherKeyAreRejected() async throws {
        let server = try await FakeSkyLoginServer.start(.otherModulus)
        defer { server.stop() }
        let key = try V.clientKey
        do throws(RefreshFailure) {
            _ = try await login([server.address], Self.password(), key: key)
            Issue.record("the login succeeded")
        } catch {
            guard case .rejected(let code, _) = error else { throw error }
            #expect(code == "skylogin_credentials")
        }
    }

    @Test func credentialsUnderAnUntrustedIndexAreRejected() async throws {
        let server = try await FakeSkyLoginServer.start(.keyIndex(9))
        defer { server.stop() }
        await #expect(
            throws: RefreshFailure.rejected(code: "skylogin_credentials", description: "untrusted key index 9")
        ) {
            try await login([server.address], Self.password(), key: V.clientKey)
        }
    }

    @Test func garbageIsTransient() async throws {
        let expected: [(FakeSkyLoginServer.Behaviour, String)] = [
            (.garbage, "garbage reply: malformed SkyLogin data: the reply's CRC does not match"),
            (.badHello, "the hello reply is not a SkyLogin record"),
            (.closeAfterHello, "the server closed the connection while waiting for the reply"),
        ]
        for (behaviour, what) in expected {
            let server = try await FakeSkyLoginServer.start(behaviour)
            defer { server.stop() }
            let key = try V.clientKey
            do throws(RefreshFailure) {
                _ = try await login([server.address], Self.password(), key: key)
                Issue.record("the login succeeded")
            } catch {
                guard case .transient(let message) = error else { throw error }
                #expect(message == "the SkyLogin server \(server.address): \(what)")
            }
        }
    }

    @Test func serversAreTriedInOrder() async throws {
        let reserved = try FakeSkyLoginServer.ClosedPort()
        let closed = reserved.port
        let server = try await FakeSkyLoginServer.start(.ok)
        defer { server.stop() }
        let credentials = try await login(
            ["127.0.0.1:\(closed)", "not an address", server.address], Self.password(), key: V.clientKey)
        #expect(credentials.skypeName == "testuser")

        let key = try V.clientKey
        do throws(RefreshFailure) {
            _ = try await login(["127.0.0.1:\(closed)", "[::1]:\(closed)"], Self.password(), key: key)
            Issue.record("the login succeeded")
        } catch {
            guard case .transient(let message) = error else { throw error }
            #expect(message.hasPrefix("the SkyLogin server [::1]:\(closed): cannot connect"), "\(message)")
            #expect(!message.contains("secret"))
        }
        _ = consume reserved
    }

    @Test func unsendableRequestsFailBeforeConnecting() async throws {
        await #expect(throws: RefreshFailure.self) {
            try await login(["127.0.0.1:1"], .password(skypeName: "", hash: []), key: V.clientKey)
        }
        await #expect(throws: RefreshFailure.self) {
            try await login([], Self.password(), key: V.clientKey)
        }
    }
}

/// The SkyLogin client's timeout, timed. The test command runs it alone, after the other suites: in
/// the main run every suite starts at once on two cores, and a starved thread pool wakes a 2-second
/// sleep many seconds late.
@Suite("SkyLogin client: the timeout")
struct SkyLoginTimeoutTests {
    typealias V = SkyLoginVectors

    @Test func silenceTimesOut() async throws {
        let server = try await FakeSkyLoginServer.start(.silent)
        defer { server.stop() }
        let start = ContinuousClock.now
        let key = try V.clientKey
        do throws(RefreshFailure) {
            _ = try await skylogin(
                servers: [server.address], keys: try! V.testKeys, request: SkyLoginClientTests.password(),
                clientKey: key,
                now: SkyLoginClientTests.now, timeout: .seconds(2))
            Issue.record("the login succeeded")
        } catch {
            // The server accepts and stays silent: the attempt times out waiting for the hello
            // reply.
            guard case .transient(let message) = error else {
                Issue.record("expected a transient failure, got \(error)")
                return
            }
            #expect(message.hasPrefix("the SkyLogin server \(server.address): timed out"), "\(message)")
        }
        // 2 s of silence: not sooner, and not much later.
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .seconds(2))
        #expect(elapsed < .seconds(5))
    }
}

/// A login server for the tests: the vectors' session key pair and signer (key index 1).
final class FakeSkyLoginServer: Sendable {
    enum Behaviour: Sendable {
        case ok
        case refuse(UInt32)
        case otherModulus
        case keyIndex(UInt32)
        case garbage
        case badHello
        /// Reads the request and closes without a reply.
        case closeAfterHello
        case silent
    }

    struct Request: Sendable {
        var name: String?
        var hash: [UInt8]?
        var token: String?
    }

    let channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
    let address: String
    private let received = Mutex<[Request]>([])

    var requests: [Request] { received.withLock { $0 } }

    private init(_ channel: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>, port: Int) {
        self.channel = channel
        self.address = "127.0.0.1:\(port)"
    }

    static func start(_ behaviour: Behaviour) async throws -> FakeSkyLoginServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0) { child in
                child.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child)
                }
            }
        let server = FakeSkyLoginServer(channel, port: channel.channel.localAddress?.port ?? 0)
        Task {
            try await channel.executeThenClose { connections in
                for try await connection in connections {
                    Task { try? await server.serve(connection, behaviour) }
                }
            }
        }
        return server
    }

    /// A port nothing listens on.
    /// A loopback port that refuses connections for as long as the caller keeps it: a socket bound
    /// to it and never listening. (A port closed again could be taken by another test's server
    /// before the connection is tried.)
    struct ClosedPort: ~Copyable {
        let port: Int
        private let descriptor: Int32

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw SkyLoginError.malformed("socket: errno \(errno)") }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
                }
            }
            guard bound else {
                close(fd)
                throw SkyLoginError.malformed("bind: errno \(errno)")
            }
            descriptor = fd
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        deinit { close(descriptor) }
    }

    func stop() { channel.channel.close(promise: nil) }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, _ behaviour: Behaviour) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var iterator = inbound.makeAsyncIterator()
            var buffer = ByteBuffer()
            func read(_ count: Int) async throws -> [UInt8] {
                while buffer.readableBytes < count {
                    guard var chunk = try await iterator.next() else { throw SkyLoginError.malformed("closed") }
                    buffer.writeBuffer(&chunk)
                }
                return buffer.readBytes(length: count) ?? []
            }
            func readRecord() async throws -> [UInt8] {
                let header = try await read(5)
                return try await read(Int(header[3]) << 8 | Int(header[4]))
            }
            if case .silent = behaviour {
                while try await iterator.next() != nil {}
                return
            }
            guard try await read(5) == SkyLoginRecord.hello else { return }
            if case .badHello = behaviour {
                try await outbound.write(ByteBuffer(bytes: [0x15, 0x03, 0x01, 0x00, 0x00]))
                return
            }
            try await outbound.write(ByteBuffer(bytes: [0x17, 0x03, 0x01, 0x00, 0x00]))
            if case .closeAfterHello = behaviour {
                // Both records read first, so that the close is a FIN and not a reset.
                _ = try await readRecord()
                _ = try await readRecord()
                return
            }

            // Record 1: the session key, encrypted to the server's modulus.
            let record1 = try SkyLoginObjects.decodeList(await readRecord())
            guard case .blob(let encrypted)? = try record1.unique(0x08) else { return }
            let sessionKey = try SkyLoginCrypto.modExp(
                encrypted, SkyLoginVectors.bytes("server.d"), SkyLoginVectors.bytes("server.n"), secretExponent: true)
            let session = try SkyLoginSession(sessionKey: Array(sessionKey))
            // Record 2: the request.
            let body = try await readRecord()
            let cipher = Array(body.dropLast(2))
            guard Array(body.suffix(2)) == SkyLoginCRC.trailer(cipher) else { return }
            let plain = try SkyLoginCrypto.aes256CTR(
                key: session.aesKey, counter: [UInt8](repeating: 0, count: 16), cipher)
            let objects = try SkyLoginObjects.decodeLists(plain).flatMap { $0 }
            var request = Request()
            if case .string(let name)? = try objects.unique(0x04) {
                request.name = String(decoding: name, as: UTF8.self)
            }
            if case .blob(let hash)? = try objects.unique(0x05) { request.hash = hash }
            if case .string(let token)? = try objects.unique(0x3D) {
                request.token = String(decoding: token, as: UTF8.self)
            }
            received.withLock { $0.append(request) }
            guard case .blob(var modulus)? = try objects.unique(0x21) else { return }

            var reply: [[SkyLoginObject]]
            switch behaviour {
            case .refuse(let code):
                reply = [[SkyLoginObject(1, .number(code))], []]
            case .garbage:
                try await outbound.write(ByteBuffer(bytes: [0x17, 0x03, 0x01, 0x00, 0x04, 1, 2, 3, 4]))
                return
            default:
                if case .otherModulus = behaviour { modulus = try SkyLoginClientKey.generate().modulus }
                let name = request.token == nil ? (request.name ?? "").lowercased() : "live:alice"
                let minutes = UInt32(SkyLoginClientTests.now.timeIntervalSince1970 / 60) + 24 * 60
                let m = try SkyLoginObjects.encode(list: [
                    SkyLoginObject(0, .string(Array(name.utf8))), SkyLoginObject(1, .blob(modulus)),
                    SkyLoginObject(4, .number(minutes)),
                ])
                let block = SkyLoginMessageRecovery.pad(m, size: 256) ?? []
                let signature = try SkyLoginCrypto.modExp(
                    block, SkyLoginVectors.bytes("signer.d"), SkyLoginVectors.bytes("signer.n"), secretExponent: true)
                var index: UInt32 = 1
                if case .keyIndex(let other) = behaviour { index = other }
                let credentials =
                    [UInt8(index >> 24), UInt8(index >> 16 & 0xFF), UInt8(index >> 8 & 0xFF), UInt8(index & 0xFF)]
                    + signature
                reply = [[SkyLoginObject(1, .number(4200))], [SkyLoginObject(0x24, .blob(credentials))]]
            }
            let replyCipher = try SkyLoginCrypto.aes256CTR(
                key: session.aesKey, counter: SkyLoginSession.replyCounter(), SkyLoginObjects.encode(reply))
            try await outbound.write(
                ByteBuffer(
                    bytes: SkyLoginRecord.frame(
                        SkyLoginRecord.dataMagic, replyCipher + SkyLoginCRC.trailer(replyCipher)))
            )
        }
    }
}
