import BrokerAPI

/// The text of `tokenctl accounts`.
package enum AccountList {
    /// On standard error when there is no account.
    package static let noneEnrolled = "no accounts are enrolled (tokenctl login LOGIN)\n"

    /// One line per account: name, realm, login, state, in aligned columns.
    package static func table(_ accounts: [AccountSummary]) -> String {
        Format.table(accounts.map { [$0.name, $0.realm, $0.login, $0.state] })
    }
}
