import Foundation
import FoundationXML

/// livesim's reader of the XML it is sent: the SOAP requests of RST.srf and RST2.srf, and the
/// payloads of the MSNP24 commands (CNT, ATH, BND, PUT). It builds a small tree with
/// FoundationXML's `XMLParser`, a conforming parser on libxml2, with namespaces processed:
/// elements are found by namespace URI and local name, never by prefix.
///
/// No DTD is read, so no entity other than the five predefined ones and character references is
/// ever expanded, and nothing is loaded from outside:
/// - a document with a DOCTYPE or an entity declaration is refused before the parser sees it.
///   That screen is complete because only UTF-8 gets through it (no other declared encoding, no
///   UTF-16, no NUL byte), so a DOCTYPE cannot hide in another encoding. It also refuses every
///   processing instruction (SOAP allows none; and XMLParser on Linux crashes on one without data);
/// - the parser itself never loads an external entity (`externalEntityResolvingPolicy = .never`),
///   an undefined entity stops it, and so does any declaration it reports. (On Linux it does not
///   report entity declarations; there libxml2's own expansion limits stop a billion laughs that
///   got past the screen, which the tests check.)
///
/// Every error or warning the parser reports is a refusal: its `parse()` alone succeeds after a
/// namespace error or after content following the root element. Depth, element count and size
/// are bounded.
///
/// `XMLParser` is synchronous and keeps its state on the calling thread: every call makes its own
/// parser, and nothing is shared between requests.
enum XMLReader {
    struct Attribute: Sendable, Equatable {
        /// The namespace URI; empty for an unprefixed attribute.
        var namespace: String
        var name: String
        var value: String
    }

    struct Element: Sendable {
        /// The namespace URI; empty for none.
        var namespace: String
        /// The local name.
        var name: String
        var attributes: [Attribute] = []
        var children: [Element] = []
        /// The element's own character data (CDATA included), references decoded; the
        /// children's text is not part of it.
        var text = ""

        func `is`(_ namespaces: Set<String>, _ name: String) -> Bool {
            self.name == name && namespaces.contains(namespace)
        }

        /// An attribute by namespace URI (empty: unprefixed) and local name.
        func attribute(_ name: String, namespace: String = "") -> String? {
            attributes.first { $0.name == name && $0.namespace == namespace }?.value
        }

        func child(_ namespaces: Set<String>, _ name: String) -> Element? {
            children.first { $0.is(namespaces, name) }
        }

        /// This element or its first descendant with that name, depth first, in document order.
        func first(_ namespaces: Set<String>, _ name: String) -> Element? {
            if self.is(namespaces, name) { return self }
            for child in children {
                if let found = child.first(namespaces, name) { return found }
            }
            return nil
        }

        /// Every descendant with that name, not looking inside a match.
        func descendants(_ namespaces: Set<String>, _ name: String) -> [Element] {
            children.flatMap { $0.is(namespaces, name) ? [$0] : $0.descendants(namespaces, name) }
        }

