#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Constants both ends of the socket share.
public enum BrokerDefaults {
    /// The daemon's and tokenctl's version.
    public static let version = "0.1.0"
    /// Where the daemon listens unless configured otherwise.
    public static let socketPath = "/run/tokenbroker/tokenbroker.sock"
    /// The environment variable tokenctl reads the socket path from.
    public static let socketEnvironmentVariable = "TOKENBROKER_SOCKET"
    /// The media type of every request and answer body.
    public static let contentType = "application/json"
}

/// The one way bodies are written and read, for the daemon and the client alike.
public enum BrokerJSON {
    /// Sorted keys, slashes unescaped. A new instance each call: `JSONEncoder` is a class.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public static func makeDecoder() -> JSONDecoder { JSONDecoder() }

    /// Encodes a body.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try makeEncoder().encode(value))
    }

    /// Decodes a body.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try makeDecoder().decode(type, from: Data(bytes))
    }

    /// RFC 3339 in UTC to the second: `2026-11-27T14:00:00Z`.
    public static func formatDate(_ date: Date) -> String {
        Date.ISO8601FormatStyle(timeZone: .gmt).format(date)
    }

    /// Reads RFC 3339, with or without fractional seconds, `Z` or a numeric offset.
    public static func parseDate(_ string: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle().parse(string) { return date }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(string)
    }

    /// A summary of a decoding failure that names the place, never a value (values can be
    /// tokens or other secrets).
    public static func describe(decodingError error: any Error) -> String {
        guard let error = error as? DecodingError else { return "not a valid body" }
        func path(_ context: DecodingError.Context, _ last: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (last.map { [$0] } ?? [])
            guard !keys.isEmpty else { return "the top level" }
            return keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \(path(context, key))"
        case .valueNotFound(_, let context):
            return "null where a value belongs at \(path(context))"
        case .typeMismatch(let type, let context):
            return "wrong type at \(path(context)) (expected \(type))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "invalid value at \(path(context))"
        @unknown default:
            return "not a valid body"
        }
    }
}
