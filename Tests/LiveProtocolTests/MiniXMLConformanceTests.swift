import Foundation
import FoundationXML
import Testing

@testable import LiveProtocol

/// A document as a namespace-aware parser sees it: names resolved to (namespace URI, local name),
/// namespace declarations not counted as attributes, text with references decoded.
struct XMLShape: Equatable, CustomStringConvertible {
    var name: String
    /// "namespace|local" → value.
    var attributes: [String: String]
    var text: String
    var children: [XMLShape]

    init(_ element: MiniXML.Element) {
        name = element.namespace + "|" + element.localName
        attributes = Dictionary(
            element.attributes.map { ($0.namespace + "|" + $0.localName, $0.value) }, uniquingKeysWith: { $1 })
        text = element.text
        children = element.children.map(XMLShape.init)
    }

    init(name: String, attributes: [String: String]) {
        self.name = name
        self.attributes = attributes
        text = ""
        children = []
    }

    /// The same, with CR and CR LF read as LF in every text: libxml2's push parser leaves a CR in
    /// a CDATA section as it is, where XML normalizes line ends before anything else.
    var normalizingLineEnds: XMLShape {
        var copy = self
        copy.text = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        copy.children = children.map(\.normalizingLineEnds)
        return copy
    }

    var description: String {
        "<\(name) \(attributes.sorted { $0.key < $1.key })>\(text.debugDescription)\(children.map(\.description).joined())</>"
    }
}

/// libxml2's reading of a document, through FoundationXML's XMLParser: the reference MiniXML is
/// held to. A document is accepted when the parse succeeds and libxml2 reported nothing but
/// warnings. (`parse()` alone is not enough: it succeeds after a namespace error, or after content
/// that follows the root element.)
final class LibXML2Reading: NSObject, XMLParserDelegate {
    /// The codes libxml2 also reports as warnings: a reserved name ("xmlfoo" as a PI target; the
    /// fatal case, "xml", MiniXML refuses anyway), an unknown version, an xml:lang value, a
    /// namespace URI, an xml:space value, a colon in a name.
    static let warnings: Set<Int> = [64, 97, 98, 99, 100, 102, 106]

    private var stack: [XMLShape] = []
    private var scopes: [[String: String]] = [["xml": MiniXML.xmlNamespace]]
    private var mappings: [String: String] = [:]
    private var root: XMLShape?
    private var sawDeclaration = false
    private var errors: [Int] = []

    /// FoundationXML on Linux crashes on a processing instruction without data (`<?pi?>`):
    /// such documents are not asked about.
    static func crashes(on xml: String) -> Bool {
        var rest = xml[...]
        while let open = rest.range(of: "<?") {
            rest = rest[open.upperBound...]
            let target = rest.prefix { !$0.isWhitespace && $0 != "?" }
            if rest.dropFirst(target.count).hasPrefix("?>") { return true }
        }
        return false
    }

    /// The document's shape, or nil when libxml2 refuses it.
    static func read(_ xml: String) -> XMLShape? {
        precondition(!crashes(on: xml))
        let reading = LibXML2Reading()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = true
        parser.delegate = reading
        let parsed = parser.parse()
        guard parsed, reading.errors.allSatisfy(warnings.contains), !reading.sawDeclaration, reading.stack.isEmpty
        else { return nil }
        return reading.root
    }

    func parser(_ parser: XMLParser, didStartMappingPrefix prefix: String, toURI namespaceURI: String) {
        mappings[prefix] = namespaceURI
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
        attributes attributeDict: [String: String]
    ) {
        var scope = scopes[scopes.count - 1]
        scope.merge(mappings) { $1 }
        mappings = [:]
        scopes.append(scope)
        var attributes: [String: String] = [:]
        for (name, value) in attributeDict {
            let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
            let key = parts.count == 2 ? (scope[parts[0]] ?? "?" + parts[0]) + "|" + parts[1] : "|" + name
            attributes[key] = value
        }
        stack.append(XMLShape(name: (namespaceURI ?? "") + "|" + elementName, attributes: attributes))
    }

    func parser(
        _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?
    ) {
        guard let done = stack.popLast() else { return }
        scopes.removeLast()
        if stack.isEmpty { root = done } else { stack[stack.count - 1].children.append(done) }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if !stack.isEmpty { stack[stack.count - 1].text += string }
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        if !stack.isEmpty { stack[stack.count - 1].text += String(decoding: CDATABlock, as: UTF8.self) }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {
        errors.append((parseError as NSError).code)
    }

    func parser(_ parser: XMLParser, foundInternalEntityDeclarationWithName name: String, value: String?) {
        sawDeclaration = true
    }

    func parser(
        _ parser: XMLParser, foundExternalEntityDeclarationWithName name: String, publicID: String?, systemID: String?
    ) {
        sawDeclaration = true
    }
}

/// A fixed-seed generator, so that every run mutates the same way.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("MiniXML against libxml2")
struct MiniXMLConformanceTests {
    static let wellFormed: [String] = [
        #"<a/>"#,
        "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<!-- c --><?pi x?>\n<a>x</a>\n<!-- d -->",
        #"<a xmlns="urn:a"><b xmlns=""><c/></b><d xmlns="urn:d">t</d></a>"#,
        #"<p:a xmlns:p="urn:p" xmlns:q="urn:q" p:x="1" q:x="2" x="3"><p:b xmlns:p="urn:other" p:y="&lt;"/></p:a>"#,
        "<a>&lt;&gt;&amp;&quot;&apos;&#39;&#x27;&#x1F511;&#65;&#x000D;</a>",
        "<a><![CDATA[a]]b]]]><![CDATA[]]>]<![CDATA[<&>]]></a>",
        "<a b=\"&#9;x&#xA;y\tz\nw\r\nv\" c='\"' d=\"'\" e = \"1\" />",
        #"<é:ñ xmlns:é="urn:x" é:ü="1" xml:lang="fr" xml:space="preserve">ça</é:ñ>"#,
        "<a>]] ] > ]]</a>",
        "<a>\r\n  <b/>\r  <c>x\r\ny</c>\n</a>",
        "<a><?pi ?><?pi   data ?><!----><!-- - --></a>",
        #"<a xmlns:S="x"><S:b/></a>"#,
        HostileXML.request(password: "it&#39;s"),
        RSTNamespaceTests.defaultNamespaces,
        RSTFaultTests.soap11BadPassword, RSTFaultTests.soap12BadPassword, RSTFaultTests.escargotAuthFailed,
    ]

