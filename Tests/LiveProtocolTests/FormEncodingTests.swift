import BrokerCore
import LiveProtocol
import Testing

@Suite("Form encoding and request builders")
struct FormEncodingTests {
    @Test func onlyUnreservedCharactersStayLiteral() {
        #expect(
            FormEncoding.encode([("a b", "x+y&z=1"), ("k", "AZaz09-._~!*'()$/:é")])
                == "a%20b=x%2By%26z%3D1&k=AZaz09-._~%21%2A%27%28%29%24%2F%3A%C3%A9")
        #expect(FormEncoding.encode([]) == "")
    }

    @Test func decodeReadsPlusAsSpaceAndPercentEscapes() {
        let pairs = FormEncoding.decode("a=1+2&b=%41%2b%C3%A9&&flag&c=x=y&bad=%zz")
        #expect(pairs.map(\.0) == ["a", "b", "flag", "c", "bad"])
        #expect(pairs.map(\.1) == ["1 2", "A+é", "", "x=y", "%zz"])
    }

    @Test func roundTrip() {
        let pairs = [("login", "alice+tag@example.com"), ("passwd", "p&ss w=rd!*$é"), ("PPFT", "D!*$x")]
        let decoded = FormEncoding.decode(FormEncoding.encode(pairs))
        #expect(decoded.map(\.0) == pairs.map(\.0))
        #expect(decoded.map(\.1) == pairs.map(\.1))
    }

    @Test func refreshBody() {
        #expect(
            TokenRequest.refreshBody(
                clientID: "00000000480BC46C", scope: "service::ssl.live.com::MBI_SSL", refreshToken: Secret("MC+r/t!*"))
                == "client_id=00000000480BC46C&scope=service%3A%3Assl.live.com%3A%3AMBI_SSL&grant_type=refresh_token&refresh_token=MC%2Br%2Ft%21%2A"
        )
        #expect(
            TokenRequest.refreshBody(scope: Scope.skype, refreshToken: Secret("r"))
                == "client_id=00000000480BC46C&scope=service%3A%3Askype.com%3A%3AMBI_SSL&grant_type=refresh_token&refresh_token=r"
        )
    }

    @Test func loginFormPostsWhatWorkingClientsPosted() {
        let body = LoginForm.body(login: "alice@example.com", password: Secret("p&w d"), ppft: "D!*$x")
        #expect(
            body
                == "login=alice%40example.com&loginfmt=alice%40example.com&passwd=p%26w%20d&PPFT=D%21%2A%24x&PPSX=Passpor&type=11&LoginOptions=3"
        )
        #expect(!FormEncoding.decode(body).contains { $0.0 == "password" })
    }

    @Test func authorizeURL() {
        let expected =
            "https://login.live.com/oauth20_authorize.srf?client_id=00000000480BC46C&scope=service%3A%3Askype.com%3A%3AMBI_SSL"
            + "&response_type=token&redirect_uri=https%3A%2F%2Flogin.live.com%2Foauth20_desktop.srf"
        #expect(
            AuthorizeURL.make(
                base: "https://login.live.com", clientID: "00000000480BC46C", scope: "service::skype.com::MBI_SSL",
                redirectURI: "https://login.live.com/oauth20_desktop.srf") == expected)
        // Defaults and a trailing slash on the base.
        #expect(AuthorizeURL.make(base: "https://login.live.com/", scope: Scope.skype.rawValue) == expected)
        #expect(
            AuthorizeURL.fallbackPost(base: "https://127.0.0.1:8443", scope: "s")
                == "https://127.0.0.1:8443/ppsecure/post.srf?client_id=00000000480BC46C&scope=s&response_type=token&redirect_uri=https%3A%2F%2Flogin.live.com%2Foauth20_desktop.srf"
        )
    }
}
