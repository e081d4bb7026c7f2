import ArgumentParser
import BrokerAPI
import TokenctlKit

struct Accounts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the enrolled accounts, one per line: name, realm, login, state.",
        discussion: """
            EXAMPLE
              tokenctl accounts
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting {
            let accounts = try global.client().accounts()
            guard !accounts.isEmpty else {
                writeStandardError(AccountList.noneEnrolled)
                return
            }
            print(AccountList.table(accounts))
        }
    }
}
