import ArgumentParser
import BrokerAPI
import TokenctlKit

struct Logout: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign an account out: the daemon forgets every secret of it (admin only).",
        discussion: """
            EXAMPLE
              tokenctl logout alice
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The account's name.")
    var name: String

    func validate() throws {
        guard !name.isEmpty else { throw ValidationError("The account name is empty.") }
    }

    func run() throws {
        try reporting {
            let answer = try global.client().logout(name)
            print(Enrollment.loggedOut(answer))
        }
    }
}
