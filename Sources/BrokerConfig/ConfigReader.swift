import BrokerCore
import TOMLKit

#if canImport(Glibc)
    import Glibc
#endif

/// Where a value sits in the file, written the way the file writes it: `socket.mode`,
/// `access[0].uids[1]`, `realms.live.rst_sites[2].address`.
package struct ConfigPath: Sendable, Equatable, CustomStringConvertible {
    package enum Component: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    package var components: [Component] = []

    package init(_ components: [Component] = []) { self.components = components }

    func appending(_ key: String) -> ConfigPath { ConfigPath(components + [.key(key)]) }
    func appending(index: Int) -> ConfigPath { ConfigPath(components + [.index(index)]) }

    package var description: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let key):
                if !text.isEmpty { text += "." }
                text += Self.isBare(key) ? key : "\"\(key)\""
            case .index(let index):
                text += "[\(index)]"
            }
        }
        return text
    }

    /// A TOML bare key: letters, digits, `_` and `-`.
    static func isBare(_ key: String) -> Bool {
        !key.isEmpty
            && key.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || "0123456789_-".unicodeScalars.contains($0))
            }
    }
}

/// What is wrong with the file, and where: the reader's half of a configuration error, before
/// the line is looked up.
struct ConfigProblem: Error {
    var path: ConfigPath
    var message: String
}

/// Resolves user and group names to ids: the system's databases, or fixed tables in tests.
package struct NameResolver: Sendable {
    package var user: @Sendable (String) -> UInt32?
    package var group: @Sendable (String) -> UInt32?

    package init(user: @escaping @Sendable (String) -> UInt32?, group: @escaping @Sendable (String) -> UInt32?) {
        self.user = user
        self.group = group
    }

    /// The system's user and group databases (`getpwnam`, `getgrnam`), read once, at parse time.
    package static let system = NameResolver(
        user: { name in getpwnam(name).map { $0.pointee.pw_uid } },
        group: { name in getgrnam(name).map { $0.pointee.gr_gid } })
}

/// One table of the file, read against its schema: a key the schema does not name is refused
/// when the reader is made, and each value is checked for its type as it is read.
struct TableReader {
    let table: TOMLTable
    let path: ConfigPath
    let schema: ConfigSchema.Table

    init(_ table: TOMLTable, path: ConfigPath, schema: ConfigSchema.Table) throws(ConfigProblem) {
        self.table = table
        self.path = path
        self.schema = schema
        for key in table.keys.sorted() where schema.key(key) == nil && !schema.tables.contains(key) {
            throw ConfigProblem(path: path.appending(key), message: Self.unknown(key, table[key], in: schema))
        }
        for key in schema.keys where key.required && table[key.name] == nil {
            throw ConfigProblem(path: path.appending(key.name), message: "required in \(schema.header)")
        }
    }

    /// Why a key is refused: a reason of its own, else a near miss, else what the table takes.
    static func unknown(_ key: String, _ value: (any TOMLValueConvertible)?, in schema: ConfigSchema.Table) -> String {
        if let reason = ConfigSchema.misplaced[schema.path + "." + key] { return reason }
        if !schema.path.isEmpty, ConfigSchema.topLevel.key(key) != nil {
            return "\(key) belongs at the top level, before the first [table] header"
        }
        let isTable = value?.type == .table || (value?.array.map { !$0.isEmpty && $0[0].type == .table } ?? false)
        let what = isTable && !schema.tables.isEmpty ? "unknown table" : "unknown key"
        let names = schema.keys.map(\.name) + schema.tables
        if let near = names.min(by: { distance(key, $0) < distance(key, $1) }), distance(key, near) <= 2 {
            return "\(what); did you mean \(schema.tables.contains(near) ? header(near) : near)?"
        }
        let takes = (schema.keys.map(\.name) + schema.tables.map(header)).joined(separator: ", ")
        return "\(what) \(schema.path.isEmpty ? "at" : "in") \(schema.header), which takes \(takes)"
    }

    /// How the file writes the header of one of the top level's tables.
    static func header(_ table: String) -> String {
        ConfigSchema.tables.first { [table, table + ".NAME", table + "[]"].contains($0.path) }?.header ?? "[\(table)]"
    }

    /// Edit distance, for suggestions.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in 1...b.count {
                let above = row[j]
                row[j] = min(above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }

    func problem(_ key: String, _ message: String) -> ConfigProblem {
        ConfigProblem(path: path.appending(key), message: message)
    }

    func has(_ key: String) -> Bool { table[key] != nil }

    func value(_ key: String) -> (any TOMLValueConvertible)? {
        assert(schema.key(key) != nil || schema.tables.contains(key), "\(key) is not in the schema of \(schema.header)")
        return table[key]
    }

    func string(_ key: String) throws(ConfigProblem) -> String? {
        guard let value = value(key) else { return nil }
        guard let text = value.string else { throw problem(key, "expected a string, got \(Self.shown(value))") }
        return text
    }

