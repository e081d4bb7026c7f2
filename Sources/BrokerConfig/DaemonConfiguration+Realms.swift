import BrokerCore
import TOMLKit

/// One `[realms.NAME]` table. `sign_in = "rst"` takes `rst_url` (required), `nexus_url`,
/// `passport14_url` and `rst_sites`, and refuses the OAuth-only keys by name; an `rst` realm's
/// origins are only its own URLs, with no Microsoft defaults.
extension DaemonConfiguration {
    static func readRealm(_ name: String, _ r: TableReader) throws(ConfigProblem) -> Realm {
        let signInText = try r.string("sign_in") ?? SignInKind.oauth.rawValue
        guard let signIn = SignInKind(rawValue: signInText) else {
            throw r.problem("sign_in", "expected \"oauth\" or \"rst\", got \"\(signInText)\"")
        }
        for key in ConfigSchema.realm.keys where !key.signIn.contains(signIn) && r.has(key.name) {
            switch (signIn, key.name) {
            case (.rst, "skylogin_servers"), (.rst, "skylogin_keys"):
                throw r.problem(
                    key.name, "an rst realm keeps RST tickets only; name SkyLogin servers in an OAuth realm")
            case (.rst, _):
                throw r.problem(key.name, "an OAuth key, and this realm signs in with rst (sign_in = \"rst\")")
            case (.oauth, _):
                throw r.problem(key.name, "only for realms with sign_in = \"rst\"")
            }
        }
        let allowHTTP = try r.bool("allow_insecure_http") ?? false
        /// A base URL: absolute http(s), and https unless the realm allows http.
        func url(_ key: String) throws(ConfigProblem) -> String? {
            guard let text = try r.string(key) else { return nil }
            guard let origin = Realm.origin(of: text) else {
                throw r.problem(
                    key, "expected an absolute http(s) URL, like \"https://login.example\", got \"\(text)\"")
            }
            if origin.hasPrefix("http://") && !allowHTTP {
                throw r.problem(key, "\"\(text)\" uses http://, which needs allow_insecure_http = true")
            }
            return text
        }
        let caFile = try r.string("ca_file")
        let realm: Realm
        switch signIn {
        case .oauth:
            let servers: [String] =
                try r.array("skylogin_servers") { value, path throws(ConfigProblem) in
                    guard let server = value.string, Realm.hostAndPort(server) != nil else {
                        throw ConfigProblem(
                            path: path,
                            message: "expected host:port (a port 1-65535; an IPv6 address in brackets), got "
                                + TableReader.shown(value))
                    }
                    return server
                } ?? []
            let keys = try r.string("skylogin_keys")
            if keys != nil && servers.isEmpty { throw r.problem("skylogin_keys", "needs skylogin_servers") }
            let login = try url("login_url") ?? "https://login.live.com"
            realm = Realm(
                name: name, loginBase: login, tokenBase: try url("token_url") ?? login,
                rstBase: try url("rst_url") ?? login,
                userInitializationBase: try url("user_initialization_url") ?? "https://skypewebexperience.live.com",
                skypetokenBase: try url("skypetoken_url") ?? "https://api.skype.com",
                clientID: try r.string("client_id") ?? messengerClientID,
                redirectURI: try r.string("redirect_uri") ?? defaultDesktopRedirect, caFile: caFile,
                allowInsecureHTTP: allowHTTP, skyloginServers: servers, skyloginKeysFile: keys)
        case .rst:
            guard let rst = try url("rst_url") else { throw r.problem("rst_url", "required when sign_in = \"rst\"") }
            realm = Realm(
                name: name, signIn: .rst, loginBase: rst, tokenBase: rst, rstBase: rst, userInitializationBase: rst,
                skypetokenBase: rst, caFile: caFile, allowInsecureHTTP: allowHTTP, nexusBase: try url("nexus_url"),
                passport14Base: try url("passport14_url"), rstSites: try sites(r) ?? RSTSite.messengerDefaults)
        }
        do throws(BrokerError) { try realm.validate() } catch {
            throw ConfigProblem(path: r.path, message: error.message)
        }
        return realm
    }

    /// `rst_sites`: at least one site with a compact ticket, no address twice.
    static func sites(_ r: TableReader) throws(ConfigProblem) -> [RSTSite]? {
        let example = "a table like { address = \"contacts.msn.com\", policy = \"MBI\" }"
        guard let entries = try r.tables("rst_sites", schema: ConfigSchema.rstSite, example: example) else {
            return nil
        }
        var sites: [RSTSite] = []
        for entry in entries {
            let address = try entry.string("address") ?? ""
            guard !address.allSatisfy(\.isWhitespace) else { throw entry.problem("address", "must not be empty") }
            guard !sites.contains(where: { $0.address.lowercased() == address.lowercased() }) else {
                throw entry.problem("address", "\"\(address)\" is listed twice")
            }
            sites.append(RSTSite(address: address, policy: try entry.string("policy") ?? ""))
        }
        guard sites.contains(where: \.keepsTicket) else {
            throw r.problem(
                "rst_sites", "names no site with a compact ticket (every site but http://Passport.NET/tb has one)")
        }
        return sites
    }
}
