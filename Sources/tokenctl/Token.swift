import ArgumentParser
import BrokerAPI
import TokenctlKit

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an account's access token for a scope.",
        discussion: """
            Prints the bare token, for use as $(tokenctl token alice). Scopes: skype, ssl, \
            login-skype, contacts, hotmail, or a full name such as service::skype.com::MBI_SSL. \
            With one account (of those you may read), the name may be left out.

            EXAMPLE
              tokenctl token alice --scope ssl
              curl -H "Authorization: Bearer $(tokenctl token)" https://api.example/...
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The account's name; optional when there is only one.")
    var name: String?

    @Option(help: "The scope, by alias or full name.")
    var scope = "skype"

    @Option(help: ArgumentHelp("Refresh first unless the token stays valid this long.", valueName: "seconds"))
    var minValid: Int?

    @Flag(help: "Print the whole answer as JSON (token, scope, expires_at, expires_in).")
    var json = false

    func validate() throws {
        if let name, name.isEmpty { throw ValidationError("The account name is empty.") }
        guard !scope.isEmpty else { throw ValidationError("The scope is empty.") }
        if let minValid, minValid < 0 { throw ValidationError("--min-valid must be 0 or more seconds.") }
    }

    func run() throws {
        try reporting {
            let client = global.client()
            let account = try name ?? AccountChoice.only(try client.accounts().map(\.name))
            let token = try client.token(account: account, scope: scope, minValid: minValid)
            print(try Answer.token(token, json: json))
        }
    }
}
