import BrokerCore

/// The `Location` of the final redirect to oauth20_desktop.srf: tokens or an OAuth error, both
/// in the fragment.
package enum DesktopRedirect: Sendable, Hashable {
    case tokens(access: Secret, expiresIn: Int, scope: String, refreshToken: Secret?, userID: String?)
    case error(code: String, description: String)

    /// Values are percent-decoded only (`+` is kept: tokens are base64). `token_type` and
    /// `state` are ignored. An error in the query (no fragment) is accepted too.
    package static func parse(_ location: String) throws(BrokerError) -> DesktopRedirect {
        let fragment: Substring?
        let beforeFragment: Substring
        if let hash = location.firstIndex(of: "#") {
            fragment = location[location.index(after: hash)...]
            beforeFragment = location[..<hash]
        } else {
            fragment = nil
            beforeFragment = location[...]
        }
        let query = beforeFragment.firstIndex(of: "?").map { beforeFragment[beforeFragment.index(after: $0)...] }

        let fields = fragment.map(parameters) ?? [:]
        if let result = try interpret(fields) { return result }
        // Some servers report errors in the query instead.
        if let query, let code = parameters(query)["error"], !code.isEmpty {
            return .error(code: code, description: parameters(query)["error_description"] ?? "")
        }
        if fragment == nil || fragment!.isEmpty {
            throw BrokerError(.upstreamError, "desktop redirect has no fragment")
        }
        throw BrokerError(.upstreamError, "desktop redirect fragment has neither access_token nor error")
    }

    private static func interpret(_ fields: [String: String]) throws(BrokerError) -> DesktopRedirect? {
        if let code = fields["error"], !code.isEmpty {
            return .error(code: code, description: fields["error_description"] ?? "")
        }
        guard let access = fields["access_token"], !access.isEmpty else { return nil }
        guard let raw = fields["expires_in"], let expiresIn = Int(raw), expiresIn >= 0 else {
            throw BrokerError(.upstreamError, "desktop redirect has no valid expires_in")
        }
        return .tokens(
            access: Secret(access),
            expiresIn: expiresIn,
            scope: fields["scope"] ?? "",
            refreshToken: fields["refresh_token"].flatMap { $0.isEmpty ? nil : Secret($0) },
            userID: fields["user_id"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// First occurrence of a key wins.
    private static func parameters(_ s: Substring) -> [String: String] {
        var result: [String: String] = [:]
        for segment in s.split(separator: "&") {
            let key: Substring
            let value: Substring
            if let eq = segment.firstIndex(of: "=") {
                key = segment[..<eq]
                value = segment[segment.index(after: eq)...]
            } else {
                key = segment
                value = ""
            }
            let name = percentDecode(key)
            if result[name] == nil { result[name] = percentDecode(value) }
        }
        return result
    }
}
