import Foundation
import Testing

@testable import BrokerAPI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

private let healthJSON = #"{"status":"ok","version":"0.1.0","accounts":2,"needs_reauth":0}"#
private let tokenJSON =
    #"{"access_token":"t=EwBAsecret","token_type":"bearer","scope":"service::skype.com::MBI_SSL","expires_at":"2026-11-27T14:00:00Z","expires_in":3599}"#
private let detailJSON =
    #"{"name":"alice","realm":"live","login":"alice@example.com","state":"active","scopes":[{"scope":"service::skype.com::MBI_SSL","alias":"skype","failures":0}]}"#

/// Splits `text` into `count` nearly equal parts.
private func pieces(_ text: String, _ count: Int) -> [[UInt8]] {
    let bytes = Array(text.utf8)
    let size = (bytes.count + count - 1) / count
    return stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
}

private func expectError(
    _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation
) -> BrokerClientError? {
    do {
        try body()
        Issue.record("expected an error", sourceLocation: sourceLocation)
        return nil
    } catch let error as BrokerClientError {
        return error
    } catch {
        Issue.record("expected a BrokerClientError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

@Suite struct BrokerClientTests {
    @Test func healthWithContentLength() throws {
        let server = try CannedServer(.init(httpResponse(200, "OK", json: healthJSON)))
        let health = try BrokerClient(socketPath: server.path).health()
        #expect(health == HealthResponse(version: "0.1.0", accounts: 2, needsReauth: 0))

        let request = try #require(server.requests().first)
        #expect(request.hasPrefix("GET /v1/health HTTP/1.1\r\n"))
        #expect(request.contains("\r\nHost: localhost\r\n"))
        #expect(request.contains("\r\nConnection: close\r\n"))
        #expect(!request.contains("Content-Length"))
        #expect(request.hasSuffix("\r\n\r\n"))
    }

    @Test func chunkedBodyInPieces() throws {
        let chunked =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + String(tokenJSON.utf8.count - 40, radix: 16) + ";ext=1\r\n" + String(tokenJSON.dropLast(40)) + "\r\n"
            + "28\r\n" + String(tokenJSON.suffix(40)) + "\r\n"
            + "0\r\nX-Trailer: yes\r\n\r\n"
        let server = try CannedServer(.init(pieces(chunked, 7)))
        let token = try BrokerClient(socketPath: server.path)
            .token(account: "alice@example.com", scope: "service::skype.com::MBI_SSL", minValid: 300)
        #expect(token.accessToken == "t=EwBAsecret")
        #expect(token.expiresIn == 3599)

        let request = try #require(server.requests().first)
        #expect(
            request.hasPrefix(
                "GET /v1/accounts/alice@example.com/token?scope=service::skype.com::MBI_SSL&min_valid=300 HTTP/1.1\r\n"
            ))
    }

    @Test func stopsReadingWhenTheBodyIsWhole() throws {
        // The server keeps the connection open: only the framing tells the body is whole.
        let server = try CannedServer([
            .init(httpResponse(200, "OK", json: healthJSON), keepOpen: true),
            .init(
                [
                    Array(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\(String(healthJSON.utf8.count, radix: 16))\r\n\(healthJSON)\r\n0\r\n\r\n"
                            .utf8)
                ],
                keepOpen: true),
        ])
        let client = BrokerClient(socketPath: server.path, timeout: .seconds(10))
        let start = ContinuousClock.now
        _ = try client.health()
        _ = try client.health()
        #expect(ContinuousClock.now - start < .seconds(3))
        #expect(server.requests().count == 2)
    }

    @Test func bodyUntilEOFWithoutFraming() throws {
        let server = try CannedServer(.init(pieces("HTTP/1.0 200 OK\r\n\r\n" + healthJSON, 3)))
        #expect(try BrokerClient(socketPath: server.path).health().accounts == 2)
    }

    @Test func interimAnswerIsSkipped() throws {
        let server = try CannedServer(
            .init("HTTP/1.1 100 Continue\r\n\r\n" + httpResponse(200, "OK", json: healthJSON)))
        #expect(try BrokerClient(socketPath: server.path).health().version == "0.1.0")
    }

    @Test func namesAndScopesArePercentEncoded() throws {
        let server = try CannedServer([
            .init(httpResponse(200, "OK", json: tokenJSON)),
            .init(httpResponse(200, "OK", json: detailJSON)),
            .init(httpResponse(200, "OK", json: detailJSON)),
        ])
        let client = BrokerClient(socketPath: server.path)
        _ = try client.token(account: "a b+c/d?", scope: "x&y=z+#")
        _ = try client.account("..")
        _ = try client.account("é")
        let requests = server.requests().map { $0.components(separatedBy: "\r\n")[0] }
        #expect(
            requests == [
                "GET /v1/accounts/a%20b+c%2Fd%3F/token?scope=x%26y%3Dz%2B%23 HTTP/1.1",
                "GET /v1/accounts/%2E%2E HTTP/1.1",
                "GET /v1/accounts/%C3%A9 HTTP/1.1",
            ])
    }

    @Test func enrollPostsJSON() throws {
        let server = try CannedServer(.init(httpResponse(201, "Created", json: detailJSON)))
        let detail = try BrokerClient(socketPath: server.path).enroll(
            .password(login: "alice@example.com", password: "hunter2", name: "alice"))
        #expect(detail.name == "alice")
        #expect(detail.scopes.map(\.alias) == ["skype"])

        let request = try #require(server.requests().first)
        let body =
            #"{"login":"alice@example.com","method":"password","name":"alice","password":"hunter2","store_password":false}"#
        #expect(request.hasPrefix("POST /v1/accounts HTTP/1.1\r\n"))
        #expect(request.contains("\r\nContent-Type: application/json\r\n"))
        #expect(request.contains("\r\nContent-Length: \(body.utf8.count)\r\n"))
        #expect(request.hasSuffix("\r\n\r\n" + body))
    }

    @Test func logoutDeletes() throws {
        let server = try CannedServer(.init(httpResponse(200, "OK", json: #"{"deleted":"alice"}"#)))
        #expect(try BrokerClient(socketPath: server.path).logout("alice") == DeleteResponse(deleted: "alice"))
        #expect(try #require(server.requests().first).hasPrefix("DELETE /v1/accounts/alice HTTP/1.1\r\n"))
    }

    @Test func listsRealmsAndAccounts() throws {
        let server = try CannedServer([
            .init(
                httpResponse(
                    200, "OK",
                    json:
                        #"{"realms":[{"name":"live","authorize_url":"https://login.live.com/oauth20_authorize.srf?a=b","default":true}]}"#
                )),
            .init(
                httpResponse(
                    200, "OK",
                    json:
                        #"{"accounts":[{"name":"alice","realm":"live","login":"alice@example.com","state":"active"}]}"#)
            ),
        ])
        let client = BrokerClient(socketPath: server.path)
        #expect(
            try client.realms() == [
                RealmInfo(
                    name: "live", authorizeURL: "https://login.live.com/oauth20_authorize.srf?a=b", isDefault: true)
            ])
        #expect(try client.accounts().map(\.login) == ["alice@example.com"])
    }

    @Test func apiErrorBody() throws {
        let json =
            #"{"error":{"code":"needs_reauth","message":"account alice needs a new sign-in","hint":"tokenctl login alice@example.com"}}"#
        let server = try CannedServer(.init(httpResponse(401, "Unauthorized", json: json)))
        let error = expectError { _ = try BrokerClient(socketPath: server.path).token(account: "alice") }
        #expect(
            error
                == .api(
                    status: 401, code: "needs_reauth", message: "account alice needs a new sign-in",
                    hint: "tokenctl login alice@example.com"))
        #expect(error?.description == "account alice needs a new sign-in (needs_reauth)")
        #expect(error?.hint == "tokenctl login alice@example.com")
    }

    @Test func errorWithoutAPIBodyMapsTheStatus() throws {
        let server = try CannedServer(.init("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\noops!"))
        let error = expectError { _ = try BrokerClient(socketPath: server.path).health() }
        #expect(
            error
                == .api(
                    status: 502, code: "upstream_error", message: "the daemon answered HTTP 502 Bad Gateway",
                    hint: nil as String?))
    }

    @Test func rawRequestReturnsAnyStatus() throws {
        let server = try CannedServer(
            .init(httpResponse(404, "Not Found", json: #"{"error":{"code":"not_found","message":"no route"}}"#)))
        let (status, body) = try BrokerClient(socketPath: server.path).request(method: "GET", path: "/v1/nothing")
        #expect(status == 404)
        #expect(String(decoding: body, as: UTF8.self).contains("not_found"))
    }

    @Test func missingSocketIsUnreachable() {
        let path = CannedServer.temporarySocketPath()
        let error = expectError { _ = try BrokerClient(socketPath: path).health() }
        #expect(error == .unreachable(path: path, reason: "no such socket"))
    }

    @Test func socketWithoutListenerIsUnreachable() throws {
        let path = CannedServer.temporarySocketPath()
        let fd = socket(AF_UNIX, streamSocketType, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8))
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        close(fd)
        defer { unlink(path) }

        let error = expectError { _ = try BrokerClient(socketPath: path).health() }
        guard case .unreachable(let reportedPath, let reason) = error else {
            Issue.record("expected unreachable, got \(String(describing: error))")
            return
        }
        #expect(reportedPath == path)
        #expect(reason.contains("refused"))
    }

    @Test func tooLongPathIsUnreachable() {
        let path = "/tmp/" + String(repeating: "x", count: 200)
        guard case .unreachable = expectError({ _ = try BrokerClient(socketPath: path).health() }) else {
            Issue.record("expected unreachable")
            return
        }
    }

    @Test func silentDaemonTimesOut() throws {
        let server = try CannedServer(.neverAnswer)
        let start = ContinuousClock.now
        let error = expectError {
            _ = try BrokerClient(socketPath: server.path, timeout: .milliseconds(300)).health()
        }
        #expect(ContinuousClock.now - start < .seconds(3))
        guard case .unreachable(_, let reason) = error else {
            Issue.record("expected unreachable, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("no answer in time"))
        _ = server.requests()
    }

    @Test func closeWithoutAnswerIsAProtocolError() throws {
        let server = try CannedServer(.silentClose)
        let error = expectError { _ = try BrokerClient(socketPath: server.path).health() }
        #expect(error == .protocolError("the daemon closed the connection without answering"))
    }

    @Test func truncatedBodyIsAProtocolError() throws {
        let server = try CannedServer(.init("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\""))
        let error = expectError { _ = try BrokerClient(socketPath: server.path).health() }
        #expect(error == .protocolError("the connection closed after 9 of 100 body bytes"))
    }

    @Test func malformedTokenAnswerDoesNotLeakTheToken() throws {
        let server = try CannedServer(
            .init(httpResponse(200, "OK", json: #"{"access_token":"t=EwBAsecret","expires_in":"soon"}"#)))
        let error = expectError { _ = try BrokerClient(socketPath: server.path).token(account: "alice") }
        guard case .protocolError(let detail) = error else {
            Issue.record("expected a protocol error, got \(String(describing: error))")
            return
        }
        #expect(detail.contains("TokenResponse"))
        #expect(!detail.contains("secret"))
    }

    @Test func notHTTPIsAProtocolError() throws {
        let server = try CannedServer(.init("SSH-2.0-OpenSSH_9.2\r\n\r\n"))
        let error = expectError { _ = try BrokerClient(socketPath: server.path).health() }
        #expect(error == .protocolError("not an HTTP/1.x status line"))
    }

    @Test func invalidPathIsRefusedBeforeSending() {
        let error = expectError {
            _ = try BrokerClient(socketPath: "/nonexistent").request(method: "GET", path: "/v1/x HTTP/1.1\r\nX: y")
        }
        guard case .protocolError = error else {
            Issue.record("expected a protocol error")
            return
        }
    }
}

@Suite struct HTTPResponseParserTests {
    private func parse(_ text: String, atEOF: Bool = false) throws -> HTTPResponse? {
        if case .complete(let response) = try HTTPResponseParser.parse(Array(text.utf8), atEOF: atEOF) {
            return response
        }
        return nil
    }

    @Test func needsMoreUntilTheBodyIsWhole() throws {
        let full = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd"
        for end in full.indices.dropLast() {
            #expect(try parse(String(full[..<end])) == nil)
        }
        let response = try #require(try parse(full))
        #expect(response.status == 200)
        #expect(response.reason == "OK")
        #expect(response.header("content-length") == "4")
        #expect(response.body == Array("abcd".utf8))
    }

    @Test func chunkedAndLineEndings() throws {
        let response = try #require(
            try parse("HTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked\n\n3\nabc\n2;x=y\r\nde\r\n0\n\n"))
        #expect(response.body == Array("abcde".utf8))
        #expect(try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n") == nil)
    }

    @Test func noBodyStatuses() throws {
        #expect(try parse("HTTP/1.1 204 No Content\r\n\r\n")?.body == [])
    }

    @Test func malformedFraming() {
        #expect(throws: BrokerClientError.protocolError("invalid Content-Length")) {
            try parse("HTTP/1.1 200 OK\r\nContent-Length: 4, 5\r\n\r\nabcd")
        }
        #expect(throws: BrokerClientError.protocolError("invalid chunk size")) {
            try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        }
        #expect(throws: BrokerClientError.protocolError("the connection closed inside a chunked body")) {
            try parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", atEOF: true)
        }
    }
}
