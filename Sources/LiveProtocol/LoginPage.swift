/// What the sign-in flow needs from a login.live.com page: the authorize page (PPFT, where to
/// post) and the page answering the credentials POST when it is not a redirect (error text, or a
/// request for more interaction).
package struct LoginPage: Sendable, Hashable {
    /// The flow token from the hidden `PPFT` input, to post back with the credentials.
    package var ppft: String?
    /// The POST target from `urlPost` (or `urlPostMsa`), preferred over a hard-coded post.srf.
    package var urlPost: String?
    /// The page's `sErrTxt`, unescaped. Nil when absent or empty: normal pages carry `sErrTxt:''`.
    /// It may contain HTML (links); see `errorPlainText`.
    package var errorText: String?
    /// True when the page asks for more than a password (proofs, "account action required",
    /// identity confirmation, captcha). Meaningful on the answer to the credentials POST.
    package var hasInteractiveForm: Bool

    package init(ppft: String?, urlPost: String?, errorText: String?, hasInteractiveForm: Bool) {
        self.ppft = ppft
        self.urlPost = urlPost
        self.errorText = errorText
        self.hasInteractiveForm = hasInteractiveForm
    }

    /// `errorText` with tags removed, character references decoded and whitespace collapsed,
    /// fit for a log line or a CLI message.
    package var errorPlainText: String? {
        guard let errorText else { return nil }
        let text = HTMLText.plainText(errorText)
        return text.isEmpty ? nil : text
    }

    /// Never fails: a page with none of the markers yields a value with every field empty.
    package static func parse(_ html: String) -> LoginPage {
        let page = html.bytes
        let urlPost = [
            JavaScriptScanning.stringValues(forKey: "urlPost", in: page),
            JavaScriptScanning.stringValues(forKey: "urlPostMsa", in: page),
        ].joined().first { !$0.isEmpty }
        let errorText = JavaScriptScanning.stringValues(forKey: "sErrTxt", in: page)
            .first { !$0.trimmingASCIIWhitespace().isEmpty }
        return LoginPage(
            ppft: findPPFT(page),
            urlPost: urlPost,
            errorText: errorText,
            hasInteractiveForm: looksInteractive(page))
    }

    /// PPFT lives in the `sFTTag` JavaScript string (single-quoted, or JSON-escaped in newer
    /// pages); a plain HTML form is accepted too, for simpler servers.
    private static func findPPFT(_ page: [UInt8]) -> String? {
        for tag in JavaScriptScanning.stringValues(forKey: "sFTTag", in: page) {
            if let value = HTMLText.inputValue(named: "PPFT", in: tag.bytes) { return value }
        }
        return HTMLText.inputValue(named: "PPFT", in: page)
    }

    private static let interactiveMarkers: [[UInt8]] = [
        "/proofs/", "identity/confirm", "arruserproofs", "captcha",
    ].map(\.bytes)

    private static func looksInteractive(_ page: [UInt8]) -> Bool {
        let lower = page.asciiLowercased()
        if interactiveMarkers.contains(where: { lower.contains($0) }) { return true }
        // The "Account action required" form: id or name fmHF, whatever the quoting.
        let marker = "fmhf".bytes
        var from = 0
        while let at = lower.firstIndex(of: marker, from: from) {
            from = at + 1
            var i = at
            while i > 0, [UInt8.ascii("\""), .ascii("'"), .ascii("\\")].contains(lower[i - 1]) { i -= 1 }
            guard i > 0, lower[i - 1] == .ascii("=") else { continue }
            let prefix = lower[..<(i - 1)]
            if prefix.suffix(2).elementsEqual("id".utf8) || prefix.suffix(4).elementsEqual("name".utf8) {
                return true
            }
        }
        return false
    }
}

/// Just enough HTML for hidden inputs and error texts.
enum HTMLText {
    /// The decoded `value` of the first `<input>` whose `name` is `name`.
    static func inputValue(named name: String, in html: [UInt8]) -> String? {
        let lower = html.asciiLowercased()
        let open = "<input".bytes
        var from = 0
        while let at = lower.firstIndex(of: open, from: from) {
            from = at + open.count
            guard from < html.count, html[from].isASCIIWhitespace || html[from] == .ascii("/") else { continue }
            let attributes = readAttributes(html, from: from)
            if attributes.first(where: { $0.name.lowercased() == "name" })?.value == name {
                return attributes.first(where: { $0.name.lowercased() == "value" })?.value
            }
        }
        return nil
    }

    /// Reads `name="value"` pairs (quoted either way, or bare) up to the tag's `>`.
    static func readAttributes(_ b: [UInt8], from start: Int) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        var i = start
        while i < b.count {
            while i < b.count && (b[i].isASCIIWhitespace || b[i] == .ascii("/")) { i += 1 }
            guard i < b.count, b[i] != .ascii(">") else { break }
            let nameStart = i
            while i < b.count, !b[i].isASCIIWhitespace, b[i] != .ascii("="), b[i] != .ascii(">"), b[i] != .ascii("/") {
                i += 1
            }
            let name = String(utf8Bytes: b[nameStart..<i])
            while i < b.count && b[i].isASCIIWhitespace { i += 1 }
            guard i < b.count, b[i] == .ascii("=") else {
                result.append((name, ""))
                continue
            }
            i += 1
            while i < b.count && b[i].isASCIIWhitespace { i += 1 }
            guard i < b.count else { break }
            let valueStart: Int
            let valueEnd: Int
            if b[i] == .ascii("\"") || b[i] == .ascii("'") {
                let quote = b[i]
                valueStart = i + 1
                var j = valueStart
                while j < b.count && b[j] != quote { j += 1 }
                valueEnd = j
                i = Swift.min(j + 1, b.count)
            } else {
                valueStart = i
                while i < b.count, !b[i].isASCIIWhitespace, b[i] != .ascii(">") { i += 1 }
                // A bare value directly followed by `/>` ends before the slash.
                valueEnd = (i < b.count && b[i] == .ascii(">") && i > valueStart && b[i - 1] == .ascii("/")) ? i - 1 : i
            }
            result.append((name, String(utf8Bytes: decodeCharacterReferences(b[valueStart..<valueEnd]))))
        }
        return result
    }

    /// Drops tags, decodes references and collapses whitespace.
    static func plainText(_ html: String) -> String {
        var out: [UInt8] = []
        var inTag = false
        for c in html.utf8 {
            if inTag {
                if c == .ascii(">") { inTag = false }
            } else if c == .ascii("<") {
                inTag = true
            } else {
                out.append(c)
            }
        }
        let decoded = decodeCharacterReferences(out[...])
        var collapsed: [UInt8] = []
        var pendingSpace = false
        for c in decoded {
            if c.isASCIIWhitespace || c == 0x0B {
                pendingSpace = !collapsed.isEmpty
            } else {
                if pendingSpace { collapsed.append(.ascii(" ")) }
                pendingSpace = false
                collapsed.append(c)
            }
        }
        return String(utf8Bytes: collapsed)
    }
}
