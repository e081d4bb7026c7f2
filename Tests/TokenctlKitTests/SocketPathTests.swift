import Testing

@testable import TokenctlKit

@Suite struct SocketPathTests {
    private func resolve(
        _ option: String? = nil, _ environment: [String: String] = [:], uid: UInt32 = 0, existing: Set<String> = []
    ) -> String {
        SocketPath.resolve(
            option: option, uid: uid, environment: { environment[$0] }, exists: { existing.contains($0) })
    }

    @Test func order() {
        let user = "/run/user/1000/tokenbroker/tokenbroker.sock"
        let all = ["TOKENBROKER_SOCKET": "/tmp/env.sock", "XDG_RUNTIME_DIR": "/run/user/1000"]
        #expect(resolve("/tmp/option.sock", all, existing: [user]) == "/tmp/option.sock")
        #expect(resolve(nil, all, existing: [user]) == "/tmp/env.sock")
        #expect(
            resolve(nil, ["TOKENBROKER_SOCKET": "", "XDG_RUNTIME_DIR": "/run/user/1000"], existing: [user]) == user)
        #expect(
            resolve(nil, ["XDG_RUNTIME_DIR": "/run/user/1000"], existing: [user, "/run/tokenbroker/tokenbroker.sock"])
                == "/run/tokenbroker/tokenbroker.sock")
        #expect(resolve(nil, ["XDG_RUNTIME_DIR": "/run/user/1000"]) == "/run/tokenbroker/tokenbroker.sock")
        #expect(
            resolve(nil, ["XDG_RUNTIME_DIR": ""], existing: ["/tokenbroker/tokenbroker.sock"])
                == "/run/tokenbroker/tokenbroker.sock")
    }

    @Test("an ordinary user: their own daemon's socket, under XDG_RUNTIME_DIR or /run/user/UID")
    func ordinaryUser() {
        let xdg = "/tmp/xdg/tokenbroker/tokenbroker.sock"
        // Nothing listening yet: the user's own socket, not the system one (a clearer error).
        #expect(resolve(nil, ["XDG_RUNTIME_DIR": "/tmp/xdg"], uid: 1000) == xdg)
        // No XDG_RUNTIME_DIR: /run/user/UID when that directory exists.
        #expect(
            resolve(nil, [:], uid: 1000, existing: ["/run/user/1000"]) == "/run/user/1000/tokenbroker/tokenbroker.sock"
        )
        // Neither: the system socket is all there is.
        #expect(resolve(nil, [:], uid: 1000) == "/run/tokenbroker/tokenbroker.sock")
        // A system daemon that is up wins.
        #expect(
            resolve(nil, ["XDG_RUNTIME_DIR": "/tmp/xdg"], uid: 1000, existing: ["/run/tokenbroker/tokenbroker.sock"])
                == "/run/tokenbroker/tokenbroker.sock")
    }
}
