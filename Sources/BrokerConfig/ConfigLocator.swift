/// Finds the line of a value in the file's text, for messages: its key's line in its table, else
/// the table's header. TOML does not say where a value came from, so this reads the text: it
/// finds keys written the usual way (`key = value` under `[table]` or the n-th `[[table]]`), and
/// gives no line for others (dotted keys, inline tables).
struct ConfigLocator {
    /// Each line, trimmed.
    let lines: [Substring]

    init(_ text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.drop { $0 == " " || $0 == "\t" }
        }
    }

    /// The 1-based line, or nil.
    func line(of path: ConfigPath) -> Int? {
        let components = path.components
        guard !components.isEmpty else { return nil }
        for length in stride(from: components.count, through: 1, by: -1) {
            guard let header = headerIndex(Array(components.prefix(length))) else { continue }
            guard length < components.count, case .key(let key) = components[length] else { return header + 1 }
            return keyIndex(key, from: header + 1).map { $0 + 1 } ?? header + 1
        }
        guard case .key(let key) = components[0] else { return nil }
        if let index = keyIndex(key, from: 0) { return index + 1 }
        // A table known only by the tables inside it (`[realm.live]` for the path `realm`).
        let name = ConfigPath.isBare(key) ? key : "\"\(key)\""
        return lines.firstIndex { line in
            guard let header = Self.header(line) else { return false }
            return header.hasPrefix("[\(name).") || header.hasPrefix("[[\(name).") || header == "[[\(name)]]"
        }.map { $0 + 1 }
    }

    /// The index of the header of the table at `prefix`: `[a.b]`, or the n-th `[[a.b]]` when it
    /// ends with an index.
    private func headerIndex(_ prefix: [ConfigPath.Component]) -> Int? {
        var names: [String] = []
        var occurrence: Int?
        for (position, component) in prefix.enumerated() {
            switch component {
            case .key(let key): names.append(ConfigPath.isBare(key) ? key : "\"\(key)\"")
            case .index(let index):
                guard position == prefix.count - 1 else { return nil }
                occurrence = index
            }
        }
        let dotted = names.joined(separator: ".")
        let wanted = occurrence == nil ? "[\(dotted)]" : "[[\(dotted)]]"
        var seen = 0
        for (index, line) in lines.enumerated() where Self.header(line) == wanted {
            if seen == (occurrence ?? 0) { return index }
            seen += 1
        }
        return nil
    }

    /// The index of `key = ...` from `start` up to the next header.
    private func keyIndex(_ key: String, from start: Int) -> Int? {
        var index = start
        while index < lines.count {
            let line = lines[index]
            if Self.header(line) != nil { return nil }
            if line.hasPrefix(key), line.dropFirst(key.count).drop(while: { $0 == " " || $0 == "\t" }).hasPrefix("=") {
                return index
            }
            index += 1
        }
        return nil
    }

    /// A header line with its spaces and comment removed (`[ realms.live ] # x` is `[realms.live]`).
    static func header(_ line: Substring) -> String? {
        guard line.hasPrefix("[") else { return nil }
        let double = line.hasPrefix("[[")
        guard let close = line.firstIndex(of: "]") else { return nil }
        let inner = line[line.index(line.startIndex, offsetBy: double ? 2 : 1)..<close].filter {
            $0 != " " && $0 != "\t"
        }
        return double ? "[[\(inner)]]" : "[\(inner)]"
    }
}
