import BrokerAPI

/// What `tokenctl login`, `import` and `logout` decide and print, apart from talking to the daemon.
package enum Enrollment {
    /// The realm named by --realm, else the daemon's default realm (else its first).
    package static func chooseRealm(named name: String?, from realms: [RealmInfo]) throws(Failure) -> RealmInfo {
        if let name {
            guard let match = realms.first(where: { $0.name == name }) else {
                throw Failure(
                    "the daemon has no realm \(name)",
                    hint: "Its realms: \(realms.map(\.name).joined(separator: ", "))", exitStatus: ExitStatus.usage)
            }
            return match
        }
        guard let match = realms.first(where: \.isDefault) ?? realms.first else {
            throw Failure("the daemon has no realm configured")
        }
        return match
    }

    /// The realm a password enrollment goes to, to tell beforehand what happens there: the one
    /// named by --realm (which must exist), else the daemon's default realm; nil when there is
    /// no default (the daemon then answers the enrollment itself).
    package static func passwordRealm(named name: String?, from realms: [RealmInfo]) throws(Failure) -> RealmInfo? {
        guard let name else { return realms.first(where: \.isDefault) }
        return try chooseRealm(named: name, from: realms)
    }

    /// "enrolled alice (alice@example.com, realm live): active", then the scopes (the sites, for
    /// an account of an rst realm) when there are any.
    package static func enrolled(_ account: AccountDetail) -> String {
        var line = "enrolled \(account.name) (\(account.login), realm \(account.realm)): \(account.state)"
        if let reason = account.stateReason { line += " (\(reason))" }
        guard !account.scopes.isEmpty else { return line }
        let label = account.hasSites ? "sites: " : "scopes: "
        return line + "\n" + label + account.scopes.map(\.alias).joined(separator: ", ")
    }

    /// `RealmInfo.signIn` of a realm whose accounts sign in at RST.srf (revival servers).
    package static let rstSignIn = "rst"

    /// On standard error before a password enrollment in an rst realm: the password is kept
    /// whether or not --store-password was given.
    package static func rstPasswordNote(_ realm: RealmInfo) -> String {
        "realm \(realm.name) signs in with rst (RST.srf): the password is stored (sealed), "
            + "as renewing RST tickets needs it"
    }

    /// --ticket-method chooses between OAuth and RST.srf tickets, which an rst realm does not.
    package static func ticketMethodInRSTRealm(_ realm: RealmInfo) -> Failure {
        Failure(
            "realm \(realm.name) signs in with rst: its tickets all come from RST.srf, so --ticket-method does not apply",
            hint: "Leave out --ticket-method.", exitStatus: ExitStatus.usage)
    }

    /// What a browser sign-in asks of the person, on standard error.
    package static func browserInstructions(login: String, authorizeURL: String, cookies: Bool) -> String {
        let redirect = redirectPrefix(of: authorizeURL)
        var instructions = """
            To enroll \(login), open this address in a browser and sign in:

              \(authorizeURL)

            The browser ends on a blank page. Copy its address (it starts with
            \(redirect)), paste it here and press Enter.

            """
        if cookies {
            instructions += "Then paste the cookies line (MSPAuth=...; MSPProf=...; WLSSC=...) and press Enter.\n"
        }
        return instructions + "\n"
    }

    /// The `redirect_uri` of an authorize address (where the browser ends), else the
    /// desktop redirect of login.live.com.
    package static func redirectPrefix(of authorizeURL: String) -> String {
        let query = authorizeURL.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == "redirect_uri", let value = percentDecoded(parts[1]), !value.isEmpty {
                return value
            }
        }
        return "https://login.live.com/oauth20_desktop.srf"
    }

    private static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    /// `tokenctl logout`.
    package static func loggedOut(_ answer: DeleteResponse) -> String {
        "logged out \(answer.deleted): its tokens, refresh token and password are forgotten"
    }
}
