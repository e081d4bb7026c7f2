import BrokerCore
import Foundation
import LiveProtocol
import Testing

@Suite("Passport 1.4")
struct Passport14Tests {
    @Test("DALogin is read from PassportURLs, with https:// added when the server sent no scheme")
    func daLogin() {
        let value =
            "DARealm=Passport.Net,DALogin=login.escargot.chat/login,DAReg=http://reg.example,Properties=x,ConfigVersion=16"
        #expect(Passport14.daLogin(passportURLs: value) == "https://login.escargot.chat/login")
        #expect(
            Passport14.daLogin(passportURLs: "dalogin=http://127.0.0.1:81/login2.srf")
                == "http://127.0.0.1:81/login2.srf")
        #expect(Passport14.daLogin(passportURLs: "DARealm=Passport.Net") == nil)
        #expect(Passport14.daLogin(passportURLs: "DALogin=") == nil)
    }

    @Test("the Authorization header URL-encodes login and password and carries the challenge as sent")
    func authorization() throws {
        let header = try Passport14.authorization(
            login: "o'brien@example.com", password: Secret("p,w=d %x"),
            challenge: "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1")
        #expect(
            header.exposed
                == "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=o%27brien%40example.com,"
                + "pwd=p%2Cw%3Dd%20%25x,ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1")
    }

    @Test(
        "a challenge that names the client's own fields (which would replace the password) is refused",
        arguments: [
            "ct=1,pwd=x", "ct=1,PWD=x", "sign-in=mallory@example.com", "ct=1,%70wd=x", "OrgURL=http://x", "a b",
        ])
    func reservedFields(challenge: String) {
        #expect(throws: BrokerError.self) {
            try Passport14.authorization(login: "a@b.c", password: Secret("pw"), challenge: challenge)
        }
    }

    @Test("the ticket is between the quotes after from-PP=, only with da-status=success")
    func ticket() {
        let success =
            "Passport1.4 da-status=success,tname=MSPAuth,tname=MSPProf,tname=MSPSec,from-PP='t=AAAA&p=BBBB',ru=http://messenger.msn.com"
        #expect(Passport14.ticket(authenticationInfo: success) == "t=AAAA&p=BBBB")
        #expect(
            Passport14.ticket(authenticationInfo: success.replacingOccurrences(of: "success", with: "failed")) == nil)
        #expect(Passport14.ticket(authenticationInfo: "Passport1.4 da-status=success,from-PP=''") == nil)
        #expect(Passport14.ticket(authenticationInfo: "Passport1.4 da-status=success") == nil)
        #expect(
            Passport14.status(wwwAuthenticate: "Passport1.4 da-status=failed,srealm=Passport.NET,ts=-3") == "failed")
    }
}
