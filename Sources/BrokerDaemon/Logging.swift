import BrokerConfig
import Foundation
import Logging
import Synchronization
import SystemdSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Chooses the log handler once per process, and keeps the level changeable by a reload.
enum LogSetup {
    /// `level` as a number: an atomic, since every log call (a debug line on each read, too)
    /// asks for the level, and only a reload changes it.
    private static let levelNumber = Atomic<UInt8>(number(.info))

    /// The level every handler uses; a reload sets it.
    static var level: Logger.Level {
        get {
            switch levelNumber.load(ordering: .relaxed) {
            case 0: .trace
            case 1: .debug
            case 2: .info
            case 3: .notice
            case 4: .warning
            case 5: .error
            default: .critical
            }
        }
        set { levelNumber.store(number(newValue), ordering: .relaxed) }
    }

    private static func number(_ level: Logger.Level) -> UInt8 {
        switch level {
        case .trace: 0
        case .debug: 1
        case .info: 2
        case .notice: 3
        case .warning: 4
        case .error: 5
        case .critical: 6
        }
    }

    /// Where logs went, and a note to log once logging works.
    struct Outcome {
        var journal: Bool
        var note: String?
    }

    /// `journal`: native entries; `stderr`: lines; `auto`: the journal when standard error is
    /// connected to it (`JOURNAL_STREAM`). A configured journal without journald falls back to
    /// standard error.
    static func bootstrap(_ configuration: DaemonConfiguration) -> Outcome {
        level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        var journal: Bool
        var note: String?
        switch configuration.logTarget {
        case .journal:
            journal = access("/run/systemd/journal/socket", F_OK) == 0
            if !journal { note = "log.target is journal, but journald is not running; logging to standard error" }
        case .stderr:
            journal = false
        case .auto:
            journal = JournalFields.standardErrorIsJournal()
        }
        let useJournal = journal
        LoggingSystem.bootstrap { label in
            if useJournal {
                return LevelFollowingHandler(inner: JournalLogHandler(label: label, identifier: "tokenbrokerd"))
            }
            return LevelFollowingHandler(inner: StreamLogHandler.standardError(label: label))
        }
        return Outcome(journal: journal, note: note)
    }
}

/// Takes its level from `LogSetup.level`, so that a reload changes the level of every logger the
/// daemon handed out.
struct LevelFollowingHandler: LogHandler {
    var inner: any LogHandler

    var logLevel: Logger.Level {
        get { LogSetup.level }
        set {}
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        // The daemon's own events name the program as their source (`[tokenbrokerd]`), not the
        // library its wiring lives in.
        guard event.file.hasPrefix(Self.ownModulePrefix) else { return inner.log(event: event) }
        var event = event
        event.source = "tokenbrokerd"
        inner.log(event: event)
    }

    /// "BrokerDaemon/": how `#fileID` starts for every file of this module.
    private static let ownModulePrefix = String(#fileID.prefix { $0 != "/" }) + "/"
}
