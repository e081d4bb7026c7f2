import Testing
import TokenctlKit

/// --socket, else $TOKENBROKER_SOCKET, else the system socket, else a user daemon's socket.
@Suite struct SocketPathTests {
    private func resolve(_ option: String? = nil, _ environment: [String: String] = [:], existing: Set<String> = [])
        -> String
    {
        SocketPath.resolve(option: option, environment: { environment[$0] }, exists: { existing.contains($0) })
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
}
