import ArgumentParser
import BrokerAPI

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the daemon's health and every account's tokens and refresh state.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting {
            let client = global.client()
            let health = try client.health()
            print(
                "tokenbrokerd \(health.version): \(health.status), "
                    + "\(Format.plural(health.accounts, "account", "accounts")), "
                    + "\(health.needsReauth) \(health.needsReauth == 1 ? "needs" : "need") sign-in"
                    + (health.storageError.map { "\nstorage writes are failing (tokens are kept in memory and retried): \($0)" } ?? ""))

            for summary in try client.accounts() {
                print()
                do {
                    print(describe(try client.account(summary.name)))
                } catch let error as BrokerClientError where error.code == "not_found" {
                    print("\(summary.name): logged out meanwhile")
                }
            }
        }
    }

    private func describe(_ account: AccountDetail) -> String {
        var state = account.state
        if let reason = account.stateReason { state += " (\(reason))" }
        var text = "\(account.name)  \(account.login)  realm \(account.realm)  \(state)"
        if account.state == AccountStateValue.needsReauth {
            text += "\n  sign in again: tokenctl login \(account.login)"
        }
        if let readers = account.readers {
            let uids = readers.uids.isEmpty ? "none" : readers.uids.map(String.init).joined(separator: ", ")
            let groups = readers.groups.isEmpty ? "none" : readers.groups.map(String.init).joined(separator: ", ")
            text += "\n  readers: root; uids \(uids); gids \(groups)"
        }
        guard !account.scopes.isEmpty else { return text + "\n  no scopes" }

        var rows = [["SCOPE", "EXPIRES", "NEXT REFRESH", "FAILURES", "LAST ERROR"]]
        for scope in account.scopes {
            var lastError = scope.lastError.map { "\($0.code): \($0.message)" } ?? "-"
            if let backoff = scope.backoffUntil {
                lastError += " (backing off until \(Format.clock(backoff)))"
            }
            rows.append([
                scope.alias, Format.time(scope.expiresAt), Format.time(scope.nextRefresh),
                String(scope.failures), lastError,
            ])
        }
        return text + "\n" + Format.table(rows, indent: "  ")
    }
}
