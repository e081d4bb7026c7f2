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

    /// "enrolled alice (alice@example.com, realm live): active", then the scopes when there are any.
    package static func enrolled(_ account: AccountDetail) -> String {
        var line = "enrolled \(account.name) (\(account.login), realm \(account.realm)): \(account.state)"
        if let reason = account.stateReason { line += " (\(reason))" }
        guard !account.scopes.isEmpty else { return line }
        return line + "\n" + "scopes: " + account.scopes.map(\.alias).joined(separator: ", ")
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
