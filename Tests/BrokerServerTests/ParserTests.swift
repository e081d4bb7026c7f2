import BrokerCore
import Foundation
import NIOHTTP1
import Testing

@testable import BrokerServer

private func head(_ text: String) -> RequestHead.Parsed {
    let bytes = Array(text.utf8)
    return bytes.withUnsafeBufferPointer { RequestHead.parse($0) }
}

private func parsed(_ text: String) -> RequestHead? {
    if case .success(let head) = head(text) { return head }
    return nil
}

private func failure(_ text: String) -> String? {
    if case .failure(let message) = head(text) { return message }
    return nil
}

@Suite("HTTP/1.1 request heads")
struct RequestHeadTests {
    @Test("a plain GET: method, target, keep-alive by default in HTTP/1.1, not in HTTP/1.0")
    func plain() throws {
        let get = try #require(parsed("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(
            get.method == .GET && get.target == "/v1/health" && get.keepAlive && get.contentLength == 0 && !get.chunked)
        #expect(parsed("GET / HTTP/1.0\r\n\r\n")?.keepAlive == false)
        #expect(parsed("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")?.keepAlive == true)
        #expect(parsed("GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n")?.keepAlive == false)
        // Bare LF line ends are read as well.
        #expect(parsed("GET /a HTTP/1.1\nHost: x\n\n")?.target == "/a")
    }

    @Test("framing fields: Content-Length, chunked, Expect: 100-continue")
    func framing() {
        #expect(parsed("POST /v1/challenge HTTP/1.1\r\ncontent-LENGTH:  12 \r\n\r\n")?.contentLength == 12)
        #expect(parsed("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n")?.contentLength == 3)
        #expect(parsed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")?.chunked == true)
        // Too many digits for an Int: a body over any limit, which the server answers 413.
        #expect(parsed("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n")?.contentLength == .max)
        #expect(parsed("POST / HTTP/1.1\r\nContent-Length: 00000000000000000000007\r\n\r\n")?.contentLength == 7)
        #expect(parsed("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")?.expectContinue == true)
    }

    @Test("what two parsers could read differently is refused")
    func refused() {
        #expect(
            failure("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                == "conflicting Content-Length fields")
        #expect(failure("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n") == "invalid Content-Length")
        #expect(failure("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n") == "invalid Content-Length")
        #expect(failure("POST / HTTP/1.1\r\nContent-Length : 1\r\n\r\n") == "malformed header field")
        #expect(failure("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n") == "malformed header field")
        #expect(failure("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") != nil)
        #expect(failure("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n") != nil)
        #expect(failure("GET /\u{0} HTTP/1.1\r\n\r\n") != nil)
        #expect(failure("GET / HTTP/2.0\r\n\r\n") != nil)
        #expect(failure("GET /\r\n\r\n") != nil)
        #expect(failure("GET  / HTTP/1.1\r\n\r\n") != nil)
        #expect(failure("GET / HTTP/1.1\r\nX: a\u{7}b\r\n\r\n") == "malformed header field")
    }

    @Test("the end of the head is found however the bytes arrive")
    func headEnd() {
        let text = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET".utf8)
        #expect(text.withUnsafeBufferPointer { HTTPConnection.headEnd($0, from: 0) } == 27)
        #expect(
            Array("GET / HTTP/1.1\r\nHost: x\r\n\r".utf8).withUnsafeBufferPointer {
                HTTPConnection.headEnd($0, from: 0)
            } == nil)
        #expect(Array("GET / HTTP/1.1\n\n".utf8).withUnsafeBufferPointer { HTTPConnection.headEnd($0, from: 0) } == 16)
    }
}

@Suite("Chunked request bodies")
struct ChunkedBodyTests {
    private func decode(_ chunks: [String], maxBody: Int = 64) -> (ChunkedBody.Step, [UInt8]) {
        var limits = ServerLimits()
        limits.maxBodyBytes = maxBody
        var body = ChunkedBody(position: 0)
        var received: [UInt8] = []
        var step = ChunkedBody.Step.incomplete
        for chunk in chunks {
            received += Array(chunk.utf8)
            step = received.withUnsafeBufferPointer { body.advance($0, limits: limits) }
            if case .incomplete = step { continue }
            break
        }
        return (step, body.body)
    }

