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

    /// The bytes `formatDate` writes, without making a String: for the cached read's answer,
    /// where the expiry is written per read instead of kept as text beside every credential.
    /// Dates outside the years 1583-9999 go through `formatDate` (before 1583 it counts in the
    /// Julian calendar).
    public static func appendDate(_ date: Date, to out: inout [UInt8]) {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        guard seconds >= gregorianStart, seconds < gregorianEnd else {
            out.append(contentsOf: formatDate(date).utf8)
            return
        }
        let total = Int(seconds)
        let days = total >= 0 ? total / 86_400 : (total - 86_399) / 86_400
        let secondOfDay = total - days * 86_400
        // Days to a civil date (H. Hinnant, "chrono-compatible low-level date algorithms").
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int) {
            out.append(UInt8(ascii: "0") + UInt8(value / 10))
            out.append(UInt8(ascii: "0") + UInt8(value % 10))
        }
        two(year / 100)
        two(year % 100)
        out.append(UInt8(ascii: "-"))
        two(month)
        out.append(UInt8(ascii: "-"))
        two(day)
        out.append(UInt8(ascii: "T"))
        two(secondOfDay / 3600)
        out.append(UInt8(ascii: ":"))
        two(secondOfDay / 60 % 60)
        out.append(UInt8(ascii: ":"))
        two(secondOfDay % 60)
        out.append(UInt8(ascii: "Z"))
    }

    /// How many bytes `appendDate` writes for `date`.
    public static func dateLength(_ date: Date) -> Int {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        guard seconds >= gregorianStart, seconds < gregorianEnd else { return formatDate(date).utf8.count }
        return 20
    }

    /// 1583-01-01 and 10000-01-01, in seconds since 1970: the years `appendDate` writes itself.
    private static let gregorianStart: Double = -12_212_553_600
    private static let gregorianEnd: Double = 253_402_300_800

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
