/// `GET /v1/accounts/{name}/skypetoken`.
public struct SkypetokenResult: Codable, Sendable, Hashable, CustomStringConvertible {
    public var skypetoken: String
    public var expiresAt: String
    public var expiresIn: Int

    public init(skypetoken: String, expiresAt: String, expiresIn: Int) {
        self.skypetoken = skypetoken
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case skypetoken
        case expiresAt = "expires_at"
        case expiresIn = "expires_in"
    }

    public var description: String { "SkypetokenResult(<redacted>, expires_at: \(expiresAt))" }
}

/// `GET /v1/accounts/{name}/uic`.
public struct UICResult: Codable, Sendable, Hashable, CustomStringConvertible {
    public var uic: String
    /// The Skype name SkyLogin credentials name (`uic?method=skylogin`, `uic?nonce=`); absent for
    /// the UIC of User/Initialization.
    public var skypeName: String?
    public var expiresAt: String
    public var expiresIn: Int

    public init(uic: String, skypeName: String? = nil, expiresAt: String, expiresIn: Int) {
        self.uic = uic
        self.skypeName = skypeName
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case uic
        case skypeName = "skype_name"
        case expiresAt = "expires_at"
        case expiresIn = "expires_in"
    }

    public var description: String { "UICResult(<redacted>, expires_at: \(expiresAt))" }
}

/// `GET /v1/accounts/{name}/ticket`: the ssl-compact-ticket as text (`t=...&p=` from RST.srf,
/// `t=...` from the ssl.live.com token), not XML-escaped.
public struct TicketResult: Codable, Sendable, Hashable, CustomStringConvertible {
    public var ticket: String
    /// `oauth` or `rst`.
    public var method: String
    public var site: String
    public var expiresAt: String
    public var expiresIn: Int

    public init(ticket: String, method: String, site: String, expiresAt: String, expiresIn: Int) {
        self.ticket = ticket
        self.method = method
        self.site = site
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case ticket, method, site
        case expiresAt = "expires_at"
        case expiresIn = "expires_in"
    }

    public var description: String { "TicketResult(<redacted>, method: \(method), expires_at: \(expiresAt))" }
}

/// `GET /v1/accounts/{name}/web-ticket`: what a client sends to the HTTPS gateway.
public struct WebTicketResult: Codable, Sendable, Hashable, CustomStringConvertible {
    /// `MSPAuth=...; MSPProf=...; WLSSC=...`
    public var cookies: String
    /// `X-MSN-Auth: Use-Cookie` and the `Cookie` header.
    public var headers: [String: String]
    public var expiresAt: String
    public var expiresIn: Int

    public init(cookies: String, headers: [String: String], expiresAt: String, expiresIn: Int) {
        self.cookies = cookies
        self.headers = headers
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case cookies, headers
        case expiresAt = "expires_at"
        case expiresIn = "expires_in"
    }

    public var description: String { "WebTicketResult(<redacted>, expires_at: \(expiresAt))" }
}

/// `GET /v1/accounts/{name}/ath?method=...[&trid=N]`: the ATH payload, ready to send.
public struct ATHResult: Codable, Sendable, Hashable, CustomStringConvertible {
    public var method: String
    /// The compact `<user>...</user>` XML, values XML-escaped.
    public var body: String
    /// The MSNP payload length: header block, blank line and body.
    public var length: Int
    /// `ATH {trid} CON\USER {length}\r\n\r\n{body}`; `{trid}` stays a placeholder when no trid was given.
    public var wire: String
    public var expiresAt: String
    public var expiresIn: Int

    public init(method: String, body: String, length: Int, wire: String, expiresAt: String, expiresIn: Int) {
        self.method = method
        self.body = body
        self.length = length
        self.wire = wire
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case method, body, length, wire
        case expiresAt = "expires_at"
        case expiresIn = "expires_in"
    }

    public var description: String { "ATHResult(method: \(method), <redacted>, length: \(length))" }
}

/// `GET /v1/accounts/{name}/sso?nonce=N[&trid=T][&guid=G][&policy=P]`: the `USR t SSO S` answer
/// of an account of an `rst` realm (MSNP15–18). The ticket and the proof come from the same
/// RST.srf answer; the BinarySecret that keys the proof never leaves the daemon.
public struct SSOResult: Codable, Sendable, Hashable, CustomStringConvertible {
    /// The compact ticket, as issued (`t=...&p=`), not XML-escaped.
    public var ticket: String
    /// The base64 MBI_KEY_OLD proof for the nonce.
    public var proof: String
    public var policy: String
    /// `USR {trid} SSO S <ticket> <proof>[ {guid}]`: the whole command line, `{trid}` left as a
    /// placeholder when no trid was given.
    public var usr: String
    public var expiresAt: String
    public var expiresIn: Int

    public init(ticket: String, proof: String, policy: String, usr: String, expiresAt: String, expiresIn: Int) {
        self.ticket = ticket
        self.proof = proof
        self.policy = policy
        self.usr = usr
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case ticket, proof, policy, usr
        case expiresAt = "expires_at"
        case expiresIn = "expires_in"
    }

    public var description: String { "SSOResult(<redacted>, policy: \(policy), expires_at: \(expiresAt))" }
}

/// `GET /v1/accounts/{name}/passport14?challenge=C`: a Passport 1.4 ticket for `USR t TWN S`
/// (MSNP8–14). Passport 1.4 states no lifetime (revival servers keep these tickets for seconds),
/// so `expires_in` is always null: use the ticket at once, and ask again for the next login.
public struct Passport14Result: Codable, Sendable, Hashable, CustomStringConvertible {
    public var ticket: String
    public var expiresIn: Int?

    public init(ticket: String) {
        self.ticket = ticket
        self.expiresIn = nil
    }

    enum CodingKeys: String, CodingKey {
        case ticket
        case expiresIn = "expires_in"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ticket, forKey: .ticket)
        try container.encodeNil(forKey: .expiresIn)
    }

    public var description: String { "Passport14Result(<redacted>)" }
}
