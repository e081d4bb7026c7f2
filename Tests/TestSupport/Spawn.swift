import CShims
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starting processes without Foundation's `Process`: with many tests starting processes at
/// once, its single monitor thread can block in `wait4` on a long-lived child and leave short
/// ones unreaped. Output goes to files, so nothing can fill a pipe.
///
/// The child gets only its standard input, output and error. Everything else the test process
/// has open is closed at exec (`closefrom(3)`), whether or not it was marked close-on-exec:
/// SwiftNIO's sockets are not, and a socket that leaked into a long-lived daemon stays open
/// after its owner closes it. A client then waits for an end-of-file that comes only when the
/// unrelated daemon exits.
public enum Spawn {
    /// Starts `arguments[0]` with its output appended to `output` (stdout and stderr) or to two
    /// files, in this process's environment with `environment` laid over it.
    public static func start(
        _ arguments: [String], stdin: String? = nil, stdout: String, stderr: String,
        environment: [String: String?] = [:]
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let input = NSTemporaryDirectory() + "spawn-in-\(UUID().uuidString)"
        try (stdin ?? "").write(toFile: input, atomically: false, encoding: .utf8)
        defer { unlink(input) }
        posix_spawn_file_actions_addopen(&actions, 0, input, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        if stderr == stdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        }
        guard tokenbroker_spawn_closefrom(&actions, 3) == 0 else { throw SpawnError.failed(arguments[0], errno) }
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for entry in envp { free(entry) } }
        let status = posix_spawn(&pid, arguments[0], &actions, nil, argv, envp)
        guard status == 0 else { throw SpawnError.failed(arguments[0], status) }
        return pid
    }

    public enum SpawnError: Error { case failed(String, Int32) }

    /// Waits for a child and returns its exit status (128 + signal when killed). It blocks its
    /// thread: from a task, `finished(_:)`.
    @available(*, noasync, message: "blocks one of the few threads every test's tasks share: use Spawn.finished")
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return decode(status)
    }

    /// Waits for a child on a thread of its own and returns its exit status. The tasks of every
    /// test running at once share as many threads as the machine has cores; a task that blocked
    /// one of them in `waitpid` while a daemon shut down or a command ran would hold up the
    /// others, timed ones included.
    public static func finished(_ pid: pid_t) async -> Int32 {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: wait(pid)) }
            thread.start()
        }
    }

    /// Runs `body`, then stops the child with `signal` and waits for it (`finished`), whether
    /// `body` threw or not: a `defer` could only wait by blocking.
    public static func stopping<R>(
        _ pid: pid_t, with signal: Int32 = SIGTERM, after body: () async throws -> R
    ) async throws -> R {
        let result: Result<R, any Error>
        do { result = .success(try await body()) } catch { result = .failure(error) }
        kill(pid, signal)
        _ = await finished(pid)
        return try result.get()
    }

    /// The child's exit status if it has ended (reaping it), nil while it runs.
    public static func poll(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(pid, &status, WNOHANG) } while result < 0 && errno == EINTR
        return result == pid ? decode(status) : nil
    }

    /// Whether the child is still running (reaping it if it has ended).
    public static func isRunning(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }

    private static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}
