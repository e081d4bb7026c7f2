import BrokerCore
import Foundation
import Testing

@testable import LiveProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// XML documents that must be refused quickly, with bounded memory, by any reader of ours.
enum HostileXML {
    /// The billion laughs: ten levels of ten references, 10^9 "lol"s once expanded, here in the
    /// password of an RST request.
    static let billionLaughs: String = {
        var entities = [#"<!ENTITY lol "lol">"#]
        for level in 1...9 {
            let previous = level == 1 ? "lol" : "lol\(level - 1)"
            entities.append("<!ENTITY lol\(level) \"\(String(repeating: "&\(previous);", count: 10))\">")
        }
        return """
            <?xml version="1.0"?>
            <!DOCTYPE Envelope [
            \(entities.joined(separator: "\n"))
            ]>
            \(request(password: "&lol9;"))
            """
    }()

    /// An external entity naming a local file, in the password.
    static let externalEntity = """
        <?xml version="1.0"?>
        <!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
        \(request(password: "&xxe;"))
        """

    /// An RST request the way libpurple wrote it (default SOAP namespace, `wsse:` and `wst:`
    /// prefixes), with the password as given (already escaped).
    static func request(username: String = "alice@example.com", password: String) -> String {
        """
        <Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" \
        xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing" \
        xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust"><Header><wsse:Security><wsse:UsernameToken Id="user">\
        <wsse:Username>\(username)</wsse:Username><wsse:Password>\(password)</wsse:Password></wsse:UsernameToken>\
        </wsse:Security></Header><Body><ps:RequestMultipleSecurityTokens \
        xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="RSTS"><wst:RequestSecurityToken Id="RST0">\
        <wsp:AppliesTo><wsa:EndpointReference><wsa:Address>chatservice.live.com</wsa:Address></wsa:EndpointReference>\
        </wsp:AppliesTo></wst:RequestSecurityToken></ps:RequestMultipleSecurityTokens></Body></Envelope>
        """
    }

    /// The process's peak resident size, in KiB.
    static func peakKiB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss
    }
}

private let soap11 = Set(["http://schemas.xmlsoap.org/soap/envelope/"])
private let wsse = Set(["http://schemas.xmlsoap.org/ws/2003/06/secext"])

/// The password of an RST request, as MiniXML reads it.
private func password(_ xml: String) throws -> String? {
    let root = try MiniXML.parse(xml)
    #expect(root.is(soap11, "Envelope"))
    return root.child(soap11, "Header")?.firstDescendant(wsse, "Password")?.text
}

@Suite("MiniXML: references, namespaces, CDATA, refusals")
struct MiniXMLTests {
    @Test(
        "&#39;, &#x27; and &apos; are the same apostrophe in a password; so are the other predefined entities",
        arguments: [
            "it&#39;s &lt;mine&gt; &amp; &quot;yours&quot;", "it&#x27;s &#60;mine&#62; &#38; &#34;yours&#34;",
            "it&apos;s &#x3C;mine&#x3e; &amp; \"yours\"",
        ])
    func apostrophes(_ escaped: String) throws {
        #expect(try password(HostileXML.request(password: escaped)) == #"it's <mine> & "yours""#)
    }

    @Test("the broker's own RST request escapes the password so that a parser reads it back unchanged")
    func renderedRequestRoundTrips() throws {
        for secret in [#"it's"#, #"<&>"'"#, "a]]>b", "tab\tand space ", "ünï©ødé 🔑"] {
            let xml = RSTRequest.render(
                username: "o'neill@example.com", password: Secret(secret), sites: [.chatService])
            let root = try MiniXML.parse(xml)
            let token = try #require(root.firstDescendant(wsse, "UsernameToken"))
            #expect(token.child(wsse, "Password")?.text == secret)
            #expect(token.child(wsse, "Username")?.text == "o'neill@example.com")
        }
    }

