import BrokerAPI
import BrokerCore
import Foundation
import NIOHTTP1

/// The requests that change state or compute on demand: ATH payloads, rekey, challenge
/// answers and enrollment.
extension Router {
    /// `ath?method=...[&trid=N][&site=...]`: the ATH payload from the account's fresh credentials.
    func ath(_ request: APIRequest, account: AccountName, minValid: TimeInterval) -> Routed {
        guard let raw = request.query["method"], let method = ATHMethod(rawValue: raw) else {
            return .now(
                .error(
                    BrokerError(
                        .badRequest,
                        "method must be one of \(ATHMethod.allCases.map(\.rawValue).joined(separator: ", "))")))
        }
        var trid: Int?
        if let value = request.query["trid"] {
            guard let number = Int(value), number >= 0 else {
                return .now(.error(BrokerError(.badRequest, "trid must be a number")))
            }
            trid = number
        }
        let tridValue = trid
        var nonce: String?
        if method == .skypeUIC {
            guard let value = request.query["nonce"] else {
                return .now(.error(BrokerError(.badRequest, "nonce required: the CNT nonce the UIC is signed over")))
            }
            guard Self.isPrintableASCII(value, max: Self.maxUICNonce) else { return .now(.error(Self.badUICNonce)) }
            nonce = value
        }
        let signedOver = nonce
        let site = request.query["site"] ?? ATHPayload.defaultSite
        guard !site.isEmpty, site.count <= 253 else { return .now(.error(BrokerError(.badRequest, "invalid site"))) }
        let service = self.service
        return .later {
            do {
                guard
                    case .ath(let payload, let expires) = try await service.perform(
                        .ath(
                            account: account, method: method, site: site, trid: tridValue, minValid: minValid,
                            nonce: signedOver))
                else { return .error(Router.unexpectedAnswer) }
                return .json(
                    ATHResult(
                        method: method.rawValue, body: payload.body, length: payload.length, wire: payload.wire,
                        expiresAt: BrokerJSON.formatDate(expires),
                        expiresIn: max(0, Int(expires.timeIntervalSince(service.now()).rounded(.down)))))
            } catch {
                return .error(Router.brokerError(error))
            }
        }
    }

    /// The longest nonce a SkyLogin UIC can be signed over: its 128-byte block has room for 47.
    static let maxUICNonce = 47
    static let badUICNonce = BrokerError(.badRequest, "nonce must be 1-47 characters of printable ASCII")

    /// `uic?nonce=N` (a Skype name: a UIC signed over the nonce) or `uic?method=skylogin` (the
    /// SkyLogin credentials' base64, either kind of account).
    func skyloginUIC(_ request: APIRequest, account: AccountName, minValid: TimeInterval) -> Routed {
        let nonce = request.query["nonce"]
        if let method = request.query["method"] {
            guard method == "skylogin" else {
                return .now(.error(BrokerError(.badRequest, "method must be skylogin (or leave it out)")))
            }
            guard nonce == nil else {
                return .now(.error(BrokerError(.badRequest, "give either nonce or method=skylogin, not both")))
            }
        } else {
            guard let nonce else {
                return .now(
                    .error(
                        BrokerError(
                            .badRequest, "nonce required: a Skype name's UIC is signed over the CNT nonce",
                            hint: "uic?nonce=N, or uic?method=skylogin for its credentials")))
            }
            guard Self.isPrintableASCII(nonce, max: Self.maxUICNonce) else { return .now(.error(Self.badUICNonce)) }
        }
        let service = self.service
        return .later {
            do {
                guard
                    case .skyloginUIC(let uic, let skypeName, let expires) = try await service.perform(
                        .skyloginUIC(account: account, nonce: nonce, minValid: minValid))
                else { return .error(Router.unexpectedAnswer) }
                return .json(
                    UICResult(
                        uic: uic, skypeName: skypeName, expiresAt: BrokerJSON.formatDate(expires),
                        expiresIn: max(0, Int(expires.timeIntervalSince(service.now()).rounded(.down)))))
            } catch {
                return .error(Router.brokerError(error))
            }
        }
    }

