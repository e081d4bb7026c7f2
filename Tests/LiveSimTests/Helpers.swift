import Foundation
import LiveSim
import NIOHTTP1
import TestSupport

let skypeScope = "service::skype.com::MBI_SSL"
let allScopes = [
    "service::login.skype.com::MBI_SSL", "service::ssl.live.com::MBI_SSL", "service::contacts.msn.com::MBI_SSL",
    "service::m.hotmail.com::MBI_SSL", "service::skype.com::MBI_SSL",
]
let desktop = "https://login.live.com/oauth20_desktop.srf"

func authorizeQuery(
    clientID: String = "00000000480BC46C", scope: String = skypeScope, redirect: String = desktop,
    responseType: String = "token"
) -> String {
    formEncode([("client_id", clientID), ("scope", scope), ("response_type", responseType), ("redirect_uri", redirect)])
}

/// The test's own reading of the login page (livesim and the broker must not share parsers).
struct Page {
    var ppft: String
    var urlPost: String
    var errorText: String
    var mspok: String

    init?(_ response: TestResponse) {
        let body = response.body
        func between(_ start: String, _ end: String, in text: Substring) -> Substring? {
            guard let s = text.range(of: start) else { return nil }
            let rest = text[s.upperBound...]
            guard let e = rest.range(of: end) else { return nil }
            return rest[..<e.lowerBound]
        }
        let value = between("value=\"", "\"", in: body[...]) ?? between("value=\\\"", "\\\"", in: body[...])
        guard let value, let post = between("urlPost:'", "'", in: body[...]),
            let err = between("sErrTxt:'", "',sRemote", in: body[...])
        else { return nil }
        ppft = String(value)
        urlPost = String(post)
        errorText = String(err)
        mspok = response.setCookies["MSPOK"] ?? ""
    }
}

extension LiveSimFixture {
    func loginPage(host: String = "127.0.0.1", query: String = authorizeQuery()) async throws -> (TestResponse, Page?) {
        let response = try await request(.GET, base(host: host) + "/oauth20_authorize.srf?" + query)
        return (response, Page(response))
    }

    func postPassword(_ page: Page, login: String, password: String, field: String = "passwd", mspok: String? = nil)
        async throws -> TestResponse
    {
        try await request(
            .POST, page.urlPost, headers: [("Cookie", "MSPOK=\(mspok ?? page.mspok)")],
            body: formEncode([("login", login), (field, password), ("PPFT", page.ppft), ("type", "11")]))
    }

    /// A complete password sign-in: the fragment's fields and the session cookies.
    func passwordLogin(_ account: AccountSpec = TestAccounts.alice) async throws -> (
        fragment: [String: String], cookies: [String: String]
    ) {
        let (_, page) = try await loginPage()
        let response = try await postPassword(page!, login: account.login, password: account.password)
        let location = response.header("Location") ?? ""
        let fragment = location.split(separator: "#", maxSplits: 1).last.map(String.init) ?? ""
        return (formDecode(fragment), response.setCookies)
    }

    func refresh(_ refreshToken: String, scope: String = skypeScope, clientID: String = "00000000480BC46C") async throws
        -> TestResponse
    {
        try await request(
            .POST, "/oauth20_token.srf",
            body: formEncode([
                ("client_id", clientID), ("scope", scope), ("grant_type", "refresh_token"),
                ("refresh_token", refreshToken),
            ]))
    }
}

func cookieHeader(_ cookies: [String: String]) -> String {
    ["MSPAuth", "MSPProf", "WLSSC"].compactMap { name in cookies[name].map { "\(name)=\($0)" } }.joined(separator: "; ")
}