    @Test("elements are matched by namespace URI and local name: a default namespace, any prefix")
    func namespaces() throws {
        let prefixed = try MiniXML.parse(
            #"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>"#)
        let defaulted = try MiniXML.parse(
            #"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body xmlns=""/></Envelope>"#)
        let nested = try MiniXML.parse(
            #"<x:Envelope xmlns:x="urn:other"><x:Body xmlns:x="http://schemas.xmlsoap.org/soap/envelope/"/></x:Envelope>"#
        )
        #expect(prefixed.is(soap11, "Envelope") && prefixed.child(soap11, "Body") != nil)
        #expect(defaulted.is(soap11, "Envelope"))
        // xmlns="" takes the default namespace back off.
        #expect(defaulted.child(soap11, "Body") == nil && defaulted.child([""], "Body") != nil)
        // The same prefix, bound to another URI, is another name; the inner binding wins.
        #expect(!nested.is(soap11, "Envelope") && nested.child(soap11, "Body") != nil)
        #expect(nested.namespace == "urn:other" && nested.qualifiedName == "x:Envelope")
        // Attributes: unprefixed ones are in no namespace; xml: is predeclared; xmlns are not attributes.
        let attributes = try MiniXML.parse(
            #"<a xmlns:u="urn:u" Id="1" u:Id="2" xml:lang="en"/>"#)
        #expect(attributes.attribute("Id") == "1" && attributes.attribute("Id", in: ["urn:u"]) == "2")
        #expect(attributes.attribute("lang", in: [MiniXML.xmlNamespace]) == "en")
        #expect(attributes.attributes.count == 3)
    }

    @Test("CDATA is text, read as written; comments and processing instructions are skipped")
    func cdata() throws {
        let root = try MiniXML.parse(
            "<?xml version='1.0' encoding='UTF-8'?><!-- c --><a>x<![CDATA[t=<&amp;>&p=]]><!-- c --><?pi data?>y</a>")
        #expect(root.text == "xt=<&amp;>&p=y")
        #expect(try password(HostileXML.request(password: "<![CDATA[it's <mine>]]>")) == "it's <mine>")
    }

    @Test("line ends and attribute values are normalized as XML says")
    func normalization() throws {
        let root = try MiniXML.parse("<a v=\"1\r\n2\t3&#10;4\">x\r\ny\rz&#13;</a>")
        #expect(root.attribute("v") == "1 2 3\n4")
        #expect(root.text == "x\ny\nz\r")
    }

    @Test(
        "what is not well-formed, or needs a DTD, is refused",
        arguments: [
            "", "text", "<a>", "<a></b>", "<a/><b/>", "<a>&nbsp;</a>", "<a>AT&T</a>", "<a>&#0;</a>", "<a>&#xD800;</a>",
            "<a>&#X41;</a>", "<a>]]></a>", "<a b='<'/>", "<a b=1/>", "<a b='1'b='2'/>", "<a b='1' b='2'/>",
            "<p:a/>", "<a p:b='1'/>", "<a xmlns:p=''/>", "<a xmlns:xmlns='urn:x'/>", "<a:b:c xmlns:a='urn:a'/>",
            "<a xmlns:p='urn:x' xmlns:q='urn:x' p:b='1' q:b='2'/>", "<a><!-- a -- b --></a>",
            "<?xml version='1.0'?><?xml version='1.0'?><a/>",
            " <?xml version='1.0'?><a/>", "<?xml version='1.0' encoding='ISO-8859-1'?><a/>", "<a>\u{1}</a>",
            "<a>\u{FFFE}</a>",
            "<!DOCTYPE a><a/>", "<a><!DOCTYPE a></a>", "<a><![CDATA[x</a>", "<1a/>", "<a 1b='x'/>",
        ])
    func refusals(_ xml: String) {
        #expect(throws: MiniXML.SyntaxError.self, "\(xml.debugDescription)") { try MiniXML.parse(xml) }
    }

    @Test("a billion laughs and an external entity are refused at once, with nothing expanded or read")
    func hostileDocuments() throws {
        for document in [HostileXML.billionLaughs, HostileXML.externalEntity] {
            let before = HostileXML.peakKiB()
            let start = ContinuousClock.now
            do {
                _ = try MiniXML.parse(document)
                Issue.record("a DTD was accepted")
            } catch {
                #expect(error.reason == "DTDs are not accepted")
            }
            #expect(ContinuousClock.now - start < .seconds(1))
            #expect(HostileXML.peakKiB() - before < 32 * 1024)
            #expect(throws: BrokerError.self) { try RSTResponse.parse(document) }
        }
    }

    @Test("costly shapes near the bounds are read in linear time")
    func costlyShapes() throws {
        // 200 levels, each binding 200 prefixes, then elements with 200 attributes whose prefix
        // was bound at the outermost level: lookups must not walk every binding.
        let prefixes = (0..<200).map { "p\($0)" }
        let declarations = prefixes.map { " xmlns:\($0)=\"urn:\($0)\"" }.joined()
        let attributes = prefixes.map { " \($0):a=\"1\"" }.joined()
        let inner = String(repeating: "<e\(attributes)/>", count: 300)
        let xml =
            String(repeating: "<d\(declarations)>", count: 200) + inner + String(repeating: "</d>", count: 200)
        #expect(xml.utf8.count > 1_000_000 && xml.utf8.count < MiniXML.maxBytes)
        let start = ContinuousClock.now
        var element = try MiniXML.parse(xml)
        while let child = element.children.first, child.localName == "d" { element = child }
        #expect(element.children.count == 300 && element.children[0].attribute("a", in: ["urn:p0"]) == "1")
        #expect(ContinuousClock.now - start < .seconds(20))
    }

    @Test("depth, size and counts are bounded")
    func bounds() {
        let deep =
            String(repeating: "<a>", count: MiniXML.maxDepth + 1)
            + String(repeating: "</a>", count: MiniXML.maxDepth + 1)
        #expect(throws: MiniXML.SyntaxError.self) { try MiniXML.parse(deep) }
        let ok = String(repeating: "<a>", count: MiniXML.maxDepth) + String(repeating: "</a>", count: MiniXML.maxDepth)
        #expect((try? MiniXML.parse(ok)) != nil)
        let wide = "<a>" + String(repeating: "<b/>", count: MiniXML.maxElements) + "</a>"
        #expect(throws: MiniXML.SyntaxError.self) { try MiniXML.parse(wide) }
        let big = "<a>" + String(repeating: "x", count: MiniXML.maxBytes) + "</a>"
        #expect(throws: MiniXML.SyntaxError.self) { try MiniXML.parse(big) }
        let attributes = "<a " + (0...MiniXML.maxAttributes).map { "a\($0)='1'" }.joined(separator: " ") + "/>"
        #expect(throws: MiniXML.SyntaxError.self) { try MiniXML.parse(attributes) }
    }
}
