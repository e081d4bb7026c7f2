import Foundation

/// How a refresh token behaves when it is used.
public enum RotationMode: String, Sendable, Codable, CaseIterable {
    /// The refresh token is reusable and is never replaced.
    case none
    /// Every refresh returns a new refresh token; the old one stays valid for the grace period.
    case rotate
    /// A refresh token works once; reusing it revokes the whole grant family.
    case strict
}

/// Which shape the login page's PPFT takes.
public enum PageStyle: String, Sendable, Codable, CaseIterable {
    /// `sFTTag:'<input type="hidden" name="PPFT" id="i0327" value="..."/>'`
    case classic
    /// `sFTTag:"<input type=\"hidden\" name=\"PPFT\" id=\"i0327\" value=\"...\"\/>"`
    case escaped
}

/// How RST.srf numbers the `Compact<N>` Ids of the tokens it issues.
public enum RSTNumbering: String, Sendable, Codable, CaseIterable {
    /// By the request's `RST<N>` Id, as the live service did (RST1 → Compact1).
    case rstID = "rst_id"
    /// By Escargot's own loop, which counts Passport.NET/tb too: the Ids are shifted (RST1 → Compact2),
    /// and never equal to the RST Id.
    case escargot
}

/// The name `GET /rdr/pprdr.asp` sends its answer under (header names are case-insensitive).
public enum PassportURLsHeader: String, Sendable, Codable, CaseIterable {
    /// As Microsoft's servers sent it.
    case live = "PassportURLs"
    /// Title-cased, as Escargot sends it.
    case escargot = "Passporturls"
}

/// The kinds of credential livesim issues; each has a lifetime that can be overridden.
public enum CredentialKind: String, Sendable, Codable, CaseIterable {
    case accessToken = "access_token"
    case refreshToken = "refresh_token"
    case skypetoken
    case ticket
    case uic
    case cookie
    /// Passport 1.4 tickets from the DALogin (`/login2.srf`), for `USR TWN S`; 30 s unless overridden.
    case passportTicket = "passport_ticket"
    /// SkyLogin signed credentials. The wire counts whole minutes: they expire at the first whole
    /// minute at or after issue time + lifetime. Default: the token lifetime (24 h unless set).
    case skylogin
}

/// An account as loaded from the accounts file or created through the control API: a Microsoft
/// account (`login`) or a Skype-name account (`skype_name`), never both.
public struct AccountSpec: Sendable, Codable, Equatable {
    /// The Microsoft account's login; empty for a Skype-name account.
    public var login: String
    /// The Skype name of a Skype-name account (it signs in to the SkyLogin server only); nil for
    /// a Microsoft account. Compared without regard to case.
    public var skypeName: String?
    public var password: String
    public var twoFactor: Bool
    public var locked: Bool
    public var rateLimited: Bool

    public init(
        login: String, password: String, twoFactor: Bool = false, locked: Bool = false, rateLimited: Bool = false
    ) {
        self.login = login
        self.password = password
        self.twoFactor = twoFactor
        self.locked = locked
        self.rateLimited = rateLimited
    }

    /// A Skype-name account.
    public init(skypeName: String, password: String, locked: Bool = false) {
        self.init(login: "", password: password, locked: locked)
        self.skypeName = skypeName
    }

    enum CodingKeys: String, CodingKey {
        case login
        case skypeName = "skype_name"
        case password
        case twoFactor = "two_factor"
        case locked
        case rateLimited = "rate_limited"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let login = try c.decodeIfPresent(String.self, forKey: .login)
        skypeName = try c.decodeIfPresent(String.self, forKey: .skypeName)
        switch (login, skypeName) {
        case (let login?, nil):
            self.login = login
        case (nil, let name?):
            guard !name.isEmpty, !name.utf8.contains(0), name.utf8.count <= 128 else {
                throw DecodingError.dataCorruptedError(
                    forKey: .skypeName, in: c, debugDescription: "a Skype name is 1-128 bytes without NUL")
            }
            self.login = ""
        default:
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: decoder.codingPath, debugDescription: "an account has either login or skype_name"))
        }
        password = try c.decode(String.self, forKey: .password)
        twoFactor = try c.decodeIfPresent(Bool.self, forKey: .twoFactor) ?? false
        locked = try c.decodeIfPresent(Bool.self, forKey: .locked) ?? false
        rateLimited = try c.decodeIfPresent(Bool.self, forKey: .rateLimited) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if let skypeName {
            try c.encode(skypeName, forKey: .skypeName)
        } else {
            try c.encode(login, forKey: .login)
        }
        try c.encode(password, forKey: .password)
        try c.encode(twoFactor, forKey: .twoFactor)
        try c.encode(locked, forKey: .locked)
        try c.encode(rateLimited, forKey: .rateLimited)
    }

    /// Reads the accounts file: a JSON array of account objects.
    public static func load(from url: URL) throws -> [AccountSpec] {
        try JSONDecoder().decode([AccountSpec].self, from: Data(contentsOf: url))
    }
}

/// Everything livesim needs to start.
public struct LiveSimConfiguration: Sendable {
    /// Host and port of the HTTPS listener; port 0 picks a free one.
    public var listenHost = "127.0.0.1"
    public var listenPort = 0
    /// Host and port of the plain-HTTP control listener; nil turns the control API off.
    public var controlHost: String? = nil
    public var controlPort = 0
    /// Host and port of the notification-server TCP listener (MSNP24 login); nil turns it off.
    public var nsHost: String? = nil
    public var nsPort = 0
    /// Host and port of the SkyLogin login-server TCP listener; nil turns it off. Its keys are
    /// generated at start (see `LiveSimServer.skyloginKeysJSON`).
    public var skyloginHost: String? = nil
    public var skyloginPort = 0
    /// Seconds a SkyLogin connection has to deliver its whole request before it is closed.
    public var skyloginTimeout: Double = 30
    /// Extra DNS names or IP addresses for the server certificate.
    public var subjectAlternativeNames: [String] = []
    /// PEM files to serve instead of a generated certificate.
    public var certificatePEMFile: String? = nil
    public var privateKeyPEMFile: String? = nil
    /// Lifetime in seconds of every credential that has no override.
    public var tokenLifetime = 86_400
    public var rotation = RotationMode.rotate
    /// Seconds a rotated refresh token stays valid in `rotate` mode.
    public var rotationGrace = 10
    public var pageStyle = PageStyle.classic
    /// Lifetimes in seconds per credential kind, over `tokenLifetime` (and the 30 s of Passport 1.4 tickets).
    public var lifetimes: [CredentialKind: Int] = [:]
    public var rstNumbering = RSTNumbering.rstID
    public var passportURLsHeader = PassportURLsHeader.live
    public var accounts: [AccountSpec] = []
    /// Log one line per request.
    public var logRequests = true
    /// How many event-loop threads serve requests.
    public var threads = ProcessInfo.processInfo.activeProcessorCount

    public init() {}
}
