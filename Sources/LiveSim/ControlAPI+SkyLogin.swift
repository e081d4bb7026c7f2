import Foundation
import NIOHTTP1

/// The control API's share of SkyLogin: Skype-name accounts, the faults of the login server,
/// and the validation of signed credentials and UICs.
extension ControlAPI {
    struct SkypeAccountView: Encodable {
        var skypeName: String
        var locked: Bool
        var lifetimes: [String: Int]

        init(_ account: SkypeAccount) {
            skypeName = account.name
            locked = account.spec.locked
            lifetimes = Dictionary(uniqueKeysWithValues: account.lifetimes.map { ($0.key.rawValue, $0.value) })
        }

        enum CodingKeys: String, CodingKey {
            case skypeName = "skype_name"
            case locked, lifetimes
        }
    }

    struct AccountList: Encodable {
        var accounts: [AccountView]
        var skypeAccounts: [SkypeAccountView]

        enum CodingKeys: String, CodingKey {
            case accounts
            case skypeAccounts = "skype_accounts"
        }
    }

    func accountList() -> AccountList {
        state.withLock { world in
            AccountList(
                accounts: world.accounts.values.map { AccountView($0) }.sorted { $0.login < $1.login },
                skypeAccounts: world.skypeAccounts.values.map { SkypeAccountView($0) }.sorted {
                    $0.skypeName < $1.skypeName
                })
        }
    }

    /// A Skype-name account of this name, and no Microsoft account by the same key.
    func isSkypeAccount(_ name: String) -> Bool {
        state.withLock { $0.accounts[SimWorld.key(name)] == nil && $0.skypeAccounts[name.lowercased()] != nil }
    }

    func skypeAccount(_ name: String) throws -> SkypeAccountView {
        guard let account = state.withLock({ $0.skypeAccounts[name.lowercased()] }) else {
            throw APIError(status: .notFound, message: "no such account")
        }
        return SkypeAccountView(account)
    }

    /// `password`, `locked` and `lifetimes` apply to a Skype-name account; the other fields do not.
    func updateSkypeAccount(_ name: String, _ patch: AccountPatch) throws -> SimResponse {
        guard patch.twoFactor == nil, patch.rateLimited == nil, patch.rotation == nil else {
            throw APIError(
                status: .badRequest, message: "a Skype-name account takes only password, locked and lifetimes")
        }
        var kinds: [CredentialKind: Int] = [:]
        for (kind, seconds) in patch.lifetimes ?? [:] {
            guard kind == CredentialKind.skylogin.rawValue else {
                throw APIError(status: .badRequest, message: "a Skype-name account has only the skylogin lifetime")
            }
            guard seconds > 0 else { throw APIError(status: .badRequest, message: "lifetimes must be positive") }
            kinds[.skylogin] = seconds
        }
        let found = state.withLock { world -> Bool in
            let key = name.lowercased()
            guard var account = world.skypeAccounts[key] else { return false }
            if let v = patch.password { account.spec.password = v }
            if let v = patch.locked { account.spec.locked = v }
            for (kind, seconds) in kinds { account.lifetimes[kind] = seconds }
            world.skypeAccounts[key] = account
            return true
        }
        guard found else { throw APIError(status: .notFound, message: "no such account") }
        return .json(.ok, encoding: try skypeAccount(name))
    }

    /// `refuse`, `garbage`, `expired` and `untrusted` belong to the login server.
    func checkSkyLoginFault(_ request: FaultRequest) throws {
        if FaultKind.skyLoginOnly.contains(request.kind), request.endpoint != SimEndpoint.skylogin.rawValue,
            request.endpoint != "*"
        {
            throw APIError(status: .badRequest, message: "kind \(request.kind.rawValue) applies to endpoint skylogin")
        }
        if let code = request.code, !(0...Int(UInt32.max)).contains(code) || code == Int(SkyRecord.loginOK) {
            throw APIError(status: .badRequest, message: "code must be a refusal code (not 4200)")
        }
    }

    static func validation(_ issued: SkyIssued, _ world: SimWorld, _ now: Date) -> Validation {
        let reason = world.skyInvalidReason(issued, now: now)
        return Validation(
            issued: true, kind: CredentialKind.skylogin.rawValue, account: issued.account, scope: nil,
            valid: reason == nil, reason: reason, issuedAt: issued.issuedAt, expiresAt: issued.fields.expiresAt,
            skypeName: issued.fields.skypeName)
    }
}
