import BrokerAPI

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The text of `tokenctl status`: the daemon's health, then a block per account.
package enum StatusReport {
    /// "tokenbrokerd 0.1.0: ok, 2 accounts, 1 needs sign-in", and a line about failing storage
    /// writes when there are any.
    package static func health(_ health: HealthResponse, palette: Palette = .plain) -> String {
        let status = health.status == "ok" ? palette.green(health.status) : palette.yellow(health.status)
        let needs = "\(health.needsReauth) \(health.needsReauth == 1 ? "needs" : "need") sign-in"
        return "tokenbrokerd \(health.version): \(status), "
            + "\(Format.plural(health.accounts, "account", "accounts")), "
            + (health.needsReauth > 0 ? palette.red(needs) : needs)
            + (health.storageError.map {
                palette.red("\nstorage writes are failing (tokens are kept in memory and retried): \($0)")
            } ?? "")
    }

    /// An account's state, readers and a table of its scopes; times relative to `now`.
    package static func account(_ account: AccountDetail, now: Date = Date(), palette: Palette = .plain) -> String {
        var state = account.state
        if let reason = account.stateReason { state += " (\(reason))" }
        state = account.state == AccountStateValue.active ? palette.green(state) : palette.red(state)
        var text = "\(palette.bold(account.name))  \(account.login)  realm \(account.realm)  \(state)"
        let sites = account.hasSites
        if account.state == AccountStateValue.needsReauth {
            text += "\n  sign in again: tokenctl login \(account.login)"
            if sites {
                // Its realm signs in with rst, which is not the default realm as a rule.
                text += " --realm \(account.realm)"
                if account.name != account.login { text += " --name \(account.name)" }
                text += " --password-stdin"
            }
        }
        if let readers = account.readers {
            let uids = readers.uids.isEmpty ? "none" : readers.uids.map(String.init).joined(separator: ", ")
            let groups = readers.groups.isEmpty ? "none" : readers.groups.map(String.init).joined(separator: ", ")
            text += "\n  readers: root; uids \(uids); gids \(groups)"
        }
        guard !account.scopes.isEmpty else { return text + "\n  no scopes" }

        var rows = [[sites ? "SITE" : "SCOPE", "EXPIRES", "NEXT REFRESH", "FAILURES", "LAST ERROR"]]
        for scope in account.scopes {
            var lastError = scope.lastError.map { "\($0.code): \($0.message)" } ?? "-"
            if let backoff = scope.backoffUntil {
                lastError += " (backing off until \(Format.clock(backoff, now: now)))"
            }
            rows.append([
                scope.alias, Format.time(scope.expiresAt, now: now), Format.time(scope.nextRefresh, now: now),
                String(scope.failures), lastError,
            ])
        }
        return text + "\n"
            + Format.table(rows, indent: "  ") { row, column, cell in
                switch (row, column) {
                case (0, _): palette.dim(cell)
                case (_, 3) where cell != "0": palette.yellow(cell)
                case (_, 4) where cell != "-": palette.red(cell)
                default: cell
                }
            }
    }

    /// In place of an account that was listed but is gone when its details are asked for.
    package static func loggedOutMeanwhile(_ name: String) -> String {
        "\(name): logged out meanwhile"
    }
}

extension ScopeStatus {
    /// Whether this credential is an RST site's ticket (an account of an rst realm): its name is
    /// the site's address, such as `messengerclear.live.com`, rather than a scope or a credential
    /// kind of an OAuth account (`skype`, `service::skype.com::MBI_SSL`, `skypetoken`, `ticket`).
    package var isSite: Bool {
        scope == alias && alias.contains(".") && !alias.contains("::")
    }
}

extension AccountDetail {
    /// Whether the account's credentials are RST site tickets (it belongs to an rst realm).
    package var hasSites: Bool { !scopes.isEmpty && scopes.allSatisfy(\.isSite) }
}
