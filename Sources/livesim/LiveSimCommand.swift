import ArgumentParser
import Dispatch
import Foundation
import LiveSim
import Logging

/// `livesim`: the identity-provider simulator, over HTTPS.
@main
struct LiveSimCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "livesim",
        abstract: "A simulator of the Live/Skype identity endpoints, served over HTTPS.",
        discussion: """
            Serves oauth20_authorize.srf, ppsecure/post.srf, oauth20_desktop.srf, oauth20_token.srf, RST.srf, \
            RST2.srf, v1/User/Initialization, rps/skypetoken, and Passport 1.4's rdr/pprdr.asp and login2.srf at \
            their real paths. The control API (accounts, lifetimes, rotation, faults, counters, validation, secret \
            export) lives under /_livesim/ on the control listener, which is off unless --control-listen is given. \
            --ns-listen adds a notification-server TCP listener that speaks the MSNP24 login exchange (CNT, ATH, \
            BND, PUT MSGR\\CHALLENGE) and, when the first command is VER, the MSNP8-18 one (USR TWN with a \
            Passport 1.4 ticket, USR SSO with an RST.srf ticket and its MBI_KEY_OLD proof); the same exchanges are \
            served over HTTPS at /gateway/gateway.dll. --skylogin-listen adds a SkyLogin login server (Skype \
            names and login.skype.com tokens in, signed credentials out) with keys generated at start; \
            --skylogin-keys-out writes their public halves for a realm's skylogin_keys.
            """)

    @Option(help: "HTTPS listen address, HOST:PORT (port 0 picks one).")
    var listen = "127.0.0.1:0"

    @Option(help: "Write the bound HTTPS port to this file.")
    var portFile: String?

    @Option(help: "Write the generated CA certificate (PEM) to this file.")
    var caOut: String?

    @Option(
        help: """
            A JSON array of accounts: {login, password, two_factor, locked, rate_limited} for a Microsoft account, \
            {skype_name, password, locked} for a Skype-name account.
            """)
    var accounts: String?

    @Option(help: "Control API listen address, HOST:PORT (plain HTTP). Off when not given.")
    var controlListen: String?

    @Option(help: "Write the bound control port to this file.")
    var controlPortFile: String?

    @Option(help: "Notification-server (MSNP24 login) TCP listen address, HOST:PORT. Off when not given.")
    var nsListen: String?

    @Option(help: "Write the bound notification-server port to this file.")
    var nsPortFile: String?

    @Option(help: "SkyLogin login-server TCP listen address, HOST:PORT. Off when not given.")
    var skyloginListen: String?

    @Option(help: "Write the bound SkyLogin port to this file.")
    var skyloginPortFile: String?

    @Option(
        help: """
            Write the SkyLogin public keys, {"session_modulus": HEX, "signers": {"1": HEX}} (e = 65537), to this \
            file: a realm's skylogin_keys.
            """)
    var skyloginKeysOut: String?

    @Option(
        help: "Lifetime in seconds of every credential issued (access tokens, skypetokens, tickets, UICs, cookies).")
    var tokenLifetime = 86_400

    @Option(
        name: .customLong("lifetime"),
        help: """
            KIND=SECONDS: the lifetime of one credential kind (access_token, refresh_token, skypetoken, ticket, uic, \
            cookie, passport_ticket, skylogin), over --token-lifetime (repeatable). Passport 1.4 tickets default to \
            30 s. SkyLogin credentials count whole minutes: they expire at the first minute at or after the lifetime.
            """)
    var lifetimes: [String] = []

    @Option(help: "RST.srf Compact<N> numbering: rst_id (the live service) or escargot (shifted).")
    var rstNumbering: RSTNumbering = .rstID

    @Option(help: "The name of rdr/pprdr.asp's header: PassportURLs (the live service) or Passporturls (Escargot).")
    var pprdrHeader: PassportURLsHeader = .live

    @Option(help: "Refresh-token rotation: none, rotate or strict.")
    var rotation: RotationMode = .rotate

    @Option(help: "Seconds a rotated refresh token stays valid in rotate mode.")
    var rotationGrace = 10

    @Option(help: "Login page style: classic or escaped.")
    var pageStyle: PageStyle = .classic

    @Option(name: .customLong("san"), help: "An extra DNS name or IP address for the certificate (repeatable).")
    var sans: [String] = []

    @Option(help: "Serve this certificate chain (PEM) instead of generating one.")
    var cert: String?

    @Option(help: "The private key (PEM) for --cert.")
    var key: String?

    @Option(help: "Event-loop threads (default: one per core).")
    var threads: Int?

    @Flag(help: "Do not log one line per request.")
    var quiet = false

    func validate() throws {
        if (cert == nil) != (key == nil) { throw ValidationError("--cert and --key go together") }
        _ = try Self.hostPort(listen)
        if let controlListen { _ = try Self.hostPort(controlListen) }
        if let nsListen { _ = try Self.hostPort(nsListen) }
        if let skyloginListen { _ = try Self.hostPort(skyloginListen) }
        if skyloginListen == nil, skyloginPortFile != nil || skyloginKeysOut != nil {
            throw ValidationError("--skylogin-port-file and --skylogin-keys-out need --skylogin-listen")
        }
        _ = try Self.lifetimes(lifetimes)
    }

    static func lifetimes(_ specs: [String]) throws -> [CredentialKind: Int] {
        var out: [CredentialKind: Int] = [:]
        for spec in specs {
            let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let kind = CredentialKind(rawValue: parts[0]), let seconds = Int(parts[1]),
                seconds > 0
            else {
                throw ValidationError(
                    "expected --lifetime KIND=SECONDS with KIND one of \(CredentialKind.allCases.map(\.rawValue)), got \(spec)"
                )
            }
            out[kind] = seconds
        }
        return out
    }

    static func hostPort(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw ValidationError("expected HOST:PORT, got \(text)")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "livesim")
        var config = LiveSimConfiguration()
        (config.listenHost, config.listenPort) = try Self.hostPort(listen)
        if let controlListen { (config.controlHost, config.controlPort) = try Self.hostPort(controlListen) }
        if let nsListen { (config.nsHost, config.nsPort) = try Self.hostPort(nsListen) }
        if let skyloginListen { (config.skyloginHost, config.skyloginPort) = try Self.hostPort(skyloginListen) }
        config.subjectAlternativeNames = sans
        config.certificatePEMFile = cert
        config.privateKeyPEMFile = key
        config.tokenLifetime = tokenLifetime
        config.rotation = rotation
        config.rotationGrace = rotationGrace
        config.pageStyle = pageStyle
        config.lifetimes = try Self.lifetimes(lifetimes)
        config.rstNumbering = rstNumbering
        config.passportURLsHeader = pprdrHeader
        config.logRequests = !quiet
        if let threads { config.threads = threads }
        if let accounts { config.accounts = try AccountSpec.load(from: URL(fileURLWithPath: accounts)) }

        let server = try await LiveSimServer.start(config, logger: logger)
        if let caOut, let pem = server.caPEM { try pem.write(toFile: caOut, atomically: true, encoding: .utf8) }
        if let portFile { try "\(server.port)\n".write(toFile: portFile, atomically: true, encoding: .utf8) }
        if let controlPortFile, let port = server.controlPort {
            try "\(port)\n".write(toFile: controlPortFile, atomically: true, encoding: .utf8)
        }
        if let nsPortFile, let port = server.nsPort {
            try "\(port)\n".write(toFile: nsPortFile, atomically: true, encoding: .utf8)
        }
        if let skyloginKeysOut, let keys = server.skyloginKeysJSON {
            try (keys + "\n").write(toFile: skyloginKeysOut, atomically: true, encoding: .utf8)
        }
        if let skyloginPortFile, let port = server.skyloginPort {
            try "\(port)\n".write(toFile: skyloginPortFile, atomically: true, encoding: .utf8)
        }
        var ready = "livesim ready: \(server.baseURL)"
        if let control = server.controlURL { ready += " control \(control)" }
        if let ns = server.nsAddress { ready += " ns \(ns)" }
        if let skylogin = server.skyloginAddress { ready += " skylogin \(skylogin)" }
        FileHandle.standardOutput.write(Data((ready + "\n").utf8))

        let signals = [SIGTERM, SIGINT].map { signo -> DispatchSourceSignal in
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo)
            source.setEventHandler { server.close() }
            source.resume()
            return source
        }
        // The signal sources must live as long as the server; an unused binding may be released early.
        try await server.wait()
        withExtendedLifetime(signals) {}
        try await server.shutdown()
        logger.info("livesim stopped")
    }
}

extension RotationMode: ExpressibleByArgument {}
extension PageStyle: ExpressibleByArgument {}
extension RSTNumbering: ExpressibleByArgument {}
extension PassportURLsHeader: ExpressibleByArgument {}
