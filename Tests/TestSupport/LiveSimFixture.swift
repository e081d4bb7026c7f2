import AsyncHTTPClient
import Foundation
import LiveSim
import NIOCore
import NIOHTTP1
import NIOSSL

/// A response read whole, for assertions.
public struct TestResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: String

    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }

    /// Name and value of every Set-Cookie header.
    public var setCookies: [String: String] {
        var out: [String: String] = [:]
        for (name, value) in headers where name.lowercased() == "set-cookie" {
            let pair = value.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let eq = pair.firstIndex(of: "=") else { continue }
            out[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        return out
    }

    public var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }
}

/// The accounts every fixture starts with.
public enum TestAccounts {
    public static let alice = AccountSpec(login: "alice@example.com", password: "correct horse")
    public static let twoFactor = AccountSpec(login: "bob@example.com", password: "pw-bob", twoFactor: true)
    public static let locked = AccountSpec(login: "carol@example.com", password: "pw-carol", locked: true)
    public static let rateLimited = AccountSpec(login: "dave@example.com", password: "pw-dave", rateLimited: true)
    public static let all = [alice, twoFactor, locked, rateLimited]
}

/// livesim started in-process on 127.0.0.1 port 0, with its control API, and an HTTPS client
/// that trusts only the CA livesim generated.
public final class LiveSimFixture: Sendable {
    public let server: LiveSimServer
    public let client: HTTPClient

    init(server: LiveSimServer, client: HTTPClient) {
        self.server = server
        self.client = client
    }

    public static func start(_ configure: (inout LiveSimConfiguration) -> Void = { _ in }) async throws
        -> LiveSimFixture
    {
        var config = LiveSimConfiguration()
        config.controlHost = "127.0.0.1"
        config.accounts = TestAccounts.all
        config.logRequests = false
        config.threads = 2
        configure(&config)
        let server = try await LiveSimServer.start(config)
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array((server.caPEM ?? "").utf8)))
        var clientConfig = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        clientConfig.timeout = .init(connect: .seconds(5), read: .seconds(30))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfig)
        return LiveSimFixture(server: server, client: client)
    }

    public func shutdown() async throws {
        try await client.shutdown()
        try await server.shutdown()
    }

    /// The HTTPS base URL, addressed as `host` (the certificate covers 127.0.0.1 and localhost).
    public func base(host: String = "127.0.0.1") -> String { "https://\(host):\(server.port)" }

    /// The CA PEM written to a file, for processes that read it from disk.
    public func writeCA(to path: String) throws {
        try (server.caPEM ?? "").write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The SkyLogin login server's public keys written to a file, in a realm's `skylogin_keys`
    /// format; the fixture needs `skyloginHost` set.
    public func writeSkyLoginKeys(to path: String) throws {
        guard let keys = server.skyloginKeysJSON else { throw SkyLoginOff() }
        try keys.write(toFile: path, atomically: true, encoding: .utf8)
    }

    public struct SkyLoginOff: Error, CustomStringConvertible {
        public var description: String { "livesim was started without skyloginHost" }
    }

    public func request(
        _ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: String? = nil,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> TestResponse {
        var request = HTTPClientRequest(url: url.hasPrefix("http") ? url : base() + url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            }
        }
        let response = try await client.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return TestResponse(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: String(buffer: bytes))
    }

    /// Calls the control API and returns the status and the decoded JSON object.
    @discardableResult
    public func control(_ method: HTTPMethod, _ path: String, json: String? = nil) async throws -> TestResponse {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(server.controlPort ?? 0)/_livesim/\(path)")
        request.method = method
        if let json {
            request.body = .bytes(ByteBuffer(string: json))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        let response = try await client.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return TestResponse(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: String(buffer: bytes))
    }

    /// What the control API says of a credential.
    public func validate(_ credential: String) async throws -> [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: ["credential": credential])
        return try await control(.POST, "validate", json: String(decoding: body, as: UTF8.self)).json
    }

    public func counters() async throws -> [String: Any] { try await control(.GET, "counters").json }

    /// Every secret livesim issued or knows.
    public func secrets() async throws -> [String] {
        try await control(.GET, "secrets").json["secrets"] as? [String] ?? []
    }

    /// Changes global settings through the control API.
    public func setSettings(_ json: String) async throws {
        let response = try await control(.PUT, "settings", json: json)
        precondition(response.status == 200, response.body)
    }

    /// Adds a fault rule through the control API.
    public func addFault(_ json: String) async throws {
        let response = try await control(.POST, "faults", json: json)
        precondition(response.status == 201, response.body)
    }

    /// Issues a grant directly through the control API.
    public func grant(_ login: String, scope: String = "service::skype.com::MBI_SSL") async throws -> [String: Any] {
        try await control(.POST, "accounts/\(login)/grant", json: #"{"scope":"\#(scope)"}"#).json
    }
}

/// Runs `body` with a started livesim and always shuts it down.
public func withLiveSim(
    _ configure: (inout LiveSimConfiguration) -> Void = { _ in }, _ body: (LiveSimFixture) async throws -> Void
) async throws {
    let sim = try await LiveSimFixture.start(configure)
    do {
        try await body(sim)
    } catch {
        try? await sim.shutdown()
        throw error
    }
    try await sim.shutdown()
}

/// Form encoding for test requests (strict: only unreserved characters stay as they are).
public func formEncode(_ pairs: [(String, String)]) -> String {
    let allowed = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return pairs.map {
        "\($0.0.addingPercentEncoding(withAllowedCharacters: allowed)!)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)"
    }.joined(separator: "&")
}

/// Parses `a=b&c=d` (percent-decoded).
public func formDecode(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for pair in text.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        out[String(parts[0]).removingPercentEncoding ?? String(parts[0])] =
            parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
    }
    return out
}

/// Makes a fresh temporary directory, removed by `cleanup()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tokenbroker-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }

    public func file(_ name: String) -> String { path + "/" + name }

    public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}
