import BrokerAPI

/// The lines of `tokenctl events`: one per event, as it arrives.
package enum EventLine {
    /// For people: `TIME TYPE [ACCOUNT] [SCOPE or KIND] [STATE] [next TIME] [CODE][: MESSAGE]`,
    /// times as the daemon sent them (RFC 3339, UTC).
    ///
    ///     2026-11-27T14:00:00Z refreshed alice service::skype.com::MBI_SSL next 2026-11-27T14:45:00Z
    ///     2026-11-27T14:03:00Z needs_reauth alice service::ssl.live.com::MBI_SSL needs_reauth: the grant was revoked
    package static func text(_ event: ServerSentEvent) -> String {
        guard let data = event.decoded else { return oneLine("\(event.type) \(event.data)") }
        var parts = [data.at, event.type]
        if let account = data.account { parts.append(account) }
        if let what = data.scope ?? data.kind { parts.append(what) }
        if let state = data.state { parts.append(state) }
        if let next = data.nextRefreshAt { parts += ["next", next] }
        if let code = data.errorCode { parts.append(code) }
        var line = parts.joined(separator: " ")
        if let message = data.message { line += ": " + message }
        return oneLine(line)
    }

    /// With `--json`: the event's data, one JSON object, with its type (`event`) and id (`id`)
    /// first: `{"event":"needs_reauth","id":7,"account":"alice",...}`.
    package static func json(_ event: ServerSentEvent) -> String {
        var head = #"{"event":"# + quoted(event.type)
        if let id = event.id {
            head +=
                #","id":"#
                + (!id.isEmpty && id.utf8.count <= 18 && id.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
                    ? id : quoted(id))
        }
        let data = event.data
        guard data.hasPrefix("{"), data.hasSuffix("}"), !data.contains("\n") else {
            return head + #","data":"# + quoted(data) + "}"
        }
        let rest = data.dropFirst().drop(while: { $0 == " " })
        return head + (rest.hasPrefix("}") ? "" : ",") + rest
    }

    private static func quoted(_ text: String) -> String {
        (try? BrokerJSON.encode(text)).map { String(decoding: $0, as: UTF8.self) } ?? #""""#
    }

    /// A message from the identity provider could hold a line break; a line stays one line.
    private static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" || $0 == "\r" || $0 == "\r\n" ? " " : $0 })
    }
}
