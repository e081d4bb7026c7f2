import BrokerCore
import Foundation
import LiveProtocol
import Testing

@Suite("User/Initialization")
struct UserInitializationTests {
    /// The seed's sample answer.
    static let seedSample = """
        {"TPC":{
          "Issuer":"edf",
          "Se":"1431768898344",
          "Signature":"zv58LRCrIoPQO8kPdv4hGDEGKWwro-0CP3JWk_ifESE",
          "Sp":"connect",
          "Sr":"a",
          "St":"1431687780344"
         },
         "MappingContainer":"AAAAAAO...Ss0IdRg==",
         "MappingSkypeName":"X",
         "MappingStatus":"ACTIVE",
         "RegistrationId":"4b94d72f-ba0b-483c-9967-3adcc47a4601",
         "SupportsSkypeCalling":true,
         "SupportsChat":true,
         "registrationTTLRefreshSeconds":13230
        }
        """

    @Test func requestBody() {
        #expect(UserInitialization.requestBody == #"{"trouterurl":"https://","connectionid":"a"}"#)
    }

    @Test func seedSample() throws {
        let result = try UserInitialization.parse(Array(Self.seedSample.utf8))
        #expect(result.uic.exposed == "AAAAAAO...Ss0IdRg==")
        #expect(result.issuedAt == Date(timeIntervalSince1970: 1_431_687_780.344))
        #expect(result.expiresAt == Date(timeIntervalSince1970: 1_431_768_898.344))
        #expect(result.registrationTTLRefreshSeconds == 13230)
        #expect(result.skypeName == "X")
    }

    @Test func numericTimesAndURLEncodedContainer() throws {
        let body = #"{"TPC":{"St":1431687780344,"Se":1431768898344},"MappingContainer":"AAAA%2Bb%2Fc%3D%3D"}"#
        let result = try UserInitialization.parse(Data(body.utf8))
        #expect(result.uic.exposed == "AAAA+b/c==")
        #expect(result.issuedAt == Date(timeIntervalSince1970: 1_431_687_780.344))
        #expect(result.expiresAt == Date(timeIntervalSince1970: 1_431_768_898.344))
        #expect(result.registrationTTLRefreshSeconds == nil)
        #expect(result.skypeName == nil)
    }

    @Test func plainContainerKeepsItsPlusSigns() throws {
        let body = #"{"TPC":{"St":"1","Se":"2"},"MappingContainer":"AA+B/C=="}"#
        #expect(try UserInitialization.parse(Array(body.utf8)).uic.exposed == "AA+B/C==")
    }

    @Test(arguments: [
        "not json",
        #"{"TPC":{"St":"1","Se":"2"}}"#,
        #"{"TPC":{"St":"1","Se":"2"},"MappingContainer":""}"#,
        #"{"MappingContainer":"SECRETUIC"}"#,
        #"{"TPC":{"St":"soon","Se":"2"},"MappingContainer":"SECRETUIC"}"#,
    ])
    func malformedAnswersThrow(_ body: String) {
        do {
            let result = try UserInitialization.parse(Array(body.utf8))
            Issue.record("expected an error, got \(result)")
        } catch {
            #expect(error.code == .upstreamError)
            #expect(!error.description.contains("SECRET"))
        }
    }
}
