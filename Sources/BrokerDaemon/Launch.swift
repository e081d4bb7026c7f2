import BrokerAPI
import BrokerConfig
import BrokerCore
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// A start that ended in a way the daemon already reported (on standard error or in its log):
/// the process exits with `status` and prints nothing more.
package struct DaemonExit: Error, Sendable {
    package var status: Int32

    package init(status: Int32) { self.status = status }

    /// The configuration does not load (EX_CONFIG).
    package static let invalidConfiguration = DaemonExit(status: 78)
    /// The daemon could not start.
    package static let startFailed = DaemonExit(status: 1)
}

/// From a parsed command line to a running daemon: reads the configuration, sets up logging,
/// and runs the daemon until it stops.
package enum DaemonLaunch {
    /// Clears the inherited signal mask. Call it first, on the main thread before any other thread
    /// exists (threads inherit it). systemd does so for its services; a launcher that blocks
    /// SIGTERM or SIGHUP (systemd-socket-activate does) would otherwise leave the daemon deaf to
    /// stop and reload.
    package static func clearSignalMask() {
        var empty = sigset_t()
        sigemptyset(&empty)
        sigprocmask(SIG_SETMASK, &empty, nil)
    }

    /// Loads the configuration at `configurationPath`; with `checkOnly`, reports that it is valid
    /// and returns. Otherwise runs the daemon until it stops.
    ///
    /// Throws `DaemonExit.invalidConfiguration` for a configuration that does not load (the reason
    /// is on standard error) and `DaemonExit.startFailed` for a start that failed (the reason is in
    /// the log). Other errors pass through.
    package static func run(configurationPath: String, checkOnly: Bool) async throws {
        let configuration: DaemonConfiguration
        do {
            configuration = try DaemonConfiguration.load(path: configurationPath)
        } catch {
            FileHandle.standardError.write(Data("tokenbrokerd: \(error.message)\n".utf8))
            throw DaemonExit.invalidConfiguration
        }
        if checkOnly {
            print("tokenbrokerd: configuration \(configurationPath) is valid")
            return
        }
        let logging = LogSetup.bootstrap(configuration)
        var logger = Logger(label: "tokenbrokerd")
        logger.logLevel = LogSetup.level
        if let note = logging.note { logger.warning("\(note)") }
        // A reload reads the file again, perhaps after a change of working directory.
        let path = URL(fileURLWithPath: configurationPath).standardizedFileURL.path
        do {
            try await Daemon(configurationPath: path, configuration: configuration, logger: logger).run()
        } catch let error as BrokerError {
            logger.critical("cannot start: \(error.message)", metadata: ["broker.error": "\(error.code.rawValue)"])
            throw DaemonExit.startFailed
        }
    }
}

/// What this build is.
package enum BuildInfo {
    #if TOKENBROKER_TESTING
        package static let version =
            "\(BrokerDefaults.version) (testing build: fault switches compiled in; not for production)"
    #else
        package static let version = BrokerDefaults.version
    #endif
}
