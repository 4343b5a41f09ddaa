import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// TLS of one listening socket (`listen … ssl`): each server's context, picked by the name the
/// client sent in SNI the way `server_name` picks a server for a Host header (the address's
/// default server when the client sent none or an unknown one), as nginx does.
struct ListenerTLS: Sendable {
    let tables: [String: ServerNameTable<VirtualServer>]
    let contexts: [ObjectIdentifier: NIOSSLContext]
    /// Set when every server shares one context: the handshake can start without reading SNI first.
    let onlyContext: NIOSSLContext?

    init(tables: [String: ServerNameTable<VirtualServer>], contexts: [ObjectIdentifier: NIOSSLContext]) {
        self.tables = tables
        self.contexts = contexts
        let distinct = Set(contexts.values.map(ObjectIdentifier.init))
        onlyContext = distinct.count == 1 ? contexts.values.first : nil
    }

    func context(serverName: String?, localAddress: String?) -> NIOSSLContext {
        if let onlyContext { return onlyContext }
        let table = localAddress.flatMap { tables[$0] } ?? tables[""] ?? tables.values.first!
        let host = serverName.flatMap(ServerNameTable<VirtualServer>.normalizeHost)
        let server = table.find(host: host).server
        return contexts[ObjectIdentifier(server)] ?? contexts.values.first!
    }

    /// Puts TLS in front of the connection's HTTP handler (added after these): the TLS handler,
    /// preceded by an SNI reader when the servers have different certificates, and a handler
    /// that turns the static files' sendfile regions into bytes, since TLS must encrypt them.
    func addHandlers(to channel: any Channel, fileIO: NonBlockingFileIO) throws {
        // A client's FIN without close_notify ends a TLS connection: with half-closure allowed,
        // one the front is closing would wait for a close_notify that never comes.
        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: false)
        let pipeline = channel.pipeline.syncOperations
        let fileReader = FileRegionReadingHandler(fileIO: fileIO)
        if let onlyContext {
            try pipeline.addHandler(NIOSSLServerHandler(context: onlyContext))
            try pipeline.addHandler(fileReader)
            return
        }
        let localAddress = channel.localAddress?.ipAddress?.lowercased()
        let contextFor = { (serverName: String?) in context(serverName: serverName, localAddress: localAddress) }
        let sni = ByteToMessageHandler(SNIHandler { [channel] result in
            let serverName: String? = if case .hostname(let name) = result { name } else { nil }
            // Runs on the channel's event loop, before the SNI reader removes itself and hands
            // the ClientHello on to the TLS handler placed right after it.
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: contextFor(serverName)),
                                                               position: .before(fileReader))
            }
        })
        try pipeline.addHandler(sni)
        try pipeline.addHandler(fileReader)
    }
}
