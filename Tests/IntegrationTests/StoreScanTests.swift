import Foundation
import LiveSim
import TestSupport
import Testing

@Suite("Encryption at rest")
struct StoreScanTests {
    @Test("the database file, read alone, holds none of the secrets livesim issued")
    func databaseHoldsNoSecrets() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }) { sim, daemon in
            let login = try await daemon.tokenctl(
                ["login", "alice@example.com", "--password-stdin", "--store-password"], stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            for alias in scopeAliases {
                #expect(try await daemon.token("alice@example.com", scope: alias).status == 200)
            }
            #expect(await daemon.stop() == 0)
            let state = daemon.directory.file("state")
            var bytes = Data()
            for file in try FileManager.default.contentsOfDirectory(atPath: state)
            where file.hasPrefix("tokenbroker.sqlite") {
                bytes += try Data(contentsOf: URL(fileURLWithPath: state + "/" + file))
            }
            #expect(bytes.count > 4096)
            let secrets = try await sim.secrets()
            #expect(secrets.count >= 10)
            let leaked = secrets.filter { bytes.range(of: Data($0.utf8)) != nil }
            #expect(leaked.isEmpty, "\(leaked.count) secrets found in the database")
            // Nor the login, which is also the account's default name.
            #expect(bytes.range(of: Data("alice@example.com".utf8)) == nil)
            #expect(bytes.range(of: Data("alice".utf8)) == nil)
        }
    }
}
