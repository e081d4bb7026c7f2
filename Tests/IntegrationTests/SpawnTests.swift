import Foundation
import Testing

@testable import TestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The tests start daemons while other tests hold sockets open. A socket that leaks into a
/// long-lived child is not closed when its owner closes it: the peer then waits for an end of
/// file until that child exits. SwiftNIO's sockets are not close-on-exec, so `Spawn` must close
/// every inherited descriptor itself.
@Suite("Spawning test processes")
struct SpawnTests {
    @Test("a child gets standard input, output and error only, even of descriptors not marked close-on-exec")
    func noInheritedDescriptors() throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd > 2)
        defer { close(fd) }
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC == 0)

        let directory = try TemporaryDirectory()
        let output = directory.file("out")
        let script = "for n in 0 1 2 \(fd); do test -e /proc/$$/fd/$n && echo open $n || echo closed $n; done"
        let pid = try Spawn.start(["/bin/sh", "-c", script], stdout: output, stderr: output)
        #expect(Spawn.wait(pid) == 0)
        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(lines == ["open 0", "open 1", "open 2", "closed \(fd)"])
    }

    @Test("the environment given is laid over this process's, and a nil value removes a variable")
    func environment() throws {
        // A variable of this process that no shell sets by itself.
        let shellOwned: Set = ["PATH", "PWD", "OLDPWD", "SHLVL", "IFS", "PS1", "PS2", "PS4", "OPTIND", "_"]
        let inherited = try #require(
            ProcessInfo.processInfo.environment.keys.sorted().first {
                !shellOwned.contains($0) && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0 == "_") }
            })
        let directory = try TemporaryDirectory()
        let output = directory.file("out")
        let pid = try Spawn.start(
            ["/bin/sh", "-c", "echo \"${SPAWN_TEST_SET-unset} ${\(inherited)-unset} ${PATH:+inherited}\""],
            stdout: output, stderr: output, environment: ["SPAWN_TEST_SET": "yes", inherited: nil])
        #expect(Spawn.wait(pid) == 0)
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "yes unset inherited\n", "removed \(inherited)")
    }

    @Test("poll: nil while the child runs, its status once it has ended")
    func poll() async throws {
        let directory = try TemporaryDirectory()
        let pid = try Spawn.start(
            ["/bin/sh", "-c", "sleep 0.3; exit 7"], stdout: directory.file("out"), stderr: directory.file("out"))
        #expect(Spawn.poll(pid) == nil)
        var status: Int32?
        for _ in 0..<250 where status == nil {
            try await Task.sleep(for: .milliseconds(20))
            status = Spawn.poll(pid)
        }
        #expect(status == 7)
    }
}
