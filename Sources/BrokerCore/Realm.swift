#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One identity provider: the Microsoft hosts by default, or a revival or private server.
package struct Realm: Sendable, Equatable {
    package var name: String
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

    package init(
        name: String, loginBase: String = "https://login.live.com", tokenBase: String? = nil, rstBase: String? = nil,
        userInitializationBase: String = "https://skypewebexperience.live.com",
        skypetokenBase: String = "https://api.skype.com",
        clientID: String = messengerClientID, redirectURI: String = defaultDesktopRedirect, caFile: String? = nil,
        allowInsecureHTTP: Bool = false
    ) {
        self.name = name
        self.loginBase = Self.trimmed(loginBase)
        self.tokenBase = Self.trimmed(tokenBase ?? loginBase)
        self.rstBase = Self.trimmed(rstBase ?? loginBase)
        self.userInitializationBase = Self.trimmed(userInitializationBase)
        self.skypetokenBase = Self.trimmed(skypetokenBase)
        self.clientID = clientID
        self.redirectURI = redirectURI
        self.caFile = caFile
        self.allowInsecureHTTP = allowInsecureHTTP
    }

    static func trimmed(_ base: String) -> String {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        return base
    }

    package var authorizeEndpoint: String { loginBase + "/oauth20_authorize.srf" }
    package var tokenEndpoint: String { tokenBase + "/oauth20_token.srf" }
    package var rstEndpoint: String { rstBase + "/RST.srf" }
    package var userInitializationEndpoint: String { userInitializationBase + "/v1/User/Initialization" }
    package var skypetokenEndpoint: String { skypetokenBase + "/rps/skypetoken" }

    /// `scheme://host[:port]`, lowercased, for every configured service.
    package var origins: Set<String> {
        Set([loginBase, tokenBase, rstBase, userInitializationBase, skypetokenBase].compactMap(Self.origin(of:)))
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
        for (key, base) in [
            ("login_url", loginBase), ("token_url", tokenBase), ("rst_url", rstBase),
            ("user_initialization_url", userInitializationBase), ("skypetoken_url", skypetokenBase),
        ] {
            guard let origin = Self.origin(of: base) else {
                throw BrokerError(.badRequest, "realm \(name): \(key) is not an absolute http(s) URL")
            }
            if origin.hasPrefix("http://") && !allowInsecureHTTP {
                throw BrokerError(
                    .badRequest, "realm \(name): \(key) uses http://, which needs allow_insecure_http = true")
            }
        }
        if name.isEmpty { throw BrokerError(.badRequest, "a realm needs a name") }
    }
}
