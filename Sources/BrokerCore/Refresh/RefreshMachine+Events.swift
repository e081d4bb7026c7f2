#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The `announce` effects: what the event stream's readers are told of refreshes and of
/// accounts needing a new sign-in. Built from the machine's state after the change, so that
/// `nextRefreshAt` is the schedule now in force.
extension RefreshMachine {
    /// `refreshed` for each credential just installed, in order.
    func refreshed(_ name: AccountName, _ kinds: [CredentialKind], now: Date) -> [Effect] {
        kinds.map { kind in
            .announce(
                AccountEvent(
                    .refreshed, account: name, credential: kind, at: now,
                    nextRefreshAt: accounts[name]?.credentials[kind]?.dueAt))
        }
    }

    /// `needs_reauth` for a revoked grant or a refused password; `refresh_failed`, with the next
    /// attempt, for anything else.
    func failure(_ key: CredentialKey, _ failure: RefreshFailure, error: BrokerError, now: Date) -> Effect {
        switch failure {
        case .grantRevoked, .passwordRefused:
            return .announce(
                AccountEvent(
                    .needsReauth, account: key.account, credential: key.kind, at: now, errorCode: .needsReauth,
                    message: failure.message))
        default:
            return .announce(
                AccountEvent(
                    .refreshFailed, account: key.account, credential: key.kind, at: now,
                    nextRefreshAt: accounts[key.account]?.credentials[key.kind]?.dueAt, errorCode: error.code,
                    message: failure.message))
        }
    }

    /// The earliest refresh due of an active account, for the enrollment events.
    package func nextRefresh(of name: AccountName) -> Date? {
        guard let account = accounts[name], account.state == .active else { return nil }
        return account.credentials.values.map(\.dueAt).min()
    }
}
