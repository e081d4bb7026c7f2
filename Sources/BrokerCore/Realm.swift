#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How the accounts of a realm sign in.
package enum SignInKind: String, Sendable, Equatable, CaseIterable {
    /// The Microsoft account flows: the OAuth authorize page, post.srf and the token endpoint.
    case oauth
    /// RST.srf with the password, as revival servers (Escargot) serve it: compact tickets for
    /// the configured sites, the BinarySecret of the SSO proof, and Passport 1.4 on demand.
    case rst
}

/// One identity provider: the Microsoft hosts by default, or a revival or private server.
package struct Realm: Sendable, Equatable {
    package var name: String
    package var signIn: SignInKind
    /// Base URLs (scheme, host, optional port) of each service.
    package var loginBase: String
    package var tokenBase: String
    package var rstBase: String
    package var userInitializationBase: String
    package var skypetokenBase: String
    package var clientID: String
    package var redirectURI: String
    /// A PEM file of CA certificates to trust in addition to the system's.
    package var caFile: String?
    package var allowInsecureHTTP: Bool
    /// An `rst` realm's nexus (`/rdr/pprdr.asp` names the Passport 1.4 DALogin).
    package var nexusBase: String
    /// Where an `rst` realm's DALogin lives, when not on the nexus's origin.
    package var passport14Base: String?
    /// The sites an `rst` realm asks RST.srf for; those with a compact ticket are kept fresh.
    package var rstSites: [RSTSite]
    /// SkyLogin login servers (`host:port`), tried in order; empty: the realm has none.
    package var skyloginServers: [String]
    /// A JSON file with the session-key modulus and the trusted signer keys by key index; nil:
    /// Skype's own keys.
    package var skyloginKeysFile: String?

    package init(
        name: String, signIn: SignInKind = .oauth, loginBase: String = "https://login.live.com",
        tokenBase: String? = nil, rstBase: String? = nil,
        userInitializationBase: String = "https://skypewebexperience.live.com",
        skypetokenBase: String = "https://api.skype.com",
        clientID: String = messengerClientID, redirectURI: String = defaultDesktopRedirect, caFile: String? = nil,
        allowInsecureHTTP: Bool = false, nexusBase: String? = nil, passport14Base: String? = nil,
        rstSites: [RSTSite] = RSTSite.messengerDefaults, skyloginServers: [String] = [], skyloginKeysFile: String? = nil
    ) {
        self.skyloginServers = skyloginServers
        self.skyloginKeysFile = skyloginKeysFile
        self.name = name
        self.signIn = signIn
        self.loginBase = Self.trimmed(loginBase)
        self.tokenBase = Self.trimmed(tokenBase ?? loginBase)
        self.rstBase = Self.trimmed(rstBase ?? loginBase)
        self.userInitializationBase = Self.trimmed(userInitializationBase)
        self.skypetokenBase = Self.trimmed(skypetokenBase)
        self.clientID = clientID
        self.redirectURI = redirectURI
        self.caFile = caFile
        self.allowInsecureHTTP = allowInsecureHTTP
        // The nexus defaults to the origin of rst_url (which may name a .srf page).
        let rst = Self.trimmed(rstBase ?? loginBase)
        self.nexusBase = Self.trimmed(
            nexusBase ?? (rst.lowercased().hasSuffix(".srf") ? Self.origin(of: rst) ?? rst : rst))
        self.passport14Base = passport14Base.map(Self.trimmed)
        self.rstSites = rstSites
    }

    static func trimmed(_ base: String) -> String {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    package var authorizeEndpoint: String { loginBase + "/oauth20_authorize.srf" }
    package var tokenEndpoint: String { tokenBase + "/oauth20_token.srf" }
    /// `rst_url` + `/RST.srf`, or `rst_url` itself when it already names a `.srf` page (RST2.srf).
    package var rstEndpoint: String { rstBase.lowercased().hasSuffix(".srf") ? rstBase : rstBase + "/RST.srf" }
    /// `nexus_url` + `/rdr/pprdr.asp`, or `nexus_url` itself when it names an `.asp` page.
    package var nexusEndpoint: String {
        nexusBase.lowercased().hasSuffix(".asp") ? nexusBase : nexusBase + "/rdr/pprdr.asp"
    }
    package var userInitializationEndpoint: String { userInitializationBase + "/v1/User/Initialization" }
    package var skypetokenEndpoint: String { skypetokenBase + "/rps/skypetoken" }

    /// `scheme://host[:port]`, lowercased, for every configured service.
    /// An `rst` realm's are only its RST.srf, nexus and Passport 1.4 URLs.
    package var origins: Set<String> {
        switch signIn {
        case .oauth:
            Set([loginBase, tokenBase, rstBase, userInitializationBase, skypetokenBase].compactMap(Self.origin(of:)))
        case .rst:
            Set(([rstBase, nexusBase] + (passport14Base.map { [$0] } ?? [])).compactMap(Self.origin(of:)))
        }
    }

    /// The sites whose tickets an `rst` realm keeps fresh (all but `http://Passport.NET/tb`).
    package var keptSites: [RSTSite] { signIn == .rst ? rstSites.filter(\.keepsTicket) : [] }

    /// The kept site that answers for a proof policy (`MBI_KEY_OLD` by default), ignoring case.
    package func ssoSite(policy: String) -> RSTSite? {
        keptSites.first { $0.policy.lowercased() == policy.lowercased() }
    }

    /// `host:port` (a bracketed IPv6 address, or a name or IPv4 address) with a port 1-65535.
    /// The port is 1-5 digits without a sign or a leading zero; an IPv6 address must be bracketed.
    package static func hostAndPort(_ server: String) -> (host: String, port: Int)? {
        guard let colon = server.lastIndex(of: ":") else { return nil }
        let digits = server[server.index(after: colon)...]
        guard (1...5).contains(digits.count), digits.allSatisfy({ ("0"..."9").contains($0) }), digits.first != "0",
            let port = Int(digits), (1...65535).contains(port)
        else { return nil }
        var host = server[..<colon]
        if host.hasPrefix("[") || host.hasSuffix("]") {
            guard host.hasPrefix("["), host.hasSuffix("]"), host.count > 2 else { return nil }
            host = host.dropFirst().dropLast()
            guard host.contains(":") else { return nil }
        } else if host.contains(":") {
            return nil
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "/" && $0 != "[" && $0 != "]" })
        else { return nil }
        return (String(host), port)
    }

    /// The origin of a URL, or nil when it is not an absolute http(s) URL.
    package static func origin(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "https" || scheme == "http", let host = components.host?.lowercased(), !host.isEmpty
        else { return nil }
        let defaultPort = scheme == "https" ? 443 : 80
        let port = components.port.map { $0 == defaultPort ? "" : ":\($0)" } ?? ""
        let shownHost = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(scheme)://\(shownHost)\(port)"
    }

    /// Sign-in follows a URL the server sent only to the realm's own origins, and only over HTTPS
    /// unless the realm allows plain HTTP.
    package func mayFollow(_ url: String) -> Bool {
        guard let origin = Self.origin(of: url), origins.contains(origin) else { return false }
        return origin.hasPrefix("https://") || allowInsecureHTTP
    }

    /// Checks the configured URLs: absolute, and https unless plain HTTP is allowed.
    package func validate() throws(BrokerError) {
        let urls: [(String, String)] =
            switch signIn {
            case .oauth:
                [
                    ("login_url", loginBase), ("token_url", tokenBase), ("rst_url", rstBase),
                    ("user_initialization_url", userInitializationBase), ("skypetoken_url", skypetokenBase),
                ]
            case .rst:
                [("rst_url", rstBase), ("nexus_url", nexusBase)]
                    + (passport14Base.map { [("passport14_url", $0)] } ?? [])
            }
        for (key, base) in urls {
            guard let origin = Self.origin(of: base) else {
                throw BrokerError(.badRequest, "realm \(name): \(key) is not an absolute http(s) URL")
            }
            if origin.hasPrefix("http://") && !allowInsecureHTTP {
                throw BrokerError(
                    .badRequest, "realm \(name): \(key) uses http://, which needs allow_insecure_http = true")
            }
        }
        if name.isEmpty { throw BrokerError(.badRequest, "a realm needs a name") }
        for server in skyloginServers where Self.hostAndPort(server) == nil {
            throw BrokerError(.badRequest, "realm \(name): skylogin_servers: \"\(server)\" is not host:port")
        }
        if signIn == .rst {
            guard !keptSites.isEmpty else {
                throw BrokerError(.badRequest, "realm \(name): rst_sites names no site with a compact ticket")
            }
            for site in rstSites where site.address.allSatisfy(\.isWhitespace) {
                throw BrokerError(.badRequest, "realm \(name): an rst_sites entry has an empty address")
            }
            let addresses = rstSites.map { $0.address.lowercased() }
            guard Set(addresses).count == addresses.count else {
                throw BrokerError(.badRequest, "realm \(name): rst_sites names a site twice")
            }
        }
    }
}
