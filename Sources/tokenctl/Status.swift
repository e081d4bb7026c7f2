import ArgumentParser
import BrokerAPI
import TokenctlKit

#if canImport(Glibc)
    import Glibc
#endif

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the daemon's health and every account's tokens and refresh state.",
        discussion: """
            Times are relative to now ("in 41 min"), with the clock time in UTC. Colour on a \
            terminal only; NO_COLOR (any value) turns it off.

            EXAMPLE
              tokenctl status
              NO_COLOR=1 tokenctl status | less
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting {
            let client = global.client()
            let palette = Palette.forOutput(isTerminal: isatty(STDOUT_FILENO) == 1) { name in
                getenv(name).map { String(cString: $0) }
            }
            let health = try client.health()
            print(StatusReport.health(health, palette: palette))

            for summary in try client.accounts() {
                print()
                do {
                    print(StatusReport.account(try client.account(summary.name), palette: palette))
                } catch let error as BrokerClientError where error.code == "not_found" {
                    print(StatusReport.loggedOutMeanwhile(summary.name))
                }
            }
        }
    }
}
