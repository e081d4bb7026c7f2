import BrokerCore
import NIOHTTP1

/// One route of the socket API: a method and a path whose `{...}` segments stand for any one
/// segment, written as `GET /v1/accounts/{name}/token`.
struct Route: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    let method: String
    let segments: [String]

    init(stringLiteral text: String) {
        let parts = text.split(separator: " ", maxSplits: 1)
        precondition(parts.count == 2 && parts[1].hasPrefix("/"), "a route is METHOD /path: \(text)")
        method = String(parts[0])
        segments = parts[1].split(separator: "/").map(String.init)
    }

    var path: String { "/" + segments.joined(separator: "/") }
    var description: String { "\(method) \(path)" }

    /// Whether a request's path segments fit this route's path.
    func fits(_ path: [String]) -> Bool {
        path.count == segments.count
            && zip(segments, path).allSatisfy { pattern, segment in pattern.hasPrefix("{") || pattern == segment }
    }
}

extension Router {
    /// Every route the socket API serves, and the only ones: `route` answers a request whose path
    /// fits none of them `not_found`, and one whose path fits but whose method does not
    /// `method_not_allowed`, before it looks any further. A new route is a line here and its case
    /// in `route`; docs/API.md has a section for each (BrokerServerTests checks both).
    static let routes: [Route] = [
        "GET /metrics",
        "GET /v1/health",
        "GET /v1/realms",
        "GET /v1/accounts",
        "POST /v1/accounts",
        "GET /v1/accounts/{name}",
        "DELETE /v1/accounts/{name}",
        "GET /v1/accounts/{name}/token",
        "GET /v1/accounts/{name}/skypetoken",
        "GET /v1/accounts/{name}/uic",
        "GET /v1/accounts/{name}/ticket",
        "GET /v1/accounts/{name}/web-ticket",
        "GET /v1/accounts/{name}/ath",
        "GET /v1/accounts/{name}/sso",
        "GET /v1/accounts/{name}/passport14",
        "POST /v1/challenge",
        "POST /v1/admin/rekey",
        "GET /v1/events",
    ]

    /// The answer to a path that fits no route.
    static let noSuchEndpoint = BrokerError(.notFound, "no such endpoint")

    /// The routes table's verdict on a request: nil when a route takes it, else the error to answer.
    static func unrouted(_ method: HTTPMethod, _ segments: [String]) -> BrokerError? {
        var pathFits = false
        for route in routes where route.fits(segments) {
            if route.method == method.rawValue { return nil }
            pathFits = true
        }
        return pathFits ? BrokerError(.methodNotAllowed, "\(method.rawValue) is not allowed here") : noSuchEndpoint
    }

    /// The last segment of each credential endpoint, `GET /v1/accounts/{name}/...`.
    static let credentialEndpoints: Set<String> = Set(
        routes.filter { $0.segments.count == 4 && $0.segments[1] == "accounts" }.map { $0.segments[3] })
}
