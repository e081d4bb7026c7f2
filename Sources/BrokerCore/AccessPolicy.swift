/// The credentials of a process on the other end of the socket (SO_PEERCRED, SO_PEERGROUPS).
///
/// Plain values only, its supplementary groups included: a peer is read for every connection and
/// goes along with each of its reads, so it is copied without reference counting and dropped
/// without any release.
package struct Peer: Sendable, Equatable {
    /// Supplementary groups a peer has at most here: what one SO_PEERGROUPS read into 256 bytes
    /// returns. A process in more groups is judged without them (`PeerCredentials`), which can
    /// only deny.
    package static var groupCapacity: Int { GroupStorage.count }
    private typealias GroupStorage = InlineArray<64, UInt32>

    package var pid: Int32
    package var uid: UInt32
    package var gid: UInt32
    private var groupCount: Int
    private var groupStorage: GroupStorage

    package init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        groupCount = 0
        groupStorage = GroupStorage(repeating: 0)
    }

    /// `groups` beyond `groupCapacity` are left out.
    package init(pid: Int32, uid: UInt32, gid: UInt32, groups: [UInt32]) {
        self.init(pid: pid, uid: uid, gid: gid)
        for group in groups.prefix(Self.groupCapacity) {
            groupStorage[groupCount] = group
            groupCount += 1
        }
    }

    /// The supplementary groups, in the order given.
    package var groups: [UInt32] { (0..<groupCount).map { groupStorage[$0] } }

    /// The primary group or a supplementary group.
    package func isMember(of group: UInt32) -> Bool {
        if gid == group { return true }
        for index in 0..<groupCount where groupStorage[index] == group { return true }
        return false
    }

    package static func == (a: Peer, b: Peer) -> Bool {
        a.pid == b.pid && a.uid == b.uid && a.gid == b.gid && a.groups == b.groups
    }
}

/// One `[[access]]` entry: these uids and groups may read these accounts (`*` for all).
package struct AccessRule: Sendable, Equatable {
    package var accounts: [String]
    package var uids: [UInt32]
    package var groups: [UInt32]

    package init(accounts: [String], uids: [UInt32] = [], groups: [UInt32] = []) {
        self.accounts = accounts
        self.uids = uids
        self.groups = groups
    }

    func covers(_ account: AccountName) -> Bool { accounts.contains("*") || accounts.contains(account.rawValue) }

    func admits(_ peer: Peer) -> Bool { uids.contains(peer.uid) || groups.contains(where: peer.isMember(of:)) }
}

/// Who may do what on the socket. Root, the daemon's own user and members of an admin group may
/// do everything; token reads follow the access rules.
///
/// The daemon's own uid is an administrator of its own daemon, as ssh-agent trusts its owner: that
/// user can already read the state directory and the key file, so the socket gives it nothing it
/// does not have. It is an input (`daemonUID`), set by whoever starts the server, never read here.
package struct AccessPolicy: Sendable, Equatable {
    package var adminGroups: [UInt32]
    package var rules: [AccessRule]
    /// Uids besides root and the admin groups that may read `/metrics`.
    package var metricsUIDs: [UInt32]
    /// The uid the daemon runs as; nil when unknown (a policy not yet given to a server).
    package var daemonUID: UInt32?

    package init(
        adminGroups: [UInt32] = [], rules: [AccessRule] = [], metricsUIDs: [UInt32] = [], daemonUID: UInt32? = nil
    ) {
        self.adminGroups = adminGroups
        self.rules = rules
        self.metricsUIDs = metricsUIDs
        self.daemonUID = daemonUID
    }

    /// This policy in a daemon running as `uid`.
    package func running(as uid: UInt32) -> AccessPolicy {
        var policy = self
        policy.daemonUID = uid
        return policy
    }

    /// Whether any decision looks at supplementary groups; when none does, the server need not
    /// read them for each connection.
    package var usesGroups: Bool { !adminGroups.isEmpty || rules.contains { !$0.groups.isEmpty } }

    package func mayReadMetrics(_ peer: Peer) -> Bool { isAdmin(peer) || metricsUIDs.contains(peer.uid) }

    package func isAdmin(_ peer: Peer) -> Bool {
        peer.uid == 0 || peer.uid == daemonUID || adminGroups.contains(where: peer.isMember(of:))
    }

    package func mayRead(_ peer: Peer, account: AccountName) -> Bool {
        isAdmin(peer) || rules.contains { $0.covers(account) && $0.admits(peer) }
    }

    /// The uids and groups that may read an account, for status.
    package func readers(of account: AccountName) -> (uids: [UInt32], groups: [UInt32]) {
        let matching = rules.filter { $0.covers(account) }
        return (
            Array(Set(matching.flatMap(\.uids))).sorted(), Array(Set(matching.flatMap(\.groups) + adminGroups)).sorted()
        )
    }
}
