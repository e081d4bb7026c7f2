import ArgumentParser
import BrokerAPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The daemon's socket (default: $\(BrokerDefaults.socketEnvironmentVariable), else \(BrokerDefaults.socketPath)).",
            valueName: "path"))
    var socket: String?

    /// --socket, else $TOKENBROKER_SOCKET, else the default path.
    var socketPath: String {
        if let socket { return socket }
        if let value = getenv(BrokerDefaults.socketEnvironmentVariable), value.pointee != 0 {
            return String(cString: value)
        }
        return BrokerDefaults.socketPath
    }

    func client(timeout: Duration = .seconds(30)) -> BrokerClient {
        BrokerClient(socketPath: socketPath, timeout: timeout)
    }
}
