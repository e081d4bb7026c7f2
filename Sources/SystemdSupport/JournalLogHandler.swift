import CSystemd
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A swift-log handler that writes native journal entries through `sd_journal_sendv(3)`:
/// MESSAGE, PRIORITY, CODE_FILE, CODE_LINE, CODE_FUNC, SYSLOG_IDENTIFIER, and one field per
/// metadata key (see `JournalFields`), so that `journalctl -u tokenbrokerd TOKEN_EVENT=needs_reauth`
/// or `ACCOUNT=alice@example.com` finds entries. Should journald not take an entry, it is written
/// to standard error instead.
package struct JournalLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?
    package var logLevel: Logger.Level = .info
    package let label: String
    package let identifier: String

    package init(label: String, identifier: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.identifier = identifier
        self.metadataProvider = metadataProvider
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let fields = JournalFields.entry(
            message: "\(event.message)", level: event.level, metadata: merged, identifier: identifier,
            file: event.file, line: event.line, function: event.function)
        if JournalFields.send(fields) < 0 {
            let text = fields.first { $0.hasPrefix("MESSAGE=") }.map { String($0.dropFirst(8)) } ?? "\(event.message)"
            let line = "\(identifier): \(event.level): \(text)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
        }
    }
}

/// How log records become journal fields.
package enum JournalFields {
    /// The broker's metadata keys and their journal fields. A failure is logged with
    /// `broker.error` (its code) and `broker.reason` (what happened, in words).
    package static let known: [String: String] = [
        "broker.account": "ACCOUNT",
        "broker.scope": "SCOPE",
        "broker.event": "TOKEN_EVENT",
        "broker.credential": "CREDENTIAL",
        "broker.next_refresh_usec": "NEXT_REFRESH_USEC",
        "broker.peer.uid": "PEER_UID",
        "broker.peer.pid": "PEER_PID",
        "broker.peer.comm": "PEER_COMM",
        "broker.realm": "REALM",
        "broker.error": "ERROR_CODE",
        "broker.reason": "REASON",
        "broker.action": "ACTION",
    ]

    /// Fields this handler writes itself, or that journald reserves: metadata never overrides them.
    static let reserved: Set<String> = [
        "MESSAGE", "MESSAGE_ID", "PRIORITY", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "SYSLOG_IDENTIFIER",
        "SYSLOG_FACILITY", "SYSLOG_PID", "SYSLOG_TIMESTAMP", "SYSLOG_RAW", "ERRNO", "TID", "DOCUMENTATION",
        "INVOCATION_ID", "USER_INVOCATION_ID", "UNIT", "USER_UNIT", "OBJECT_PID", "COREDUMP_UNIT", "COREDUMP_USER_UNIT",
    ]

    /// Parts of metadata keys whose values must never reach the journal. The broker does not log
    /// secrets; this is a second line of defence should a future log line try.
    static let secretWords = [
        "password", "passwd", "cookie", "secret", "ticket", "refresh_token", "access_token", "skypetoken",
        "credential_value",
    ]

    /// The journal field for a metadata key: the broker's name, else the key in upper case with
    /// `broker.` dropped and every character outside `[A-Z0-9_]` turned into `_`. A name must start
    /// with a letter, be at most 64 characters, and not be one of the reserved fields (those get
    /// a `META_` prefix).
    package static func name(for key: String) -> String {
        if let known = known[key] { return known }
        var base = key.hasPrefix("broker.") ? String(key.dropFirst("broker.".count)) : key
        if base.isEmpty { base = "KEY" }
        var name = String(
            base.uppercased().unicodeScalars.map { scalar -> Character in
                switch scalar {
                case "A"..."Z", "0"..."9": Character(scalar)
                default: "_"
                }
            })
        if let first = name.unicodeScalars.first, !("A"..."Z").contains(first) { name = "META_" + name }
        if reserved.contains(name) { name = "META_" + name }
        return String(name.prefix(64))
    }

    /// syslog priorities, as journald stores them.
    package static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    static func isSecret(_ key: String) -> Bool {
        let lower = key.lowercased()
        return secretWords.contains { lower.contains($0) }
    }

    /// The `KEY=value` assignments of one entry. MESSAGE also carries the fields in short form,
    /// so the default `journalctl` output shows them.
    package static func entry(
        message: String, level: Logger.Level, metadata: Logger.Metadata, identifier: String,
        file: String, line: UInt, function: String
    ) -> [String] {
        var fields: [(String, String)] = []
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            fields.append((name(for: key), isSecret(key) ? "<redacted>" : "\(value)"))
        }
        var text = message
        if !fields.isEmpty {
            text += " (" + fields.map { "\($0.0.lowercased())=\($0.1)" }.joined(separator: " ") + ")"
        }
        var result = [
            "MESSAGE=" + text,
            "PRIORITY=\(priority(level))",
            "SYSLOG_IDENTIFIER=" + identifier,
            "CODE_FILE=" + file,
            "CODE_LINE=\(line)",
            "CODE_FUNC=" + function,
        ]
        var seen = Set<String>()
        for (name, value) in fields where seen.insert(name).inserted {
            result.append(name + "=" + value)
        }
        return result
    }

    /// `sd_journal_sendv` over the assignments; values may hold newlines and any bytes.
    @discardableResult
    package static func send(_ assignments: [String]) -> Int32 {
        let buffers = assignments.map { Array($0.utf8) }
        return withIOVecs(buffers) { iovecs in
            iovecs.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
        }
    }

    /// Copies every buffer into one allocation, so that each iovec's pointer stays valid for the call.
    private static func withIOVecs<R>(_ buffers: [[UInt8]], _ body: ([iovec]) -> R) -> R {
        let total = buffers.reduce(0) { $0 + $1.count }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(total, 1)) { storage in
            var vectors: [iovec] = []
            vectors.reserveCapacity(buffers.count)
            var offset = 0
            for buffer in buffers {
                let start = storage.baseAddress! + offset
                buffer.withUnsafeBufferPointer { source in
                    if let base = source.baseAddress { start.update(from: base, count: source.count) }
                }
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(start), iov_len: buffer.count))
                offset += buffer.count
            }
            return body(vectors)
        }
    }

    /// Whether standard error is connected to the journal: `JOURNAL_STREAM` ("device:inode", set
    /// by systemd for StandardError=journal) names the file standard error is open on.
    /// `environment` nil reads the process's.
    package static func standardErrorIsJournal(environment: [String: String]? = nil) -> Bool {
        guard let raw = SystemdEnvironment.value("JOURNAL_STREAM", in: environment) else { return false }
        let parts = raw.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}
