import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

@Suite("Sign-in: oauth20_authorize.srf and post.srf")
struct SignInTests {
    @Test("a full password login works with both page styles", arguments: PageStyle.allCases)
    func passwordLogin(style: PageStyle) async throws {
        try await withLiveSim({ $0.pageStyle = style }) { sim in
            let (page, parsed) = try await sim.loginPage()
            #expect(page.status == 200)
            #expect(page.body.contains("sErrTxt:''"))
            #expect(page.setCookies["MSPRequ"] != nil && page.setCookies["MSPOK"] != nil)
            if style == .classic {
                #expect(page.body.contains(#"sFTTag:'<input type="hidden" name="PPFT" id="i0327" value=""#))
            } else {
                #expect(page.body.contains(#"sFTTag:"<input type=\"hidden\" name=\"PPFT\" id=\"i0327\" value=\""#))
            }
            let form = try #require(parsed)
            let response = try await sim.postPassword(form, login: "alice@example.com", password: "correct horse")
            #expect(response.status == 302)
            let location = try #require(response.header("Location"))
            #expect(location.hasPrefix("https://login.live.com/oauth20_desktop.srf?lc=1033#access_token="))
            let fields = formDecode(String(location.split(separator: "#")[1]))
            #expect(fields["token_type"] == "bearer")
            #expect(fields["expires_in"] == "86400")
            #expect(fields["scope"] == skypeScope)
            #expect(fields["user_id"]?.count == 16)
            let access = try #require(fields["access_token"])
            #expect((700...1_600).contains(access.utf8.count))
            for name in ["MSPAuth", "MSPProf", "WLSSC"] { #expect(response.setCookies[name] != nil) }
            let validation = try await sim.validate(access)
            #expect(validation["valid"] as? Bool == true)
            #expect(validation["kind"] as? String == "access_token")
            #expect(validation["account"] as? String == "alice@example.com")
            let refresh = try await sim.refresh(try #require(fields["refresh_token"]))
            #expect(refresh.status == 200)
        }
    }

    @Test("the password is also accepted in a field named password, as the seed says")
    func passwordField() async throws {
        try await withLiveSim { sim in
            let (_, page) = try await sim.loginPage()
            let response = try await sim.postPassword(
                page!, login: "alice@example.com", password: "correct horse", field: "password")
            #expect(response.status == 302)
        }
    }

    @Test("every URL is built from the request's Host")
    func urlsFromHost() async throws {
        try await withLiveSim { sim in
            let (_, viaName) = try await sim.loginPage(host: "localhost")
            #expect(
                viaName?.urlPost.hasPrefix("https://localhost:\(sim.server.port)/ppsecure/post.srf?client_id=") == true)
            let (_, viaIP) = try await sim.loginPage(host: "127.0.0.1")
            #expect(viaIP?.urlPost.hasPrefix("https://127.0.0.1:\(sim.server.port)/ppsecure/post.srf?") == true)
        }
    }

    @Test("a PPFT works once; reuse and a missing MSPOK are refused")
    func ppftSingleUse() async throws {
        try await withLiveSim { sim in
            let (_, page) = try await sim.loginPage()
            let form = try #require(page)
            let wrong = try await sim.postPassword(form, login: "alice@example.com", password: "nope")
            #expect(wrong.status == 200)
            let reused = try await sim.postPassword(form, login: "alice@example.com", password: "correct horse")
            #expect(reused.status == 200)
            #expect(reused.header("Location") == nil)
            #expect(
                Page(reused)?.errorText
                    == "Your session has timed out. To sign in again, please refresh the page and try again.")
            let (_, second) = try await sim.loginPage()
            let noCookie = try await sim.postPassword(
                try #require(second), login: "alice@example.com", password: "correct horse", mspok: "forged")
            #expect(noCookie.status == 200 && noCookie.header("Location") == nil)
            #expect(
                try await sim.counters()["login_failures"] as? [String: Int] == ["wrong_password": 1, "bad_ppft": 2])
        }
    }

