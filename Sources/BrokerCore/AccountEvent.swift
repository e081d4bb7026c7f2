#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A change of an account's state, as `GET /v1/events` tells it: names, kinds, times and
/// codes, never a credential's value.
package struct AccountEvent: Sendable, Equatable {
    /// What happened; the raw values are the event types on the socket.
    package enum Change: String, Sendable, CaseIterable {
        /// A credential was obtained and is served from now on.
        case refreshed
        /// A refresh failed and will be tried again (`nextRefreshAt`).
        case refreshFailed = "refresh_failed"
        /// The account's grant is gone: only a new sign-in helps.
        case needsReauth = "needs_reauth"
        /// An enrolled account signed in again (typically after `needs_reauth`).
        case reauthenticated
        /// A new account was enrolled.
        case enrolled
        /// The account was removed with everything stored for it.
        case loggedOut = "logged_out"
    }

    package var change: Change
    package var account: AccountName
    /// The credential the change is about, when it is about one.
    package var credential: CredentialKind?
    package var at: Date
    /// When the credential (or, for an enrollment, the account) is next refreshed.
    package var nextRefreshAt: Date?
    package var errorCode: ErrorCode?
    /// For a person: why a refresh failed. Never holds a secret.
    package var message: String?

    package init(
        _ change: Change, account: AccountName, credential: CredentialKind? = nil, at: Date,
        nextRefreshAt: Date? = nil, errorCode: ErrorCode? = nil, message: String? = nil
    ) {
        self.change = change
        self.account = account
        self.credential = credential
        self.at = at
        self.nextRefreshAt = nextRefreshAt
        self.errorCode = errorCode
        self.message = message
    }
}
