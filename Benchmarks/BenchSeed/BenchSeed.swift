import ArgumentParser
import BrokerCore
import BrokerStore
import Foundation

/// `bench-seed`: writes tokenbrokerd's database directly, for the start-up and scale scenarios
/// of scripts/bench.sh: one account per grant that livesim's control API issued, each with its
/// refresh token and one access token per scope, all obtained at the same moment (the worst case
/// for refresh spreading: every token reaches its refresh point together, and only the jitter
/// spreads them).
///
/// The grants file has one line per account: `LOGIN<TAB>REFRESH_TOKEN<TAB>ACCESS_TOKEN`, the
/// access token being the skype.com token livesim issued with the grant (so that the skypetoken
/// exchange accepts it); the other scopes get random tokens of the same length. A fourth field,
/// the session cookies of the grant, is stored with `--cookies` (so that the account has UICs).
@main
struct BenchSeed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-seed",
        abstract: "Writes a tokenbrokerd state directory with many accounts, from livesim grants.")

    @Option(help: "The daemon's state directory (created; the key file is `key` in it).")
    var state: String

    @Option(help: "The grants file: LOGIN<TAB>REFRESH_TOKEN<TAB>SKYPE_ACCESS_TOKEN[<TAB>COOKIES] per line.")
    var grants: String

    @Flag(help: "Store each grant's session cookies too, valid for the tokens' lifetime from now.")
    var cookies = false

    @Option(help: "The realm name the daemon's configuration uses.")
    var realm = "bench"

    @Option(help: "The access tokens' lifetime, in seconds.")
    var lifetime = 3600.0

    @Option(help: "The tokens were obtained this many seconds ago (all at the same moment, unless --spread).")
    var obtainedAgo = 0.0

    @Option(
        help:
            "Account N of M obtained its tokens a further N/M × this many seconds earlier, to spread refreshes evenly.")
    var spread = 0.0

    func run() throws {
        let directory = URL(fileURLWithPath: state)
        try FileManager.default.createDirectory(
            at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let store = try CredentialStore.open(directory: directory, keyFile: directory.appendingPathComponent("key"))
        let lines = try String(contentsOfFile: grants, encoding: .utf8).split(separator: "\n")
        let now = Date()
        let started = Date()
        var count = 0
        for line in lines {
            let obtained = now.addingTimeInterval(-obtainedAgo - spread * Double(count) / Double(lines.count))
            let expires = obtained.addingTimeInterval(lifetime)
            let fields = line.split(separator: "\t").map(String.init)
            guard fields.count >= 3, let name = AccountName(rawValue: fields[0]) else {
                throw ValidationError("bad grants line: \(line.prefix(80))")
            }
            let tokens = Scope.allCases.map { scope in
                AccessToken(
                    value: Secret(scope == .skype ? fields[2] : Self.randomToken(length: fields[2].utf8.count)),
                    scope: scope,
                    obtainedAt: obtained, expiresAt: expires)
            }
            try store.createAccount(
                name: name, realm: realm, login: fields[0], refreshToken: Secret(fields[1]), accessTokens: tokens,
                password: nil, cookies: cookies && fields.count > 3 ? Secret(fields[3]) : nil,
                cookiesExpireAt: cookies ? now.addingTimeInterval(lifetime) : nil)
            count += 1
        }
        try store.close()
        print(
            "bench-seed: \(count) accounts × \(Scope.allCases.count) scopes written to \(state) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
        )
    }

    static func randomToken(length: Int) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var bytes = [UInt8](repeating: 0, count: length)
        for i in 0..<length { bytes[i] = alphabet.randomElement()! }
        return String(decoding: bytes, as: UTF8.self)
    }
}
