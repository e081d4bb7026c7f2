/// The five OAuth scopes of the MSNP24 flows, with the short aliases the socket API accepts.
package enum Scope: String, CaseIterable, Sendable, Codable, Hashable, Comparable {
    case skype = "service::skype.com::MBI_SSL"
    case ssl = "service::ssl.live.com::MBI_SSL"
    case loginSkype = "service::login.skype.com::MBI_SSL"
    case contacts = "service::contacts.msn.com::MBI_SSL"
    case hotmail = "service::m.hotmail.com::MBI_SSL"

    /// The short name used on the command line and in the socket API.
    package var alias: String {
        switch self {
        case .skype: "skype"
        case .ssl: "ssl"
        case .loginSkype: "login-skype"
        case .contacts: "contacts"
        case .hotmail: "hotmail"
        }
    }

    /// Accepts the full scope name or its alias.
    package init?(nameOrAlias: String) {
        if let full = Scope(rawValue: nameOrAlias) {
            self = full
            return
        }
        guard let match = Scope.allCases.first(where: { $0.alias == nameOrAlias }) else { return nil }
        self = match
    }

    package static func < (lhs: Scope, rhs: Scope) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The only client id the identity provider lets use the MBI_SSL scopes.
package let messengerClientID = "00000000480BC46C"

/// The desktop redirect the client id is registered for.
package let defaultDesktopRedirect = "https://login.live.com/oauth20_desktop.srf"
