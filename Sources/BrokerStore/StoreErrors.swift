import BrokerCore
import Crypto
import GRDB

/// Turns whatever a storage call threw into a `BrokerError` whose message holds no secret.
///
/// GRDB's `DatabaseError.description` can include the SQL and, if enabled, the bound arguments
/// (sealed values, lookup MACs). Only the SQLite result code and SQLite's own message (which
/// names tables, columns and constraints, never bound values) are kept.
func storeError(_ error: any Error, _ action: String) -> BrokerError {
    switch error {
    case let error as BrokerError:
        return error
    case let error as DatabaseError:
        var text = "\(action): SQLite error \(error.extendedResultCode.rawValue)"
        if let message = error.message, !message.isEmpty {
            text += " (\(message.prefix(200)))"
        }
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return BrokerError(.temporarilyUnavailable, text, cause: error)
        default:
            return BrokerError(.internalError, text, cause: error)
        }
    case is CryptoKitError:
        return BrokerError(.internalError, "\(action): a cryptographic operation failed", cause: error)
    default:
        // Other GRDB errors (row decoding, ...) describe row values: name only the type.
        return BrokerError(.internalError, "\(action): \(String(reflecting: type(of: error)))", cause: error)
    }
}
