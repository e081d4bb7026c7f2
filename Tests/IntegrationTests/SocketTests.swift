import Foundation
import LiveSim
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
    import NIOHTTP1
#endif

/// Sends raw bytes on the socket and reads until the server closes or `timeout` passes.
func rawExchange(_ path: String, _ bytes: [UInt8], timeout: Double = 5) -> (response: String, closedByServer: Bool) {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
    }
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard connected == 0 else { return ("connect failed", false) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { break }
        offset += n
    }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n == 0 { return (String(decoding: out, as: UTF8.self), true) }
        if n < 0 { return (String(decoding: out, as: UTF8.self), false) }
        out += buffer[0..<n]
    }
}

@Suite("The socket API: bad input, access control")
struct SocketTests {
    @Test("bad input gets the documented error and the daemon stays up")
    func badInput() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }, server: ["idle_timeout = 1"]) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let unknownAccount = try await daemon.token("nobody", scope: "skype")
            #expect(unknownAccount.status == 404 && unknownAccount.errorCode == "not_found")
            let unknownScope = try await daemon.token("alice@example.com", scope: "email")
            #expect(unknownScope.status == 400 && unknownScope.errorCode == "unknown_scope")
            let badMinValid = try await daemon.token("alice@example.com", scope: "skype", minValid: -5)
            #expect(badMinValid.errorCode == "bad_request")
            let noEndpoint = try await daemon.get("/v2/nothing")
            #expect(noEndpoint.errorCode == "not_found")
            let wrongMethod = try await daemon.request(.PUT, "/v1/health")
            #expect(wrongMethod.status == 405)
            let badJSON = try await daemon.request(.POST, "/v1/accounts", body: "{not json")
            #expect(badJSON.errorCode == "bad_request")

            let garbage = rawExchange(daemon.socketPath, Array("GARBAGE \u{1}\u{2} nonsense\r\n\r\n".utf8))
            #expect(garbage.response.hasPrefix("HTTP/1.1 400"))
            #expect(garbage.response.contains(#""code":"bad_request""#))
            #expect(garbage.closedByServer)

            let bigHeader =
                "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\n\r\n"
            let headers = rawExchange(daemon.socketPath, Array(bigHeader.utf8))
            #expect(headers.response.hasPrefix("HTTP/1.1 431"))

            let bigBody =
                "POST /v1/accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n"
                + String(repeating: "x", count: 200_000)
            let body = rawExchange(daemon.socketPath, Array(bigBody.utf8))
            #expect(body.response.hasPrefix("HTTP/1.1 413"))
            #expect(body.response.contains(#""code":"payload_too_large""#))

            // A client that connects and sends nothing is closed after the idle timeout,
            // and others are served meanwhile.
            let started = ContinuousClock.now
            async let idle = Task.detached { rawExchange(daemon.socketPath, [], timeout: 5) }.value
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200)
            let silent = await idle
            #expect(silent.closedByServer)
            #expect(ContinuousClock.now - started < .seconds(4))
            #expect(daemon.isRunning)
            #expect(try await daemon.get("/v1/health").status == 200)
        }
    }

    @Test(
        "a uid the configuration does not list is refused with forbidden; a listed one reads only its accounts",
        .enabled(if: getuid() == 0, "needs root to run clients under other uids"))
    func foreignUIDs() async throws {
        try await withBroker(
            sim: { $0.tokenLifetime = 600 }, socket: ["mode = \"0666\""], topLevel: ["admin_groups = [\"65530\"]"],
            extra: "[[access]]\naccounts = [\"erin\"]\nuids = [\"65533\"]"
        ) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"x"}"#)
            try await daemon.importAccount("erin@example.com", sim: sim, name: "erin")
            func asUser(_ uid: Int, _ arguments: [String]) async throws -> CommandResult {
                try await runCommand(
                    "/usr/bin/setpriv",
                    [
                        "--reuid", "\(uid)", "--regid", "\(uid)", "--clear-groups", Products.path("tokenctl"),
                        "--socket", daemon.socketPath,
                    ] + arguments)
            }
            let stranger = try await asUser(65534, ["token", "alice@example.com"])
            #expect(stranger.status == 77)
            #expect(stranger.stderr.contains("uid 65534"))
            #expect(daemon.log.contains("request denied"))
            #expect(daemon.log.contains("broker.peer.uid=65534"))
            #expect(daemon.log.contains("broker.peer.comm=tokenctl"))
            #expect(try await asUser(65534, ["logout", "alice@example.com"]).status == 77)
            let reader = try await asUser(65533, ["token", "erin", "--scope", "ssl"])
            #expect(reader.status == 0, "\(reader.stderr)")
            #expect(
                try await sim.validate(reader.stdout.trimmingCharacters(in: .whitespacesAndNewlines))["valid"] as? Bool
                    == true)
            #expect(try await asUser(65533, ["token", "alice@example.com"]).status == 77)
            #expect(try await asUser(65533, ["logout", "erin"]).status == 77)
            let listed = try await asUser(65533, ["accounts"])
            #expect(listed.stdout.contains("erin") && !listed.stdout.contains("alice"))
            // A member of an admin group (as a supplementary group) may enroll and log out.
            func asAdmin(_ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
                try await runCommand(
                    "/usr/bin/setpriv",
                    [
                        "--reuid", "65531", "--regid", "65531", "--groups", "65530", Products.path("tokenctl"),
                        "--socket", daemon.socketPath,
                    ] + arguments, stdin: stdin)
            }
            #expect(try await asAdmin(["logout", "erin"]).status == 0)
            let refreshToken = try await sim.grant("erin@example.com")["refresh_token"] as? String ?? ""
            let reimport = try await asAdmin(
                ["import", "erin@example.com", "--name", "erin", "--refresh-token-stdin"], stdin: refreshToken + "\n")
            #expect(reimport.status == 0, "\(reimport.stderr)")
            #expect(try await asUser(65533, ["token", "erin", "--scope", "ssl"]).status == 0)
            let status = try await daemon.tokenctl(["status"])
            #expect(status.stdout.contains("readers: root; uids 65533; gids 65530"), "\(status.stdout)")
            let root = try await daemon.tokenctl(["token", "alice@example.com"])
            #expect(root.status == 0)
        }
    }
}
