import BrokerCore
import CShims
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Process hygiene for a daemon that holds secrets: no core dumps, no ptrace by peers of the
/// same uid, and no files that others could change under it.
package enum Hygiene {
    /// PR_SET_DUMPABLE off (no core dumps, /proc/PID/mem closed to same-uid processes), a zero
    /// core-size limit, and umask 077.
    package static func harden() {
        _ = tokenbroker_set_dumpable(0)
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none)
        umask(0o077)
    }

    /// Whether the process is dumpable (for tests and diagnostics).
    package static var isDumpable: Bool { tokenbroker_get_dumpable() != 0 }

    /// Refuses paths that exist and that users other than the owner (or root) could write:
    /// group- or world-writable, or owned by another non-root user. Missing paths are fine.
    package static func refuseWritableByOthers(_ paths: [String]) throws(BrokerError) {
        let me = geteuid()
        for path in paths {
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFLNK {
                guard stat(path, &info) == 0 else { continue }
            }
            if info.st_mode & 0o022 != 0 {
                throw BrokerError(
                    .internalError,
                    "\(path) is writable by others (mode \(String(info.st_mode & 0o777, radix: 8))); refusing to start",
                    hint: "chmod go-w \(path)")
            }
            if info.st_uid != me && info.st_uid != 0 {
                throw BrokerError(
                    .internalError,
                    "\(path) belongs to uid \(info.st_uid), not to this daemon's uid \(me) or root; refusing to start")
            }
        }
    }
}
