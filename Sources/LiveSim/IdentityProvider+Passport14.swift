import Foundation
import NIOHTTP1

/// Passport 1.4, the sign-in of MSNP8-14 (`USR TWN`): the nexus (`/rdr/pprdr.asp`) names the
/// DALogin, and the DALogin (`/login2.srf`) trades a login and password for a ticket.
extension IdentityProvider {
    /// `GET /rdr/pprdr.asp`: 200 with the PassportURLs header. The DALogin is livesim itself, given as
    /// host and path without a scheme, as the real nexus did.
    func passportNexus(_ request: SimRequest) -> SimResponse {
        guard request.method == .GET else { return .text(.methodNotAllowed, "") }
        let header = state.withLock { $0.settings.passportURLsHeader }
        let urls = [
            "DARealm=Passport.Net", "DALogin=\(request.host)/login2.srf",
            "DAReg=http://register.passport.net/uixpwiz.srf", "Properties=https://register.passport.net/editprof.srf",
            "Privacy=http://www.passport.com/consumer/privacypolicy.asp",
            "GeneralRedir=http://nexusrdr.passport.com/redir.asp",
            "Help=http://memberservices.passport.net/memberservice.srf", "ConfigVersion=16",
        ]
        var response = SimResponse.text(.ok, "")
        response.headers.append((header.rawValue, urls.joined(separator: ",")))
        return response
    }

    /// The fields of an `Authorization: Passport1.4 k=v,k=v,...` header, or nil when it is not one.
    static func passport14Fields(_ header: String?) -> [String: String]? {
        guard let header, let space = header.firstIndex(of: " "),
            header[..<space].caseInsensitiveCompare("Passport1.4") == .orderedSame
        else { return nil }
        var fields: [String: String] = [:]
        for pair in header[header.index(after: space)...].split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, fields[name] == nil else { continue }
            fields[name] = parts.count > 1 ? String(parts[1]) : ""
        }
        return fields
    }

    /// `GET /login2.srf` with `Authorization: Passport1.4 OrgVerb=GET,OrgURL=...,sign-in=<login>,pwd=<password>,
    /// <challenge>`: 200 with `Authentication-Info: Passport1.4 da-status=success,...,from-PP='t=...&p=...'`,
    /// or 401 with `WWW-Authenticate: Passport1.4 da-status=failed,...`.
    ///
    /// A request without a readable Passport1.4 Authorization (missing, another scheme, no sign-in
    /// or pwd) is answered with the same 401 challenge: Passport 1.4 is an HTTP authentication
    /// scheme, and the DA asked for credentials it did not get with 401 and WWW-Authenticate rather
    /// than 400. It is counted as `login2_no_credentials`.
    func passportLogin(_ request: SimRequest) -> SimResponse {
        guard request.method == .GET else { return .text(.methodNotAllowed, "") }
        let fields = Self.passport14Fields(request.headers.first(name: "Authorization"))
        guard let fields, let signIn = fields["sign-in"], let password = fields["pwd"], !signIn.isEmpty else {
            state.withLock { $0.counters.loginFailures["login2_no_credentials", default: 0] += 1 }
            return passportFailed(request)
        }
        let login = signIn.removingPercentEncoding ?? signIn
        let pwd = password.removingPercentEncoding ?? password
        let now = Date()
        enum Outcome {
            case failed(String?)
            case rateLimited
            case ok(String, String)
        }
        let outcome = state.withLock { world -> Outcome in
            let key = SimWorld.key(login)
            guard let account = world.accounts[key], account.spec.password == pwd, !account.spec.locked,
                !account.spec.twoFactor
            else {
                world.counters.loginFailures["login2_failed_authentication", default: 0] += 1
                return .failed(world.accounts[key] == nil ? nil : key)
            }
            if account.spec.rateLimited { return .rateLimited }
            let ticket = "t=\(Self.passportTicketPart(200))&p=\(Self.passportTicketPart(150))"
            _ = world.issue(.passportTicket, value: ticket, login: key, now: now)
            world.counters.logins += 1
            return .ok(key, ticket)
        }
        switch outcome {
        case .failed(let key):
            var response = passportFailed(request)
            response.account = key
            return response
        case .rateLimited:
            var response = SimResponse.json(.tooManyRequests, LiveSimText.rateLimitBody)
            response.headers.append(("Retry-After", "300"))
            return response
        case .ok(let key, let ticket):
            var response = SimResponse.text(.ok, "<HTML><HEAD></HEAD><BODY></BODY></HTML>")
            response.headers.append(
                (
                    "Authentication-Info",
                    "Passport1.4 da-status=success,tname=MSPAuth,tname=MSPProf,tname=MSPSec,from-PP='\(ticket)',ru=http://messenger.msn.com"
                ))
            response.account = key
            return response
        }
    }

    private func passportFailed(_ request: SimRequest) -> SimResponse {
        var response = SimResponse.text(.unauthorized, "<HTML><HEAD></HEAD><BODY></BODY></HTML>")
        response.headers.append(
            (
                "WWW-Authenticate",
                "Passport1.4 da-status=failed,srealm=Passport.NET,ts=-3,prompt,cburl=http://www.passport.com/images/passport.gif,cbtxt=Sign%20in%20to%20.NET%20Messenger%20Service"
            ))
        return response
    }

    /// A ticket part in the alphabet real ones used (base64 with `!` and `*`, `$` padding): no commas,
    /// quotes or spaces, so it travels in the header and on the USR line unchanged.
    static func passportTicketPart(_ bytes: Int) -> String {
        TokenFactory.base64URL(bytes).replacingOccurrences(of: "_", with: "!").replacingOccurrences(of: "-", with: "*")
            + "$$"
    }
}
