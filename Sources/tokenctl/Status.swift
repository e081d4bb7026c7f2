import ArgumentParser
import BrokerAPI
import TokenctlKit

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the daemon's health and every account's tokens and refresh state.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting {
            let client = global.client()
            let health = try client.health()
            print(StatusReport.health(health))

            for summary in try client.accounts() {
                print()
                do {
                    print(StatusReport.account(try client.account(summary.name)))
                } catch let error as BrokerClientError where error.code == "not_found" {
                    print(StatusReport.loggedOutMeanwhile(summary.name))
                }
            }
        }
    }
}