        /// The text of the first element with that name (this one or a descendant), trimmed.
        func text(of name: String, in namespaces: Set<String> = XMLNS.none) -> String? {
            first(namespaces, name).map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }
        }
    }

    /// Why a document was refused.
    struct Refusal: Error, Sendable, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    /// livesim's HTTP server takes bodies of at most 1 MiB; MSNP payloads are smaller still.
    static let maxBytes = 1 << 20
    /// A WS-Trust request nests about eight levels, an MSNP payload three.
    static let maxDepth = 64
    static let maxElements = 10_000

    static func parse(_ text: String) throws(Refusal) -> Element {
        try parse(Array(text.utf8))
    }

    /// `screen: false` skips the checks made before the parser runs; only tests of the other
    /// fences use it.
    static func parse(_ bytes: [UInt8], screen: Bool = true) throws(Refusal) -> Element {
        if screen, let reason = refusedUpFront(bytes) { throw Refusal(reason: reason) }
        let builder = TreeBuilder()
        let parser = XMLParser(data: Data(bytes))
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = true
        parser.shouldResolveExternalEntities = false
        parser.externalEntityResolvingPolicy = .never
        parser.delegate = builder
        builder.parser = parser
        let parsed = parser.parse()
        if let reason = builder.refusal { throw Refusal(reason: reason) }
        guard parsed else {
            let code = (parser.parserError as NSError?)?.code ?? 0
            throw Refusal(reason: "not well-formed XML (libxml2 error \(code))")
        }
        guard let root = builder.root, builder.stack.isEmpty else { throw Refusal(reason: "no root element") }
        return root
    }

    /// The element `name` (in no namespace) of an MSNP payload, the root or a descendant, or why
    /// there is none: the payload is not XML, or has no such element.
    static func payload(_ body: String, _ name: String) -> Result<Element, Refusal> {
        let root: Element
        do {
            root = try parse(body)
        } catch {
            return .failure(error)
        }
        guard let element = root.first(XMLNS.none, name) else { return .failure(Refusal(reason: "no <\(name)>")) }
        return .success(element)
    }

    /// Why the bytes are refused before any parser sees them, or nil.
    static func refusedUpFront(_ b: [UInt8]) -> String? {
        guard b.count <= maxBytes else { return "larger than \(maxBytes) bytes" }
        guard !b.contains(0) else { return "a NUL byte" }
        let start = b.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var i = start
        // Only UTF-8 is read: the first character must be '<' or whitespace, which rules out
        // UTF-16 and EBCDIC, and a declared encoding must be UTF-8 (or its subset US-ASCII).
        while i < b.count, isSpace(b[i]) { i += 1 }
        guard i < b.count, b[i] == UInt8(ascii: "<") else { return "not an XML document" }
        if find(Array("<!DOCTYPE".utf8), in: b) != nil || find(Array("<!ENTITY".utf8), in: b) != nil {
            return "DTDs are not accepted"
        }
        // SOAP allows no processing instruction, and XMLParser on Linux crashes on one without
        // data (`<?pi?>`, `<?xml?>`): only the XML declaration, at the very start, gets through.
        // (This also refuses "<?" inside a comment or a CDATA section.)
        var declaration: [UInt8] = []
        if b[start...].starts(with: Array("<?xml".utf8)), start + 5 < b.count, isSpace(b[start + 5]),
            let end = find(Array("?>".utf8), in: Array(b[start...]))
        {
            declaration = Array(b[start..<(start + end)])
        }
        if find(Array("<?".utf8), in: Array(b[(start + declaration.count)...])) != nil {
            return "processing instructions are not accepted"
        }
        if let encoding = declaredEncoding(declaration), !["utf-8", "utf8", "us-ascii"].contains(encoding.lowercased())
        {
            return "encoding \(encoding) is not accepted; send UTF-8"
        }
        return nil
    }

    private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

    /// The `encoding` of an XML declaration (`<?xml ...`, without its `?>`).
    private static func declaredEncoding(_ declaration: [UInt8]) -> String? {
        guard let key = find(Array("encoding".utf8), in: declaration) else { return nil }
        let end = declaration.count
        var rest = declaration[(key + 8)..<end].drop(while: isSpace)
        guard rest.first == UInt8(ascii: "=") else { return nil }
        rest = rest.dropFirst().drop(while: isSpace)
        guard let quote = rest.first, quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else { return nil }
        return String(decoding: rest.dropFirst().prefix { $0 != quote }, as: UTF8.self)
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var i = 0
        while i <= haystack.count - needle.count {
            if haystack[i] == first {
                var j = 1
                while j < needle.count, haystack[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

}

/// Namespace URIs livesim reads, by role; each role accepts the versions clients were seen to send.
enum XMLNS {
    /// Elements in no namespace (the MSNP payloads, SOAP 1.1's `faultcode`).
    static let none: Set<String> = [""]
    /// SOAP 1.1 and SOAP 1.2 envelopes.
    static let soap: Set<String> = [
        "http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope",
    ]
    /// WS-Security: the 2003 draft MSN clients send, and OASIS 1.0.
    static let wsse: Set<String> = [
        "http://schemas.xmlsoap.org/ws/2003/06/secext",
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    ]
    /// WS-Trust: February 2005 (RST2.srf), April 2004 (RST.srf, the MSN clients) and OASIS 1.3.
    static let wst: Set<String> = [
        "http://schemas.xmlsoap.org/ws/2004/04/trust", "http://schemas.xmlsoap.org/ws/2005/02/trust",
        "http://docs.oasis-open.org/ws-sx/ws-trust/200512",
    ]
    /// WS-Policy (`AppliesTo`; `PolicyReference` when it is not WS-Security's).
    static let wsp: Set<String> = [
        "http://schemas.xmlsoap.org/ws/2002/12/policy", "http://schemas.xmlsoap.org/ws/2004/09/policy",
        "http://www.w3.org/ns/ws-policy",
    ]
    /// WS-Addressing (`EndpointReference/Address`).
    static let wsa: Set<String> = [
        "http://schemas.xmlsoap.org/ws/2004/03/addressing", "http://schemas.xmlsoap.org/ws/2004/08/addressing",
        "http://www.w3.org/2005/08/addressing",
    ]
    /// Passport's `RequestMultipleSecurityTokens` and `AuthInfo`.
    static let ps: Set<String> = ["http://schemas.microsoft.com/Passport/SoapServices/PPCRL"]
}

/// The parser's delegate: builds the tree, and stops the parser at the first declaration or
/// when a bound is passed.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    weak var parser: XMLParser?
    var stack: [XMLReader.Element] = []
    var root: XMLReader.Element?
    var refusal: String?
    private var elements = 0
    /// The prefixes each open element binds (prefix → namespace URI), outermost first, to resolve
    /// attributes' prefixes (XMLParser gives those as written). A lookup walks at most `maxDepth`
    /// of them.
    /// Prefixes are keyed by their bytes: XML compares names by code point.
    private var scopes: [[[UInt8]: String]] = [[Array("xml".utf8): "http://www.w3.org/XML/1998/namespace"]]
    private var mappings: [[UInt8]: String] = [:]

    private func namespace(of prefix: [UInt8]) -> String? {
        for scope in scopes.reversed() {
            if let uri = scope[prefix] { return uri }
        }
        return nil
    }

    private func refuse(_ reason: String) {
        if refusal == nil { refusal = reason }
        parser?.abortParsing()
    }

    func parser(_ parser: XMLParser, didStartMappingPrefix prefix: String, toURI namespaceURI: String) {
        mappings[Array(prefix.utf8)] = namespaceURI
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String]
    ) {
        guard refusal == nil else { return }
        elements += 1
        guard elements <= XMLReader.maxElements else { return refuse("more than \(XMLReader.maxElements) elements") }
        guard stack.count < XMLReader.maxDepth else { return refuse("nested deeper than \(XMLReader.maxDepth)") }
        scopes.append(mappings)
        mappings = [:]
        var attributes: [XMLReader.Attribute] = []
        for (qualified, value) in attributeDict.sorted(by: { $0.key < $1.key }) {
            let name = Array(qualified.utf8)
            guard let colon = name.firstIndex(of: UInt8(ascii: ":")) else {
                attributes.append(.init(namespace: "", name: qualified, value: value))
                continue
            }
            guard let uri = namespace(of: Array(name[..<colon])) else {
                return refuse("attribute \(qualified): undeclared prefix")
            }
            let local = String(decoding: name[(colon + 1)...], as: UTF8.self)
            attributes.append(.init(namespace: uri, name: local, value: value))
        }
        stack.append(XMLReader.Element(namespace: namespaceURI ?? "", name: elementName, attributes: attributes))
    }

    func parser(
        _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?
    ) {
        guard refusal == nil, let element = stack.popLast() else { return }
        scopes.removeLast()
        if stack.isEmpty {
            root = element
        } else {
            stack[stack.count - 1].children.append(element)
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard refusal == nil, !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        guard refusal == nil, !stack.isEmpty else { return }
        stack[stack.count - 1].text += String(decoding: CDATABlock, as: UTF8.self)
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        refuse("not well-formed XML (libxml2 error \((parseError as NSError).code), line \(parser.lineNumber))")
    }

    // Any declaration means a DTD got past the screen: stop there. (FoundationXML on Linux
    // reports element, attribute, notation and unparsed-entity declarations, not the others.)

    func parser(_ parser: XMLParser, foundInternalEntityDeclarationWithName name: String, value: String?) {
        refuse("DTDs are not accepted")
    }

    func parser(
        _ parser: XMLParser, foundExternalEntityDeclarationWithName name: String, publicID: String?, systemID: String?
    ) {
        refuse("DTDs are not accepted")
    }

    func parser(
        _ parser: XMLParser, foundUnparsedEntityDeclarationWithName name: String, publicID: String?, systemID: String?,
        notationName: String?
    ) {
        refuse("DTDs are not accepted")
    }

    func parser(_ parser: XMLParser, foundElementDeclarationWithName elementName: String, model: String) {
        refuse("DTDs are not accepted")
    }

    func parser(
        _ parser: XMLParser, foundAttributeDeclarationWithName attributeName: String, forElement elementName: String,
        type: String?, defaultValue: String?
    ) {
        refuse("DTDs are not accepted")
    }

    func parser(
        _ parser: XMLParser, foundNotationDeclarationWithName name: String, publicID: String?, systemID: String?
    ) {
        refuse("DTDs are not accepted")
    }

    func parser(_ parser: XMLParser, resolveExternalEntityName name: String, systemID: String?) -> Data? {
        refuse("undefined entity &\(name);")
        return nil
    }
}