    /// `sso?nonce=N[&trid=T][&guid=G][&policy=P]`: the `USR t SSO S` ticket and proof.
    func sso(_ request: APIRequest, account: AccountName, minValid: TimeInterval) -> Routed {
        guard let nonce = request.query["nonce"], Self.isPrintableASCII(nonce, max: 256) else {
            return .now(.error(BrokerError(.badRequest, "nonce must be 1-256 characters of printable ASCII")))
        }
        var trid: Int?
        if let value = request.query["trid"] {
            guard let number = Int(value), number >= 0 else {
                return .now(.error(BrokerError(.badRequest, "trid must be a number")))
            }
            trid = number
        }
        let guid = request.query["guid"]
        if let guid {
            guard Self.isPrintableASCII(guid, max: 64), !guid.contains(" ") else {
                return .now(.error(BrokerError(.badRequest, "guid must be a machine GUID, like {6f1c...}")))
            }
        }
        let policy = request.query["policy"] ?? RSTSite.messengerClear.policy
        guard Self.isPrintableASCII(policy, max: 128), !policy.contains(" ") else {
            return .now(.error(BrokerError(.badRequest, "invalid policy")))
        }
        let service = self.service
        let tridValue = trid
        return .later {
            do {
                guard
                    case .sso(let answer) = try await service.perform(
                        .sso(
                            account: account, nonce: nonce, policy: policy, trid: tridValue, guid: guid,
                            minValid: minValid))
                else { return .error(Router.unexpectedAnswer) }
                return .json(
                    SSOResult(
                        ticket: answer.ticket, proof: answer.proof, policy: answer.policy, usr: answer.usr,
                        expiresAt: BrokerJSON.formatDate(answer.expiresAt),
                        expiresIn: max(0, Int(answer.expiresAt.timeIntervalSince(service.now()).rounded(.down)))))
            } catch {
                return .error(Router.brokerError(error))
            }
        }
    }

    /// `passport14?challenge=C`: a Passport 1.4 ticket, made now with the stored password.
    func passport14(_ request: APIRequest, account: AccountName) -> Routed {
        guard let challenge = request.query["challenge"], Self.isPrintableASCII(challenge, max: 1024),
            !challenge.contains(" ")
        else {
            return .now(
                .error(
                    BrokerError(
                        .badRequest,
                        "challenge must be the string of USR t TWN S (printable ASCII without spaces, at most 1024)")))
        }
        let service = self.service
        return .later {
            do {
                guard
                    case .passport14(let ticket) = try await service.perform(
                        .passport14(account: account, challenge: challenge))
                else { return .error(Router.unexpectedAnswer) }
                return .json(Passport14Result(ticket: ticket))
            } catch {
                return .error(Router.brokerError(error))
            }
        }
    }

    /// 1 to `max` bytes, each a printable ASCII character (space to tilde).
    static func isPrintableASCII(_ text: String, max: Int) -> Bool {
        let bytes = text.utf8
        return !bytes.isEmpty && bytes.count <= max && bytes.allSatisfy { (0x20...0x7e).contains($0) }
    }

