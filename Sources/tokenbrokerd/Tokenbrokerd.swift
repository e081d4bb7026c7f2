import ArgumentParser
import BrokerConfig
import BrokerDaemon

/// `tokenbrokerd`: parses arguments and hands over to BrokerDaemon, which reads the
/// configuration, sets up logging, and runs the daemon.
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

    /// The entry point: clears the inherited signal mask before any other thread exists.
    static func main() async {
        DaemonLaunch.clearSignalMask()
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

    @Option(
        help: ArgumentHelp(
            "The configuration file; it must exist. Without this option the daemon reads "
                + "/etc/tokenbroker/tokenbroker.toml (as root) or $XDG_CONFIG_HOME/tokenbroker/tokenbroker.toml "
                + "(any other user), and runs on the built-in defaults when there is no file there.",
            valueName: "path"))
    var config: String?

    @Flag(help: "Check the configuration file and exit: 0 if it is valid, 78 with the reason if not.")
    var checkConfig = false

    func run() async throws {
        do {
            try await DaemonLaunch.run(configurationPath: config, checkOnly: checkConfig)
        } catch let end as DaemonExit {
            throw ExitCode(end.status)
        }
    }
}
