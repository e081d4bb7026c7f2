import Foundation
import Locks

/// The scopes the token endpoint knows, and the only client allowed them.
enum SimScopes {
    static let all: Set<String> = [
        "service::login.skype.com::MBI_SSL", "service::ssl.live.com::MBI_SSL",
        "service::contacts.msn.com::MBI_SSL", "service::m.hotmail.com::MBI_SSL",
        "service::skype.com::MBI_SSL",
    ]
    static let skype = "service::skype.com::MBI_SSL"
    static let messengerClientID = "00000000480BC46C"
}

/// A simulated Microsoft account.
struct SimAccount {
    var spec: AccountSpec
    var userID: String
    var cid: String
    var puid: String
    var lifetimes: [CredentialKind: Int] = [:]
    var rotation: RotationMode?
    /// The current grant family; a new sign-in replaces it.
    var family: Int?
    var revokedScopes: Set<String> = []
}

/// One credential livesim issued, keyed by its value.
struct Issued {
    var kind: CredentialKind
    var login: String
    var scope: String?
    var family: Int?
    var session: Int?
    var issuedAt: Date
    var expiresAt: Date
    var revoked: String?
    /// For refresh tokens: when a newer one replaced it.
    var rotatedAt: Date?
    /// For messengerclear.live.com tickets: the BinarySecret (base64) issued with it, which keys the SSO proof.
    var binarySecret: String? = nil
}

struct Family {
    var login: String
    var revoked: String?
    /// When it was revoked: a test can tell a credential revoked after it was served from one
    /// served when its family was already revoked.
    var revokedAt: Date?
}

struct CookieSession {
    var login: String
    var revoked: Bool
    var expiresAt: Date
}

struct PPFTRecord {
    var mspok: String
    var expiresAt: Date
    var used: Bool
}

/// Global settings; each can be overridden per account.
struct SimSettings: Codable {
    var tokenLifetime: Int
    var lifetimes: [String: Int]
    var rotation: RotationMode
    var rotationGrace: Int
    var pageStyle: PageStyle
    var rstNumbering: RSTNumbering = .rstID
    var passportURLsHeader: PassportURLsHeader = .live

    enum CodingKeys: String, CodingKey {
        case tokenLifetime = "token_lifetime"
        case lifetimes, rotation
        case rotationGrace = "rotation_grace"
        case pageStyle = "page_style"
        case rstNumbering = "rst_numbering"
        case passportURLsHeader = "pprdr_header"
    }
}

/// What the counters endpoint reports.
struct Counters: Codable {
    var requests: [String: Int] = [:]
    var requestsByAccount: [String: Int] = [:]
    var requestsByScope: [String: Int] = [:]
    var issued: [String: Int] = [:]
    var refreshes = 0
    var refreshFailures: [String: Int] = [:]
    var refreshTokenReuse = 0
    var rotatedGraceUses = 0
    var revokedFamilies = 0
    var logins = 0
    var loginFailures: [String: Int] = [:]
    var faultsInjected: [String: Int] = [:]
    /// Notification-server logins per ATH method; a success is a login that got its final `ATH 0 CON`.
    var nsLogins = Dictionary(uniqueKeysWithValues: NSLoginMethod.allCases.map { ($0.rawValue, NSLoginCount()) })
    /// The same for the `USR` logins of MSNP8-18 (`sso`, `twn`); a success is a login that got `USR t OK`.
    var nsUSRLogins = Dictionary(uniqueKeysWithValues: NSUSRMethod.allCases.map { ($0.rawValue, NSLoginCount()) })

    enum CodingKeys: String, CodingKey {
        case requests
        case requestsByAccount = "requests_by_account"
        case requestsByScope = "requests_by_scope"
        case issued, refreshes
        case refreshFailures = "refresh_failures"
        case refreshTokenReuse = "refresh_token_reuse"
        case rotatedGraceUses = "rotated_grace_uses"
        case revokedFamilies = "revoked_families"
        case logins
        case loginFailures = "login_failures"
        case faultsInjected = "faults_injected"
        case nsLogins = "ns_logins"
        case nsUSRLogins = "ns_usr_logins"
    }
}

/// All of livesim's mutable state. Everything that changes it runs under one lock, which keeps
/// rotation, reuse detection and fault counts exact under concurrent requests.
struct SimWorld {
    var settings: SimSettings
    var accounts: [String: SimAccount] = [:]
    var credentials: [String: Issued] = [:]
    var families: [Int: Family] = [:]
    var sessions: [Int: CookieSession] = [:]
    var ppfts: [String: PPFTRecord] = [:]
    var faults: [FaultRule] = []
    var counters = Counters()
    var nextID = 1
    /// Skype-name accounts, by lowercased Skype name (Microsoft accounts are in `accounts`).
    var skypeAccounts: [String: SkypeAccount] = [:]
    /// The SkyLogin credentials issued, by the Base64 of the blob.
    var skyCredentials: [String: SkyIssued] = [:]
    /// The login server's keys, when it is on.
    var skylogin: SkyLoginKeys?

    static let ppftLifetime: TimeInterval = 900
    static let defaultRefreshTokenLifetime = 14 * 86_400
    /// Escargot keeps Passport 1.4 tickets 30 s.
    static let defaultPassportTicketLifetime = 30

    init(settings: SimSettings) { self.settings = settings }

    mutating func newID() -> Int {
        defer { nextID += 1 }
        return nextID
    }

    static func key(_ login: String) -> String { login.lowercased() }

