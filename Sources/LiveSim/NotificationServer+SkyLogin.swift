import Foundation

/// The two ATH forms that carry SkyLogin credentials:
///
///     <user><ssl-compact-ticket>t=…</ssl-compact-ticket><uic>Base64(credentials)</uic>
///           <id>login</id><alias>skype name</alias></user>           -> ssl-compact-ticket-skylogin
///     <user><uic>UIC</uic><id>skype name</id></user>                   -> skype-uic
///
/// The first is chosen by the presence of `<alias>` next to a ticket, the second by a `<uic>`
/// without a ticket. Credentials must open with livesim's signer (key index 1), be unexpired and
/// not revoked, and name the account the rest of the block names.
extension NSSession {
    typealias AuthResult = Result<(NSLoginMethod, String), Refusal>

    /// nil when the block is neither SkyLogin form.
    static func skyLogin(
        user: XMLReader.Element, ticket: String?, connectNonce: String?, state: SimState, now: Date
    ) -> AuthResult? {
        func text(_ name: String) -> String? { user.text(of: name) }
        let uic = text("uic")
        if let ticket, let alias = text("alias") {
            return sslCompactTicketSkyLogin(
                ticket: ticket, uic: uic, id: text("id"), alias: alias, state: state, now: now)
        }
        if ticket == nil, let uic {
            return skypeUIC(uic, id: text("id"), connectNonce: connectNonce, state: state, now: now)
        }
        return nil
    }

    private static func sslCompactTicketSkyLogin(
        ticket: String, uic: String?, id: String?, alias: String, state: SimState, now: Date
    ) -> AuthResult {
        let method = NSLoginMethod.sslCompactTicketSkyLogin
        func refusal(_ reason: String) -> AuthResult { .failure(Refusal(code: 911, method: method, reason: reason)) }
        let parts = ticket.split(separator: "&", omittingEmptySubsequences: false)
        guard let first = parts.first, first.hasPrefix("t="), first.count > 2,
            parts.dropFirst().allSatisfy({ $0.hasPrefix("p=") })
        else { return refusal("ssl-compact-ticket is not t=...[&p=]") }
        guard let uic, let credentials = SkyCredentials.decodeBase64(uic) else {
            return refusal("<uic> is not the Base64 of signed credentials")
        }
        guard let keys = state.withLock({ $0.skylogin }) else { return refusal("livesim's login server is off") }
        let fields: SkyCredentials.Fields
        do throws(SkyCredentials.Invalid) {
            fields = try SkyCredentials.open(credentials, signers: keys.trusted)
        } catch {
            return refusal(error.reason)
        }
        return state.withLock { world in
            guard let issued = world.credentials[String(first.dropFirst(2))] else {
                return refusal("ticket not issued by livesim")
            }
            switch (issued.kind, issued.scope?.lowercased()) {
            case (.accessToken, "service::ssl.live.com::mbi_ssl"), (.ticket, "chatservice.live.com"):
                break
            default:
                return refusal("credential is a \(issued.kind.rawValue) for \(issued.scope ?? "no scope")")
            }
            if let reason = world.invalidReason(issued, now: now) { return refusal("ticket \(reason)") }
            if let id, SimWorld.key(id) != issued.login { return refusal("<id> names another account") }
            let skypeName = SimWorld.liveSkypeName(login: issued.login)
            guard fields.skypeName.lowercased() == skypeName else {
                return refusal("the credentials are not the ticket account's (\(skypeName))")
            }
            guard alias.lowercased() == skypeName else { return refusal("<alias> is not \(skypeName)") }
            if let reason = credentialsInvalid(credentials, fields, world: world, now: now) {
                return refusal("credentials \(reason)")
            }
            return .success((method, issued.login))
        }
    }

    private static func skypeUIC(_ uic: String, id: String?, connectNonce: String?, state: SimState, now: Date)
        -> AuthResult
    {
        let method = NSLoginMethod.skypeUIC
        func refusal(_ reason: String) -> AuthResult { .failure(Refusal(code: 911, method: method, reason: reason)) }
        guard let id, !id.isEmpty else { return refusal("skype-uic without <id>") }
        guard let connectNonce else { return refusal("no CNT nonce") }
        guard let bytes = SkyCredentials.decodeBase64(uic) else { return refusal("<uic> is not Base64") }
        guard let keys = state.withLock({ $0.skylogin }) else { return refusal("livesim's login server is off") }
        let credentials: [UInt8]
        let fields: SkyCredentials.Fields
        do throws(SkyCredentials.Invalid) {
            (credentials, fields) = try SkyCredentials.verifyUIC(bytes, nonce: connectNonce, signers: keys.trusted)
        } catch {
            return refusal(error.reason)
        }
        let name = fields.skypeName.lowercased()
        guard name == id.lowercased() else { return refusal("<id> is not the credentials' Skype name") }
        return state.withLock { world in
            if let reason = credentialsInvalid(credentials, fields, world: world, now: now) {
                return refusal("credentials \(reason)")
            }
            return .success((method, world.microsoftLogin(skypeName: name) ?? name))
        }
    }

    /// Why verified credentials are not usable now: what livesim remembers of them, or, when it
    /// has forgotten them, their expiry and whether their account still exists.
    private static func credentialsInvalid(
        _ credentials: [UInt8], _ fields: SkyCredentials.Fields, world: SimWorld, now: Date
    ) -> String? {
        if let issued = world.skyCredentials[Data(credentials).base64EncodedString()] {
            return world.skyInvalidReason(issued, now: now)
        }
        if SimWorld.skyExpired(fields, now: now) { return "expired" }
        let name = fields.skypeName.lowercased()
        guard world.skypeAccounts[name] != nil || world.microsoftLogin(skypeName: name) != nil else {
            return "of no account"
        }
        return nil
    }
}
