/// The parser behind `MiniXML.parse`: one pass over the UTF-8 bytes, with an explicit stack of open
/// elements (no recursion, so no stack overflow whatever the input).
struct MiniXMLParser {
    typealias Element = MiniXML.Element
    typealias Failure = MiniXML.SyntaxError

    private struct Open {
        var element: Element
        var text: [UInt8] = []
        /// How many namespace bindings its start tag pushed.
        var bindings: Int
    }

    let b: [UInt8]
    private var i = 0
    /// Namespace bindings in scope: prefix (as bytes; "" is the default namespace) → its URIs,
    /// innermost last. A lookup costs the same however many bindings are open.
    private var scopes: [[UInt8]: [String]] = [:]
    /// The prefixes bound, in order, so that closing an element unbinds its own.
    private var bound: [[UInt8]] = []

    init(_ text: String) {
        b = Self.normalizingLineEnds(Array(text.utf8))
    }

    private func fail(_ reason: String) -> Failure { Failure(reason: reason, offset: i) }

    mutating func document() throws(Failure) -> Element {
        try checkCharacters()
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        if at("<?xml"), i + 5 < b.count, b[i + 5].isXMLSpace { try xmlDeclaration() }
        try misc()
        guard i < b.count else { throw fail("no root element") }
        guard b[i] == .ascii("<"), !at("</"), !at("<!"), !at("<?") else {
            throw fail(at("<!DOCTYPE") ? "DTDs are not accepted" : "text outside the root element")
        }
        let root = try element()
        try misc()
        guard i == b.count else { throw fail("content after the root element") }
        return root
    }

    // MARK: - Elements

    /// The element starting at `i` (a start tag), with everything inside it.
    private mutating func element() throws(Failure) -> Element {
        var stack: [Open] = []
        var count = 0
        while true {
            guard i < b.count else { throw fail("unclosed element <\(stack.last?.element.qualifiedName ?? "")>") }
            guard b[i] == .ascii("<") || stack.isEmpty else {
                if b[i] == .ascii("&") {
                    try reference(into: &stack[stack.count - 1].text)
                } else {
                    let start = i
                    while i < b.count, b[i] != .ascii("<"), b[i] != .ascii("&") { i += 1 }
                    if b[start..<i].contains(Self.cdataEnd) {
                        throw Failure(reason: "']]>' in text", offset: start)
                    }
                    stack[stack.count - 1].text.append(contentsOf: b[start..<i])
                }
                continue
            }
            if at("</") {
                guard var open = stack.popLast() else { throw fail("end tag without start tag") }
                i += 2
                guard let end = scanName(from: i) else { throw fail("malformed end tag") }
                let name = String(utf8Bytes: b[i..<end])
                i = end
                skipSpace()
                guard i < b.count, b[i] == .ascii(">") else { throw fail("unterminated end tag") }
                guard Self.same(name, open.element.qualifiedName) else {
                    throw fail("end tag </\(name)> closes <\(open.element.qualifiedName)>")
                }
                i += 1
                unbind(open.bindings)
                open.element.text = String(utf8Bytes: open.text)
                if stack.isEmpty { return open.element }
                stack[stack.count - 1].element.children.append(open.element)
            } else if at("<!--") {
                try comment()
            } else if at("<![CDATA[") {
                guard !stack.isEmpty else { throw fail("CDATA outside the root element") }
                guard let end = b.firstIndex(of: Self.cdataEnd, from: i + 9) else { throw fail("unterminated CDATA") }
                stack[stack.count - 1].text.append(contentsOf: b[(i + 9)..<end])
                i = end + 3
            } else if at("<?") {
                try processingInstruction()
            } else if at("<!") {
                throw fail(at("<!DOCTYPE") ? "DTDs are not accepted" : "declaration inside the document")
            } else {
                count += 1
                guard count <= MiniXML.maxElements else { throw fail("more than \(MiniXML.maxElements) elements") }
                guard stack.count < MiniXML.maxDepth else { throw fail("document nested too deeply") }
                let (element, pushed, empty) = try startTag()
                if !empty {
                    stack.append(Open(element: element, bindings: pushed))
                    continue
                }
                unbind(pushed)
                if stack.isEmpty { return element }
                stack[stack.count - 1].element.children.append(element)
            }
        }
    }

