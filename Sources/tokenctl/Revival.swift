import ArgumentParser
import BrokerAPI
import TokenctlKit

/// `USR t SSO S` (MSNP15-18) for an account of an rst realm.
struct SSO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sso",
        abstract: "Print the USR SSO S command (ticket and MBI_KEY_OLD proof) for an rst account (MSNP15-18).",
        discussion: """
            Give the nonce of the server's USR t SSO S MBI_KEY_OLD <nonce> line. Prints \
            USR <trid> SSO S <ticket> <proof>[ <guid>], ready to send with CR LF; the TrID stays a \
            {trid} placeholder without --trid. MSNP16 and later need --guid (the machine GUID, in braces). \
            The key of the proof never leaves the daemon.

            EXAMPLE
              tokenctl sso carol --nonce "$NONCE" --trid 4 --guid "{$MACHINE_GUID}"
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: CredentialOptions

    @Option(help: "The nonce from the server's USR t SSO S line.")
    var nonce: String

    @Option(help: "The TrID to put in the command (default: a {trid} placeholder).")
    var trid: Int?

    @Option(help: ArgumentHelp("The machine GUID to append (MSNP16 and later), e.g. {6F1C2A...}.", valueName: "guid"))
    var guid: String?

    @Option(help: "The policy from the server's USR t SSO S line (default: MBI_KEY_OLD).")
    var policy: String?

    func validate() throws {
        guard !nonce.isEmpty else { throw ValidationError("The --nonce is empty.") }
        if let trid, trid < 0 { throw ValidationError("--trid must be 0 or more.") }
        if guid?.isEmpty == true { throw ValidationError("The --guid is empty.") }
        if policy?.isEmpty == true { throw ValidationError("The --policy is empty.") }
    }

    func run() throws {
        try reporting {
            let answer = try global.client().sso(
                account: options.name, nonce: nonce, trid: trid, guid: guid, policy: policy,
                minValid: options.minValid)
            try options.emit(answer, bare: answer.usr)
        }
    }
}

/// `USR t TWN S` (MSNP8-14) for an account of an rst realm.
struct Passport14: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passport14",
        abstract: "Print a Passport 1.4 ticket for USR TWN S (MSNP8-14) for an rst account.",
        discussion: """
            Give the challenge string of the server's USR t TWN S line. The daemon signs in for it \
            with the stored password; revival servers keep such a ticket for seconds, so send it at \
            once and ask again for the next login.

            EXAMPLE
              tokenctl passport14 carol --challenge 'ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1033,id=507'
            """)
    @OptionGroup var global: GlobalOptions

    @Argument(help: "The account's name.")
    var name: String

    @Option(help: "The challenge string from the server's USR t TWN S line.")
    var challenge: String

    @Flag(help: "Print the whole answer as JSON.")
    var json = false

    func validate() throws {
        guard !name.isEmpty else { throw ValidationError("The account name is empty.") }
        guard !challenge.isEmpty else { throw ValidationError("The --challenge is empty.") }
    }

    func run() throws {
        try reporting {
            let answer = try global.client().passport14(account: name, challenge: challenge)
            print(try Answer.text(answer, bare: answer.ticket, json: json))
        }
    }
}
