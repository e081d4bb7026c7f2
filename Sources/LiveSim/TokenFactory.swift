import Crypto
import Foundation

/// Makes opaque, unguessable credentials of realistic sizes and alphabets.
///
/// Each value starts from 32 bytes of the system's CSPRNG; the rest of its length is filler
/// expanded from those bytes with SHA-256, so long tokens cost a few hashes, not hundreds of
/// system calls.
enum TokenFactory {
    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var out = [UInt8]()
        out.reserveCapacity(count + 8)
        while out.count < count {
            withUnsafeBytes(of: generator.next() as UInt64) { out.append(contentsOf: $0) }
        }
        return Array(out.prefix(count))
    }

    /// `count` bytes: 32 random, then SHA-256 expansion of them.
    static func material(_ count: Int) -> [UInt8] {
        let seed = randomBytes(32)
        var out = seed
        out.reserveCapacity(count + 32)
        var counter: UInt32 = 0
        while out.count < count {
            var hasher = SHA256()
            hasher.update(data: seed)
            withUnsafeBytes(of: counter.bigEndian) { hasher.update(bufferPointer: $0) }
            out.append(contentsOf: hasher.finalize())
            counter += 1
        }
        return Array(out.prefix(count))
    }

    static func base64(_ count: Int) -> String { Data(material(count)).base64EncodedString() }

    static func base64URL(_ count: Int) -> String {
        base64(count).replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Access tokens: "EwA..." standard base64 (with `+`, `/`, `=`), about 1-1.4 KB.
    static func accessToken() -> String { "EwA" + base64(Int.random(in: 760...1_020)) }

    /// Refresh tokens: "M.C5..." with the `!`, `*` and `$` characters real ones had.
    static func refreshToken() -> String {
        let body = base64URL(300).replacingOccurrences(of: "-", with: "*").replacingOccurrences(of: "_", with: "!")
        return "M.C5" + String(Int.random(in: 10...99)) + "_BAY." + body + "$$"
    }

    /// Compact tickets: the `t=` value, base64 of about 1 KB.
    static func ticket() -> String { "EwCo" + base64(Int.random(in: 640...900)) }

    /// Skype tokens look like JWTs.
    static func skypetoken() -> String {
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEwMiIsIng1dCI6IjNNSnZRYzhJM0NHOVlzUmtPVTBnTzRPZkd3NCIsInR5cCI6IkpXVCJ9."
            + base64URL(Int.random(in: 300...420)) + "." + base64URL(256)
    }

    /// UICs are base64 of signed credentials.
    static func uic() -> String { "AAAAAAO" + base64(Int.random(in: 380...460)) }

    static func mspAuth() -> String {
        "Disabled!" + base64URL(220).replacingOccurrences(of: "_", with: "!").replacingOccurrences(of: "-", with: "*")
            + "$"
    }
    static func mspProf() -> String {
        base64URL(180).replacingOccurrences(of: "_", with: "!").replacingOccurrences(of: "-", with: "*") + "$"
    }
    static func wlssc() -> String { "EgBvAQMAAAAEgAAADAAB" + base64URL(420) }
    static func ppft() -> String {
        "D" + base64URL(180).replacingOccurrences(of: "_", with: "!").replacingOccurrences(of: "-", with: "*") + "$"
    }
    static func cookieToken() -> String { base64URL(24) }

    static func hex(_ bytes: Int) -> String { randomBytes(bytes).map { String(format: "%02x", $0) }.joined() }
}
