/// What can go wrong talking to the daemon. No case ever carries token material.
public enum BrokerClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No connection: the socket is missing, refuses, is not accessible, or the daemon gave
    /// no answer in time.
    case unreachable(path: String, reason: String)
    /// The daemon answered with an error body (or a non-2xx status without one).
    case api(status: Int, code: String, message: String, hint: String?)
    /// The answer was not HTTP/1.1 or not the JSON the API promises.
    case protocolError(String)

    public var description: String {
        switch self {
        case .unreachable(let path, let reason):
            "cannot reach tokenbrokerd at \(path): \(reason)"
        case .api(_, let code, let message, _):
            "\(message) (\(code))"
        case .protocolError(let detail):
            "unexpected answer from tokenbrokerd: \(detail)"
        }
    }

    /// The API error code, for `.api`.
    public var code: String? {
        if case .api(_, let code, _, _) = self { return code }
        return nil
    }

    /// The daemon's hint, for `.api`.
    public var hint: String? {
        switch self {
        case .api(_, _, _, let hint): hint
        case .unreachable, .protocolError: nil
        }
    }
}
