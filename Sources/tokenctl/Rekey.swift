import ArgumentParser
import BrokerAPI

struct Rekey: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-seal every stored secret under a new key read from stdin (64 hex characters).",
        discussion: """
            Serving goes on while the daemon re-seals. When the key came from the key file, the daemon \
            replaces that file. When it came from a systemd credential, replace the credential with the \
            new key before the next restart (for example: openssl rand -hex 32 | tee new.key | tokenctl rekey).
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting {
            let key = String(try Input.line("the new key").filter { !$0.isWhitespace })
            guard key.utf8.count == 64, key.allSatisfy(\.isHexDigit) else {
                throw Failure("the new key must be 64 hex characters (32 bytes)", exitStatus: ExitStatus.usage)
            }
            let result = try global.client(timeout: .seconds(300)).rekey(hexKey: key)
            print("re-sealed \(result.resealed) values under key \(result.keyID)")
            if let file = result.keyFile {
                print("the key file \(file) now holds the new key")
            } else {
                print("replace the systemd credential tokenbroker.key with the new key before the next restart")
            }
        }
    }
}
