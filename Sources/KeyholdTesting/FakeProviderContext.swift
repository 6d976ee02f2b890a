import Hummingbird
import NIOCore

/// Per-request context: only the channel, so the handler can inspect the accepted socket.
struct FakeProviderContext: InitializableFromSource {
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        channel = source.channel
    }
}
