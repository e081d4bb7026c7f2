import BrokerAPI
import BrokerCore
import Foundation

/// `GET /v1/events`: who may open a stream, and the `state` events it starts with.
extension Router {
    /// Anyone who can connect may open a stream; it carries only the accounts the caller may
    /// read. `?account=NAME` narrows it to one account, checked as any other read: `forbidden`
    /// before `not_found`.
    func events(_ request: APIRequest, peer: Peer) -> Routed {
        guard let asked = request.query["account"] else { return .stream(EventSubscription(peer: peer, account: nil)) }
        guard let name = AccountName(rawValue: asked) else {
            return .now(.error(BrokerError(.notFound, "no account named \(asked.prefix(64))")))
        }
        guard policy.mayRead(peer, account: name) else { return .now(deny(peer, "read", account: name)) }
        guard service.status(name) != nil else {
            return .now(
                .error(BrokerError(.notFound, "no account named \(name)", hint: "tokenctl accounts lists them")))
        }
        return .stream(EventSubscription(peer: peer, account: name))
    }

    /// The `state` event of each account the stream carries, as things stand now.
    func snapshot(_ subscription: EventSubscription) -> [EventData] {
        let policy = self.policy
        let at = service.now()
        let names = subscription.account.map { [$0] } ?? service.accountNames()
        return names.filter { subscription.admits($0, policy: policy) }.compactMap { name in
            service.status(name).map { EventFrames.state($0, at: at) }
        }
    }
}
