import Foundation
import NIOHTTP1

/// The services built on the tokens and cookies: User/Initialization (the UIC) and the skypetoken.
extension IdentityProvider {
    func userInitialization(_ request: SimRequest) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let trimmed = request.bodyText.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty, (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] == nil {
            return .json(.badRequest, #"{"errorCode":400,"message":"The request body is not valid JSON."}"#)
        }
        let now = Date()
        let uic = TokenFactory.uic()
        let result = state.withLock { world -> (SimAccount, Issued)? in
            guard let (login, session) = world.sessionAccount(cookies: request.cookies, now: now),
                let account = world.accounts[login]
            else { return nil }
            return (account, world.issue(.uic, value: uic, login: login, session: session, now: now))
        }
        guard let (account, issued) = result else {
            return .json(
                .unauthorized, #"{"errorCode":401,"message":"Authentication failed: missing or invalid cookies."}"#)
        }
        let st = Int64(issued.issuedAt.timeIntervalSince1970 * 1000)
        let se = Int64(issued.expiresAt.timeIntervalSince1970 * 1000)
        let span = (se - st) / 1000
        let ttl = max(1, Int((Double(span) * 13_230 / 81_118).rounded()))
        let skypeName =
            "live:" + (account.spec.login.split(separator: "@").first.map(String.init) ?? account.spec.login)
        let body = """
            {"TPC":{"Issuer":"edf","Se":"\(se)","Signature":"\(TokenFactory.base64URL(32))","Sp":"connect","Sr":"a","St":"\(st)"},\
            "MappingContainer":"\(Form.escape(uic))","MappingSkypeName":"\(skypeName)","MappingStatus":"ACTIVE",\
            "RegistrationId":"\(UUID().uuidString.lowercased())","SupportsSkypeCalling":true,"SupportsChat":true,\
            "registrationTTLRefreshSeconds":\(ttl)}
            """
        var response = SimResponse.json(.ok, body)
        response.account = SimWorld.key(account.spec.login)
        return response
    }

    func skypetoken(_ request: SimRequest) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let form = Form.decode(request.bodyText)
        func parameter(_ name: String) -> String? { request.headers.first(name: name) ?? form[name] }
        guard let accessToken = parameter("access_token"), parameter("scopes") == "client",
            parameter("partner") == "999"
        else {
            return .json(
                .badRequest,
                #"{"status":{"code":40000,"text":"Missing or invalid parameters: access_token, scopes=client and partner=999 are required."}}"#
            )
        }
        let now = Date()
        let token = TokenFactory.skypetoken()
        let result = state.withLock { world -> (String, Int)? in
            guard let issued = world.credentials[accessToken], issued.kind == .accessToken,
                issued.scope == SimScopes.skype,
                world.invalidReason(issued, now: now) == nil
            else { return nil }
            let skype = world.issue(
                .skypetoken, value: token, login: issued.login, scope: SimScopes.skype, family: issued.family, now: now)
            return (issued.login, Int(skype.expiresAt.timeIntervalSince(now).rounded()))
        }
        guard let (login, lifetime) = result else {
            return .json(.unauthorized, #"{"status":{"code":40120,"text":"\#(LiveSimText.skypetokenFailure)"}}"#)
        }
        var response = SimResponse.json(.ok, #"{"skypetoken":"\#(token)","expiresIn":\#(lifetime)}"#)
        response.account = login
        return response
    }
}
