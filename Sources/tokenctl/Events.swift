import ArgumentParser
import BrokerAPI
import TokenctlKit

struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print account events as they happen, one line each.",
        discussion: """
            First a state line per account you may read (or for NAME), then refreshed, \
            refresh_failed, needs_reauth, reauthenticated, enrolled and logged_out as they happen. \
            Ends with status 0 when the daemon stops (shutdown), 5 when it drops this reader for \
            falling more than 1 MiB behind. There is no replay: events from before the start are \
            not sent again.

            EXAMPLE
              tokenctl events alice
              tokenctl events --json | while read -r line; do
                case $line in *'"event":"needs_reauth"'*) notify-send tokenbroker "$line";; esac; done
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "Only this account's events.")
    var name: String?

    @Flag(help: "Print each event as one JSON object: its data, with \"event\" (the type) and \"id\".")
    var json = false

    func validate() throws {
        if let name, name.isEmpty { throw ValidationError("The account name is empty.") }
    }

    func run() throws {
        try reporting {
            let last = try global.client().events(account: name) { event in
                writeStandardOutput((json ? EventLine.json(event) : EventLine.text(event)) + "\n")
            }
            // Standard output is gone (the reading end of a pipe closed): nobody to tell.
            guard let last else { throw ExitCode(ExitStatus.failure) }
            if last.type == EventType.dropped {
                throw Failure(
                    "the daemon dropped this reader: \(last.decoded?.message ?? "it fell behind")",
                    hint: "Read the events as they come; run tokenctl events again to start from the current state.",
                    exitStatus: ExitStatus.temporarilyUnavailable)
            }
        }
    }
}
