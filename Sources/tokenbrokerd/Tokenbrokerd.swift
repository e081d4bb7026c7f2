import ArgumentParser
import BrokerAPI
import BrokerConfig
import BrokerCore
import Foundation
import Logging

/// `tokenbrokerd`: parses arguments, reads the configuration, sets up logging, and runs the daemon.
@main
struct Tokenbrokerd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenbrokerd",
        abstract: "Keeps MSN/Skype Passport tokens fresh and serves them over a Unix socket.",
        discussion: """
            Runs in the foreground. Under systemd (Type=notify) it reports readiness, a status line \
            and watchdog pings, takes its listening socket from a .socket unit when one is passed, \
            writes native journal entries, and reloads its configuration on SIGHUP \
            (systemctl reload). SIGTERM stops it gracefully. Exit status 78 means an invalid \
            configuration, 1 a failure to start.
            """,
        version: BuildInfo.version)

    /// The entry point: clears the inherited signal mask first, on the main thread before any
    /// other thread exists (threads inherit it). systemd does so for its services; a launcher that
    /// blocks SIGTERM or SIGHUP (systemd-socket-activate does) would otherwise leave the daemon
    /// deaf to stop and reload.
    static func main() async {
        var empty = sigset_t()
        sigemptyset(&empty)
        sigprocmask(SIG_SETMASK, &empty, nil)
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    @Option(help: ArgumentHelp("The configuration file.", valueName: "path"))
    var config = DaemonConfiguration.defaultPath

    @Flag(help: "Check the configuration file and exit: 0 if it is valid, 78 with the reason if not.")
    var checkConfig = false

    func run() async throws {
        let configuration: DaemonConfiguration
        do {
            configuration = try DaemonConfiguration.load(path: config)
        } catch {
            FileHandle.standardError.write(Data("tokenbrokerd: \(error.message)\n".utf8))
            throw ExitCode(78)
        }
        if checkConfig {
            print("tokenbrokerd: configuration \(config) is valid")
            return
        }
        let logging = LogSetup.bootstrap(configuration)
        var logger = Logger(label: "tokenbrokerd")
        logger.logLevel = LogSetup.level
        if let note = logging.note { logger.warning("\(note)") }
        // A reload reads the file again, perhaps after a change of working directory.
        let path = URL(fileURLWithPath: config).standardizedFileURL.path
        do {
            try await Daemon(configurationPath: path, configuration: configuration, logger: logger).run()
        } catch let error as BrokerError {
            logger.critical("cannot start: \(error.message)", metadata: ["error.type": "\(error.code.rawValue)"])
            throw ExitCode(1)
        }
    }
}

/// What this build is.
enum BuildInfo {
    #if TOKENBROKER_TESTING
    static let version = "\(BrokerDefaults.version) (testing build: fault switches compiled in; not for production)"
    #else
    static let version = BrokerDefaults.version
    #endif
}
