/// A small blocking client for the daemon's socket: HTTP/1.1 over AF_UNIX, one connection
/// per request (`Connection: close`). No Foundation networking, no event loop: a call is a
/// connect, one send, and reads until the answer is whole.
public struct BrokerClient: Sendable {
    public let socketPath: String
    /// The longest a whole call may take, connecting included.
    public let timeout: Duration

    public init(socketPath: String, timeout: Duration = .seconds(30)) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    // MARK: - The API

    /// `GET /v1/health`.
    public func health() throws(BrokerClientError) -> HealthResponse {
        try call("GET", "/v1/health")
    }

    /// `GET /v1/realms`.
    public func realms() throws(BrokerClientError) -> [RealmInfo] {
        try call("GET", "/v1/realms", as: RealmsResponse.self).realms
    }

    /// `GET /v1/accounts`.
    public func accounts() throws(BrokerClientError) -> [AccountSummary] {
        try call("GET", "/v1/accounts", as: AccountsResponse.self).accounts
    }

    /// `GET /v1/accounts/{name}`.
    public func account(_ name: String) throws(BrokerClientError) -> AccountDetail {
        try call("GET", Self.accountPath(name))
    }

    /// `GET /v1/accounts/{name}/token?scope=S[&min_valid=SECONDS]`.
    /// - Parameters:
    ///   - scope: the full scope name or an alias (`skype`, `ssl`, `login-skype`, `contacts`, `hotmail`).
    ///   - minValid: the token must stay valid at least this many seconds; the daemon
    ///     refreshes first when the cached one would not.
    public func token(
        account: String, scope: String = "skype", minValid: Int? = nil
    ) throws(BrokerClientError) -> TokenResponse {
        try call("GET", Self.tokenPath(account: account, scope: scope, minValid: minValid))
    }

    /// `GET /v1/accounts/{name}/skypetoken`.
    public func skypetoken(account: String, minValid: Int? = nil) throws(BrokerClientError) -> SkypetokenResult {
        try call("GET", Self.credentialPath(account, "skypetoken", minValid: minValid))
    }

    /// `GET /v1/accounts/{name}/uic`.
    /// `GET /v1/accounts/{name}/uic[?nonce=N | ?method=skylogin]`.
    public func uic(account: String, minValid: Int? = nil, nonce: String? = nil, method: String? = nil)
        throws(BrokerClientError) -> UICResult
    {
        guard nonce != nil || method != nil else {
            return try call("GET", Self.credentialPath(account, "uic", minValid: minValid))
        }
        var query: [String] = []
        if let nonce { query.append("nonce=" + PercentEncoding.queryValue(nonce)) }
        if let method { query.append("method=" + PercentEncoding.queryValue(method)) }
        if let minValid { query.append("min_valid=\(minValid)") }
        return try call("GET", Self.accountPath(account) + "/uic?" + query.joined(separator: "&"))
    }

    /// `GET /v1/accounts/{name}/ticket`.
    public func ticket(account: String, minValid: Int? = nil) throws(BrokerClientError) -> TicketResult {
        try call("GET", Self.credentialPath(account, "ticket", minValid: minValid))
    }

    /// `GET /v1/accounts/{name}/ticket?site=S`: one RST site's ticket (accounts of `rst` realms).
    public func ticket(account: String, site: String, minValid: Int? = nil) throws(BrokerClientError) -> TicketResult {
        var path = Self.accountPath(account) + "/ticket?site=" + PercentEncoding.queryValue(site)
        if let minValid { path += "&min_valid=\(minValid)" }
        return try call("GET", path)
    }

    /// `GET /v1/accounts/{name}/sso?nonce=N[&trid=T][&guid=G][&policy=P]`.
    public func sso(
        account: String, nonce: String, trid: Int? = nil, guid: String? = nil, policy: String? = nil,
        minValid: Int? = nil
    ) throws(BrokerClientError) -> SSOResult {
        var path = Self.accountPath(account) + "/sso?nonce=" + PercentEncoding.queryValue(nonce)
        if let trid { path += "&trid=\(trid)" }
        if let guid { path += "&guid=" + PercentEncoding.queryValue(guid) }
        if let policy { path += "&policy=" + PercentEncoding.queryValue(policy) }
        if let minValid { path += "&min_valid=\(minValid)" }
        return try call("GET", path)
    }

