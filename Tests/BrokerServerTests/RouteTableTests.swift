import BrokerCore
import Foundation
import Logging
import NIOHTTP1
import Testing

@testable import BrokerServer

/// A service with no accounts, whose every computation fails: enough for the router to show
/// which paths it knows.
private final class EmptyService: CredentialService {
    let configuration = EngineConfiguration(realms: [Realm(name: "live")])
    let degraded: String? = nil
    let accountsLoaded: Bool
    init(accountsLoaded: Bool = true) { self.accountsLoaded = accountsLoaded }
    func now() -> Date { Date(timeIntervalSince1970: 1_800_000_000) }
    func cachedRead(account: AccountName, kind: CredentialKind, minValid: TimeInterval) -> CachedRead { .notFound }
    func read(account: AccountName, kind: CredentialKind, minValid: TimeInterval) async throws(BrokerError)
        -> ServedCredential
    { throw BrokerError(.notFound, "no account named \(account)") }
    func ticket(account: AccountName, minValid: TimeInterval) async throws(BrokerError) -> (
        ticket: String, method: TicketMethod, served: ServedCredential
    ) { throw BrokerError(.notFound, "no account named \(account)") }
    func perform(_ request: ServiceRequest) async throws(BrokerError) -> ServiceAnswer {
        throw BrokerError(.internalError, "not in this test")
    }
    func accountNames() -> [AccountName] { [] }
    func status(_ name: AccountName) -> AccountReport? { nil }
    func counts() -> (accounts: Int, needsReauth: Int) { (0, 0) }
    func enroll(_ command: EnrollCommand) async throws(BrokerError) -> AccountReport {
        throw BrokerError(.internalError, "not in this test")
    }
    func logout(_ name: AccountName) throws(BrokerError) { throw BrokerError(.notFound, "no account named \(name)") }
    func rekey(to keyBytes: [UInt8]) throws(BrokerError) -> RekeyReport {
        throw BrokerError(.internalError, "not in this test")
    }
    func recordRead(_ outcome: ReadOutcome, nanoseconds: UInt64?) {}
    func updateGauges() {}
}

/// What the router answers `method path` from root, waiting for an answer that comes later.
func answer(_ method: HTTPMethod, _ target: String) async -> (status: UInt, body: String) {
    let router = Router(
        service: EmptyService(), policy: AccessPolicy(),
        logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() },
        metrics: { Array("# metrics\n".utf8) })
    let response: APIResponse
    switch router.route(Router.parse(method: method, uri: target, body: []), peer: Peer(pid: 1, uid: 0, gid: 0)) {
    case .now(let now): response = now
    case .later(let work): response = await work()
    // An event stream: the connection turns into one (200, text/event-stream).
    case .stream: return (200, "")
    }
    return (response.status.code, String(decoding: response.body, as: UTF8.self))
}

/// The body of an API error.
func errorBody(_ error: BrokerError) -> String {
    String(decoding: APIResponse.error(error).body, as: UTF8.self)
}

@Suite("The routes table")
struct RouteTableTests {
    @Test("the account list is answered at once once the store is loaded, and off the server's thread while it loads")
    func accountListWaitsForTheLoadOffTheLoop() async {
        for loaded in [true, false] {
            let router = Router(
                service: EmptyService(accountsLoaded: loaded), policy: AccessPolicy(),
                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }, metrics: { [] })
            let answer = router.route(
                Router.parse(method: .GET, uri: "/v1/accounts", body: []), peer: Peer(pid: 1, uid: 0, gid: 0))
            switch answer {
            case .now: #expect(loaded, "answered on the server's thread while the store loads")
            case .later: #expect(!loaded, "sent off the server's thread with the store loaded")
            case .stream: Issue.record("an account list is not a stream")
            }
        }
    }

    @Test("the router takes every route of the table: none is answered not_found for its path, or 405")
    func everyRouteIsServed() async {
        #expect(Router.routes.count == Set(Router.routes).count, "a route is listed twice")
        for route in Router.routes {
            let target = route.path.replacingOccurrences(of: "{name}", with: "alice")
            let (status, body) = await answer(HTTPMethod(rawValue: route.method), target)
            #expect(status != 405 && body != errorBody(Router.noSuchEndpoint), "\(route): \(status) \(body)")
        }
    }

    @Test("a path no route fits is 404 no such endpoint; a route's path with another method is 405")
    func onlyTheTable() async {
        for target in [
            "/", "/v1", "/v2/health", "/v1/healthz", "/v1/health/x", "/metrics/x", "/v1/accounts/alice/bogus",
            "/v1/accounts/alice/token/x", "/v1/admin", "/v1/admin/other", "/v1/challenge/x", "/v1/events/x",
        ] {
            let (status, body) = await answer(.GET, target)
            #expect(status == 404 && body == errorBody(Router.noSuchEndpoint), "GET \(target): \(status) \(body)")
        }
        for route in Router.routes {
            let target = route.path.replacingOccurrences(of: "{name}", with: "alice")
            let segments = target.split(separator: "/").map(String.init)
            for method in [HTTPMethod.PUT, .PATCH, .HEAD, .GET, .POST, .DELETE]
            where !Router.routes.contains(where: { $0.method == method.rawValue && $0.fits(segments) }) {
                let (status, _) = await answer(method, target)
                #expect(status == 405, "\(method.rawValue) \(target): \(status)")
            }
        }
    }

    @Test("the credential endpoints are the table's GET /v1/accounts/{name}/... routes")
    func credentialEndpoints() {
        #expect(Router.credentialEndpoints.contains("token") && Router.credentialEndpoints.contains("passport14"))
        #expect(!Router.credentialEndpoints.contains("{name}"))
    }
}
