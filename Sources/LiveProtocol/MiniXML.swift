/// The client side's XML reader, for the SOAP answers of RST.srf: a small, strict, non-validating
/// parser with namespaces (XML 1.0 fifth edition and Namespaces in XML 1.0, less the DTD).
///
/// - Elements and attributes are resolved to their namespace URI and local name, and are looked up
///   that way, never by prefix: `S:`, `soap:`, `s12:` or a default namespace read the same.
/// - Text and attribute values are decoded: the five predefined entities and character references
///   (`&#39;`, `&#x27;`). CDATA sections are text. Line ends are normalized, and attribute values
///   are normalized as a non-validating parser does.
/// - No DTD, so no other entity: a document with a DOCTYPE is refused, and so is a reference to
///   any other entity. Nothing is ever loaded or expanded.
/// - Anything that is not well-formed is refused: mismatched or unclosed tags, a bare `&` or `<`,
///   `]]>` in text, characters XML does not allow, undeclared prefixes, duplicate attributes,
///   an XML declaration naming another encoding than UTF-8.
/// - Bounded: size, depth, element and attribute counts.
///
/// livesim reads what it is sent with a parser of its own (FoundationXML); the two share nothing.
struct MiniXML {
    struct Attribute: Sendable, Hashable {
        /// The namespace URI; empty for an unprefixed attribute.
        var namespace: String
        var localName: String
        /// As written, e.g. `wsu:Id`.
        var qualifiedName: String
        var value: String
    }

    struct Element: Sendable {
        /// The namespace URI; empty for none.
        var namespace: String
        var localName: String
        /// As written, e.g. `wst:LifeTime`.
        var qualifiedName: String
        /// Namespace declarations (`xmlns`, `xmlns:p`) are not attributes.
        var attributes: [Attribute]
        var children: [Element]
        /// The element's own text (children's text excluded), references decoded.
        var text: String

        var trimmedText: String { text.trimmingASCIIWhitespace() }

        func `is`(_ namespaces: Set<String>, _ local: String) -> Bool {
            localName == local && namespaces.contains(namespace)
        }

        /// An attribute by local name, in one of these namespaces (by default none, that is
        /// unprefixed).
        func attribute(_ local: String, in namespaces: Set<String> = [""]) -> String? {
            attributes.first { $0.localName == local && namespaces.contains($0.namespace) }?.value
        }

        func child(_ namespaces: Set<String>, _ local: String) -> Element? {
            children.first { $0.is(namespaces, local) }
        }

        /// Depth-first, document order; the element itself is not considered.
        func firstDescendant(where match: (Element) -> Bool) -> Element? {
            for c in children {
                if match(c) { return c }
                if let found = c.firstDescendant(where: match) { return found }
            }
            return nil
        }

        func firstDescendant(_ namespaces: Set<String>, _ local: String) -> Element? {
            firstDescendant { $0.is(namespaces, local) }
        }

        /// Every descendant matching, not looking inside a match.
        func descendants(_ namespaces: Set<String>, _ local: String) -> [Element] {
            var out: [Element] = []
            for c in children {
                if c.is(namespaces, local) {
                    out.append(c)
                } else {
                    out.append(contentsOf: c.descendants(namespaces, local))
                }
            }
            return out
        }
    }

    struct SyntaxError: Error, Sendable {
        var reason: String
        /// The byte offset, after line ends were normalized.
        var offset: Int
    }

    /// An RST.srf answer is about 20 KB.
    static let maxBytes = 4 << 20
    /// SOAP answers nest about ten levels.
    static let maxDepth = 256
    static let maxElements = 50_000
    static let maxAttributes = 256

    static let xmlNamespace = "http://www.w3.org/XML/1998/namespace"
    static let xmlnsNamespace = "http://www.w3.org/2000/xmlns/"

    /// Parses a whole document and returns its root element.
    static func parse(_ text: String) throws(SyntaxError) -> Element {
        guard text.utf8.count <= maxBytes else {
            throw SyntaxError(reason: "document larger than \(maxBytes) bytes", offset: 0)
        }
        var parser = MiniXMLParser(text)
        return try parser.document()
    }
}
