import BrokerCore
import Foundation
import NIOCore

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
    var gids: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

enum PeerCredentials {
    static let soPeerGroups: Int32 = 59

    /// Reads SO_PEERCRED (and SO_PEERGROUPS) of an accepted Unix-socket connection.
    static func read(_ channel: any Channel) -> EventLoopFuture<Peer?> {
        guard let provider = channel as? any SocketOptionProvider else { return channel.eventLoop.makeSucceededFuture(nil) }
        let cred: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(
            level: .init(rawValue: SOL_SOCKET), name: .init(rawValue: SO_PEERCRED))
        let groups: EventLoopFuture<PeerGroups> = provider.unsafeGetSocketOption(
            level: .init(rawValue: SOL_SOCKET), name: .init(rawValue: soPeerGroups))
        return cred.flatMap { cred in
            groups.map { raw -> [UInt32] in
                // Unused slots read as 0; the list is sorted, so a 0 past the first slot is padding.
                // A leading 0 is ambiguous (root's group or nothing) and is dropped: membership of
                // group 0 is never granted through a supplementary group.
                withUnsafeBytes(of: raw.gids) { Array($0.bindMemory(to: UInt32.self)) }.filter { $0 != 0 }
            }.recover { _ in [] }.map { groups -> Peer? in
                // The command name is read from /proc only when a denial is logged, not per connection.
                Peer(pid: cred.pid, uid: cred.uid, gid: cred.gid, groups: groups)
            }
        }.recover { _ in nil }
    }

    /// The peer's command name, for logs only.
    static func command(of pid: Int32) -> String? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8) else { return nil }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
