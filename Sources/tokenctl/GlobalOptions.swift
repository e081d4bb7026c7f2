import ArgumentParser
import BrokerAPI
import TokenctlKit

/// The options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The daemon's socket (default: $\(BrokerDefaults.socketEnvironmentVariable), else \(BrokerDefaults.socketPath), else $XDG_RUNTIME_DIR/tokenbroker/tokenbroker.sock).",
            valueName: "path"))
    var socket: String?

    /// See `SocketPath.resolve`.
    var socketPath: String { SocketPath.resolve(option: socket) }

    func client(timeout: Duration = .seconds(30)) -> BrokerClient {
        BrokerClient(socketPath: socketPath, timeout: timeout)
    }
}