    /// A start tag at `i`: the element (without children or text), how many namespace bindings it
    /// pushed, and whether it was an empty-element tag.
    private mutating func startTag() throws(Failure) -> (Element, Int, Bool) {
        i += 1
        guard let nameEnd = scanName(from: i) else { throw fail("malformed start tag") }
        let qualifiedName = String(utf8Bytes: b[i..<nameEnd])
        i = nameEnd
        var raw: [(name: String, value: String)] = []
        // Names as bytes: XML compares code points, and the sets keep the checks linear.
        var names: Set<[UInt8]> = []
        var empty = false
        while true {
            let spaced = skipSpace()
            guard i < b.count else { throw fail("unterminated start tag") }
            if b[i] == .ascii(">") {
                i += 1
                break
            }
            if at("/>") {
                i += 2
                empty = true
                break
            }
            guard spaced else { throw fail("no whitespace before an attribute") }
            guard let end = scanName(from: i) else { throw fail("malformed attribute name") }
            let name = String(utf8Bytes: b[i..<end])
            i = end
            skipSpace()
            guard i < b.count, b[i] == .ascii("=") else { throw fail("attribute \(name) without a value") }
            i += 1
            skipSpace()
            let value = try attributeValue()
            guard raw.count < MiniXML.maxAttributes else { throw fail("too many attributes") }
            guard names.insert(Array(name.utf8)).inserted else { throw fail("duplicate attribute \(name)") }
            raw.append((name, value))
        }
        // Namespace declarations first: they apply to the element's own name and attributes.
        var pushed = 0
        for (name, value) in raw where Self.isDeclaration(name) {
            let prefix = Self.same(name, "xmlns") ? "" : try split(name).local
            if Self.same(prefix, "xml") {
                guard Self.same(value, MiniXML.xmlNamespace) else {
                    throw fail("the xml prefix is bound to another namespace")
                }
                continue
            }
            guard !Self.same(prefix, "xmlns") else { throw fail("the xmlns prefix cannot be declared") }
            guard !Self.same(value, MiniXML.xmlNamespace), !Self.same(value, MiniXML.xmlnsNamespace) else {
                throw fail("\(value) cannot be bound to \(name)")
            }
            guard prefix.isEmpty || !value.isEmpty else { throw fail("\(name) is bound to no namespace") }
            scopes[Array(prefix.utf8), default: []].append(value)
            bound.append(Array(prefix.utf8))
            pushed += 1
        }
        let (prefix, local) = try split(qualifiedName)
        guard let namespace = lookup(prefix) else { throw fail("undeclared prefix \(prefix) on <\(qualifiedName)>") }
        var attributes: [MiniXML.Attribute] = []
        var expanded: Set<[UInt8]> = []
        for (name, value) in raw where !Self.isDeclaration(name) {
            let (prefix, local) = try split(name)
            var uri = ""
            if !prefix.isEmpty {
                guard let bound = lookup(prefix) else { throw fail("undeclared prefix \(prefix) on attribute \(name)") }
                uri = bound
                // A NUL never occurs in a document, so it separates the URI from the local name.
                guard expanded.insert(Array(uri.utf8) + [0] + Array(local.utf8)).inserted else {
                    throw fail("attribute \(name) repeats another's namespace and name")
                }
            }
            attributes.append(.init(namespace: uri, localName: local, qualifiedName: name, value: value))
        }
        let element = Element(
            namespace: namespace, localName: local, qualifiedName: qualifiedName, attributes: attributes, children: [],
            text: "")
        return (element, pushed, empty)
    }

    /// A quoted attribute value at `i`, references decoded and whitespace characters as spaces.
    private mutating func attributeValue() throws(Failure) -> String {
        guard i < b.count, b[i] == .ascii("\"") || b[i] == .ascii("'") else { throw fail("unquoted attribute value") }
        let quote = b[i]
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw fail("unterminated attribute value") }
            switch b[i] {
            case quote:
                i += 1
                return String(utf8Bytes: out)
            case .ascii("<"):
                throw fail("'<' in an attribute value")
            case .ascii("&"):
                try reference(into: &out)
            case 0x09, 0x0A, 0x0D:
                out.append(0x20)
                i += 1
            default:
                out.append(b[i])
                i += 1
            }
        }
    }

    /// A reference at `i`: one of the five predefined entities or a character reference. There is
    /// no DTD, so any other entity is undefined.
    private mutating func reference(into out: inout [UInt8]) throws(Failure) {
        let start = i
        i += 1
        if i < b.count, b[i] == .ascii("#") {
            i += 1
            var radix: UInt32 = 10
            if i < b.count, b[i] == .ascii("x") {
                radix = 16
                i += 1
            }
            var value: UInt32 = 0
            var digits = 0
            while i < b.count, let digit = b[i].hexValue.map(UInt32.init), digit < radix {
                value = min(value * radix + digit, 0x11_0000)
                digits += 1
                i += 1
            }
            guard digits > 0, i < b.count, b[i] == .ascii(";") else {
                throw Failure(reason: "malformed character reference", offset: start)
            }
            i += 1
            guard Self.isXMLChar(value), let scalar = Unicode.Scalar(value) else {
                throw Failure(reason: "character reference to a character XML does not allow", offset: start)
            }
            appendUTF8(scalar, to: &out)
            return
        }
        guard let end = scanName(from: i) else { throw Failure(reason: "'&' that starts no reference", offset: start) }
        guard end < b.count, b[end] == .ascii(";") else {
            throw Failure(reason: "reference without ';'", offset: start)
        }
        let replacement: UInt8
        switch String(utf8Bytes: b[i..<end]) {
        case "amp": replacement = .ascii("&")
        case "lt": replacement = .ascii("<")
        case "gt": replacement = .ascii(">")
        case "quot": replacement = .ascii("\"")
        case "apos": replacement = .ascii("'")
        case let name:
            throw Failure(reason: "undefined entity &\(name); (no DTD: only the five predefined ones)", offset: start)
        }
        out.append(replacement)
        i = end + 1
    }

    private func lookup(_ prefix: String) -> String? {
        if Self.same(prefix, "xml") { return MiniXML.xmlNamespace }
        if let uri = scopes[Array(prefix.utf8)]?.last { return uri }
        return prefix.isEmpty ? "" : nil
    }

    private mutating func unbind(_ count: Int) {
        for _ in 0..<count {
            scopes[bound.removeLast()]?.removeLast()
        }
    }

    /// A qualified name's prefix (empty when none) and local part.
    private func split(_ name: String) throws(Failure) -> (prefix: String, local: String) {
        let parts = Array(name.utf8).split(separator: .ascii(":"), omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty }),
            let local = parts.last.map({ String(utf8Bytes: $0) }), let first = local.unicodeScalars.first,
            Self.isNameStart(first.value)
        else { throw fail("\(name) is not a qualified name") }
        return parts.count == 1 ? ("", name) : (String(utf8Bytes: parts[0]), local)
    }

    /// Names and URIs compare by their code points, as XML says (Swift's `==` on strings compares
    /// by canonical equivalence).
    static func same(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// `xmlns` or `xmlns:...`: a namespace declaration rather than an attribute.
    private static func isDeclaration(_ name: String) -> Bool {
        same(name, "xmlns") || name.utf8.starts(with: "xmlns:".utf8)
    }
}

