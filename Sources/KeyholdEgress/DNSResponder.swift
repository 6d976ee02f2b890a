import KeyholdCore
import NIOCore

/// The sandbox's resolver (its `/etc/resolv.conf` names 127.0.0.1): a name its policy allows, wildcards included,
/// resolves to the gateway (127.0.0.1); any other does not exist, and the lookup is logged and counted as a refusal.
/// Nothing is forwarded to a real resolver: the sandbox learns no address of the outside.
final class DNSResponder: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let gateway: EgressGateway
    private let route: EgressRoute

    init(gateway: EgressGateway, route: EgressRoute) {
        self.gateway = gateway
        self.route = route
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let query = DNSQuery.parse(Array(envelope.data.readableBytesView)) else { return }
        let allowed = query.name.flatMap(EgressRule.canonicalDestination).map { route.policy.allowsName($0) } ?? false
        if !allowed && (query.type == DNSQuery.typeA || query.type == 255) {
            route.countRefused()
            gateway.logRefusal(
                route: route, destination: EgressRouter.printable(query.name ?? "(malformed name)") + " (DNS lookup)",
                reason: "not an allowed destination")
        }
        let answer = query.answer(exists: allowed, address: [127, 0, 0, 1])
        context.writeAndFlush(
            wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: answer))), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram that could not be answered (the client went away) does not end the resolver.
    }
}
