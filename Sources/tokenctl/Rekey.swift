import ArgumentParser
import BrokerAPI
import TokenctlKit

struct Rekey: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-seal every stored secret under a new key read from stdin (64 hex characters).",
        discussion: """
            Serving goes on while the daemon re-seals. When the key came from the key file, the daemon \
            replaces that file. When it came from a systemd credential, replace the credential with the \
            new key before the next restart (for example: openssl rand -hex 32 | tee new.key | tokenctl rekey).

            EXAMPLE
              openssl rand -hex 32 | tee new.key | tokenctl rekey
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting {
            let key = try RekeyReport.key(from: Input.line("the new key"))
            let result = try global.client(timeout: .seconds(300)).rekey(hexKey: key)
            print(RekeyReport.result(result))
        }
    }
}
