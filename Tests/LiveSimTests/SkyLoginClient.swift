import Foundation
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import LiveSim

/// The tests' own SkyLogin client. It assembles the records from the notes' tables by hand and
/// reads the reply by hand; only the primitives (raw RSA, AES-CTR, CRC, hashes), which the
/// vector tests pin down, are livesim's.
struct SkyTestClient {
    var sessionModulus: SkyRSAKey
    var sessionKey: [UInt8] = [0x01] + (0..<191).map { _ in UInt8.random(in: 0...255) }
    var clientKey = SkyVectorKeys.client

    var aesKey: [UInt8] { SkyCipher.aesKey(sessionKey: sessionKey) }

    static let hello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x00]
    static let version = Array("0/7.44.0.104".utf8)

    /// `41 03 | 00 09 80 40 | 04 08 c0 01 RSA(SK) | 00 0c 01` behind `16 03 01 00 cd`.
    func record1() -> [UInt8] {
        let encrypted = sessionModulus.publicOperation(sessionKey) ?? []
        let body: [UInt8] =
            [0x41, 0x03, 0x00, 0x09, 0x80, 0x40, 0x04, 0x08, 0xC0, 0x01] + encrypted + [0x00, 0x0C, 0x01]
        return [0x16, 0x03, 0x01, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    /// List 1 {0x00: 0x1399, 0x02: 1, 0x04: name, 0x05: hash}, list 2 {0x21: n, 0x0D: version}.
    func passwordPlain(name: String, hash: [UInt8]) -> [UInt8] {
        [0x41, 0x04, 0x00, 0x00, 0x99, 0x27, 0x00, 0x02, 0x01, 0x03, 0x04] + Array(name.utf8)
            + [0x00, 0x04, 0x05, UInt8(hash.count)] + hash + modulusAndVersion
    }

    func passwordPlain(name: String, password: String) -> [UInt8] {
        passwordPlain(name: name, hash: SkyCipher.loginHash(skypeName: name, password: password))
    }

    /// List 1 {0x00: 0x13A3, 0x02: 0x3D}, list 2 {0x21: n, 0x3D: token, 0x0D: version}.
    func oauthPlain(token: String) -> [UInt8] {
        [0x41, 0x02, 0x00, 0x00, 0xA3, 0x27, 0x00, 0x02, 0x3D, 0x41, 0x03, 0x04, 0x21, 0x80, 0x01]
            + clientKey.modulus + [0x03, 0x3D] + Array(token.utf8) + [0x00, 0x03, 0x0D] + Self.version + [0x00]
    }

    private var modulusAndVersion: [UInt8] {
        [0x41, 0x02, 0x04, 0x21, 0x80, 0x01] + clientKey.modulus + [0x03, 0x0D] + Self.version + [0x00]
    }

    /// `17 03 01 ‖ BE16(len + 2) ‖ AES-CTR(plain, counter 0) ‖ LE16(crc)`.
    func record2(_ plain: [UInt8]) -> [UInt8] {
        let ciphertext = SkyCipher.ctr(key: aesKey, counter: [UInt8](repeating: 0, count: 16), plain) ?? []
        let length = ciphertext.count + 2
        let crc = UInt16(truncatingIfNeeded: SkyCipher.crc32NoXor(ciphertext))
        return [0x17, 0x03, 0x01, UInt8(length >> 8), UInt8(length & 0xFF)] + ciphertext
            + [UInt8(crc & 0xFF), UInt8(crc >> 8)]
    }

    struct Reply: Equatable {
        var code: UInt32
        var credentials: [UInt8]?
    }

    /// Reads one reply record that must be all of `bytes`: its CRC, then `41 01 00 01 code`, then
    /// `41 01 04 24 len creds` or `41 00`.
    func openReply(_ bytes: [UInt8]) -> Reply? {
        guard bytes.count > 7, Array(bytes.prefix(3)) == [0x17, 0x03, 0x01],
            Int(bytes[3]) << 8 | Int(bytes[4]) == bytes.count - 5
        else { return nil }
        let ciphertext = Array(bytes[5..<(bytes.count - 2)])
        let crc = UInt16(truncatingIfNeeded: SkyCipher.crc32NoXor(ciphertext))
        guard bytes[bytes.count - 2] == UInt8(crc & 0xFF), bytes[bytes.count - 1] == UInt8(crc >> 8) else { return nil }
        let counter: [UInt8] = [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        guard let plain = SkyCipher.ctr(key: aesKey, counter: counter, ciphertext) else { return nil }
        var index = 4
        func varint() -> UInt32? {
            var value: UInt32 = 0
            var shift: UInt32 = 0
            while index < plain.count, shift < 35 {
                let byte = plain[index]
                index += 1
                value |= UInt32(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        guard Array(plain.prefix(4)) == [0x41, 0x01, 0x00, 0x01], let code = varint() else { return nil }
        let rest = Array(plain[index...])
        if rest == [0x41, 0x00] { return Reply(code: code, credentials: nil) }
        guard Array(rest.prefix(4)) == [0x41, 0x01, 0x04, 0x24] else { return nil }
        index += 4
        guard let length = varint(), index + Int(length) == plain.count else { return nil }
        return Reply(code: code, credentials: Array(plain[index...]))
    }
}

/// How a SkyLogin connection ended.
enum SkyEnd: Equatable {
    case closed
    case reset
    case timedOut
}

/// Sends `segments` in order (after the first, waits for the 5-byte hello reply when it was the
/// hello), then reads until the server closes, resets, or `timeout` passes.
///
/// Plain blocking sockets on a thread of its own: the answer's timing must not depend on the
/// shared task threads, which other tests may keep busy.
func skyConnect(port: Int, _ segments: [[UInt8]], timeout: Duration = .seconds(30)) async throws -> (
    hello: [UInt8]?, bytes: [UInt8], end: SkyEnd
) {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            continuation.resume(with: Result { try skyConnectBlocking(port: port, segments, timeout: timeout) })
        }.start()
    }
}

struct SkyConnectError: Error, CustomStringConvertible {
    var description: String
}

private func skyConnectBlocking(port: Int, _ segments: [[UInt8]], timeout: Duration) throws -> (
    hello: [UInt8]?, bytes: [UInt8], end: SkyEnd
) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SkyConnectError(description: "socket: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else { throw SkyConnectError(description: "connect: \(errno)") }
    let deadline = ContinuousClock.now + timeout
    var received: [UInt8] = []
    var hello: [UInt8]?
    /// Reads once; nil when the connection ended (closed, reset or timed out).
    func readSome() -> SkyEnd? {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return .timedOut }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(
            min(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000, 60_000))
        guard poll(&entry, 1, max(milliseconds, 1)) == 1 else {
            return ContinuousClock.now >= deadline ? .timedOut : nil
        }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buffer, buffer.count, 0)
        if n == 0 { return .closed }
        if n < 0 { return .reset }
        received += buffer[..<n]
        return nil
    }
    for (index, segment) in segments.enumerated() {
        let sent = segment.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent < 0 { return (hello, received, .reset) }
        if index == 0, segment == SkyTestClient.hello {
            while received.count < 5 {
                if let end = readSome() { return (hello, received, end) }
            }
            hello = Array(received.prefix(5))
            received.removeFirst(5)
        }
    }
    while true {
        if let end = readSome() { return (hello, received, end) }
    }
}

extension LiveSimFixture {
    var skyloginPort: Int { server.skyloginPort ?? 0 }

    func skyKeys() throws -> (session: SkyRSAKey, signers: [UInt32: SkyRSAKey]) {
        try SkyKeysFile.parse(try #require(server.skyloginKeysJSON))
    }

    func skyClient() throws -> SkyTestClient { SkyTestClient(sessionModulus: try skyKeys().session) }

    /// One login: hello (optional), record 1, record 2; the reply read by the test's client.
    func skyLogin(_ plain: (SkyTestClient) -> [UInt8], hello: Bool = true) async throws -> SkyTestClient.Reply? {
        let client = try skyClient()
        let segments = (hello ? [SkyTestClient.hello] : []) + [client.record1(), client.record2(plain(client))]
        let (helloReply, bytes, end) = try await skyConnect(port: skyloginPort, segments)
        if hello { #expect(helloReply == [0x17, 0x03, 0x01, 0x00, 0x00]) }
        #expect(end == .closed)
        #expect(bytes.count <= 4096)
        return client.openReply(bytes)
    }

    /// Credentials from a password login with the vector client key.
    func skyPasswordCredentials(_ name: String = "testuser", password: String = "secret") async throws -> [UInt8] {
        let reply = try await skyLogin { $0.passwordPlain(name: name, password: password) }
        #expect(reply?.code == 4200)
        return try #require(reply?.credentials)
    }
}

/// The client's UIC: `BE32(L) ‖ creds ‖ pad(SHA1(creds ‖ salt) ‖ salt ‖ nonce)^d mod n`, in Base64.
func skyUIC(credentials: [UInt8], nonce: String, client: SkyRSAKey = SkyVectorKeys.client) -> String {
    let salt = Array("WS-SecureConversationSESSION KEY TOKEN".utf8)
    let m = SkyCipher.sha1(credentials + salt) + salt + Array(nonce.utf8)
    let block =
        [0x4B] + [UInt8](repeating: 0xBB, count: 105 - m.count) + [0xBA] + m + SkyCipher.sha1(m) + [0xBC]
    let signature = client.privateOperation(block) ?? []
    let length = UInt32(credentials.count)
    let prefix: [UInt8] = [
        UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF),
    ]
    return Data(prefix + credentials + signature).base64EncodedString()
}