    /// `GET /v1/accounts/{name}/passport14?challenge=C`.
    public func passport14(account: String, challenge: String) throws(BrokerClientError) -> Passport14Result {
        try call("GET", Self.accountPath(account) + "/passport14?challenge=" + PercentEncoding.queryValue(challenge))
    }

    /// `GET /v1/accounts/{name}/web-ticket`.
    public func webTicket(account: String, minValid: Int? = nil) throws(BrokerClientError) -> WebTicketResult {
        try call("GET", Self.credentialPath(account, "web-ticket", minValid: minValid))
    }

    /// `GET /v1/accounts/{name}/ath?method=...[&trid=N]`.
    public func ath(
        account: String, method: String, trid: Int? = nil, minValid: Int? = nil, nonce: String? = nil
    ) throws(BrokerClientError) -> ATHResult {
        var path = Self.accountPath(account) + "/ath?method=" + PercentEncoding.queryValue(method)
        if let trid { path += "&trid=\(trid)" }
        if let nonce { path += "&nonce=" + PercentEncoding.queryValue(nonce) }
        if let minValid { path += "&min_valid=\(minValid)" }
        return try call("GET", path)
    }

    /// `POST /v1/admin/rekey` (admin only).
    public func rekey(hexKey: String) throws(BrokerClientError) -> RekeyResult {
        let body: [UInt8]
        do { body = try BrokerJSON.encode(RekeyRequest(key: hexKey)) } catch {
            throw .protocolError("cannot encode the rekey request")
        }
        return try call("POST", "/v1/admin/rekey", body: body)
    }

    /// `POST /v1/challenge`.
    public func challenge(_ request: ChallengeRequest) throws(BrokerClientError) -> ChallengeResult {
        let body: [UInt8]
        do { body = try BrokerJSON.encode(request) } catch {
            throw .protocolError("cannot encode the challenge request")
        }
        return try call("POST", "/v1/challenge", body: body)
    }

    static func credentialPath(_ account: String, _ endpoint: String, minValid: Int?) -> String {
        accountPath(account) + "/" + endpoint + (minValid.map { "?min_valid=\($0)" } ?? "")
    }

    /// `POST /v1/accounts` (admin only). Answers the new account's detail.
    public func enroll(_ request: EnrollRequest) throws(BrokerClientError) -> AccountDetail {
        let body: [UInt8]
        do {
            body = try BrokerJSON.encode(request)
        } catch {
            throw .protocolError("cannot encode the enrollment request")
        }
        return try call("POST", "/v1/accounts", body: body)
    }

    /// `DELETE /v1/accounts/{name}` (admin only): the daemon forgets every secret of it.
    public func logout(_ name: String) throws(BrokerClientError) -> DeleteResponse {
        try call("DELETE", Self.accountPath(name))
    }

    // MARK: - Paths

    static func accountPath(_ name: String) -> String {
        "/v1/accounts/" + PercentEncoding.pathSegment(name)
    }

    static func tokenPath(account: String, scope: String, minValid: Int?) -> String {
        var path = accountPath(account) + "/token?scope=" + PercentEncoding.queryValue(scope)
        if let minValid { path += "&min_valid=\(minValid)" }
        return path
    }

    // MARK: - HTTP

    /// Sends one request and returns the status and the body, whatever the status.
    /// - Parameters:
    ///   - path: the request target, already percent-encoded, e.g. `/v1/health`.
    ///   - body: sent as `application/json` with its Content-Length.
    public func request(
        method: String, path: String, body: [UInt8]? = nil
    ) throws(BrokerClientError) -> (status: Int, body: [UInt8]) {
        let response = try exchange(method: method, path: path, body: body)
        return (response.status, response.body)
    }

