import Foundation
import NIOCore
import NIOHTTP1

/// A whole request as livesim's endpoints see it.
struct SimRequest {
    var method: HTTPMethod
    var path: String
    var query: String
    var headers: HTTPHeaders
    var body: [UInt8]

    /// The host the client addressed, used to build every URL livesim emits.
    var host: String { headers.first(name: "host") ?? "localhost" }

    var queryItems: [String: String] { Form.decode(query) }

    var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// Cookies from every Cookie header, last value winning.
    var cookies: [String: String] {
        var out: [String: String] = [:]
        for header in headers[canonicalForm: "cookie"] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.trimmingCharacters(in: .whitespaces)
                guard let eq = trimmed.firstIndex(of: "=") else { continue }
                out[String(trimmed[..<eq])] = String(trimmed[trimmed.index(after: eq)...])
            }
        }
        return out
    }
}

/// A response, plus what the request log line says about it.
struct SimResponse {
    var status: HTTPResponseStatus
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    /// For the log line and counters: which account and scope the request concerned.
    var account: String? = nil
    var scope: String? = nil

    init(status: HTTPResponseStatus, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func text(_ status: HTTPResponseStatus, _ text: String, type: String = "text/html; charset=utf-8")
        -> SimResponse
    {
        SimResponse(status: status, headers: [("Content-Type", type)], body: Array(text.utf8))
    }

    static func json(_ status: HTTPResponseStatus, _ body: String) -> SimResponse {
        .text(status, body, type: "application/json; charset=utf-8")
    }

    static func json<T: Encodable>(_ status: HTTPResponseStatus, encoding value: T) -> SimResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return SimResponse(
            status: status, headers: [("Content-Type", "application/json; charset=utf-8")], body: Array(data))
    }

    static func redirect(_ location: String, cookies: [String] = []) -> SimResponse {
        var response = SimResponse(status: .found, headers: [("Location", location)])
        response.headers += cookies.map { ("Set-Cookie", $0) }
        response.headers.append(("Content-Type", "text/html; charset=utf-8"))
        response.body = Array("<html><body>Object moved</body></html>".utf8)
        return response
    }
}

/// application/x-www-form-urlencoded, written and read by livesim's own code.
enum Form {
    static func decode(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = unescape(parts[0])
            out[name] = parts.count > 1 ? unescape(parts[1]) : ""
        }
        return out
    }

    static func unescape(_ text: Substring) -> String {
        let plus = text.replacingOccurrences(of: "+", with: " ")
        return plus.removingPercentEncoding ?? plus
    }

    static let unreserved = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }

    static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }
}
