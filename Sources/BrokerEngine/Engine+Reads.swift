import BrokerCore
import Foundation
import Locks

extension BrokerEngine {
    /// The cache lookup: a memory read, no I/O, and not the machine's lock. Safe to call from an
    /// event loop.
    package func cachedRead(account: AccountName, kind: CredentialKind, minValid: TimeInterval) -> CachedRead {
        cache.lookup(CredentialKey(account: account, kind: kind), minValid: minValid, now: wallClock())
    }

    package func cacheMark() -> CacheMark? { cache.mark() }

    /// Appends the read counter and the read-duration histogram to the metrics' text (see
    /// `ReadCounts` and `ReadDurations`).
    package func emitReadMetrics(into buffer: inout [UInt8]) {
        metrics.reads.emit(into: &buffer)
        metrics.readDurations.emit(into: &buffer)
    }

    package func cacheGeneration() -> UInt64? { cache.generation() }

    package func cachedRead(account: AccountName, scope: Scope, minValid: TimeInterval) -> CachedRead {
        cachedRead(account: account, kind: .scope(scope), minValid: minValid)
    }

    package func token(account: AccountName, scope: Scope, minValid: TimeInterval = 0) async throws(BrokerError)
        -> ServedCredential
    {
        try await read(account: account, kind: .scope(scope), minValid: minValid)
    }

    /// A read that may wait: one cache lookup; when the credential is missing or nearly expired,
    /// the read waits for the attempt the machine runs at once (concurrent reads share it), up to
    /// `read_wait`, and is handed that attempt's result. After a failed attempt a credential that
    /// is still valid is served with its true expiry. An expired credential is never served.
    package func read(account: AccountName, kind: CredentialKind, minValid: TimeInterval = 0) async throws(BrokerError)
        -> ServedCredential
    {
        let key = CredentialKey(account: account, kind: kind)
        try ensureLoaded(account)
        switch cache.lookup(key, minValid: minValid, now: wallClock()) {
        case .fresh(let served): return served
        case .notFound:
            throw BrokerError(.notFound, "no account named \(account)", hint: "tokenctl accounts lists them")
        case .needsReauth(let reason):
            throw BrokerError(.needsReauth, "account \(account) needs a new sign-in: \(reason)", hint: "tokenctl login")
        case .unavailable:
            // Why, with its fix, from the machine (the cache keeps only which kinds).
            if let error = locked.withLock({ $0.machine.unavailable(key) }) { throw error }
        case .stale: break
        }
        let policy = configuration.policy
        let deadline = clock.now + .milliseconds(Int64(policy.readWait * 1000))
        while true {
            let remaining = deadline - clock.now
            guard remaining > .zero, let result = await waitForAttempt(key, minValid: minValid, timeout: remaining)
            else { break }
            switch result {
            case .refreshed(let credential):
                let left = credential.expiresAt.timeIntervalSince(wallClock())
                if left >= max(minValid, policy.safetyMargin) { return ServedCredential(key, credential) }
                // Refreshed just now and still short: the provider's lifetime is too short.
                throw BrokerError(
                    .temporarilyUnavailable,
                    "the provider issues \(kind.name) credentials valid for \(Int(credential.expiresAt.timeIntervalSince(credential.obtainedAt))) s, less than the \(Int(max(minValid, policy.safetyMargin))) s asked for"
                )
            case .failed(let error, let current, let final):
                if let current, Self.servable(current, minValid: minValid, now: wallClock()) {
                    return ServedCredential(key, current)
                }
                if final { throw error }
            }
        }
        let (current, lastError) = locked.withLock { locked in
            (locked.machine.credential(key), locked.machine.accounts[account]?.credentials[kind]?.lastError)
        }
        if let current, Self.servable(current, minValid: minValid, now: wallClock()) {
            return ServedCredential(key, current)
        }
        throw BrokerError(
            .temporarilyUnavailable,
            "no valid \(kind.name) for \(account) yet" + (lastError.map { ": \($0.message)" } ?? ""))
    }

    /// Not expired, and with at least what the client asked for left.
    static func servable(_ credential: Credential, minValid: TimeInterval, now: Date) -> Bool {
        let left = credential.expiresAt.timeIntervalSince(now)
        return left > 0 && left >= minValid
    }

    /// Registers the read with the machine (the credential becomes urgent) and waits for the
    /// result of its next attempt; nil when the time runs out first.
    private func waitForAttempt(_ key: CredentialKey, minValid: TimeInterval, timeout: Duration) async -> AttemptResult?
    {
        let id = locked.withLock { $0.waiters.makeID() }
        let now = wallClock()
        let result = await withTaskGroup(of: AttemptResult?.self) { group -> AttemptResult? in
            group.addTask {
                try? await self.clock.sleep(for: timeout)
                return nil
            }
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<AttemptResult?, Never>) in
                        let immediate = self.locked.withLock { locked -> AttemptResult?? in
                            if Task.isCancelled { return .some(nil) }
                            if let answer = locked.machine.wait(for: key, minValid: minValid, now: now) {
                                return .some(answer)
                            }
                            locked.waiters.add(key, id: id, continuation)
                            return nil
                        }
                        if let immediate {
                            continuation.resume(returning: immediate)
                        } else {
                            // The scheduler picks the urgent credential up at once.
                            self.wakeup.signal()
                        }
                    }
                } onCancel: {
                    self.locked.withLock { locked -> CheckedContinuation<AttemptResult?, Never>? in
                        guard let continuation = locked.waiters.remove(key, id: id) else { return nil }
                        locked.machine.stopWaiting(for: key)
                        return continuation
                    }?.resume(returning: nil)
                }
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        return result
    }

    /// The ssl-compact-ticket: `t=...` from the ssl.live.com token, or `t=...&p=` from RST.srf,
    /// whichever the account chose.
    package func ticket(account: AccountName, minValid: TimeInterval = 0) async throws(BrokerError) -> (
        ticket: String, method: TicketMethod, served: ServedCredential
    ) {
        try ensureLoaded(account)
        let (method, sites) = locked.withLock {
            ($0.machine.accounts[account]?.ticketMethod ?? .oauth, $0.machine.accounts[account]?.rstSites)
        }
        // An account of an `rst` realm: the ticket of the SSO site (messengerclear.live.com).
        if let sites {
            let kept = sites.filter(\.keepsTicket)
            let site =
                kept.first { $0.policy.lowercased() == RSTSite.messengerClear.policy.lowercased() } ?? kept.first
            guard let site else {
                throw BrokerError(.credentialUnavailable, "the realm of \(account) keeps no RST site ticket")
            }
            let served = try await read(account: account, kind: .site(site.key), minValid: minValid)
            return (served.credential.value.exposed, .rst, served)
        }
        switch method {
        case .oauth:
            let served = try await read(account: account, kind: .scope(.ssl), minValid: minValid)
            return ("t=" + served.credential.value.exposed, .oauth, served)
        case .rst:
            let served = try await read(account: account, kind: .ticket, minValid: minValid)
            return (served.credential.value.exposed, .rst, served)
        }
    }
}