    @Test("a wrong password gets a JavaScript-escaped sErrTxt")
    func wrongPassword() async throws {
        try await withLiveSim { sim in
            let (_, page) = try await sim.loginPage()
            let response = try await sim.postPassword(page!, login: "alice@example.com", password: "wrong")
            #expect(response.status == 200)
            #expect(response.header("Location") == nil)
            #expect(
                response.body.contains(
                    #"sErrTxt:'Your account or password is incorrect. If you don\'t remember your password, reset it now.'"#
                ))
            #expect(LiveSimText.wrongPassword.contains("don't"))
            let unknown = try await sim.postPassword(Page(response)!, login: "nobody@example.com", password: "x")
            #expect(
                Page(unknown)?.errorText
                    == #"That Microsoft account doesn\'t exist. Enter a different account or get a new one."#)
        }
    }

    @Test("a two-factor account gets a proofs page: no redirect and no sErrTxt")
    func twoFactor() async throws {
        try await withLiveSim { sim in
            let (_, page) = try await sim.loginPage()
            let response = try await sim.postPassword(page!, login: "bob@example.com", password: "pw-bob")
            #expect(response.status == 200)
            #expect(response.header("Location") == nil)
            #expect(!response.body.contains("sErrTxt"))
            #expect(response.body.contains(#"id="fmHF""#))
        }
    }

    @Test("a locked account is redirected to the Abuse page")
    func locked() async throws {
        try await withLiveSim { sim in
            let (_, page) = try await sim.loginPage()
            let response = try await sim.postPassword(page!, login: "carol@example.com", password: "pw-carol")
            #expect(response.status == 302)
            let location = try #require(response.header("Location"))
            #expect(location.hasPrefix("https://127.0.0.1:\(sim.server.port)/Abuse?"))
            #expect(try await sim.request(.GET, location).body.contains("locked"))
        }
    }

    @Test("a rate-limited account gets 429 with the real body")
    func rateLimited() async throws {
        try await withLiveSim { sim in
            let (_, page) = try await sim.loginPage()
            let response = try await sim.postPassword(page!, login: "dave@example.com", password: "pw-dave")
            #expect(response.status == 429)
            #expect(response.body == #"{"errorCode":803,"message":"Login Rate limit exceeded"}"#)
        }
    }

    @Test("authorize checks redirect_uri, client_id, scope and response_type")
    func authorizeChecks() async throws {
        try await withLiveSim { sim in
            let badRedirect = try await sim.request(
                .GET, "/oauth20_authorize.srf?" + authorizeQuery(redirect: "https://example.com/cb"))
            #expect(badRedirect.status == 302)
            let fragment = formDecode(String(try #require(badRedirect.header("Location")).split(separator: "#")[1]))
            #expect(fragment["error"] == "invalid_request")
            #expect(fragment["error_description"] == LiveSimText.badRedirectURI)
            #expect(
                LiveSimText.badRedirectURI.hasPrefix(
                    "The provided value for the input parameter redirect_uri is not valid."))

            for (query, error) in [
                (authorizeQuery(clientID: "0000000012345678"), "unauthorized_client"),
                (authorizeQuery(scope: "service::example.com::MBI_SSL"), "invalid_scope"),
                (authorizeQuery(responseType: "code"), "unsupported_response_type"),
            ] {
                let response = try await sim.request(.GET, "/oauth20_authorize.srf?" + query)
                let location = try #require(response.header("Location"))
                #expect(location.hasPrefix(desktop + "?lc=1033#error="))
                #expect(formDecode(String(location.split(separator: "#")[1]))["error"] == error)
            }
            // The desktop URL on the simulator's own host is a valid redirect_uri too.
            let own = try await sim.loginPage(query: authorizeQuery(redirect: sim.base() + "/oauth20_desktop.srf"))
            #expect(own.1 != nil)
        }
    }

    @Test("valid session cookies sign in silently, with a new grant family replacing the old one")
    func silentSignIn() async throws {
        try await withLiveSim { sim in
            let (first, cookies) = try await sim.passwordLogin()
            let response = try await sim.request(
                .GET, "/oauth20_authorize.srf?" + authorizeQuery(scope: "service::ssl.live.com::MBI_SSL"),
                headers: [("Cookie", cookieHeader(cookies))])
            #expect(response.status == 302)
            let fields = formDecode(String(try #require(response.header("Location")).split(separator: "#")[1]))
            #expect(fields["scope"] == "service::ssl.live.com::MBI_SSL")
            #expect(fields["access_token"] != first["access_token"])
            #expect(response.setCookies["MSPAuth"] != nil && response.setCookies["MSPAuth"] != cookies["MSPAuth"])
            #expect(try await sim.refresh(try #require(fields["refresh_token"])).status == 200)
            let old = try await sim.refresh(try #require(first["refresh_token"]))
            #expect(old.status == 400)
            #expect(old.json["error"] as? String == "invalid_grant")
            #expect(try await sim.validate(first["access_token"]!)["valid"] as? Bool == false)
            // Forged cookies get the login page.
            let forged = try await sim.request(
                .GET, "/oauth20_authorize.srf?" + authorizeQuery(),
                headers: [("Cookie", "MSPAuth=x; MSPProf=y; WLSSC=z")])
            #expect(forged.status == 200 && Page(forged) != nil)
        }
    }

    @Test("the desktop page is a blank landing page")
    func desktopPage() async throws {
        try await withLiveSim { sim in
            let response = try await sim.request(.GET, "/oauth20_desktop.srf?lc=1033")
            #expect(response.status == 200)
            #expect(response.body.contains("<body></body>"))
        }
    }
}
