import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The public endpoints, served at the same paths as on the real hosts.
final class IdentityProvider: SimApplication {
    let state: SimState
    let logger: Logger?
    let gateway: NSGateway

    init(state: SimState, logger: Logger?) {
        self.state = state
        self.logger = logger
        self.gateway = NSGateway(state: state, logger: logger)
    }

    func log(_ request: SimRequest, endpoint: String, response: SimResponse?, outcome: String, elapsed: Double) {
        guard let logger else { return }
        var metadata: Logger.Metadata = [
            "method": "\(request.method.rawValue)", "path": "\(request.path)", "endpoint": "\(endpoint)",
            "status": "\(response.map { String($0.status.code) } ?? "-")", "ms": "\(String(format: "%.2f", elapsed))",
        ]
        if let account = response?.account { metadata["account"] = "\(account)" }
        if let scope = response?.scope { metadata["scope"] = "\(scope)" }
        if !outcome.isEmpty { metadata["fault"] = "\(outcome)" }
        logger.info("request", metadata: metadata)
    }

    func handle(_ request: SimRequest) -> (action: SimAction, endpoint: String) {
        guard let endpoint = SimEndpoint.match(path: request.path) else {
            return (.respond(.text(.notFound, "<html><body>The page cannot be found</body></html>")), "-")
        }
        let now = Date()
        let fault = state.withLock { world -> FaultRule? in
            world.counters.requests[endpoint.rawValue, default: 0] += 1
            return world.takeFault(endpoint: endpoint.rawValue, now: now)
        }
        let process = { self.countAccount(self.dispatch(endpoint, request, soapFault: nil)) }
        guard let fault else { return (.respond(process()), endpoint.rawValue) }
        let action: SimAction
        switch fault.kind {
        case .latency:
            action = .delayed(.milliseconds(Int64(fault.latencyMs ?? 1000)), process)
        case .status:
            let status = HTTPResponseStatus(statusCode: fault.status ?? 503)
            var response = SimResponse.text(
                status,
                "<html><head><title>\(status.reasonPhrase)</title></head><body><h1>\(status.code) \(status.reasonPhrase)</h1></body></html>"
            )
            if let retry = fault.retryAfter { response.headers.append(("Retry-After", String(retry))) }
            action = .respond(response)
        case .rateLimit:
            var response = SimResponse.json(.tooManyRequests, LiveSimText.rateLimitBody)
            response.headers.append(("Retry-After", String(fault.retryAfter ?? 300)))
            action = .respond(response)
        case .reset:
            if fault.afterProcessing == true { _ = process() }
            action = .reset
        case .hang:
            if fault.afterProcessing == true { _ = process() }
            action = .hang
        case .truncate:
            action = .truncate(process())
        case .malformed:
            var response = process()
            response.status = .ok
            response.body = Array(response.body.prefix(max(1, response.body.count / 2)))
            action = .respond(response)
        case .refuse, .garbage, .expired, .untrusted:
            // The login server's kinds; an HTTP endpoint answers normally.
            action = .respond(process())
        case .soapFault:
            if endpoint == .rst || endpoint == .rst2 {
                action = .respond(
                    countAccount(dispatch(endpoint, request, soapFault: fault.soapFault ?? .failedAuthentication)))
            } else if endpoint == .login2, fault.soapFault == .redirect {
                // The DA sending the client to another DALogin, which the client follows with the same Authorization.
                action = .respond(.redirect("https://\(request.host)/login2.srf?lc=1033"))
            } else {
                action = .respond(
                    .text(.internalServerError, "<html><body>soap_fault applies to RST.srf only</body></html>"))
            }
        }
        return (action, endpoint.rawValue)
    }

    private func countAccount(_ response: SimResponse) -> SimResponse {
        if response.account != nil || response.scope != nil {
            state.withLock { world in
                if let account = response.account { world.counters.requestsByAccount[account, default: 0] += 1 }
                if let scope = response.scope { world.counters.requestsByScope[scope, default: 0] += 1 }
            }
        }
        return response
    }

    private func dispatch(_ endpoint: SimEndpoint, _ request: SimRequest, soapFault: SOAPFaultKind?) -> SimResponse {
        switch endpoint {
        case .authorize: return authorize(request)
        case .post: return post(request)
        case .desktop: return .text(.ok, Templates.desktopPage)
        case .token: return token(request)
        case .rst, .rst2: return rst(request, endpoint: endpoint, soapFault: soapFault)
        case .userInitialization: return userInitialization(request)
        case .skypetoken: return skypetoken(request)
        case .abuse: return .text(.ok, Templates.abusePage())
        case .proofs: return .text(.ok, Templates.proofsPage(host: request.host, login: ""))
        case .gateway: return gateway.handle(request)
        case .pprdr: return passportNexus(request)
        case .login2: return passportLogin(request)
        case .skylogin: return .text(.notFound, "<html><body>The page cannot be found</body></html>")
        }
    }
}

/// Lets a response travel in a `Result`'s failure.
struct SimResponseBox: Error {
    let response: SimResponse
    init(_ response: SimResponse) { self.response = response }
}

enum SimDefaults {
    static let desktopRedirect = "https://login.live.com/oauth20_desktop.srf"
}