    mutating func addAccount(_ spec: AccountSpec) -> Bool {
        if spec.skypeName != nil { return addSkypeAccount(spec) }
        let key = Self.key(spec.login)
        guard accounts[key] == nil else { return false }
        accounts[key] = SimAccount(
            spec: spec, userID: TokenFactory.hex(8), cid: TokenFactory.hex(8), puid: TokenFactory.hex(8).uppercased())
        return true
    }

    func lifetime(_ kind: CredentialKind, login: String) -> Int {
        if let value = accounts[Self.key(login)]?.lifetimes[kind] { return value }
        if let value = settings.lifetimes[kind.rawValue] { return value }
        switch kind {
        case .refreshToken: return Self.defaultRefreshTokenLifetime
        case .passportTicket: return Self.defaultPassportTicketLifetime
        default: return settings.tokenLifetime
        }
    }

    func rotation(for login: String) -> RotationMode { accounts[Self.key(login)]?.rotation ?? settings.rotation }

    mutating func record(_ value: String, _ issued: Issued) {
        credentials[value] = issued
        counters.issued[issued.kind.rawValue, default: 0] += 1
    }

    mutating func issue(
        _ kind: CredentialKind, value: String, login: String, scope: String? = nil, family: Int? = nil,
        session: Int? = nil, binarySecret: String? = nil, now: Date
    ) -> Issued {
        let issued = Issued(
            kind: kind, login: Self.key(login), scope: scope, family: family, session: session, issuedAt: now,
            expiresAt: now.addingTimeInterval(TimeInterval(lifetime(kind, login: login))), binarySecret: binarySecret)
        record(value, issued)
        return issued
    }

    /// Starts a new grant family for the account, revoking the one it replaces.
    mutating func newFamily(login: String) -> Int {
        let key = Self.key(login)
        if let old = accounts[key]?.family, families[old]?.revoked == nil {
            families[old]?.revoked = "replaced by a new sign-in"
            families[old]?.revokedAt = Date()
        }
        let id = newID()
        families[id] = Family(login: key)
        accounts[key]?.family = id
        return id
    }

    /// Why a credential is not valid now, or nil when it is.
    func invalidReason(_ issued: Issued, now: Date) -> String? {
        guard let account = accounts[issued.login] else { return "account deleted" }
        if let revoked = issued.revoked { return revoked }
        if let family = issued.family, let reason = families[family]?.revoked {
            return "grant family revoked: \(reason)"
        }
        if let session = issued.session, sessions[session]?.revoked ?? true { return "session revoked" }
        if issued.expiresAt <= now { return "expired" }
        if let scope = issued.scope, account.revokedScopes.contains(scope) { return "scope revoked" }
        return nil
    }

    /// The account whose three session cookies are all valid and belong together.
    func sessionAccount(cookies: [String: String], now: Date) -> (login: String, session: Int)? {
        guard let auth = cookies["MSPAuth"], let prof = cookies["MSPProf"], let wlssc = cookies["WLSSC"] else {
            return nil
        }
        var session: Int?
        for value in [auth, prof, wlssc] {
            guard let issued = credentials[value], issued.kind == .cookie, invalidReason(issued, now: now) == nil,
                let s = issued.session, session == nil || session == s
            else { return nil }
            session = s
        }
        guard let session, let login = sessions[session]?.login else { return nil }
        return (login, session)
    }

    /// New MSPAuth/MSPProf/WLSSC cookies for the account, in a new session.
    mutating func newCookies(login: String, now: Date) -> [(name: String, value: String, maxAge: Int)] {
        let sessionID = newID()
        let maxAge = lifetime(.cookie, login: login)
        sessions[sessionID] = CookieSession(
            login: Self.key(login), revoked: false, expiresAt: now.addingTimeInterval(TimeInterval(maxAge)))
        return [
            ("MSPAuth", TokenFactory.mspAuth()), ("MSPProf", TokenFactory.mspProf()), ("WLSSC", TokenFactory.wlssc()),
        ]
        .map { name, value in
            _ = issue(.cookie, value: value, login: login, session: sessionID, now: now)
            return (name, value, maxAge)
        }
    }

    /// Revokes one scope, or every grant, session and credential of the account.
    mutating func revoke(login: String, scope: String?) -> Bool {
        let key = Self.key(login)
        guard accounts[key] != nil else { return false }
        if let scope {
            accounts[key]?.revokedScopes.insert(scope)
            return true
        }
        for (id, family) in families where family.login == key && family.revoked == nil {
            families[id]?.revoked = "revoked"
            families[id]?.revokedAt = Date()
            counters.revokedFamilies += 1
        }
        for (id, session) in sessions where session.login == key { sessions[id]?.revoked = true }
        for (value, issued) in skyCredentials where issued.microsoftAccount && issued.account == key {
            skyCredentials[value]?.revoked = "revoked"
        }
        accounts[key]?.family = nil
        return true
    }

    /// Forgets credentials long past their expiry, so a long benchmark does not grow without bound.
    mutating func prune(now: Date) {
        let horizon = now.addingTimeInterval(-3600)
        credentials = credentials.filter { $0.value.expiresAt > horizon }
        skyCredentials = skyCredentials.filter { $0.value.fields.expiresAt > horizon }
        ppfts = ppfts.filter { $0.value.expiresAt > horizon }
    }
}

/// The lock-protected world, shared by every connection.
final class SimState: Sendable {
    private let world: LockedValue<SimWorld>

    init(_ world: SimWorld) { self.world = LockedValue(world) }

    func withLock<R, E: Error>(_ body: (inout SimWorld) throws(E) -> R) throws(E) -> R {
        try world.withLock { world throws(E) in try body(&world) }
    }
}
