import ArgumentParser
import BrokerAPI

@main
struct Tokenctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenctl",
        abstract: "Ask tokenbrokerd for tokens; enroll and sign out its accounts.",
        discussion: """
            The daemon's socket is --socket PATH, else $\(BrokerDefaults.socketEnvironmentVariable), \
            else \(BrokerDefaults.socketPath) when it exists, else your own daemon's \
            $XDG_RUNTIME_DIR/tokenbroker/tokenbroker.sock (/run/user/UID/... when XDG_RUNTIME_DIR is unset).

            EXAMPLE
              tokenctl status
              tokenctl token --scope ssl

            EXIT STATUS
              0   success
              1   any other error
              3   not enrolled: the daemon has no such account
              4   the account needs a new sign-in (tokenctl login)
              5   temporarily unavailable (identity provider down or rate-limiting)
              64  bad usage, an unknown scope, or a request the daemon calls bad
              69  tokenbrokerd is unreachable
              77  forbidden: this uid may not do that (enroll, logout and rekey are for root, the
                  daemon's own user and admin_groups; reads follow [[access]])
            """,
        version: BrokerDefaults.version,
        subcommands: [
            Status.self, Accounts.self, Token.self, Skypetoken.self, UIC.self, Ticket.self, WebTicket.self, ATH.self,
            SSO.self,
            Passport14.self,
            ChallengeCommand.self, Login.self, Import.self, Logout.self, Rekey.self, Events.self,
        ]
    )

    /// Lets --socket come before the subcommand too; each subcommand reads its own copy.
    @OptionGroup var global: GlobalOptions
}
