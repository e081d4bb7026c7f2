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
func skyConnect(port: Int, _ segments: [[UInt8]], timeout: Duration = .seconds(30)) async throws -> (
    hello: [UInt8]?, bytes: [UInt8], end: SkyEnd
) {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    let raw = channel.channel
    let started = ContinuousClock.now
    let timer = raw.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)) {
        raw.close(promise: nil)
    }
    return try await channel.executeThenClose { inbound, outbound in
        var iterator = inbound.makeAsyncIterator()
        var received: [UInt8] = []
        var hello: [UInt8]?
        do {
            for (index, segment) in segments.enumerated() {
                try await outbound.write(ByteBuffer(bytes: segment))
                if index == 0, segment == SkyTestClient.hello {
                    while received.count < 5, let chunk = try await iterator.next() {
                        received += Array(chunk.readableBytesView)
                    }
                    hello = Array(received.prefix(5))
                    received.removeFirst(min(5, received.count))
                }
            }
            while let chunk = try await iterator.next() { received += Array(chunk.readableBytesView) }
        } catch {
            timer.cancel()
            return (hello, received, ContinuousClock.now - started >= timeout ? .timedOut : .reset)
        }
        timer.cancel()
        return (hello, received, ContinuousClock.now - started >= timeout ? .timedOut : .closed)
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
