import Logging
import Testing

@testable import SystemdSupport

@Suite("Journal fields")
struct JournalFieldsTests {
    @Test("the broker's metadata keys map to their journal fields")
    func knownNames() {
        #expect(JournalFields.name(for: "broker.account") == "ACCOUNT")
        #expect(JournalFields.name(for: "broker.scope") == "SCOPE")
        #expect(JournalFields.name(for: "broker.event") == "TOKEN_EVENT")
        #expect(JournalFields.name(for: "broker.peer.uid") == "PEER_UID")
        #expect(JournalFields.name(for: "broker.peer.pid") == "PEER_PID")
        #expect(JournalFields.name(for: "broker.peer.comm") == "PEER_COMM")
        #expect(JournalFields.name(for: "broker.error") == "ERROR_CODE")
        #expect(JournalFields.name(for: "broker.reason") == "REASON")
        #expect(JournalFields.name(for: "broker.next_refresh_usec") == "NEXT_REFRESH_USEC")
        #expect(JournalFields.name(for: "broker.credential") == "CREDENTIAL")
    }

    @Test("other keys become valid field names that cannot override the handler's own")
    func otherNames() {
        #expect(JournalFields.name(for: "broker.expires_in") == "EXPIRES_IN")
        #expect(JournalFields.name(for: "http.status-code") == "HTTP_STATUS_CODE")
        #expect(JournalFields.name(for: "message") == "META_MESSAGE")
        #expect(JournalFields.name(for: "_pid") == "META__PID")
        #expect(JournalFields.name(for: "9lives") == "META_9LIVES")
        #expect(JournalFields.name(for: String(repeating: "x", count: 100)).count == 64)
        for key in ["broker.account", "a b", "ümlaut", "_x", "message", "priority", "code.file"] {
            let name = JournalFields.name(for: key)
            #expect(name.allSatisfy { ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" })
            #expect(name.first.map { ("A"..."Z").contains($0) } == true)
            #expect(!JournalFields.reserved.contains(name))
        }
    }

    @Test("an entry carries MESSAGE, PRIORITY, location, identifier and one field per key")
    func entry() {
        let fields = JournalFields.entry(
            message: "token refreshed", level: .info,
            metadata: ["broker.account": "alice", "broker.scope": "skype", "broker.event": "refreshed"],
            identifier: "tokenbrokerd", file: "Engine.swift", line: 42, function: "succeed(_:)")
        #expect(fields.contains("PRIORITY=6"))
        #expect(fields.contains("SYSLOG_IDENTIFIER=tokenbrokerd"))
        #expect(fields.contains("CODE_FILE=Engine.swift"))
        #expect(fields.contains("CODE_LINE=42"))
        #expect(fields.contains("CODE_FUNC=succeed(_:)"))
        #expect(fields.contains("ACCOUNT=alice"))
        #expect(fields.contains("SCOPE=skype"))
        #expect(fields.contains("TOKEN_EVENT=refreshed"))
        #expect(fields.first == "MESSAGE=token refreshed (account=alice token_event=refreshed scope=skype)")
    }

    @Test("values under secret-sounding keys are redacted")
    func redaction() {
        let fields = JournalFields.entry(
            message: "x", level: .error,
            metadata: ["broker.refresh_token": "M.C1_secret", "broker.password": "hunter2"],
            identifier: "t", file: "f", line: 1, function: "g")
        #expect(!fields.joined().contains("M.C1_secret"))
        #expect(!fields.joined().contains("hunter2"))
        #expect(fields.contains("PRIORITY=3"))
    }

    @Test("priorities follow syslog")
    func priorities() {
        #expect(JournalFields.priority(.critical) == 2)
        #expect(JournalFields.priority(.warning) == 4)
        #expect(JournalFields.priority(.notice) == 5)
        #expect(JournalFields.priority(.debug) == 7)
    }
}
