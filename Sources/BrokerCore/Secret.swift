/// A credential value: a token, cookie, ticket or password.
///
/// Its description is redacted so that a secret cannot reach a log line, an error message or a
/// crash report by string interpolation.
package struct Secret: Sendable, Hashable, Codable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The raw value. Read it only where it leaves the process on purpose.
    package let exposed: String

    package init(_ value: String) { self.exposed = value }

    package var description: String { "<redacted \(exposed.utf8.count) bytes>" }
    package var debugDescription: String { description }

    package init(from decoder: any Decoder) throws {
        self.exposed = try decoder.singleValueContainer().decode(String.self)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(exposed)
    }
}

/// The kinds of secret the store seals. The kind is part of the additional authenticated data,
/// so a sealed value cannot be moved to another column.
package enum SecretKind: String, Sendable, CaseIterable, Codable {
    case refreshToken = "refresh_token"
    case accessToken = "access_token"
    case password
    case cookies
    case login
    /// The daemon's name of the account, which often is the login.
    case accountName = "account_name"
    /// An RST site's compact ticket (`site_tickets.value`).
    case siteTicket = "site_ticket"
    /// The BinarySecret that came with an RST site's ticket (`site_tickets.proof_key`).
    case proofKey = "proof_key"
    /// A Skype name's MD5(name ‖ "\nskyper\n" ‖ password), hex (`skylogin.login_hash`).
    case loginHash = "login_hash"
    /// The account's SkyLogin RSA private key (`skylogin.client_key`).
    case clientKey = "client_key"
    /// SkyLogin signed credentials (`skylogin.credentials`).
    case skyloginCredentials = "skylogin_credentials"
    /// The Skype name SkyLogin credentials bind (`skylogin.skype_name`): it tells who the account
    /// is, so it is sealed like the login.
    case skypeName = "skype_name"
}