    /// Sends a request; decodes a 2xx answer as `R`, turns any other into `.api`.
    private func call<R: Decodable>(
        _ method: String, _ path: String, body: [UInt8]? = nil, as type: R.Type = R.self
    ) throws(BrokerClientError) -> R {
        let response = try exchange(method: method, path: path, body: body)
        guard (200...299).contains(response.status) else {
            throw BrokerClientError(status: response.status, body: response.body, reason: response.reason)
        }
        do {
            return try BrokerJSON.decode(R.self, from: response.body)
        } catch {
            throw .protocolError(
                "the answer to \(method) \(path) is not a valid \(R.self): "
                    + BrokerJSON.describe(decodingError: error))
        }
    }

    private func exchange(
        method: String, path: String, body: [UInt8]?
    ) throws(BrokerClientError) -> HTTPResponse {
        let message = try Self.requestBytes(method: method, path: path, body: body)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        let socket = try UnixSocket(connectingTo: socketPath, deadline: deadline)
        let sentWhole = try socket.sendAll(message)

        var received: [UInt8] = []
        received.reserveCapacity(4096)
        do {
            while true {
                let count = try socket.receive(into: &received)
                if case .complete(let response) = try HTTPResponseParser.parse(
                    received, atEOF: count == 0, method: method)
                {
                    return response
                }
            }
        } catch {
            if !sentWhole && received.isEmpty {
                throw .protocolError("the daemon closed the connection before reading the whole request")
            }
            throw error
        }
    }

    static func requestBytes(
        method: String, path: String, body: [UInt8]?
    ) throws(BrokerClientError) -> [UInt8] {
        guard !method.isEmpty, method.utf8.allSatisfy({ (0x41...0x5A).contains($0) }) else {
            throw .protocolError("invalid request method")
        }
        guard path.hasPrefix("/"), path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .protocolError("invalid request path (it must start with / and be percent-encoded)")
        }
        var head = "\(method) \(path) HTTP/1.1\r\n"
        head += "Host: localhost\r\n"
        head += "User-Agent: tokenbroker-client/\(BrokerDefaults.version)\r\n"
        head += "Accept: \(BrokerDefaults.contentType)\r\n"
        head += "Connection: close\r\n"
        if let body {
            head += "Content-Type: \(BrokerDefaults.contentType)\r\n"
            head += "Content-Length: \(body.count)\r\n"
        } else if method == "POST" || method == "PUT" || method == "PATCH" {
            head += "Content-Length: 0\r\n"
        }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if let body { bytes += body }
        return bytes
    }
}

extension BrokerClientError {
    /// The error for a non-2xx answer: the `error` of its body, or, when the body is no API
    /// error (say, from a proxy), the code that fits the status.
    public init(status: Int, body: [UInt8], reason: String = "") {
        if let answer = try? BrokerJSON.decode(ErrorResponse.self, from: body) {
            self = .api(
                status: status, code: answer.error.code, message: answer.error.message,
                hint: answer.error.hint)
            return
        }
        let code: String =
            switch status {
            case 400: "bad_request"
            case 401: "needs_reauth"
            case 403: "forbidden"
            case 404: "not_found"
            case 405: "method_not_allowed"
            case 409: "conflict"
            case 413: "payload_too_large"
            case 429: "rate_limited"
            case 502, 504: "upstream_error"
            case 503: "temporarily_unavailable"
            default: "internal_error"
            }
        let phrase = reason.isEmpty ? "" : " \(reason)"
        self = .api(
            status: status, code: code, message: "the daemon answered HTTP \(status)\(phrase)", hint: nil)
    }
}

/// Percent-encoding for the two places user strings go: a path segment and a query value.
enum PercentEncoding {
    /// Keeps unreserved characters and `@ : +` (all legal in a path segment, RFC 3986 §3.3),
    /// so `/v1/accounts/alice@example.com` stays readable.
    static func pathSegment(_ text: String) -> String {
        // "." and ".." would be read as dot-segments.
        if text == "." || text == ".." { return String(repeating: "%2E", count: text.count) }
        return encode(text) {
            isUnreserved($0) || $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "+")
        }
    }

    /// Keeps unreserved characters and `@ : /`; encodes `+ & = #` and the rest, so form
    /// decoders read the value back unchanged.
    static func queryValue(_ text: String) -> String {
        encode(text) {
            isUnreserved($0) || $0 == UInt8(ascii: "@") || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "/")
        }
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    private static func encode(_ text: String, keeping keep: (UInt8) -> Bool) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if keep(byte) {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
