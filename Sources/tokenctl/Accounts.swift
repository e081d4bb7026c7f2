import ArgumentParser
import BrokerAPI

struct Accounts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the enrolled accounts, one per line: name, realm, login, state.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting {
            let accounts = try global.client().accounts()
            guard !accounts.isEmpty else {
                writeStandardError("no accounts are enrolled (tokenctl login LOGIN)\n")
                return
            }
            print(Format.table(accounts.map { [$0.name, $0.realm, $0.login, $0.state] }))
        }
    }
}
