import BrokerCore
import Foundation
import Testing

@testable import BrokerServer

/// The package's files, found from this file's place in it.
enum Docs {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    static func lines(_ path: String) throws -> [String] { try read(path).components(separatedBy: "\n") }

    /// The lines of the first fenced block after the line `heading`.
    static func block(after heading: String, in lines: [String]) -> [String]? {
        guard let start = lines.firstIndex(of: heading),
            let open = lines[start...].firstIndex(where: { $0.hasPrefix("```") })
        else { return nil }
        guard let close = lines[(open + 1)...].firstIndex(where: { $0.hasPrefix("```") }) else { return nil }
        return Array(lines[(open + 1)..<close])
    }

    /// The lines of a `## ` section, up to the next `## ` heading.
    static func section(_ heading: String, in lines: [String]) -> [String] {
        guard let start = lines.firstIndex(of: heading) else { return [] }
        let end = lines[(start + 1)...].firstIndex { $0.hasPrefix("## ") } ?? lines.endIndex
        return Array(lines[start..<end])
    }

    /// Whether `line` has a code span that starts with `text` and goes on with one of `next`.
    static func names(_ text: String, in line: String, followedBy next: [Character]) -> Bool {
        var rest = Substring(line)
        while let range = rest.range(of: "`" + text) {
            rest = rest[range.upperBound...]
            if let following = rest.first, next.contains(following) { return true }
        }
        return false
    }
}

@Suite("The documentation matches the code")
struct DocsDriftTests {
    @Test("every route of the router has a section in docs/API.md and a row in its endpoints table")
    func routesInAPI() throws {
        let lines = try Docs.lines("docs/API.md")
        let headings = lines.filter { $0.hasPrefix("#") }
        let endpoints = Docs.section("## Endpoints", in: lines).filter { $0.hasPrefix("| `") }
        for route in Router.routes {
            #expect(
                headings.contains { Docs.names(route.description, in: $0, followedBy: ["`", "?"]) },
                "docs/API.md has no section for \(route)")
            #expect(
                endpoints.contains { Docs.names(route.description, in: $0, followedBy: ["`", "?", "["]) },
                "docs/API.md's endpoints table has no row for \(route)")
        }
        // And no section for a route the router does not serve.
        let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        for heading in headings {
            guard let open = heading.firstIndex(of: "`") else { continue }
            let code = heading[heading.index(after: open)...].prefix { $0 != "`" && $0 != "?" }
            let parts = code.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, methods.contains(String(parts[0])), parts[1].hasPrefix("/") else { continue }
            #expect(
                Router.routes.contains { $0.description == code }, "docs/API.md documents \(code), which is not served")
        }
    }

    @Test("every error code is in docs/API.md's error table with its status, and in the README's list")
    func errorCodes() throws {
        let lines = try Docs.lines("docs/API.md")
        let errors = Docs.section("## Errors", in: lines)
        let header = try #require(errors.firstIndex { $0.hasPrefix("| code | status |") }, "no table of codes")
        let rows = errors[(header + 2)...].prefix { $0.hasPrefix("| `") }
        let table = Dictionary(
            rows.map { row in
                let cells = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
                return (cells[0].trimmingCharacters(in: ["`"]), Int(cells[1]) ?? 0)
            }, uniquingKeysWith: { first, _ in first })
        #expect(Set(table.keys) == Set(ErrorCode.allCases.map(\.rawValue)))
        for code in ErrorCode.allCases {
            #expect(table[code.rawValue] == code.httpStatus, "\(code.rawValue): \(table[code.rawValue] ?? 0)")
        }
        let readme = Docs.section("## The socket API", in: try Docs.lines("README.md")).joined(separator: "\n")
        for code in ErrorCode.allCases {
            #expect(readme.contains("`\(code.rawValue)`"), "the README's socket API section lacks \(code.rawValue)")
        }
    }

    @Test("the README's livesim walkthrough is scripts/livesim-walkthrough.sh from its walkthrough line on")
    func walkthrough() throws {
        let script = try Docs.lines("scripts/livesim-walkthrough.sh")
        let marker = try #require(script.firstIndex(of: "# --- walkthrough ---"), "the script has no walkthrough line")
        var steps = Array(script[(marker + 1)...])
        while steps.last == "" { steps.removeLast() }
        let readme = try #require(
            Docs.block(after: "### Walkthrough with curl", in: try Docs.lines("README.md")),
            "the README has no walkthrough block")
        #expect(readme.count == steps.count, "the README's block has \(readme.count) lines, the script \(steps.count)")
        for (index, (shown, run)) in zip(readme, steps).enumerated() where shown != run {
            Issue.record("walkthrough line \(index + 1): the README has\n\(shown)\nthe script has\n\(run)")
            break
        }
    }

    @Test(
        "the README's tokenctl synopsis and docs/API.md's tokenctl table have every command, the synopsis every option")
    func tokenctlSynopsis() throws {
        let commands = try TokenctlCommands.load()
        #expect(!commands.isEmpty)
        let lines = try Docs.lines("README.md")
        let synopsis = try #require(Docs.block(after: "## tokenctl", in: lines), "the README has no tokenctl synopsis")
        #expect(synopsis.contains { $0.contains("--socket") }, "the synopsis does not say where --socket goes")
        let api = Docs.section("## tokenctl", in: try Docs.lines("docs/API.md"))
        for (command, options) in commands {
            let uses = synopsis.filter { $0.hasPrefix("tokenctl \(command) ") || $0 == "tokenctl \(command)" }
            #expect(!uses.isEmpty, "the README's synopsis has no tokenctl \(command)")
            for option in options where !uses.contains(where: { $0.contains("--\(option)") }) {
                Issue.record("the README's synopsis of tokenctl \(command) lacks --\(option)")
            }
            #expect(
                api.contains { $0.hasPrefix("| `tokenctl \(command)") }, "docs/API.md's tokenctl table lacks \(command)"
            )
        }
    }
}

/// tokenctl's commands and their long options, from its own description of itself
/// (`--experimental-dump-help`), less what every command takes (`--socket`, `--help`).
enum TokenctlCommands {
    static func load() throws -> [(String, [String])] {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [
            bundle.appendingPathComponent("tokenctl"), Docs.root.appendingPathComponent(".build/debug/tokenctl"),
        ]
        let binary = try #require(
            candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }, "tokenctl is not built")
        let process = Process()
        process.executableURL = binary
        process.arguments = ["--experimental-dump-help"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let root = try #require(json["command"] as? [String: Any])
        let subcommands = root["subcommands"] as? [[String: Any]] ?? []
        return subcommands.compactMap { command in
            guard let name = command["commandName"] as? String, name != "help" else { return nil }
            let arguments = command["arguments"] as? [[String: Any]] ?? []
            let options = arguments.flatMap { argument in
                (argument["names"] as? [[String: Any]] ?? []).compactMap { name in
                    name["kind"] as? String == "long" ? name["name"] as? String : nil
                }
            }
            return (name, options.filter { !["socket", "help", "version"].contains($0) })
        }
    }
}
