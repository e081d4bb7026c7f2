// libFuzzer entry point for the readers of what the identity provider sends (Sources/LiveProtocol):
// one target per reader, chosen by the environment variable FUZZ_TARGET (see `targets`). Each
// target hands the input to the reader as the client would: as text (decoded as UTF-8 with
// repairs, as the HTTPS client does) or as bytes. A reader may throw, never crash; scripts/fuzz.sh
// runs each with a timeout per input and a memory limit, so that a hang or an allocation out of
// proportion to the input fails too.
//
// `FUZZ_TARGET=list fuzz-parsers` prints the names of the targets.

import BrokerCore
import Foundation

@testable import LiveProtocol

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A status code from the first byte (200, 400 and the like), and the rest as the body.
func statusAndBody(_ bytes: [UInt8]) -> (Int, [UInt8]) {
    guard let first = bytes.first else { return (200, []) }
    let statuses = [200, 200, 200, 400, 401, 403, 429, 500]
    return (statuses[Int(first) % statuses.count], Array(bytes.dropFirst()))
}

/// A fixed SkyLogin session, to read reply records with.
let session = try! SkyLoginSession(
    sessionKey: [0x01] + [UInt8](repeating: 0x5A, count: SkyLoginSession.sessionKeySize - 1))

let targets: [String: @Sendable ([UInt8]) -> Void] = [
    // The sign-in page (PPFT, urlPost, an error text).
    "login-page": { _ = LoginPage.parse(text($0)) },
    // The Location of the desktop redirect, with its fragment.
    "desktop-redirect": { _ = try? DesktopRedirect.parse(text($0)) },
    // The OAuth token endpoint's JSON.
    "token-response": {
        let (status, body) = statusAndBody($0)
        _ = try? TokenResponse.parse(status: status, body: body)
    },
    // The RST SOAP reply (RST.srf), and the XML reader under it.
    "rst": { _ = try? RSTResponse.parse(text($0)) },
    "minixml": { _ = try? MiniXML.parse(text($0)) },
    // User/Initialization's JSON.
    "user-initialization": { _ = try? UserInitialization.parse($0) },
    // The skypetoken exchange's JSON.
    "skypetoken": {
        let (status, body) = statusAndBody($0)
        _ = try? SkypeTokenResponse.parse(status: status, body: body)
    },
    // Passport 1.4's headers: PassportURLs, WWW-Authenticate and Authentication-Info.
    "passport14": {
        let value = text($0)
        _ = Passport14.daLogin(passportURLs: value)
        _ = Passport14.ticket(authenticationInfo: value)
        _ = Passport14.status(wwwAuthenticate: value)
        _ = try? Passport14.check(challenge: value)
    },
    // SkyLogin: object lists, a reply's answer, a whole reply record, the signed credentials,
    // the keys file.
    "skylogin-objects": { _ = try? SkyLoginObjects.decodeLists($0) },
    "skylogin-reply": { _ = try? SkyLoginSession.parseReply($0) },
    "skylogin-record": { _ = try? session.readReply($0) },
    "skylogin-credentials": {
        _ = try? SkyLoginCredentials.open(raw: $0, trusted: .skype)
        _ = try? SkyLoginMessageRecovery.unpad($0)
        _ = SkyLoginUIC.credentialsUIC($0)
    },
    "skylogin-keys": { _ = try? SkyLoginKeys(json: Data($0)) },
    // Form bodies (the sign-in form's replies).
    "form": { _ = FormEncoding.decode(text($0)) },
]

let selected: @Sendable ([UInt8]) -> Void = {
    let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
    if let target = targets[name] { return target }
    print(name == "list" ? "" : "FUZZ_TARGET must name one of:", terminator: name == "list" ? "" : " ")
    print(targets.keys.sorted().joined(separator: " "))
    fflush(nil)
    // _exit: libFuzzer takes an exit from the target for a failure.
    _exit(name == "list" ? 0 : 2)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParsers(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    selected(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
