import Foundation

/// A loosely typed JSON value: the services send numbers as strings and strings as numbers, so
/// readers ask for the type they want rather than declaring it.
enum JSONValue: Sendable, Decodable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let v = try? c.decode(Bool.self) {
            self = .bool(v)
        } else if let v = try? c.decode(Int64.self) {
            self = .int(v)
        } else if let v = try? c.decode(Double.self) {
            self = .double(v)
        } else if let v = try? c.decode(String.self) {
            self = .string(v)
        } else if let v = try? c.decode([JSONValue].self) {
            self = .array(v)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    /// The top-level object of a body, or nil when the body is not a JSON object.
    static func object(from body: Data) -> [String: JSONValue]? {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: body), case .object(let o) = value else {
            return nil
        }
        return o
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    /// A string, or a number written as its decimal text.
    var string: String? {
        switch self {
        case .string(let s): s
        case .int(let i): String(i)
        default: nil
        }
    }

    /// An integer, from a JSON number or a string holding one.
    var int64: Int64? {
        switch self {
        case .int(let i): i
        case .double(let d): d.rounded() == d ? Int64(exactly: d) : nil
        case .string(let s): Int64(s.trimmingASCIIWhitespace())
        default: nil
        }
    }

    var int: Int? { int64.flatMap { Int(exactly: $0) } }

    var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// A non-empty string field.
    func nonEmptyString(_ key: String) -> String? {
        guard let s = self[key]?.string, !s.isEmpty else { return nil }
        return s
    }
}
