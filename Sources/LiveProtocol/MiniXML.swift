/// A small XML reader for the SOAP answers of RST.srf: elements, attributes, text, CDATA and the
/// predefined and numeric character references. No DTDs, no entity expansion, no namespace
/// resolution: lookups go by local name, because servers differ in their prefixes.
struct MiniXML {
    struct Element: Sendable {
        /// The qualified name as written, e.g. `wst:LifeTime`.
        var name: String
        var attributes: [(name: String, value: String)]
        var children: [Element]
        /// The element's own text (children's text excluded), references decoded.
        var text: String

        var localName: Substring {
            if let colon = name.lastIndex(of: ":") { return name[name.index(after: colon)...] }
            return name[...]
        }

        var trimmedText: String { text.trimmingASCIIWhitespace() }

        /// An attribute by local name (`Id` matches `wsu:Id`).
        func attribute(_ local: String) -> String? {
            attributes.first { attr in
                let n = attr.name
                let l = n.lastIndex(of: ":").map { n[n.index(after: $0)...] } ?? n[...]
                return l == local
            }?.value
        }

        func child(_ local: String) -> Element? { children.first { $0.localName == local } }

        func children(_ local: String) -> [Element] { children.filter { $0.localName == local } }

        /// Depth-first, document order; the element itself is not considered.
        func firstDescendant(where match: (Element) -> Bool) -> Element? {
            for c in children {
                if match(c) { return c }
                if let found = c.firstDescendant(where: match) { return found }
            }
            return nil
        }

        func firstDescendant(_ local: String) -> Element? { firstDescendant { $0.localName == local } }

        /// Every descendant matching, not looking inside a match.
        func descendants(_ local: String) -> [Element] {
            var out: [Element] = []
            for c in children {
                if c.localName == local { out.append(c) } else { out.append(contentsOf: c.descendants(local)) }
            }
            return out
        }
    }

    struct SyntaxError: Error, Sendable {
        var reason: String
        var offset: Int
    }

    /// Deeper documents are refused: SOAP answers nest about ten levels.
    static let maxDepth = 256

    /// Parses a whole document and returns its root element.
    static func parse(_ text: String) throws(SyntaxError) -> Element {
        let b = text.bytes
        var i = 0
        var stack: [(element: Element, text: [UInt8])] = []
        var root: Element? = nil

        func fail(_ reason: String) -> SyntaxError { SyntaxError(reason: reason, offset: i) }

        // Skip a UTF-8 byte order mark.
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }

        while i < b.count {
            guard b[i] == .ascii("<") else {
                // Text: up to the next '<'.
                let start = i
                while i < b.count && b[i] != .ascii("<") { i += 1 }
                if stack.isEmpty {
                    guard b[start..<i].allSatisfy(\.isASCIIWhitespace) else {
                        throw fail("text outside the root element")
                    }
                } else {
                    stack[stack.count - 1].text.append(contentsOf: decodeCharacterReferences(b[start..<i]))
                }
                continue
            }
            if b[i...].starts(with: "<?".utf8) {
                guard let end = b.firstIndex(of: "?>".bytes, from: i + 2) else {
                    throw fail("unterminated processing instruction")
                }
                i = end + 2
            } else if b[i...].starts(with: "<!--".utf8) {
                guard let end = b.firstIndex(of: "-->".bytes, from: i + 4) else { throw fail("unterminated comment") }
                i = end + 3
            } else if b[i...].starts(with: "<![CDATA[".utf8) {
                guard let end = b.firstIndex(of: "]]>".bytes, from: i + 9) else { throw fail("unterminated CDATA") }
                guard !stack.isEmpty else { throw fail("CDATA outside the root element") }
                stack[stack.count - 1].text.append(contentsOf: b[(i + 9)..<end])
                i = end + 3
            } else if b[i...].starts(with: "<!".utf8) {
                // A DOCTYPE: skipped, never interpreted.
                guard stack.isEmpty, root == nil else { throw fail("declaration inside the document") }
                guard let end = b.firstIndex(of: [.ascii(">")], from: i + 2) else {
                    throw fail("unterminated declaration")
                }
                i = end + 1
            } else if i + 1 < b.count, b[i + 1] == .ascii("/") {
                // End tag.
                let nameStart = i + 2
                var j = nameStart
                while j < b.count, !b[j].isASCIIWhitespace, b[j] != .ascii(">") { j += 1 }
                let name = String(utf8Bytes: b[nameStart..<j])
                while j < b.count && b[j].isASCIIWhitespace { j += 1 }
                guard j < b.count, b[j] == .ascii(">") else { throw fail("unterminated end tag") }
                guard let open = stack.popLast() else { throw fail("end tag without start tag") }
                guard open.element.name == name else { throw fail("mismatched end tag") }
                i = j + 1
                var finished = open.element
                finished.text = String(utf8Bytes: open.text)
                if stack.isEmpty {
                    root = finished
                } else {
                    stack[stack.count - 1].element.children.append(finished)
                }
            } else {
                // Start tag.
                guard root == nil else { throw fail("content after the root element") }
                let nameStart = i + 1
                var j = nameStart
                while j < b.count, !b[j].isASCIIWhitespace, b[j] != .ascii(">"), b[j] != .ascii("/") { j += 1 }
                guard j > nameStart else { throw fail("empty element name") }
                let name = String(utf8Bytes: b[nameStart..<j])
                var attributes: [(name: String, value: String)] = []
                var selfClosing = false
                while true {
                    while j < b.count && b[j].isASCIIWhitespace { j += 1 }
                    guard j < b.count else { throw fail("unterminated start tag") }
                    if b[j] == .ascii(">") {
                        j += 1
                        break
                    }
                    if b[j] == .ascii("/") {
                        guard j + 1 < b.count, b[j + 1] == .ascii(">") else { throw fail("stray '/' in start tag") }
                        selfClosing = true
                        j += 2
                        break
                    }
                    let attrStart = j
                    while j < b.count, !b[j].isASCIIWhitespace, b[j] != .ascii("="), b[j] != .ascii(">"),
                        b[j] != .ascii("/")
                    {
                        j += 1
                    }
                    let attrName = String(utf8Bytes: b[attrStart..<j])
                    while j < b.count && b[j].isASCIIWhitespace { j += 1 }
                    guard j < b.count, b[j] == .ascii("="), !attrName.isEmpty else {
                        throw fail("attribute without value")
                    }
                    j += 1
                    while j < b.count && b[j].isASCIIWhitespace { j += 1 }
                    guard j < b.count, b[j] == .ascii("\"") || b[j] == .ascii("'") else {
                        throw fail("unquoted attribute")
                    }
                    let quote = b[j]
                    let valueStart = j + 1
                    guard let valueEnd = b.firstIndex(of: [quote], from: valueStart) else {
                        throw fail("unterminated attribute")
                    }
                    attributes.append(
                        (attrName, String(utf8Bytes: decodeCharacterReferences(b[valueStart..<valueEnd]))))
                    j = valueEnd + 1
                }
                i = j
                let element = Element(name: name, attributes: attributes, children: [], text: "")
                if selfClosing {
                    if stack.isEmpty { root = element } else { stack[stack.count - 1].element.children.append(element) }
                } else {
                    guard stack.count < maxDepth else { throw fail("document nested too deeply") }
                    stack.append((element, []))
                }
            }
        }
        guard stack.isEmpty else { throw fail("unclosed element") }
        guard let root else { throw fail("no root element") }
        return root
    }
}