    /// `POST /v1/admin/rekey`: re-seal the store under a new key.
    func rekey(_ request: APIRequest) -> APIResponse {
        guard let body = try? BrokerJSON.decode(RekeyRequest.self, from: request.body) else {
            return .error(BrokerError(.badRequest, "expected {\"key\": \"64 hex characters\"}"))
        }
        let hex = Array(body.key.utf8)
        guard hex.count == 64 else {
            return .error(BrokerError(.badRequest, "the key must be 64 hex characters (32 bytes)"))
        }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: hex[i..<i + 2], as: UTF8.self), radix: 16) else {
                return .error(BrokerError(.badRequest, "the key must be 64 hex characters (32 bytes)"))
            }
            bytes.append(byte)
        }
        do {
            let result = try service.rekey(to: bytes)
            return .json(RekeyResult(keyID: result.keyID, resealed: result.resealed, keyFile: result.keyFileReplaced))
        } catch {
            return .error(error)
        }
    }

    /// `POST /v1/challenge`: a computation that needs no account, open to any peer.
    func challenge(_ request: APIRequest) -> Routed {
        let body: ChallengeRequest
        do {
            body = try BrokerJSON.decode(ChallengeRequest.self, from: request.body)
        } catch {
            return .now(
                .error(
                    BrokerError(.badRequest, "invalid challenge request: \(BrokerJSON.describe(decodingError: error))"))
            )
        }
        guard !body.nonce.isEmpty, body.nonce.utf8.count <= 256 else {
            return .now(.error(BrokerError(.badRequest, "nonce must be 1-256 bytes")))
        }
        let productID = body.productID ?? Challenge.defaultProductID
        let productKey = body.productKey ?? Challenge.defaultProductKey
        let service = self.service
        let nonce = body.nonce
        return .later {
            do {
                guard
                    case .challenge(let response) = try await service.perform(
                        .challenge(nonce: nonce, productID: productID, productKey: productKey))
                else { return .error(Router.unexpectedAnswer) }
                return .json(ChallengeResult(response: response, productID: productID))
            } catch {
                return .error(Router.brokerError(error))
            }
        }
    }

    /// A service answered a request with the answer to another.
    static let unexpectedAnswer = BrokerError(.internalError, "internal error: the service answered another request")

    func enroll(_ request: APIRequest) -> Routed {
        let body: EnrollRequest
        do {
            body = try BrokerJSON.decode(EnrollRequest.self, from: request.body)
        } catch {
            return .now(
                .error(
                    BrokerError(.badRequest, "invalid enrollment request: \(BrokerJSON.describe(decodingError: error))")
                ))
        }
        var name: AccountName?
        if let raw = body.name {
            guard let valid = AccountName(rawValue: raw) else {
                return .now(.error(BrokerError(.badRequest, "names are 1-128 letters, digits and @._+-")))
            }
            name = valid
        }
        let credential: EnrollCredential
        switch body.method {
        case .password:
            guard let password = body.password, !password.isEmpty else {
                return .now(.error(BrokerError(.badRequest, "password is required")))
            }
            credential = .password(Secret(password), store: body.storePassword ?? false)
        case .redirectURL:
            guard let url = body.redirectURL else {
                return .now(.error(BrokerError(.badRequest, "redirect_url is required")))
            }
            credential = .redirectURL(url)
        case .refreshToken:
            guard let token = body.refreshToken, !token.isEmpty else {
                return .now(.error(BrokerError(.badRequest, "refresh_token is required")))
            }
            credential = .refreshToken(Secret(token))
        case .skypePassword:
            guard let password = body.password, !password.isEmpty else {
                return .now(.error(BrokerError(.badRequest, "password is required")))
            }
            guard body.storePassword == nil, body.ticketMethod == nil, body.cookies == nil else {
                return .now(
                    .error(
                        BrokerError(
                            .badRequest,
                            "store_password, ticket_method and cookies do not apply to a Skype name: only its login hash is kept"
                        )))
            }
            credential = .skypePassword(Secret(password))
        }
        guard let ticketMethod = TicketMethod(rawValue: body.ticketMethod ?? "oauth") else {
            return .now(.error(BrokerError(.badRequest, "ticket_method must be oauth or rst")))
        }
        let command = EnrollCommand(
            login: body.method == .skypePassword ? (body.skypeName ?? body.login) : body.login, name: name,
            realm: body.realm, credential: credential,
            cookies: body.cookies.map(Secret.init),
            ticketMethod: ticketMethod)
        let service = self.service
        return .later {
            do {
                return .json(try await service.enroll(command).detail, status: .created)
            } catch {
                return .error(Router.brokerError(error))
            }
        }
    }
}
