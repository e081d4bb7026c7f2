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

    /// Loads the configuration (the `--config` file, else the file at the default path, else the
    /// built-in defaults: see `ConfigurationSource`); with `checkOnly`, reports that it is valid
    /// and returns. Otherwise runs the daemon until it stops.
    ///
    /// Throws `DaemonExit.invalidConfiguration` for a configuration that does not load (the reason
    /// is on standard error) and `DaemonExit.startFailed` for a start that failed (the reason is in
    /// the log). Other errors pass through.
    package static func run(configurationPath: String?, checkOnly: Bool) async throws {
        // A reload reads the file again, perhaps after a change of working directory.
        let explicit = configurationPath.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let source = ConfigurationSource(explicitPath: explicit)
        let configuration: DaemonConfiguration
        let origin: ConfigurationSource.Origin
        do {
            (configuration, origin) = try source.load()
        } catch {
            FileHandle.standardError.write(Data("tokenbrokerd: \(error.message)\n".utf8))
            throw DaemonExit.invalidConfiguration
        }
        if checkOnly {
            print("tokenbrokerd: configuration \(origin.description) is valid")
            return
        }
        let logging = LogSetup.bootstrap(configuration)
        var logger = Logger(label: "tokenbrokerd")
        logger.logLevel = LogSetup.level
        if let note = logging.note { logger.warning("\(note)") }
        if case .builtIn(let path) = origin {
            logger.notice(
                "no configuration file at \(path): running on the built-in defaults",
                metadata: [
                    "broker.socket": "\(configuration.socketPath)", "broker.state": "\(configuration.stateDirectory)",
                ])
        }
        do {
            try await Daemon(source: source, origin: origin, configuration: configuration, logger: logger).run()
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
