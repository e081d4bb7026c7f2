import Foundation
import LiveSim
import NIOHTTP1
import Testing

@testable import TestSupport

/// tokenctl as people use it at a shell.
@Suite("tokenctl at a shell")
struct TokenctlShellTests {
    @Test("every command's --help shows an example")
    func helpExamples() async throws {
        let top = try await runCommand(Products.path("tokenctl"), ["--help"])
        #expect(top.stdout.contains("EXAMPLE"))
        let section = top.stdout.components(separatedBy: "SUBCOMMANDS:").last ?? ""
        let commands = section.split(separator: "\n").compactMap { line -> String? in
            // "  status                  Show ..." (a continuation line starts with more spaces).
            guard line.hasPrefix("  "), !line.hasPrefix("   ") else { return nil }
            return line.split(separator: " ").first.map(String.init)
        }.filter { $0 != "See" }
        #expect(commands.count >= 15, "\(commands)")
        for command in commands {
            let help = try await runCommand(Products.path("tokenctl"), [command, "--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("EXAMPLE"), "tokenctl \(command) --help has no example")
        }
    }

    @Test("token with no name: the only account; with two, exit 64 naming both; status has no colour in a pipe")
    func onlyAccount() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let only = try await daemon.tokenctl(["token", "--scope", "ssl"])
            #expect(only.status == 0, "\(only.stderr)")
            let token = only.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await sim.validate(token)["valid"] as? Bool == true)
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"x"}"#)
            try await daemon.importAccount("erin@example.com", sim: sim, name: "erin")
            let two = try await daemon.tokenctl(["token"])
            #expect(two.status == 64)
            #expect(two.stderr.contains("2 accounts; name one: alice@example.com, erin"), "\(two.stderr)")
            let status = try await daemon.tokenctl(["status"])
            #expect(status.status == 0)
            #expect(!status.stdout.contains("\u{1B}["), "colour in a pipe")
            #expect(status.stdout.contains(" min ("), "\(status.stdout)")
        }
    }
}
