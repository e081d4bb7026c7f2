import BrokerCore
import Crypto
import Foundation
import Testing

@testable import BrokerStore

@Suite("Concurrency")
struct StoreConcurrencyTests {
    @Test("commits from many tasks at once all land; readers see consistent accounts meanwhile")
    func concurrentCommits() async throws {
        try await withTemporaryDirectory { dir in
            let store = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            defer { try? store.close() }
            let accounts = (0..<8).map { name("concurrent-\($0)") }
            for account in accounts {
                try store.createAccount(
                    name: account, realm: "live", login: "\(account.rawValue)@example.com",
                    refreshToken: Secret("RT-\(account.rawValue)-initial"), accessTokens: [], password: nil,
                    cookies: nil)
            }
            let rounds = 5
            try await withThrowingTaskGroup(of: Void.self) { group in
                // One task per (account, scope), each committing its rounds in order.
                for account in accounts {
                    for scope in Scope.allCases {
                        group.addTask {
                            for round in 0..<rounds {
                                try store.commitRefresh(
                                    account: account,
                                    accessToken: token("AT-\(account.rawValue)-\(scope.alias)-\(round)", scope),
                                    rotatedRefreshToken: Secret("RT-\(account.rawValue)-\(scope.alias)-\(round)"))
                            }
                        }
                    }
                }
                for _ in 0..<4 {
                    group.addTask {
                        for _ in 0..<20 {
                            let all = try store.loadAll()
                            #expect(all.count == accounts.count)
                        }
                    }
                }
                try await group.waitForAll()
            }
            for account in accounts {
                let credentials = try store.credentials(for: account)
                #expect(credentials.accessTokens.count == Scope.allCases.count)
                for scope in Scope.allCases {
                    #expect(
                        credentials.accessTokens[scope]?.value
                            == Secret("AT-\(account.rawValue)-\(scope.alias)-\(rounds - 1)"))
                }
                let rotated = Set(
                    Scope.allCases.flatMap { scope in
                        (0..<rounds).map { Secret("RT-\(account.rawValue)-\(scope.alias)-\($0)") }
                    })
                #expect(credentials.refreshToken.map(rotated.contains) == true)
            }
        }
    }
}
