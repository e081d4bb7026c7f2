import BrokerCore
import Foundation

/// Passport 1.4 (the `USR t TWN` login of MSNP8–14): the nexus names the login server
/// (`PassportURLs: DALogin=...`), and one `GET` there with the password in the `Authorization`
/// header answers the ticket in `Authentication-Info`.
package enum Passport14 {
    /// The header a nexus answers `GET /rdr/pprdr.asp` with. Header names are case-insensitive:
    /// Escargot sends `Passporturls`.
    package static let passportURLsHeader = "PassportURLs"

    /// The DALogin URL from a `PassportURLs` value (`DARealm=...,DALogin=host/path,...`), with
    /// `https://` added when the server sent none.
    package static func daLogin(passportURLs value: String) -> String? {
        for field in value.split(separator: ",") {
            let pair = field.trimmingCharacters(in: .whitespaces)
            guard let eq = pair.firstIndex(of: "="), pair[..<eq].lowercased() == "dalogin" else { continue }
            let url = pair[pair.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            guard !url.isEmpty else { return nil }
            let lower = url.lowercased()
            return lower.hasPrefix("https://") || lower.hasPrefix("http://") ? url : "https://" + url
        }
        return nil
    }

    /// `Passport1.4 OrgVerb=GET,OrgURL=...,sign-in=<login>,pwd=<password>,<challenge>`, with
    /// login and password URL-encoded and the challenge string as the server sent it. A challenge
    /// with a field of its own named like one of ours (servers keep the last of each: it would
    /// replace the login or the password) is refused.
    package static func authorization(login: String, password: Secret, challenge: String) throws(BrokerError)
        -> Secret
    {
        try check(challenge: challenge)
        return Secret(
            "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=\(encode(login)),"
                + "pwd=\(encode(password.exposed)),\(challenge)")
    }

    /// Fields the client writes itself; a challenge may not carry them.
    static let reservedFields: Set<String> = ["orgverb", "orgurl", "sign-in", "pwd"]

    /// A challenge string: printable ASCII without spaces, none of the client's own fields.
    package static func check(challenge: String) throws(BrokerError) {
        guard !challenge.isEmpty, challenge.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            throw BrokerError(.badRequest, "the challenge must be printable ASCII without spaces")
        }
        for field in challenge.split(separator: ",") {
            let name = field.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            let decoded = (name.removingPercentEncoding ?? name).trimmingCharacters(in: .whitespaces).lowercased()
            if reservedFields.contains(decoded) {
                throw BrokerError(.badRequest, "the challenge may not carry a \(decoded) field")
            }
        }
    }

    /// Everything but unreserved characters, percent-encoded (so `,` and `=` cannot end a field).
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// The ticket between the quotes after `from-PP=` in `Authentication-Info: Passport1.4
    /// da-status=success,...,from-PP='<ticket>',...`; nil unless the status is success.
    package static func ticket(authenticationInfo value: String) -> String? {
        guard fields(value)["da-status"]?.lowercased() == "success" else { return nil }
        guard let start = value.range(of: "from-PP='", options: .caseInsensitive) else { return nil }
        let rest = value[start.upperBound...]
        guard let end = rest.firstIndex(of: "'") else { return nil }
        let ticket = String(rest[..<end])
        return ticket.isEmpty ? nil : ticket
    }

    /// `da-status` of a `WWW-Authenticate: Passport1.4 da-status=failed,...` header.
    package static func status(wwwAuthenticate value: String) -> String? { fields(value)["da-status"] }

    /// The `name=value` fields of a `Passport1.4 ...` header, names lowercased.
    static func fields(_ value: String) -> [String: String] {
        var text = Substring(value.trimmingCharacters(in: .whitespaces))
        if text.lowercased().hasPrefix("passport1.4") { text = text.dropFirst("passport1.4".count) }
        var result: [String: String] = [:]
        for field in text.split(separator: ",") {
            let pair = field.trimmingCharacters(in: .whitespaces)
            guard let eq = pair.firstIndex(of: "=") else { continue }
            let name = pair[..<eq].lowercased()
            if result[name] == nil { result[name] = String(pair[pair.index(after: eq)...]) }
        }
        return result
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
