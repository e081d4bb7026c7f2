/// `POST /v1/challenge`.
public struct ChallengeRequest: Codable, Sendable, Hashable {
    public var nonce: String
    public var productID: String?
    public var productKey: String?

    public init(nonce: String, productID: String? = nil, productKey: String? = nil) {
        self.nonce = nonce
        self.productID = productID
        self.productKey = productKey
    }

    enum CodingKeys: String, CodingKey {
        case nonce
        case productID = "product_id"
        case productKey = "product_key"
    }
}

public struct ChallengeResult: Codable, Sendable, Hashable {
    /// 32 lowercase hex characters.
    public var response: String
    /// The product id to send as `<appId>`.
    public var productID: String

    public init(response: String, productID: String) {
        self.response = response
        self.productID = productID
    }

    enum CodingKeys: String, CodingKey {
        case response
        case productID = "product_id"
    }
}
