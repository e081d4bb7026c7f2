import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starting processes without Foundation's `Process`: with many tests starting processes at
/// once, its single monitor thread can block in `wait4` on a long-lived child and leave short
/// ones unreaped. Output goes to files, so nothing can fill a pipe.
public enum Spawn {
    /// Starts `arguments[0]` with its output appended to `output` (stdout and stderr) or to two files.
    public static func start(_ arguments: [String], stdin: String? = nil, stdout: String, stderr: String) throws
        -> pid_t
    {
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
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        let status = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard status == 0 else { throw SpawnError.failed(arguments[0], status) }
        return pid
    }

    public enum SpawnError: Error { case failed(String, Int32) }

    /// Waits for a child and returns its exit status (128 + signal when killed).
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Whether the child is still running (reaping it if it has ended).
    public static func isRunning(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == 0
    }
}
