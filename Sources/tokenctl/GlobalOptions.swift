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
            "The daemon's socket (default: $\(BrokerDefaults.socketEnvironmentVariable), else \(BrokerDefaults.socketPath), else $XDG_RUNTIME_DIR/tokenbroker/tokenbroker.sock).",
            valueName: "path"))
    var socket: String?

    /// --socket, else $TOKENBROKER_SOCKET, else the system daemon's socket, else (when only that
    /// exists) the socket of a `systemd --user` daemon in $XDG_RUNTIME_DIR.
    var socketPath: String {
        if let socket { return socket }
        if let value = getenv(BrokerDefaults.socketEnvironmentVariable), value.pointee != 0 {
            return String(cString: value)
        }
        if access(BrokerDefaults.socketPath, F_OK) != 0, let runtime = getenv("XDG_RUNTIME_DIR"), runtime.pointee != 0 {
            let user = String(cString: runtime) + "/tokenbroker/tokenbroker.sock"
            if access(user, F_OK) == 0 { return user }
        }
        return BrokerDefaults.socketPath
    }

    func client(timeout: Duration = .seconds(30)) -> BrokerClient {
        BrokerClient(socketPath: socketPath, timeout: timeout)
    }
}
