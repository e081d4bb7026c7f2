import BrokerCore
import Foundation
import Testing

@Suite("ATH payloads")
struct ATHPayloadTests {
    @Test("web-compact-ticket is the seed's 35-byte body with length 37")
    func webCompactTicket() {
        let payload = ATHPayload.render(method: .webCompactTicket, trid: 2)
        #expect(payload.body == "<user><web-compact-ticket /></user>")
        #expect(payload.body.utf8.count == 35)
        #expect(payload.length == 37)
        #expect(payload.wire == "ATH 2 CON\\USER 37\r\n\r\n<user><web-compact-ticket /></user>")
        #expect(ATHPayload.render(method: .webCompactTicket).wire.hasPrefix("ATH {trid} CON\\USER 37\r\n\r\n"))
    }

    @Test("the ssl-compact-ticket forms match the seed's, compacted, with values XML-escaped")
    func sslCompactTicket() {
        let ticket = "t=EwCo+abc/def==&p="
        let plain = ATHPayload.render(method: .sslCompactTicket, ticket: ticket)
        #expect(
            plain.body
                == "<user><ssl-compact-ticket>t=EwCo+abc/def==&amp;p=</ssl-compact-ticket><ssl-site-name>chatservice.live.com</ssl-site-name></user>"
        )
        #expect(plain.length == plain.body.utf8.count + 2)
        let withUIC = ATHPayload.render(method: .sslCompactTicketUIC, ticket: ticket, uic: "AAAAAAO<x>")
        #expect(
            withUIC.body
                == "<user><ssl-compact-ticket>t=EwCo+abc/def==&amp;p=</ssl-compact-ticket><uic>AAAAAAO&lt;x&gt;</uic><ssl-site-name>chatservice.live.com</ssl-site-name></user>"
        )
        // The seed's indented form, compacted, is the same XML.
        let seed = """
            <user>
              <ssl-compact-ticket>T</ssl-compact-ticket>
              <uic>U</uic>
              <ssl-site-name>chatservice.live.com</ssl-site-name>
            </user>
            """
        let compacted = seed.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined()
        #expect(ATHPayload.render(method: .sslCompactTicketUIC, ticket: "T", uic: "U").body == compacted)
    }

    @Test("the length counts UTF-8 bytes")
    func utf8Length() {
        let payload = ATHPayload.render(method: .sslCompactTicket, ticket: "é", site: "ß.example")
        #expect(payload.length == 2 + payload.body.utf8.count)
        #expect(payload.length > 2 + payload.body.count)
    }
}
