/// The `<user>` payloads of `ATH n CON\USER`, rendered compact as clients send them.
package enum ATHMethod: String, Sendable, CaseIterable {
    /// `<user><web-compact-ticket /></user>`, for the HTTPS gateway with the session cookies.
    case webCompactTicket = "web-compact-ticket"
    /// `<ssl-compact-ticket>` with `<ssl-site-name>`.
    case sslCompactTicket = "ssl-compact-ticket"
    /// `<ssl-compact-ticket>` with the UIC and `<ssl-site-name>`.
    case sslCompactTicketUIC = "ssl-compact-ticket-uic"
    /// A Microsoft account through SkyLogin: `<ssl-compact-ticket>`, the base64 of its SkyLogin
    /// credentials as `<uic>`, the login as `<id>` and the Skype name as `<alias>`.
    case sslCompactTicketSkylogin = "ssl-compact-ticket-skylogin"
    /// A Skype name: `<uic>` signed over the CNT nonce, and the Skype name as `<id>`.
    case skypeUIC = "skype-uic"

    /// What the method needs besides the payload itself.
    package var needsTicket: Bool { self != .webCompactTicket && self != .skypeUIC }
    package var needsUIC: Bool { self == .sslCompactTicketUIC }
}

/// A rendered ATH: the body, the MSNP payload length, and the whole command.
package struct ATHPayload: Sendable, Equatable {
    package var body: String
    /// Header block (empty) + blank line + body, in bytes: 2 + the body's UTF-8 length.
    package var length: Int
    package var wire: String

    /// The TrID stands here in `wire` when the caller gave none.
    package static let tridPlaceholder = "{trid}"
    package static let defaultSite = "chatservice.live.com"

    package static func render(
        method: ATHMethod, ticket: String? = nil, uic: String? = nil, site: String = defaultSite, trid: Int? = nil,
        id: String? = nil, alias: String? = nil
    ) -> ATHPayload {
        var body = "<user>"
        switch method {
        case .webCompactTicket:
            body += "<web-compact-ticket />"
        case .sslCompactTicket:
            body += element("ssl-compact-ticket", ticket ?? "") + element("ssl-site-name", site)
        case .sslCompactTicketUIC:
            body +=
                element("ssl-compact-ticket", ticket ?? "") + element("uic", uic ?? "") + element("ssl-site-name", site)
        case .sslCompactTicketSkylogin:
            body +=
                element("ssl-compact-ticket", ticket ?? "") + element("uic", uic ?? "") + element("id", id ?? "")
                + element("alias", alias ?? "")
        case .skypeUIC:
            body += element("uic", uic ?? "") + element("id", id ?? "")
        }
        body += "</user>"
        let length = 2 + body.utf8.count
        let wire = "ATH \(trid.map(String.init) ?? tridPlaceholder) CON\\USER \(length)\r\n\r\n\(body)"
        return ATHPayload(body: body, length: length, wire: wire)
    }

    static func element(_ name: String, _ value: String) -> String { "<\(name)>\(xmlEscape(value))</\(name)>" }
}