// MARK: - Prolog, comments, processing instructions

extension MiniXMLParser {
    fileprivate static let cdataEnd = Array("]]>".utf8)

    private func at(_ s: String) -> Bool { b[i...].starts(with: s.utf8) }

    @discardableResult
    private mutating func skipSpace() -> Bool {
        let start = i
        while i < b.count, b[i].isXMLSpace { i += 1 }
        return i > start
    }

    /// Comments, processing instructions and whitespace, before or after the root element.
    private mutating func misc() throws(Failure) {
        while true {
            skipSpace()
            if at("<!--") {
                try comment()
            } else if at("<?") {
                try processingInstruction()
            } else {
                return
            }
        }
    }

    private mutating func comment() throws(Failure) {
        guard let end = b.firstIndex(of: Array("--".utf8), from: i + 4) else { throw fail("unterminated comment") }
        guard end + 2 < b.count, b[end + 2] == .ascii(">") else { throw fail("'--' inside a comment") }
        i = end + 3
    }

    private mutating func processingInstruction() throws(Failure) {
        i += 2
        guard let end = scanName(from: i) else { throw fail("malformed processing instruction") }
        let target = b[i..<end]
        guard target.count != 3 || target.map(\.asciiLowercased) != Array("xml".utf8) else {
            throw fail("XML declaration not at the start of the document")
        }
        guard !target.contains(.ascii(":")) else { throw fail("':' in a processing instruction's target") }
        i = end
        if at("?>") {
            i += 2
            return
        }
        guard skipSpace(), let close = b.firstIndex(of: Array("?>".utf8), from: i) else {
            throw fail("unterminated processing instruction")
        }
        i = close + 2
    }

    /// `<?xml version="1.x" encoding="..." standalone="..."?>`. Only UTF-8 is read (the text came in
    /// as a Swift string), so another declared encoding is refused.
    private mutating func xmlDeclaration() throws(Failure) {
        i += 5
        guard let version = try pseudoAttribute("version"), version.hasPrefix("1."), version.count > 2,
            version.dropFirst(2).allSatisfy({ ("0"..."9").contains($0) })
        else { throw fail("malformed XML declaration") }
        if let encoding = try pseudoAttribute("encoding") {
            guard ["utf-8", "utf8", "us-ascii"].contains(encoding.lowercased()) else {
                throw fail("encoding \(encoding) is not UTF-8")
            }
        }
        if let standalone = try pseudoAttribute("standalone"), standalone != "yes", standalone != "no" {
            throw fail("malformed XML declaration")
        }
        skipSpace()
        guard at("?>") else { throw fail("malformed XML declaration") }
        i += 2
    }

    /// ` name="value"` in the XML declaration, or nil (and `i` unmoved) when it is not next.
    private mutating func pseudoAttribute(_ name: String) throws(Failure) -> String? {
        let start = i
        guard skipSpace(), at(name) else {
            i = start
            return nil
        }
        i += name.utf8.count
        skipSpace()
        guard i < b.count, b[i] == .ascii("=") else { throw fail("malformed XML declaration") }
        i += 1
        skipSpace()
        guard i < b.count, b[i] == .ascii("\"") || b[i] == .ascii("'") else { throw fail("malformed XML declaration") }
        let quote = b[i]
        guard let end = b[(i + 1)...].firstIndex(of: quote) else { throw fail("malformed XML declaration") }
        let value = String(utf8Bytes: b[(i + 1)..<end])
        i = end + 1
        return value
    }
}
