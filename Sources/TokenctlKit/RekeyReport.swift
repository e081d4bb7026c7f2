import BrokerAPI

/// What `tokenctl rekey` reads and prints.
package enum RekeyReport {
    /// The new key from its line of input: blanks anywhere are dropped; 64 hex characters.
    package static func key(from line: String) throws(Failure) -> String {
        let key = String(line.filter { !$0.isWhitespace })
        guard key.utf8.count == 64, key.allSatisfy(\.isHexDigit) else {
            throw Failure("the new key must be 64 hex characters (32 bytes)", exitStatus: ExitStatus.usage)
        }
        return key
    }

    /// How many values were re-sealed, and where the new key must go.
    package static func result(_ result: RekeyResult) -> String {
        var text = "re-sealed \(result.resealed) values under key \(result.keyID)\n"
        if let file = result.keyFile {
            text += "the key file \(file) now holds the new key"
        } else {
            text += "replace the systemd credential tokenbroker.key with the new key before the next restart"
        }
        return text
    }
}
