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
            let code = KindCode(kind)
            return position(of: code).map { entries[$0].value }
        }
        set {
            let code = KindCode(kind)
            switch (position(of: code), newValue) {
            case (let index?, let value?):
                entries[index].value = value
            case (let index?, nil):
                entries.remove(at: index)
            case (nil, let value?):
                // Room for exactly one more: an account's tables are filled once and then only
                // changed in place.
                entries.reserveCapacity(entries.count + 1)
                entries.append((code, value))
            case (nil, nil):
                break
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
/// address is interned once per process (a realm names a handful), and its code is its place in
/// that list.
package struct KindCode: Hashable, Sendable {
    private let raw: UInt32

    package init(_ kind: CredentialKind) {
        switch kind {
        case .scope(let scope): raw = UInt32(Scope.allCases.firstIndex(of: scope)!)
        case .skypetoken: raw = 16
        case .uic: raw = 17
        case .ticket: raw = 18
        case .cookies: raw = 19
        case .skylogin: raw = 20
        case .site(let address): raw = Self.firstSite + Self.sites.withLock { $0.code(address) }
        }
    }

    package var kind: CredentialKind {
        switch raw {
        case 16: .skypetoken
        case 17: .uic
        case 18: .ticket
        case 19: .cookies
        case 20: .skylogin
        case Self.firstSite...: .site(Self.sites.withLock { $0.addresses[Int(raw - Self.firstSite)] })
        default: .scope(Scope.allCases[Int(raw)])
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
