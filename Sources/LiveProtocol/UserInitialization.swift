import BrokerCore
import Foundation

/// skypewebexperience.live.com/v1/User/Initialization: the UIC for a Microsoft account.
package struct UserInitialization: Sendable, Hashable {
    /// The UIC (`MappingContainer`), percent-decoded when the server URL-encoded it.
    package var uic: Secret
    /// `TPC.St`: start of the mapping's validity.
    package var issuedAt: Date
    /// `TPC.Se`: end of the mapping's validity.
    package var expiresAt: Date
    package var registrationTTLRefreshSeconds: Int?
    /// `MappingSkypeName`, the Skype name the account is linked to.
    package var skypeName: String?

    package init(uic: Secret, issuedAt: Date, expiresAt: Date, registrationTTLRefreshSeconds: Int?, skypeName: String?)
    {
        self.uic = uic
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.registrationTTLRefreshSeconds = registrationTTLRefreshSeconds
        self.skypeName = skypeName
    }

    /// The POST body (sent as `application/json` with the MSPAuth, MSPProf and WLSSC cookies).
    package static let requestBody = #"{"trouterurl":"https://","connectionid":"a"}"#
    package static let contentType = "application/json"

    package static func parse(_ body: [UInt8]) throws(BrokerError) -> UserInitialization {
        try parse(Data(body))
    }

    /// `St`/`Se` are milliseconds since the epoch, as strings (the seed) or numbers.
    package static func parse(_ body: Data) throws(BrokerError) -> UserInitialization {
        guard let json = JSONValue.object(from: body) else {
            throw BrokerError(.upstreamError, "malformed User/Initialization response: not a JSON object")
        }
        guard let container = json.nonEmptyString("MappingContainer") else {
            throw BrokerError(.upstreamError, "malformed User/Initialization response: no MappingContainer")
        }
        guard let tpc = json["TPC"]?.objectValue, let st = tpc["St"]?.int64, let se = tpc["Se"]?.int64 else {
            throw BrokerError(.upstreamError, "malformed User/Initialization response: no TPC St/Se")
        }
        // Base64 has no '%', so an escape means the whole value was URL-encoded.
        let uic = hasPercentEscape(container) ? percentDecode(container) : container
        return UserInitialization(
            uic: Secret(uic),
            issuedAt: Date(timeIntervalSince1970: Double(st) / 1000),
            expiresAt: Date(timeIntervalSince1970: Double(se) / 1000),
            registrationTTLRefreshSeconds: json["registrationTTLRefreshSeconds"]?.int,
            skypeName: json.nonEmptyString("MappingSkypeName"))
    }
}
