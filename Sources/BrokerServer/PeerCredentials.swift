import BrokerCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `struct ucred`, which Glibc's Swift module does not export.
struct UCred {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// Room for the peer's supplementary groups (SO_PEERGROUPS); the kernel sorts them.
struct PeerGroups {
    var gids:
        (
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64
        ) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

enum PeerCredentials {
    static let soPeerGroups: Int32 = 59

    /// Reads SO_PEERCRED (and, when asked, SO_PEERGROUPS) of an accepted Unix-socket connection.
    static func read(fd: Int32, groups wantGroups: Bool = true) -> Peer? {
        var cred = UCred()
        var length = socklen_t(MemoryLayout<UCred>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0 else { return nil }
        guard wantGroups else { return Peer(pid: cred.pid, uid: cred.uid, gid: cred.gid) }
        var raw = PeerGroups()
        var groupsLength = socklen_t(MemoryLayout<PeerGroups>.size)
        // More groups than fit (ERANGE) or none readable: judged without them, which can only deny.
        guard getsockopt(fd, SOL_SOCKET, soPeerGroups, &raw, &groupsLength) == 0 else {
            return Peer(pid: cred.pid, uid: cred.uid, gid: cred.gid)
        }
        // The kernel writes gid_t values; unused slots stay 0, and the list is sorted, so a 0 past
        // the first slot is padding. A leading 0 is ambiguous (root's group or nothing) and is
        // dropped: membership of group 0 is never granted through a supplementary group.
        let count = Int(groupsLength) / MemoryLayout<UInt32>.size
        let groups = withUnsafeBytes(of: raw.gids) { $0.bindMemory(to: UInt32.self).prefix(count).filter { $0 != 0 } }
        return Peer(pid: cred.pid, uid: cred.uid, gid: cred.gid, groups: groups)
    }

    /// The peer's command name, for logs only.
    static func command(of pid: Int32) -> String? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) else { return nil }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
