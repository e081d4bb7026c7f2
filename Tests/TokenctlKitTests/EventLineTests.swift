import BrokerAPI
import Testing
import TokenctlKit

/// `tokenctl events`: one line per event, byte for byte.
@Suite struct EventLineTests {
    func event(_ type: String, _ id: String?, _ data: String) -> ServerSentEvent {
        ServerSentEvent(type: type, id: id, data: data)
    }

    @Test func text() {
        #expect(
            EventLine.text(
                event(
                    "refreshed", "12",
                    #"{"account":"alice","at":"2026-11-27T14:00:00Z","kind":"token","next_refresh_at":"2026-11-27T14:45:00Z","scope":"service::skype.com::MBI_SSL"}"#
                ))
                == "2026-11-27T14:00:00Z refreshed alice service::skype.com::MBI_SSL next 2026-11-27T14:45:00Z")
        #expect(
            EventLine.text(
                event(
                    "refresh_failed", "13",
                    #"{"account":"alice","at":"2026-11-27T14:00:00Z","error_code":"upstream_error","kind":"skypetoken","message":"the server answered 502","next_refresh_at":"2026-11-27T14:00:30Z"}"#
                ))
                == "2026-11-27T14:00:00Z refresh_failed alice skypetoken next 2026-11-27T14:00:30Z upstream_error: "
                + "the server answered 502")
        #expect(
            EventLine.text(
                event(
                    "needs_reauth", "14",
                    #"{"account":"alice","at":"2026-11-27T14:03:00Z","error_code":"needs_reauth","kind":"token","message":"the grant was revoked\nor has expired","scope":"service::ssl.live.com::MBI_SSL"}"#
                ))
                == "2026-11-27T14:03:00Z needs_reauth alice service::ssl.live.com::MBI_SSL needs_reauth: "
                + "the grant was revoked or has expired")
        #expect(
            EventLine.text(
                event(
                    "state", "1",
                    #"{"account":"bob","at":"2026-11-27T14:00:00Z","message":"the grant was revoked","state":"needs_reauth"}"#
                )) == "2026-11-27T14:00:00Z state bob needs_reauth: the grant was revoked")
        #expect(
            EventLine.text(event("logged_out", "15", #"{"account":"bob","at":"2026-11-27T14:05:00Z"}"#))
                == "2026-11-27T14:05:00Z logged_out bob")
        #expect(
            EventLine.text(
                event("shutdown", "16", #"{"at":"2026-11-27T14:06:00Z","message":"the daemon is stopping"}"#))
                == "2026-11-27T14:06:00Z shutdown: the daemon is stopping")
        // Data a newer daemon might send, that this one cannot read, is shown as it came.
        #expect(EventLine.text(event("later", nil, "[1,2]")) == "later [1,2]")
    }

    @Test func json() {
        #expect(
            EventLine.json(
                event(
                    "needs_reauth", "14",
                    #"{"account":"alice","at":"2026-11-27T14:03:00Z","error_code":"needs_reauth"}"#))
                == #"{"event":"needs_reauth","id":14,"account":"alice","at":"2026-11-27T14:03:00Z","error_code":"needs_reauth"}"#
        )
        #expect(EventLine.json(event("shutdown", "2", "{}")) == #"{"event":"shutdown","id":2}"#)
        #expect(EventLine.json(event("x", "a\"b", "{}")) == #"{"event":"x","id":"a\"b"}"#)
        #expect(EventLine.json(event("x", nil, "text")) == #"{"event":"x","data":"text"}"#)
    }
}
