import Foundation

/// What an injected fault does to a request.
public enum FaultKind: String, Sendable, Codable, CaseIterable {
    /// Wait `latency_ms`, then answer normally.
    case latency
    /// Answer with `status` and a generic error page, without processing the request.
    case status
    /// Answer 429 with the real rate-limit body and `Retry-After`.
    case rateLimit = "rate_limit"
    /// Reset the connection (TCP RST) without answering.
    case reset
    /// Process the request, then send the head and half of the body and close.
    case truncate
    /// Process the request, then answer 200 with a body cut in half (a complete but unparsable reply).
    case malformed
    /// Never answer; the connection stays open until the client gives up.
    case hang
    /// On RST.srf/RST2.srf: answer with a SOAP fault (`soap_fault`). On login2.srf, `soap_fault: redirect`
    /// answers 302 with a Location on the same DALogin.
    case soapFault = "soap_fault"
    /// SkyLogin: answer with the refusal `code` (4201 unless given) instead of credentials.
    case refuse
    /// SkyLogin: random bytes instead of a reply record, then close.
    case garbage
    /// SkyLogin: credentials issued with an expiry already past.
    case expired
    /// SkyLogin: credentials signed under key index 7, which the keys file does not list.
    case untrusted

    /// The kinds that only mean something on the SkyLogin server.
    static let skyLoginOnly: Set<FaultKind> = [.refuse, .garbage, .expired, .untrusted]
}

/// The SOAP faults RST.srf can be made to send.
public enum SOAPFaultKind: String, Sendable, Codable, CaseIterable {
    case failedAuthentication = "failed_authentication"
    case redirect
    case profileAccrual = "profile_accrual"
}

/// One fault rule: applied to the next `count` requests of an endpoint, or to every request
/// until `duration_seconds` have passed; removed once spent.
struct FaultRule: Codable, Sendable {
    var id: Int
    var endpoint: String
    var kind: FaultKind
    var count: Int?
    var durationSeconds: Double?
    var latencyMs: Int?
    var status: Int?
    var retryAfter: Int?
    var soapFault: SOAPFaultKind?
    /// For `refuse` on the SkyLogin server: the answer code (4201 unless given; never 4200).
    var code: Int? = nil
    /// For `reset` and `hang`: process the request first (the server acted, the client never heard).
    var afterProcessing: Bool?
    var until: Date?
    var applied: Int

    enum CodingKeys: String, CodingKey {
        case id, endpoint, kind, count
        case durationSeconds = "duration_seconds"
        case latencyMs = "latency_ms"
        case status
        case retryAfter = "retry_after"
        case soapFault = "soap_fault"
        case code
        case afterProcessing = "after_processing"
        case until, applied
    }

    func isLive(now: Date) -> Bool {
        if let count, applied >= count { return false }
        if let until, now >= until { return false }
        return true
    }
}

/// The public endpoints, by the names the control API uses for them.
public enum SimEndpoint: String, Sendable, CaseIterable {
    case authorize, post, desktop, token, rst, rst2
    case userInitialization = "user_initialization"
    case skypetoken, abuse, proofs, gateway
    /// Passport 1.4: the nexus and the DALogin.
    case pprdr, login2
    /// The SkyLogin login server (its own TCP listener).
    case skylogin

    static func match(path: String) -> SimEndpoint? {
        switch path {
        case "/oauth20_authorize.srf": .authorize
        case "/ppsecure/post.srf": .post
        case "/oauth20_desktop.srf": .desktop
        case "/oauth20_token.srf": .token
        case "/RST.srf": .rst
        case "/RST2.srf": .rst2
        case "/v1/User/Initialization": .userInitialization
        case "/rps/skypetoken": .skypetoken
        case "/Abuse": .abuse
        case "/proofs/Verify": .proofs
        case "/gateway/gateway.dll": .gateway
        case "/rdr/pprdr.asp": .pprdr
        case "/login2.srf": .login2
        default: nil
        }
    }
}

extension SimWorld {
    /// Takes the first live fault for the endpoint, counting it as applied.
    mutating func takeFault(endpoint: String, now: Date) -> FaultRule? {
        faults.removeAll { !$0.isLive(now: now) }
        guard let index = faults.firstIndex(where: { $0.endpoint == endpoint || $0.endpoint == "*" }) else {
            return nil
        }
        faults[index].applied += 1
        counters.faultsInjected[endpoint, default: 0] += 1
        return faults[index]
    }
}
