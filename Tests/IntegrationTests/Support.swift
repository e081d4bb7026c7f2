import Foundation
import LiveSim
import NIOHTTP1
import TestSupport

let scopeAliases = ["skype", "ssl", "login-skype", "contacts", "hotmail"]
let fullScopes = [
    "skype": "service::skype.com::MBI_SSL", "ssl": "service::ssl.live.com::MBI_SSL",
    "login-skype": "service::login.skype.com::MBI_SSL", "contacts": "service::contacts.msn.com::MBI_SSL",
    "hotmail": "service::m.hotmail.com::MBI_SSL",
]

/// livesim plus a daemon configured against it; both torn down afterwards.
func withBroker(
    sim configureSim: (inout LiveSimConfiguration) -> Void = { _ in }, refresh: [String] = [], server: [String] = [],
    socket: [String] = [], topLevel: [String] = [], extra: String = "", logLevel: String = "debug",
    _ body: (LiveSimFixture, DaemonProcess) async throws -> Void
) async throws {
    try await withLiveSim(configureSim) { sim in
        let daemon = try DaemonProcess(
            sim: sim, refresh: refresh, server: server, socket: socket, topLevel: topLevel, extra: extra,
            logLevel: logLevel)
        do {
            try await daemon.start()
            try await body(sim, daemon)
        } catch {
            print("daemon log:\n" + daemon.log.suffix(4000))
            await daemon.shutdown()
            throw error
        }
        await daemon.shutdown()
    }
}

/// The password sign-in a person would do in a browser, up to the final desktop URL.
func browserSignIn(_ sim: LiveSimFixture, login: String, password: String) async throws -> String {
    let page = try await sim.request(
        .GET,
        "/oauth20_authorize.srf?"
            + formEncode([
                ("client_id", "00000000480BC46C"), ("scope", "service::skype.com::MBI_SSL"), ("response_type", "token"),
                ("redirect_uri", "https://login.live.com/oauth20_desktop.srf"),
            ]))
    func between(_ a: String, _ b: String) -> String {
        guard let s = page.body.range(of: a), let e = page.body[s.upperBound...].range(of: b) else { return "" }
        return String(page.body[s.upperBound..<e.lowerBound])
    }
    let response = try await sim.request(
        .POST, between("urlPost:'", "'"), headers: [("Cookie", "MSPOK=\(page.setCookies["MSPOK"] ?? "")")],
        body: formEncode([("login", login), ("passwd", password), ("PPFT", between("value=\"", "\""))]))
    return response.header("Location") ?? ""
}

extension TestResponse {
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String? { (json["error"] as? [String: Any])?["message"] as? String }
}