    @Test("decoded whole, in one read or byte by byte, with extensions and trailers")
    func decoded() {
        let wire = "4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\n"
        for reads in [[wire], wire.map { String($0) }] {
            let (step, body) = decode(reads)
            guard case .done(let length) = step else {
                Issue.record("not done: \(step)")
                continue
            }
            #expect(length == wire.utf8.count)
            #expect(String(decoding: body, as: UTF8.self) == "Wikipedia")
        }
    }

    @Test("over the body limit: 413 before the data arrives; malformed sizes: 400")
    func limits() {
        guard case .failure(let large) = decode(["41\r\n"]).0 else {
            Issue.record("accepted a chunk over the limit")
            return
        }
        #expect(large.status == .payloadTooLarge)
        guard case .failure(let bad) = decode(["zz\r\n"]).0 else {
            Issue.record("accepted a bad size")
            return
        }
        #expect(bad.status == .badRequest)
        guard case .failure(let missing) = decode(["2\r\nabX\r\n"]).0 else {
            Issue.record("accepted data without its CRLF")
            return
        }
        #expect(missing.status == .badRequest)
    }
}

@Suite("The cached-token hot path")
struct HotPathTests {
    @Test("the token answer written directly is the same bytes as the generic encoder's")
    func sameBytes() throws {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        for (lifetime, keepAlive, expiresAt) in [
            (0.4, true, "2027-01-15T08:00:00Z"), (9.0, false, "2027-01-15T08:00:09Z"),
            (86_399.7, true, "2027-01-16T07:59:59Z"),
        ] {
            let credential = Credential(
                value: Secret("t=" + String(repeating: "A", count: 1100)), obtainedAt: now, expiresAt: now + lifetime)
            let served = ServedCredential(
                kind: .scope(.skype), credential: credential)
            var generic: [UInt8] = []
            APIResponse.token(served, now: now).serialize(into: &generic, keepAlive: keepAlive, omitBody: false)
            var direct: [UInt8] = []
            APIResponse.writeToken(served, now: now, keepAlive: keepAlive, omitBody: false, into: &direct)
            #expect(direct == generic)
            // And the body is the JSON the API documents.
            let text = String(decoding: generic, as: UTF8.self)
            let headEnd = try #require(text.range(of: "\r\n\r\n"))
            let body = Data(text[headEnd.upperBound...].utf8)
            let json = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            #expect(json["access_token"] as? String == credential.value.exposed)
            #expect(json["token_type"] as? String == "bearer" && json["scope"] as? String == Scope.skype.rawValue)
            #expect(
                json["expires_at"] as? String == expiresAt && json["expires_in"] as? Int == Int(lifetime))
        }
    }

    @Test("only plain token targets take it; anything else goes to the generic router")
    func targets() {
        func target(_ text: String) -> (AccountName, Scope, TimeInterval)? {
            Array(text.utf8).withUnsafeBufferPointer { Router.tokenTarget($0) }
        }
        let plain = target("/v1/accounts/alice@example.com/token?scope=skype")
        #expect(plain?.0.rawValue == "alice@example.com" && plain?.1 == .skype && plain?.2 == 0)
        let full = target("/v1/accounts/a/token?min_valid=300&scope=service::ssl.live.com::MBI_SSL")
        #expect(full?.1 == .ssl && full?.2 == 300)
        for other in [
            "/v1/accounts/alice%40example.com/token?scope=skype", "/v1/accounts/a/token?scope=skype&scope=ssl",
            "/v1/accounts/a/token?scope=skype&x=1", "/v1/accounts/a/token?scope=nope",
            "/v1/accounts/a/token?scope=skype&min_valid=-1",
            "/v1/accounts/a/token?scope", "/v1/accounts/a/skypetoken?scope=skype", "/v1/accounts//token?scope=skype",
            "/v1/accounts/a b/token?scope=skype", "/v1/accounts/a/token", "/v2/accounts/a/token?scope=skype",
        ] {
            #expect(target(other) == nil, "\(other)")
        }
    }
}
