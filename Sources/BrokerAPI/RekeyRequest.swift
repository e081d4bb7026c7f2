/// `POST /v1/admin/rekey` (admin only): `{"key": "64 hex characters"}`.
public struct RekeyRequest: Codable, Sendable, Hashable, CustomStringConvertible {
    public var key: String

    public init(key: String) { self.key = key }

    public var description: String { "RekeyRequest(<redacted>)" }
}

public struct RekeyResult: Codable, Sendable, Hashable {
    /// The new key's id (16 hex digits).
    public var keyID: String
    public var resealed: Int
    /// The key file the daemon replaced with the new key; absent when the key came from a
    /// systemd credential, which must be replaced before the next restart.
    public var keyFile: String?

    public init(keyID: String, resealed: Int, keyFile: String?) {
        self.keyID = keyID
        self.resealed = resealed
        self.keyFile = keyFile
    }

    enum CodingKeys: String, CodingKey {
        case keyID = "key_id"
        case resealed
        case keyFile = "key_file"
    }
}
