import Foundation

/// livesim's own reader of the SOAP requests it is sent.
enum SOAPScan {
    struct Site {
        var address: String
        var policy: String
        /// N of the request's `Id="RST<N>"`, when it has one.
        var rstID: Int? = nil
    }

    /// The text of the first element with this local name, whatever its prefix, XML-unescaped.
    static func firstText(of local: String, in xml: String) -> String? {
        elements(local, in: xml[...]).first.map { unescape(String($0.content)) }
    }

    static func elements(_ local: String, in xml: Substring) -> [(open: Substring, content: Substring)] {
        var out: [(Substring, Substring)] = []
        var rest = xml
        while let lt = rest.firstIndex(of: "<") {
            rest = rest[rest.index(after: lt)...]
            guard let gt = rest.firstIndex(of: ">") else { break }
            let tag = rest[..<gt]
            let name = tag.prefix { !$0.isWhitespace && $0 != "/" && $0 != ">" }
            let localName = name.split(separator: ":").last ?? name
            guard localName == local, !tag.hasPrefix("/") else { continue }
            let afterOpen = rest[rest.index(after: gt)...]
            if tag.hasSuffix("/") {
                out.append((tag, afterOpen[afterOpen.startIndex..<afterOpen.startIndex]))
                continue
            }
            guard let close = afterOpen.range(of: "</\(name)>") else { break }
            out.append((tag, afterOpen[..<close.lowerBound]))
            rest = afterOpen[close.upperBound...]
        }
        return out
    }

    static func requestedSites(in xml: String) -> [Site] {
        elements("RequestSecurityToken", in: xml[...]).compactMap { element in
            guard let address = elements("Address", in: element.content).first?.content else { return nil }
            var policy = ""
            if let ref = elements("PolicyReference", in: element.content).first?.open,
                let uri = ref.range(of: "URI=\"")
            {
                policy = String(ref[uri.upperBound...].prefix { $0 != "\"" })
            }
            return Site(
                address: unescape(address.trimmingCharacters(in: .whitespacesAndNewlines)), policy: unescape(policy),
                rstID: attribute("Id", in: element.open).flatMap { $0.hasPrefix("RST") ? Int($0.dropFirst(3)) : nil })
        }
    }

    /// The value of `name="..."` in an opening tag.
    static func attribute(_ name: String, in tag: Substring) -> String? {
        var rest = tag
        while let range = rest.range(of: "\(name)=\"") {
            let before = rest[..<range.lowerBound].last
            rest = rest[range.upperBound...]
            guard before == nil || before!.isWhitespace else { continue }
            return unescape(String(rest.prefix { $0 != "\"" }))
        }
        return nil
    }

    /// Replaces the five named entities and numeric character references (`&#39;`, `&#x27;`) in one
    /// pass, so `&amp;lt;` stays `&lt;`. An `&` that starts no known reference is kept as it is.
    static func unescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = text[...]
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            if let semicolon = after.prefix(10).firstIndex(of: ";"), let scalar = reference(after[..<semicolon]) {
                out.unicodeScalars.append(scalar)
                rest = after[after.index(after: semicolon)...]
            } else {
                out += "&"
                rest = after
            }
        }
        return out + rest
    }

    private static func reference(_ name: Substring) -> Unicode.Scalar? {
        switch name {
        case "lt": return "<"
        case "gt": return ">"
        case "amp": return "&"
        case "quot": return "\""
        case "apos": return "'"
        default: break
        }
        guard name.hasPrefix("#") else { return nil }
        let digits = name.dropFirst()
        let value =
            digits.first == "x" || digits.first == "X" ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits)
        return value.flatMap(Unicode.Scalar.init)
    }
}