    static let malformed: [String] = [
        "", "text", "<a>", "<a></b>", "<a/><b/>", "<a>&nbsp;</a>", "<a>AT&T</a>", "<a>&#0;</a>", "<a>&#xD800;</a>",
        "<a>]]></a>", "<a b='<'/>", "<a b=1/>", "<a b='1'b='2'/>", "<a b='1' b='2'/>", "<p:a/>", "<a p:b='1'/>",
        "<a xmlns:p=''/>", "<a xmlns:xmlns='urn:x'/>", "<a:b:c xmlns:a='urn:a'/>",
        "<a xmlns:p='urn:x' xmlns:q='urn:x' p:b='1' q:b='2'/>", "<a><!-- a -- b --></a>",
        "<a>\u{1}</a>", "<a><![CDATA[x</a>", "<1a/>",
        "<a 1b='x'/>", "<a></a >x", "<a><b></a></b>", "<a xml:x='1' xmlns:xml='urn:not-xml'/>",
    ]

    @Test("well-formed documents: both accept, and read the same tree")
    func sameTrees() throws {
        for xml in Self.wellFormed + (try ["RST.srf-response", "RST2.srf-response"].map(RSTResponseTests.fixture)) {
            let mine = try MiniXML.parse(xml)
            let reference = try #require(LibXML2Reading.read(xml), "libxml2 refused \(xml.debugDescription)")
            #expect(XMLShape(mine) == reference, "\(xml.debugDescription)")
        }
    }

    @Test("malformed documents: both refuse")
    func sameRefusals() {
        for xml in Self.malformed {
            #expect((try? MiniXML.parse(xml)) == nil, "MiniXML accepted \(xml.debugDescription)")
            #expect(LibXML2Reading.read(xml) == nil, "libxml2 accepted \(xml.debugDescription)")
        }
    }

    /// Pieces the mutations insert: markup, references, names, quotes, characters XML forbids.
    static let pieces = [
        "<", ">", "/", "/>", "</", "&", ";", "&amp;", "&#39;", "&#x27;", "&apos;", "&lt;", "&#", "&#x", "&#xD800;",
        "&nbsp;", "]]>", "<![CDATA[", "<!--", "-->", "--", "<?", "?>", "<?xml version='1.0'?>", "<!DOCTYPE a>",
        "\"", "'", "=", ":", " ", "\t", "\n", "\r", "xmlns=\"urn:n\"", " xmlns:p=\"urn:p\"", " p:a='1'", "p:", "xml:",
        " a='x'", "<b>", "</b>", "<b/>", "\u{0}", "\u{1}", "\u{FFFE}", "é", "e\u{301}", ":\u{300}", "🔑", "\u{300}", "·",
        "1", "-", ".",
    ]

    @Test("mutated documents: whatever MiniXML accepts, libxml2 accepts and reads the same")
    func mutations() throws {
        var random = SplitMix64(state: 0x5EED)
        let seeds = Self.wellFormed.map { Array($0.unicodeScalars) }
        var accepted = 0
        var mismatches: [String] = []
        for _ in 0..<5000 {
            var doc = seeds.randomElement(using: &random)!
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let at = Int.random(in: 0...doc.count, using: &random)
                let length = min(Int.random(in: 1...8, using: &random), doc.count - at)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: doc.removeSubrange(at..<(at + length))
                case 1: doc.insert(contentsOf: Self.pieces.randomElement(using: &random)!.unicodeScalars, at: at)
                case 2: doc.insert(contentsOf: doc[at..<(at + length)], at: at)
                default:
                    doc.replaceSubrange(
                        at..<(at + min(length, 1)), with: Self.pieces.randomElement(using: &random)!.unicodeScalars)
                }
            }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: doc)
            let xml = String(view)
            guard let mine = try? MiniXML.parse(xml), !LibXML2Reading.crashes(on: xml) else { continue }
            accepted += 1
            let reference = LibXML2Reading.read(xml)
            let same =
                reference == XMLShape(mine)
                || xml.contains("<![CDATA[") && reference?.normalizingLineEnds == XMLShape(mine).normalizingLineEnds
            if !same, mismatches.count < 5 {
                mismatches.append(
                    "\(xml.debugDescription)\n  MiniXML: \(XMLShape(mine))\n  libxml2: \(reference?.description ?? "refused")"
                )
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
        // Enough of the mutants are still documents for the comparison to mean something.
        #expect(accepted > 300)
    }
}
