import BrokerConfig
import BrokerCore
import Testing

@Suite("Configuration: log target, systemd's state directory")
struct LogAndStateTests {
    @Test("log.target is auto by default, and journal or stderr when set; anything else is refused")
    func logTarget() throws {
        #expect(try DaemonConfiguration.parse("").logTarget == .auto)
        #expect(try DaemonConfiguration.parse("[log]\ntarget = \"journal\"").logTarget == .journal)
        #expect(try DaemonConfiguration.parse("[log]\ntarget = \"stderr\"").logTarget == .stderr)
        #expect(throws: BrokerError.self) { try DaemonConfiguration.parse("[log]\ntarget = \"syslog\"") }
    }

    @Test("STATE_DIRECTORY (StateDirectory=) is the state directory unless the file names one")
    func stateDirectory() throws {
        let environment = ["STATE_DIRECTORY": "/home/u/.local/state/tokenbroker:/other"]
        #expect(
            try DaemonConfiguration.parse("", environment: environment).stateDirectory
                == "/home/u/.local/state/tokenbroker")
        #expect(
            try DaemonConfiguration.parse("", environment: environment).resolvedKeyFile
                == "/home/u/.local/state/tokenbroker/key")
        #expect(
            try DaemonConfiguration.parse("[state]\ndirectory = \"/srv/tb\"", environment: environment).stateDirectory
                == "/srv/tb")
        #expect(try DaemonConfiguration.parse("").stateDirectory == "/var/lib/tokenbroker")
        #expect(
            try DaemonConfiguration.parse("", environment: ["STATE_DIRECTORY": "relative"]).stateDirectory
                == "/var/lib/tokenbroker")
    }
}