    func bool(_ key: String) throws(ConfigProblem) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let flag = value.bool else { throw problem(key, "expected true or false, got \(Self.shown(value))") }
        return flag
    }

    /// An integer or a float; `unit` names what it counts, for the message.
    func number(_ key: String, unit: String = "a number") throws(ConfigProblem) -> Double? {
        guard let value = value(key) else { return nil }
        if let int = value.int { return Double(int) }
        guard let double = value.double, double.isFinite else {
            throw problem(key, "expected \(unit), got \(Self.shown(value))")
        }
        return double
    }

    func seconds(_ key: String) throws(ConfigProblem) -> Double? {
        assert(schema.key(key)?.inSeconds == true, "\(key) is not a duration in the schema")
        return try number(key, unit: "a number of seconds")
    }

    func integer(_ key: String) throws(ConfigProblem) -> Int? {
        guard let value = value(key) else { return nil }
        guard let int = value.int else { throw problem(key, "expected a whole number, got \(Self.shown(value))") }
        return int
    }

    /// An array of strings; `element` names one, for the message.
    func strings(_ key: String, element: String = "a string") throws(ConfigProblem) -> [String]? {
        try array(key) { value, path throws(ConfigProblem) in
            guard let text = value.string else {
                throw ConfigProblem(path: path, message: "expected \(element), got \(Self.shown(value))")
            }
            return text
        }
    }

    /// An array, each element read by `read` with its own path.
    func array<T>(
        _ key: String, _ read: (any TOMLValueConvertible, ConfigPath) throws(ConfigProblem) -> T
    ) throws(ConfigProblem) -> [T]? {
        guard let value = value(key) else { return nil }
        guard let array = value.array else { throw problem(key, "expected an array, got \(Self.shown(value))") }
        var result: [T] = []
        for index in 0..<array.count {
            result.append(try read(array[index], path.appending(key).appending(index: index)))
        }
        return result
    }

    /// A `[NAME]` table inside this one.
    func table(_ key: String, schema: ConfigSchema.Table) throws(ConfigProblem) -> TableReader? {
        guard let value = value(key) else { return nil }
        guard let table = value.table else {
            throw problem(key, "expected a table (\(schema.header)), got \(Self.shown(value))")
        }
        return try TableReader(table, path: path.appending(key), schema: schema)
    }

    /// An array of tables: `[[NAME]]` tables, or inline `{ ... }` ones.
    func tables(_ key: String, schema: ConfigSchema.Table, example: String) throws(ConfigProblem) -> [TableReader]? {
        guard let value = value(key) else { return nil }
        guard value.array != nil else { throw problem(key, "expected \(example), got \(Self.shown(value))") }
        return try array(key) { element, path throws(ConfigProblem) in
            guard let table = element.table else {
                throw ConfigProblem(path: path, message: "expected \(example), got \(Self.shown(element))")
            }
            return try TableReader(table, path: path, schema: schema)
        }
    }

    /// User names or uids, as strings or integers.
    func users(_ key: String, names: NameResolver) throws(ConfigProblem) -> [UInt32]? {
        try array(key) { value, path throws(ConfigProblem) in
            try Self.id(value, path: path, kind: "user", resolve: names.user)
        }
    }

    /// Group names or gids, as strings or integers.
    func groups(_ key: String, names: NameResolver) throws(ConfigProblem) -> [UInt32]? {
        try array(key) { value, path throws(ConfigProblem) in
            try Self.id(value, path: path, kind: "group", resolve: names.group)
        }
    }

    func group(_ key: String, names: NameResolver) throws(ConfigProblem) -> UInt32? {
        guard let value = value(key) else { return nil }
        return try Self.id(value, path: path.appending(key), kind: "group", resolve: names.group)
    }

    /// A name (resolved) or a number: `"tokenbroker"`, `"1001"` or `1001`.
    static func id(
        _ value: any TOMLValueConvertible, path: ConfigPath, kind: String, resolve: (String) -> UInt32?
    ) throws(ConfigProblem) -> UInt32 {
        let expected = "expected a \(kind) name or a \(kind == "user" ? "uid" : "gid"), got \(shown(value))"
        if let int = value.int {
            guard let id = UInt32(exactly: int), id != UInt32.max else {
                throw ConfigProblem(path: path, message: expected)
            }
            return id
        }
        guard let name = value.string, !name.isEmpty else { throw ConfigProblem(path: path, message: expected) }
        if let id = UInt32(name) { return id }
        guard let id = resolve(name) else {
            throw ConfigProblem(path: path, message: "no \(kind) named \(shown(value)) on this system")
        }
        return id
    }

    /// A value as the file would write it, shortened: `"0660"`, `1001`, `true`, `[1, 2]`, a table.
    static func shown(_ value: any TOMLValueConvertible) -> String {
        let text: String
        switch value.type {
        case .string:
            let string = value.string ?? ""
            var escaped = ""
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case "\n": escaped += "\\n"
                case "\t": escaped += "\\t"
                default: escaped += scalar.value < 0x20 ? "?" : String(scalar)
                }
            }
            text = "\"\(escaped)\""
        case .int: text = String(value.int ?? 0)
        case .double:
            text = "\(value.double ?? 0)"
        case .bool: text = value.bool == true ? "true" : "false"
        case .array:
            let array = value.array
            text = "[" + (0..<(array?.count ?? 0)).map { shown(array![$0]) }.joined(separator: ", ") + "]"
        case .table: return "a table"
        case .date, .time, .dateTime: return "a date or time"
        }
        return text.count > 80 ? String(text.prefix(77)) + "..." : text
    }
}
