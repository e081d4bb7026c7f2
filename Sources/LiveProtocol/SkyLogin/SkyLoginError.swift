/// What went wrong in the SkyLogin protocol. The messages never hold key material, hashes,
/// passwords or tokens.
package enum SkyLoginError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Wire data that does not parse: a truncated or oversized record, a bad CRC, a broken object list.
    case malformed(String)
    /// The credentials name a signing key that is not trusted.
    case untrustedKeyIndex(UInt32)
    /// The credentials do not open with the trusted key: bad padding or a hash mismatch.
    case badSignature(String)
    /// The credentials opened, but are not for this client: another modulus, another name, or expired.
    case credentialsMismatch(String)
    /// A caller's value that cannot be sent or used: a nonce too long, a name with a NUL, a bad key file.
    case invalidInput(String)
    /// libcrypto refused an operation.
    case crypto(String)

    package var description: String {
        switch self {
        case .malformed(let what): "malformed SkyLogin data: \(what)"
        case .untrustedKeyIndex(let index): "untrusted key index \(index)"
        case .badSignature(let what): "the credentials' signature does not verify: \(what)"
        case .credentialsMismatch(let what): "the credentials do not match: \(what)"
        case .invalidInput(let what): what
        case .crypto(let what): "libcrypto: \(what)"
        }
    }
}
