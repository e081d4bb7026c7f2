/// A small map from credential kind to a value, for the few credentials of one account: one
/// array of (kind, value) pairs, in the order they were added, looked up by a linear scan.
///
/// Every account holds two of these (the machine's schedules and the read cache's answers), so
/// their size is paid 10,000 or 100,000 times. A dictionary of the same six or seven entries
/// costs two to four times as much: its buckets are at most three quarters full and grow by
/// doubling, each holding key and value inline. The array here grows one entry at a time (an
/// account's kinds are added once, at load), and a scan of seven kinds is as fast as a hash.
package struct KindTable<Value> {
    private var entries: ContiguousArray<(kind: CredentialKind, value: Value)> = []

    package init() {}

    private func position(of kind: CredentialKind) -> Int? {
        entries.firstIndex { $0.kind == kind }
    }

    package subscript(kind: CredentialKind) -> Value? {
        get { position(of: kind).map { entries[$0].value } }
        set {
            switch (position(of: kind), newValue) {
            case (let index?, let value?):
                entries[index].value = value
            case (let index?, nil):
                entries.remove(at: index)
            case (nil, let value?):
                // Room for exactly one more: an account's tables are filled once and then only
                // changed in place.
                entries.reserveCapacity(entries.count + 1)
                entries.append((kind, value))
            case (nil, nil):
                break
            }
        }
    }

    package var count: Int { entries.count }
    package var isEmpty: Bool { entries.isEmpty }
    package var keys: [CredentialKind] { entries.map(\.kind) }
    package var values: [Value] { entries.map(\.value) }

    /// Changes every value in place.
    package mutating func updateEach(_ body: (CredentialKind, inout Value) -> Void) {
        for index in entries.indices { body(entries[index].kind, &entries[index].value) }
    }
}

extension KindTable: Sequence {
    package func makeIterator() -> some IteratorProtocol<(kind: CredentialKind, value: Value)> {
        entries.makeIterator()
    }
}

extension KindTable: Sendable where Value: Sendable {}

extension KindTable: Equatable where Value: Equatable {
    /// The same kinds with the same values, in any order.
    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.count == rhs.count && lhs.entries.allSatisfy { rhs[$0.kind] == $0.value }
    }
}

extension KindTable: ExpressibleByDictionaryLiteral {
    package init(dictionaryLiteral elements: (CredentialKind, Value)...) {
        for (kind, value) in elements { self[kind] = value }
    }
}
