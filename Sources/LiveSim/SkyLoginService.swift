import Foundation

/// The login server's decision for one request: who it is, and the signed credentials.
enum SkyLoginService {
    /// What faults change in an otherwise normal login.
    struct Options {
        /// Credentials whose expiry is already past.
        var expired = false
        /// Credentials signed under key index 7, which the keys file does not list.
        var untrusted = false
    }

    struct Outcome {
        var code: UInt32
        var credentials: [UInt8]?
        /// The Skype name, or the Microsoft login of an OAuth login; for the log.
        var account: String?
        /// Why a login was refused; never a secret.
        var reason: String?

        static func refused(_ code: UInt32, _ reason: String, account: String? = nil) -> Outcome {
            Outcome(code: code, credentials: nil, account: account, reason: reason)
        }
    }

    static let loginSkypeScope = "service::login.skype.com::mbi_ssl"
    /// Expired credentials are dated this many minutes back, past SkyLogin's 60 s of grace.
    static let expiredBy: UInt32 = 10

    /// Who the request authenticates, counted as a login or a login failure.
    private enum Identity {
        case skypeName(String)
        case microsoft(login: String, skypeName: String)
        case refused(failure: String, reason: String, account: String?)
    }

    static func login(
        _ request: SkyLoginRequest, state: SimState, keys: SkyLoginKeys, options: Options = Options(), now: Date
    ) -> Outcome {
        let identity = state.withLock { world -> Identity in
            let identity = identify(request.method, world: world, now: now)
            switch identity {
            case .refused(let failure, _, let account):
                world.counters.loginFailures[failure, default: 0] += 1
                if let account { world.counters.requestsByAccount[account, default: 0] += 1 }
            case .skypeName(let account), .microsoft(let account, _):
                world.counters.requestsByAccount[account, default: 0] += 1
            }
            return identity
        }
        let name: String
        let account: String
        let microsoft: Bool
        switch identity {
        case .refused(_, let reason, let who):
            return .refused(SkyRecord.badCredentials, reason, account: who)
        case .skypeName(let skypeName):
            (name, account, microsoft) = (skypeName, skypeName, false)
        case .microsoft(let login, let skypeName):
            (name, account, microsoft) = (skypeName, login, true)
        }
        let lifetime = state.withLock {
            $0.skyLoginLifetime(skypeName: microsoft ? nil : name, login: microsoft ? account : nil)
        }
        let nowMinutes = UInt32(clamping: Int64(now.timeIntervalSince1970 / 60))
        let expiry =
            options.expired
            ? nowMinutes - min(nowMinutes, expiredBy) : SimWorld.expiryMinutes(now: now, lifetime: lifetime)
        let fields = SkyCredentials.Fields(skypeName: name, modulus: request.modulus, expiryMinutes: expiry)
        let keyIndex = options.untrusted ? SkyLoginKeys.untrustedIndex : SkyLoginKeys.signerIndex
        guard let signer = options.untrusted ? keys.untrusted() : keys.signer,
            let credentials = SkyCredentials.sign(fields, signer: signer, keyIndex: keyIndex)
        else {
            return .refused(SkyRecord.badCredentials, "the credentials do not fit the signer", account: account)
        }
        state.withLock { world in
            world.recordSkyLogin(
                SkyIssued(
                    credentials: credentials, fields: fields, account: account, microsoftAccount: microsoft,
                    keyIndex: keyIndex, issuedAt: now))
            world.counters.logins += 1
        }
        return Outcome(code: SkyRecord.loginOK, credentials: credentials, account: account)
    }

    private static func identify(_ method: SkyLoginRequest.Method, world: SimWorld, now: Date) -> Identity {
        switch method {
        case .password(let given, let hash):
            let name = given.lowercased()
            guard let account = world.skypeAccounts[name] else {
                return .refused(failure: "skylogin_unknown_name", reason: "no such Skype name", account: nil)
            }
            guard account.loginHash == hash else {
                return .refused(failure: "skylogin_wrong_password", reason: "wrong password", account: name)
            }
            guard !account.spec.locked else {
                return .refused(failure: "skylogin_locked", reason: "account locked", account: name)
            }
            return .skypeName(name)
        case .oauth(let given):
            var token = Substring(given)
            if token.hasPrefix("t=") { token = token.dropFirst(2) }
            if let amp = token.firstIndex(of: "&") { token = token[..<amp] }
            guard let issued = world.credentials[String(token)], issued.kind == .accessToken,
                issued.scope?.lowercased() == loginSkypeScope
            else {
                return .refused(
                    failure: "skylogin_invalid_token", reason: "not a login.skype.com token livesim issued",
                    account: nil)
            }
            if let reason = world.invalidReason(issued, now: now) {
                return .refused(failure: "skylogin_invalid_token", reason: "token \(reason)", account: issued.login)
            }
            if world.accounts[issued.login]?.spec.locked == true {
                return .refused(failure: "skylogin_locked", reason: "account locked", account: issued.login)
            }
            return .microsoft(login: issued.login, skypeName: SimWorld.liveSkypeName(login: issued.login))
        }
    }

    /// The whole reply record for an outcome (one record, index 0).
    static func reply(_ outcome: Outcome, aesKey: [UInt8]) -> [UInt8]? {
        SkyRecord.sealReply(
            SkyRecord.replyPlain(code: outcome.code, credentials: outcome.credentials), aesKey: aesKey, record: 0)
    }
}
