import Locks

/// A small map from credential kind to a value, for the few credentials of one account: one
/// array of (kind code, value) pairs, in the order they were added, looked up by a linear scan.
///
/// Every account holds two of these (the machine's schedules and the read cache's answers), so
/// their size is paid 10,000 or 100,000 times. A dictionary of the same six or seven entries
/// costs two to four times as much: its buckets are at most three quarters full and grow by
/// doubling, each holding key and value inline. Here a kind takes four bytes (`KindCode`)
/// instead of a `CredentialKind`'s 24, the array grows one entry at a time (an account's kinds
/// are added once, at load), and a scan of seven codes is as fast as a hash.
package struct KindTable<Value> {
    private var entries: ContiguousArray<(code: KindCode, value: Value)> = []

    package init() {}

    private func position(of code: KindCode) -> Int? {
        entries.firstIndex { $0.code == code }
    }

    package subscript(kind: CredentialKind) -> Value? {
        get {
            // A lookup never interns: a site address nobody stored (a reader's typo, or a
            // hostile client's millionth made-up address) has no code and no entry.
            guard let code = KindCode(existing: kind) else { return nil }
            return position(of: code).map { entries[$0].value }
        }
        set {
            guard let value = newValue else {
                if let code = KindCode(existing: kind), let index = position(of: code) { entries.remove(at: index) }
                return
            }
            let code = KindCode(kind)
            if let index = position(of: code) {
                entries[index].value = value
            } else {
                // Room for exactly one more: an account's tables are filled once and then only
                // changed in place.
                entries.reserveCapacity(entries.count + 1)
                entries.append((code, value))
            }
        }
    }

    package var count: Int { entries.count }
    package var isEmpty: Bool { entries.isEmpty }
    package var keys: [CredentialKind] { entries.map(\.code.kind) }
    package var values: [Value] { entries.map(\.value) }

    /// Changes every value in place.
    package mutating func updateEach(_ body: (CredentialKind, inout Value) -> Void) {
        for index in entries.indices { body(entries[index].code.kind, &entries[index].value) }
    }
}

extension KindTable: Sequence {
    package func makeIterator() -> some IteratorProtocol<(kind: CredentialKind, value: Value)> {
        entries.lazy.map { (kind: $0.code.kind, value: $0.value) }.makeIterator()
    }
}

extension KindTable: Sendable where Value: Sendable {}

extension KindTable: Equatable where Value: Equatable {
    /// The same kinds with the same values, in any order.
    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.count == rhs.count
            && lhs.entries.allSatisfy { entry in
                rhs.entries.contains { $0.code == entry.code && $0.value == entry.value }
            }
    }
}

extension KindTable: ExpressibleByDictionaryLiteral {
    package init(dictionaryLiteral elements: (CredentialKind, Value)...) {
        for (kind, value) in elements { self[kind] = value }
    }
}

/// A credential kind in four bytes, for what every account holds per credential (its tables,
/// its entries in the machine's schedule). The fixed kinds have fixed codes; an RST site's
/// address is interned once per process when a credential is stored under it (a realm names a
/// handful), and its code is its place in that list. Lookups use `init?(existing:)`, which
/// interns nothing.
package struct KindCode: Hashable, Sendable {
    private let raw: UInt32

    /// The kind's code, interning a site address not seen before.
    package init(_ kind: CredentialKind) {
        if case .site(let address) = kind {
            raw = Self.firstSite + Self.sites.withLock { $0.code(address) }
        } else {
            raw = Self.fixed(kind)
        }
    }

    /// The kind's code if it has one: nil for a site address never stored.
    package init?(existing kind: CredentialKind) {
        if case .site(let address) = kind {
            guard let code = Self.sites.withLock({ $0.codes[address] }) else { return nil }
            raw = Self.firstSite + code
        } else {
            raw = Self.fixed(kind)
        }
    }

    private static func fixed(_ kind: CredentialKind) -> UInt32 {
        switch kind {
        case .scope(.skype): 0
        case .scope(.ssl): 1
        case .scope(.loginSkype): 2
        case .scope(.contacts): 3
        case .scope(.hotmail): 4
        case .skypetoken: 16
        case .uic: 17
        case .ticket: 18
        case .cookies: 19
        case .skylogin: 20
        case .site: preconditionFailure("a site's code is interned")
        }
    }

    package var kind: CredentialKind {
        switch raw {
        case 16: .skypetoken
        case 17: .uic
        case 18: .ticket
        case 19: .cookies
        case 20: .skylogin
        case 0: .scope(.skype)
        case 1: .scope(.ssl)
        case 2: .scope(.loginSkype)
        case 3: .scope(.contacts)
        case 4: .scope(.hotmail)
        default: .site(Self.sites.withLock { $0.addresses[Int(raw - Self.firstSite)] })
        }
    }

    private static let firstSite: UInt32 = 32
    private static let sites = LockedValue(SiteAddresses())

    private struct SiteAddresses: Sendable {
        var addresses: [String] = []
        var codes: [String: UInt32] = [:]

        mutating func code(_ address: String) -> UInt32 {
            if let code = codes[address] { return code }
            let code = UInt32(addresses.count)
            addresses.append(address)
            codes[address] = code
            return code
        }
    }
}
