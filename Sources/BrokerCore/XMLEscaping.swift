/// Escapes text for an XML element or a double- or single-quoted attribute: `&`, `<`, `>`, `"`
/// and `'` become character references. Every Unicode scalar is looked at on its own, so an `&`
/// or a `<` followed by a combining mark is escaped too.
///
/// The one escaper of the client side: the ATH payloads and the RST.srf request use it. (livesim
/// keeps its own, since it shares no code with the client.)
package func xmlEscape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}
