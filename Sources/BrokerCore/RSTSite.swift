/// One site to ask RST.srf for a ticket: `wsa:Address` and the `wsse:PolicyReference` URI.
package struct RSTSite: Sendable, Hashable {
    package var address: String
    /// Empty for sites requested without a policy (such as `http://Passport.NET/tb`).
    package var policy: String

    package init(address: String, policy: String) {
        self.address = address
        self.policy = policy
    }

    /// The ticket for `ATH CON\USER` with `<ssl-site-name>chatservice.live.com</ssl-site-name>`.
    package static let chatService = RSTSite(address: "chatservice.live.com", policy: "MBI_SSL")

    /// The legacy Passport token: an encrypted blob with a BinarySecret of its own, not a compact
    /// ticket. Requested first, as every client did, and never kept or served.
    package static let passportTB = RSTSite(address: "http://Passport.NET/tb", policy: "")

    /// The site whose ticket and BinarySecret make the `USR SSO S` proof.
    package static let messengerClear = RSTSite(address: "messengerclear.live.com", policy: "MBI_KEY_OLD")

    /// What WLM 2009 asked for at sign-in, and the default `rst_sites` of an `rst` realm.
    package static let messengerDefaults: [RSTSite] = [
        passportTB,
        messengerClear,
        RSTSite(address: "messenger.msn.com", policy: "?id=507"),
        RSTSite(address: "contacts.msn.com", policy: "MBI"),
        RSTSite(address: "messengersecure.live.com", policy: "MBI_SSL"),
        RSTSite(address: "storage.msn.com", policy: "MBI"),
    ]

    /// Whether the answer for this site is a compact ticket the broker keeps and serves.
    package var keepsTicket: Bool { key != Self.passportTB.key }

    /// The address lowercased: how the site's ticket is filed (`CredentialKind.site`), stored and
    /// asked for (`ticket?site=`). Host names are case-insensitive.
    package var key: String { address.lowercased() }
}
