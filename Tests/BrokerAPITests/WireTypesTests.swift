import Foundation
import Testing

@testable import BrokerAPI

/// Encodes with the shared encoder (sorted keys) and checks the exact JSON, then decodes
/// that JSON back to the same value.
private func roundTrip<T: Codable & Equatable>(
    _ value: T, _ json: String, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let encoded = String(decoding: try BrokerJSON.encode(value), as: UTF8.self)
    #expect(encoded == json, sourceLocation: sourceLocation)
    let decoded = try BrokerJSON.decode(T.self, from: Array(json.utf8))
    #expect(decoded == value, sourceLocation: sourceLocation)
}

private func decode<T: Decodable>(_ type: T.Type, _ json: String) throws -> T {
    try BrokerJSON.decode(type, from: Array(json.utf8))
}

@Suite struct WireTypesTests {
    @Test func health() throws {
        try roundTrip(
            HealthResponse(version: "0.1.0", accounts: 2, needsReauth: 0),
            #"{"accounts":2,"needs_reauth":0,"status":"ok","version":"0.1.0"}"#)
    }

    @Test func realms() throws {
        let url =
            "https://login.live.com/oauth20_authorize.srf?client_id=00000000480BC46C&scope=service::ssl.live.com::MBI_SSL&response_type=token&redirect_uri=https://login.live.com/oauth20_desktop.srf"
        try roundTrip(
            RealmsResponse(realms: [RealmInfo(name: "live", authorizeURL: url, isDefault: true)]),
            #"{"realms":[{"authorize_url":""# + url + #"","default":true,"name":"live","sign_in":"oauth"}]}"#)
    }

    @Test func accounts() throws {
        try roundTrip(
            AccountsResponse(accounts: [
                AccountSummary(name: "alice", realm: "live", login: "alice@example.com", state: "active")
            ]),
            #"{"accounts":[{"login":"alice@example.com","name":"alice","realm":"live","state":"active"}]}"#)
    }

    @Test func accountDetailWithEveryField() throws {
        let detail = AccountDetail(
            name: "alice", realm: "live", login: "alice@example.com", state: "needs_reauth",
            stateReason: "the refresh token was revoked",
            scopes: [
                ScopeStatus(
                    scope: "service::skype.com::MBI_SSL", alias: "skype",
                    expiresAt: "2026-11-27T14:00:00Z", lastRefresh: "2026-11-27T13:00:00Z",
                    nextRefresh: "2026-11-27T13:50:00Z", backoffUntil: "2026-11-27T13:05:00Z",
                    failures: 2,
                    lastError: APIErrorInfo(code: "upstream_error", message: "HTTP 500 from login.live.com"))
            ])
        try roundTrip(
            detail,
            #"{"login":"alice@example.com","name":"alice","realm":"live","scopes":[{"alias":"skype","#
                + #""backoff_until":"2026-11-27T13:05:00Z","expires_at":"2026-11-27T14:00:00Z","#
                + #""failures":2,"last_error":{"code":"upstream_error","message":"HTTP 500 from login.live.com"},"#
                + #""last_refresh":"2026-11-27T13:00:00Z","next_refresh":"2026-11-27T13:50:00Z","#
                + #""scope":"service::skype.com::MBI_SSL"}],"state":"needs_reauth","#
                + #""state_reason":"the refresh token was revoked"}"#)
        #expect(detail.summary.state == "needs_reauth")
    }

    @Test func accountDetailLeavesOutAbsentFields() throws {
        try roundTrip(
            AccountDetail(
                name: "bob", realm: "live", login: "bob@example.com", state: AccountStateValue.active,
                scopes: [ScopeStatus(scope: "service::ssl.live.com::MBI_SSL", alias: "ssl")]),
            #"{"login":"bob@example.com","name":"bob","realm":"live","scopes":[{"alias":"ssl","failures":0,"scope":"service::ssl.live.com::MBI_SSL"}],"state":"active"}"#
        )
    }

    @Test func token() throws {
        let token = TokenResponse(
            accessToken: "t=EwAAAsecret", scope: "service::skype.com::MBI_SSL",
            expiresAt: "2026-11-27T14:00:00Z", expiresIn: 3599)
        try roundTrip(
            token,
            #"{"access_token":"t=EwAAAsecret","expires_at":"2026-11-27T14:00:00Z","expires_in":3599,"scope":"service::skype.com::MBI_SSL","token_type":"bearer"}"#
        )
        #expect(!"\(token)".contains("secret"))
        #expect(!String(reflecting: token).contains("secret"))
        var dumped = ""
        dump(token, to: &dumped)
        #expect(!dumped.contains("secret"))
    }

    @Test func enrollByPassword() throws {
        let request = EnrollRequest.password(
            login: "alice@example.com", password: "hunter2", name: "alice", storePassword: false)
        try roundTrip(
            request,
            #"{"login":"alice@example.com","method":"password","name":"alice","password":"hunter2","store_password":false}"#
        )
        #expect(!"\(request)".contains("hunter2"))
        var dumped = ""
        dump(request, to: &dumped)
        #expect(!dumped.contains("hunter2"))
    }

    @Test func enrollByRedirectURL() throws {
        let request = EnrollRequest.redirectURL(
            login: "alice@example.com",
            redirectURL: "https://login.live.com/oauth20_desktop.srf?code=M.C1_secret&lc=1033",
            realm: "live", cookies: "MSPAuth=a; MSPProf=b; WLSSC=c")
        try roundTrip(
            request,
            #"{"cookies":"MSPAuth=a; MSPProf=b; WLSSC=c","login":"alice@example.com","method":"redirect_url","#
                + #""realm":"live","redirect_url":"https://login.live.com/oauth20_desktop.srf?code=M.C1_secret&lc=1033"}"#
        )
        #expect(!"\(request)".contains("secret"))
        #expect(!"\(request)".contains("MSPAuth"))
    }

    @Test func enrollByRefreshToken() throws {
        try roundTrip(
            EnrollRequest.refreshToken(login: "alice@example.com", refreshToken: "M.R3_secret"),
            #"{"login":"alice@example.com","method":"refresh_token","refresh_token":"M.R3_secret"}"#)
    }

    @Test func enrollMethodNamesAreTheWireNames() {
        #expect(
            EnrollMethod.allCases.map(\.rawValue) == ["password", "redirect_url", "refresh_token", "skype_password"])
    }

    @Test func deleteAndErrors() throws {
        try roundTrip(DeleteResponse(deleted: "alice"), #"{"deleted":"alice"}"#)
        try roundTrip(
            ErrorResponse(code: "not_found", message: "no account alice"),
            #"{"error":{"code":"not_found","message":"no account alice"}}"#)
        try roundTrip(
            ErrorResponse(code: "needs_reauth", message: "sign in again", hint: "tokenctl login alice@example.com"),
            #"{"error":{"code":"needs_reauth","hint":"tokenctl login alice@example.com","message":"sign in again"}}"#)
    }

    @Test func decodesTheDocumentedExamples() throws {
        let health = try decode(
            HealthResponse.self, #"{"status":"ok","version":"0.1.0","accounts":2,"needs_reauth":0}"#)
        #expect(health == HealthResponse(version: "0.1.0", accounts: 2, needsReauth: 0))

        let detail = try decode(
            AccountDetail.self,
            #"{"name":"alice","realm":"live","login":"alice@example.com","state":"active","scopes":[{"scope":"service::skype.com::MBI_SSL","alias":"skype","expires_at":"2026-11-27T14:00:00Z","failures":0}]}"#
        )
        #expect(detail.stateReason == nil)
        #expect(detail.scopes.first?.expiresAt == "2026-11-27T14:00:00Z")
        #expect(detail.scopes.first?.lastError == nil)

        let token = try decode(
            TokenResponse.self,
            #"{"access_token":"x","token_type":"bearer","scope":"service::skype.com::MBI_SSL","expires_at":"2026-11-27T14:00:00Z","expires_in":3599}"#
        )
        #expect(token.expiresIn == 3599)
    }

    @Test func dates() throws {
        let date = Date(timeIntervalSince1970: 1_795_788_000) // 2026-11-27T14:00:00Z
        #expect(BrokerJSON.formatDate(date) == "2026-11-27T14:00:00Z")
        #expect(BrokerJSON.parseDate("2026-11-27T14:00:00Z") == date)
        #expect(BrokerJSON.parseDate("2026-11-27T15:00:00+01:00") == date)
        let fractional = try #require(BrokerJSON.parseDate("2026-11-27T14:00:00.250Z"))
        #expect(abs(fractional.timeIntervalSince(date) - 0.25) < 0.001)
        #expect(BrokerJSON.parseDate("yesterday") == nil)
    }

    /// The cached read writes the expiry byte by byte: it must be what `formatDate` writes, for
    /// any date, fractions of a second, leap days, centuries and dates before 1970 included
    /// (before 1583 Foundation counts in the Julian calendar, and the bytes come from it).
    @Test func datesWrittenAsBytesMatchFormatDate() {
        var random = SystemRandomNumberGenerator()
        var dates = [
            0, -1, -0.5, 0.999, 86_399.999, 951_782_400, 951_868_799.5, 4_107_542_400, 1_795_788_000.75,
            -62_135_596_800, -62_167_219_200, 253_402_300_799.9, -2_208_988_800, -12_212_553_600,
            -12_212_553_600.5, 253_402_300_800, 1e12, -1e12,
        ].map { Date(timeIntervalSince1970: $0) }
        for _ in 0..<20_000 {
            dates.append(
                Date(timeIntervalSince1970: Double.random(in: -62_167_219_200..<253_402_300_800, using: &random)))
        }
        for _ in 0..<5_000 {
            // Around now, where every served expiry is.
            dates.append(Date(timeIntervalSince1970: Double.random(in: 1.7e9..<2.2e9, using: &random)))
        }
        var mismatches: [String] = []
        for date in dates {
            var bytes: [UInt8] = []
            BrokerJSON.appendDate(date, to: &bytes)
            let expected = BrokerJSON.formatDate(date)
            if bytes != Array(expected.utf8) || BrokerJSON.dateLength(date) != bytes.count {
                mismatches.append(
                    "\(date.timeIntervalSince1970): \(String(decoding: bytes, as: UTF8.self)) != \(expected)")
            }
        }
        let count = mismatches.count
        let first = Array(mismatches.prefix(5))
        #expect(count == 0, "\(first)")
    }

    @Test func decodingErrorsNameThePlaceNotTheValue() {
        let json = #"{"method":"hunter2-as-method","login":"a"}"#
        do {
            _ = try decode(EnrollRequest.self, json)
            Issue.record("decoded an unknown method")
        } catch {
            let text = BrokerJSON.describe(decodingError: error)
            #expect(!text.contains("hunter2"))
            #expect(text.contains("method"))
        }
        do {
            _ = try decode(TokenResponse.self, #"{"access_token":"secret","scope":"s"}"#)
            Issue.record("decoded a token without its fields")
        } catch {
            let text = BrokerJSON.describe(decodingError: error)
            #expect(text.hasPrefix("missing field ."))
            #expect(!text.contains("secret"))
        }
    }
}
