import BrokerAPI
import BrokerCore
import Foundation
import Locks
import Synchronization

/// What reads are served from: the credentials the refresh machine published, formatted once,
/// behind a lock of their own. The cached read path takes only this lock, never the machine's.
package protocol CredentialCache: Sendable {
    /// One lookup: the credential if it has `max(safetyMargin, minValid)` left at `now`.
    func lookup(_ key: CredentialKey, minValid: TimeInterval, now: Date) -> CachedRead
    /// Carries out the machine's `publish` and `publishAccount` effects, and a new safety margin.
    func update(_ change: CacheChange)
    /// The generation and margin now (see `CredentialService.cacheMark()`); nil: no marks.
    func mark() -> CacheMark?
    /// The generation now, without the lock.
    func generation() -> UInt64?
}

extension CredentialCache {
    package func mark() -> CacheMark? { nil }
    package func generation() -> UInt64? { nil }
}

package enum CacheChange: Sendable {
    case credential(CredentialKey, ServedCredential?)
    case account(AccountName, AccountView?)
    case safetyMargin(TimeInterval)
    /// Every stored account is in: an account not in the cache does not exist. Until then a read
    /// of an account not in the cache takes the slow path, which loads it.
    case loaded
}

/// The daemon's cache: a dictionary by account under one mutex.
package final class ServedCache: CredentialCache {
    private struct Entry {
        var view: AccountView
        /// The credentials as published (the kind is the table's key: a `ServedCredential` is
        /// made per read, not kept).
        var served = KindTable<Credential>()
    }

    private struct Contents {
        var accounts: [AccountName: Entry] = [:]
        var safetyMargin: TimeInterval = 60
        var loaded = false
    }

    private let contents = LockedValue(Contents())
    /// Changed under the lock by every update, read without it: an answer made after a mark is
    /// the cache's answer for as long as the generation stays the mark's.
    private let currentGeneration = Atomic<UInt64>(0)

    package init() {}

    package func mark() -> CacheMark? {
        contents.withLock { contents in
            CacheMark(generation: currentGeneration.load(ordering: .acquiring), safetyMargin: contents.safetyMargin)
        }
    }

    package func generation() -> UInt64? { currentGeneration.load(ordering: .acquiring) }

    package func lookup(_ key: CredentialKey, minValid: TimeInterval, now: Date) -> CachedRead {
        contents.withLock { contents in
            guard let entry = contents.accounts[key.account] else { return contents.loaded ? .notFound : .stale }
            if entry.view.state == .needsReauth { return .needsReauth(entry.view.reason ?? "sign-in required") }
            if !entry.view.unavailable.isEmpty, entry.view.unavailable.contains(key.kind) { return .unavailable }
            if let credential = entry.served[key.kind],
                credential.expiresAt.timeIntervalSince(now) >= max(contents.safetyMargin, minValid)
            {
                return .fresh(ServedCredential(kind: key.kind, credential: credential))
            }
            return .stale
        }
    }

    package func update(_ change: CacheChange) {
        contents.withLock { contents in
            // Before the change is made: a reader that still sees the old generation may send
            // an answer made before it, as if its read came first; one that sees the new one
            // looks the cache up again, under this lock, after the change.
            currentGeneration.add(1, ordering: .releasing)
            switch change {
            case .credential(let key, let served):
                contents.accounts[key.account]?.served[key.kind] = served?.credential
            case .account(let name, let view?):
                if contents.accounts[name] == nil {
                    contents.accounts[name] = Entry(view: view)
                } else {
                    contents.accounts[name]?.view = view
                }
            case .account(let name, nil):
                contents.accounts[name] = nil
            case .safetyMargin(let margin):
                contents.safetyMargin = margin
            case .loaded:
                contents.loaded = true
            }
        }
    }
}

extension ServedCredential {
    package init(_ key: CredentialKey, _ credential: Credential) {
        self.init(kind: key.kind, credential: credential)
    }
}
