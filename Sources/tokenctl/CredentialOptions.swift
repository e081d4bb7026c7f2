import ArgumentParser
import BrokerAPI
import BrokerCore
import TokenctlKit

/// Options shared by the credential commands.
struct CredentialOptions: ParsableArguments {
    @Argument(help: "The account's name.")
    var name: String

    @Option(help: ArgumentHelp("Refresh first unless the credential stays valid this long.", valueName: "seconds"))
    var minValid: Int?

    @Flag(help: "Print the whole answer as JSON.")
    var json = false

    func validate() throws {
        guard !name.isEmpty else { throw ValidationError("The account name is empty.") }
        if let minValid, minValid < 0 { throw ValidationError("--min-valid must be 0 or more seconds.") }
    }

    /// Prints the bare value, or the whole answer with --json.
    func emit<T: Encodable>(_ answer: T, bare: String) throws {
        print(try Answer.text(answer, bare: bare, json: json))
    }
}

struct Skypetoken: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an account's skypetoken.",
        discussion: """
            EXAMPLE
              tokenctl skypetoken alice
              tokenctl skypetoken alice --json --min-valid 600
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: CredentialOptions

    func run() throws {
        try reporting {
            let answer = try global.client().skypetoken(account: options.name, minValid: options.minValid)
            try options.emit(answer, bare: answer.skypetoken)
        }
    }
}

struct UIC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uic", abstract: "Print an account's UIC.",
        discussion: """
            Without options: the UIC of User/Initialization. With --nonce (a Skype name): a UIC \
            signed over the CNT nonce (1-47 characters). With --method skylogin: the base64 of the \
            account's SkyLogin credentials (the UIC of ssl-compact-ticket-skylogin).

            EXAMPLE
              tokenctl uic alice
              tokenctl uic live:carol --nonce 8f3c1d
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: CredentialOptions

    @Option(help: "The nonce of the server's CNT answer, to sign the UIC over (Skype names).")
    var nonce: String?

    @Option(help: ArgumentHelp("skylogin: the SkyLogin credentials' base64.", valueName: "method"))
    var method: String?

    func validate() throws {
        if let method, method != "skylogin" { throw ValidationError("--method is skylogin.") }
        if nonce != nil && method != nil { throw ValidationError("Give --nonce or --method, not both.") }
    }

    func run() throws {
        try reporting {
            let answer = try global.client().uic(
                account: options.name, minValid: options.minValid, nonce: nonce, method: method)
            try options.emit(answer, bare: answer.uic)
        }
    }
}

struct Ticket: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print an account's ssl-compact-ticket (t=...&p=), not XML-escaped.",
        discussion: """
            For an account of an rst realm: the ticket of messengerclear.live.com, or with --site \
            the ticket of another RST site the daemon keeps (messenger.msn.com, contacts.msn.com, \
            messengersecure.live.com, storage.msn.com, ...).

            EXAMPLE
              tokenctl ticket alice
              tokenctl ticket carol --site contacts.msn.com
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: CredentialOptions

    @Option(help: ArgumentHelp("The RST site whose ticket to print (accounts of rst realms).", valueName: "address"))
    var site: String?

    func validate() throws {
        if site?.isEmpty == true { throw ValidationError("The --site is empty.") }
    }

    func run() throws {
        try reporting {
            let client = global.client()
            let answer =
                if let site {
                    try client.ticket(account: options.name, site: site, minValid: options.minValid)
                } else {
                    try client.ticket(account: options.name, minValid: options.minValid)
                }
            try options.emit(answer, bare: answer.ticket)
        }
    }
}

struct WebTicket: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web-ticket", abstract: "Print the Cookie header (MSPAuth, MSPProf, WLSSC) for the HTTPS gateway.",
        discussion: """
            Send it with X-MSN-Auth: Use-Cookie.

            EXAMPLE
              curl -H "Cookie: $(tokenctl web-ticket alice)" -H "X-MSN-Auth: Use-Cookie" https://gateway.example/gateway/gateway.dll
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: CredentialOptions

    func run() throws {
        try reporting {
            let answer = try global.client().webTicket(account: options.name, minValid: options.minValid)
            try options.emit(answer, bare: answer.cookies)
        }
    }
}

struct ATH: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ath", abstract: "Print the ATH CON\\USER command for an account, ready to send.",
        discussion: """
            Methods: web-compact-ticket, ssl-compact-ticket, ssl-compact-ticket-uic, \
            ssl-compact-ticket-skylogin, and skype-uic (a Skype name; needs --nonce).

            EXAMPLE
              tokenctl ath alice --trid 3
              tokenctl ath live:carol --method skype-uic --nonce 8f3c1d
            """)
    @OptionGroup var global: GlobalOptions
    @OptionGroup var options: CredentialOptions

    @Option(help: "The ATH method.")
    var method = "ssl-compact-ticket-uic"

    @Option(help: "The TrID to put in the command (default: a {trid} placeholder).")
    var trid: Int?

    @Option(help: "skype-uic: the nonce of the server's CNT answer.")
    var nonce: String?

    func validate() throws {
        if method == "skype-uic" && nonce == nil { throw ValidationError("--method skype-uic needs --nonce.") }
        if method != "skype-uic" && nonce != nil { throw ValidationError("--nonce goes with --method skype-uic.") }
    }

    func run() throws {
        try reporting {
            let answer = try global.client().ath(
                account: options.name, method: method, trid: trid, minValid: options.minValid, nonce: nonce)
            try options.emit(answer, bare: answer.wire)
        }
    }
}

struct ChallengeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "challenge",
        abstract: "Print the answer to an MSNP challenge nonce (computed here; no daemon needed).",
        discussion: """
            EXAMPLE
              tokenctl challenge 22210219642164014831
            """)

    @Argument(help: "The nonce from the server.")
    var nonce: String

    @Option(help: "The product id (sent as <appId>).")
    var productID = Challenge.defaultProductID

    @Option(help: "The product key.")
    var productKey = Challenge.defaultProductKey

    func run() {
        print(Challenge.answer(nonce: nonce, productID: productID, productKey: productKey))
    }
}
