import Balancer
import NginxConfig
import Testing
@testable import ReverseProxy

/// App pools change their servers at run time: each change is a new generation of the group.
@Suite struct ReplaceServersTests {
    static let config = """
    events { }
    http {
        app_pool app { wsgi app:application; keepalive 4; queue 10 timeout=5s; }
        server { listen 127.0.0.1:8080; location / { proxy_pass http://app; } }
    }
    """

    func module() throws -> ReverseProxyModule {
        let configuration = try loadConfiguration(Self.config)
        let block = configuration.http!.appPools[0]
        let definition = try UpstreamDefinition.parse(name: block.name, scope: block.scope, location: block.location,
                                                      requiresServers: false, ignoring: ["wsgi"])
        return try ReverseProxyModule(configuration: configuration, additional: [definition])
    }

    @Test func aPoolStartsEmptyWithItsUpstreamSettings() throws {
        let group = try #require(try module().groups["app"])
        #expect(group.addresses.isEmpty)
        #expect(group.pool.capacity == 4)
        #expect(group.queueTimeout == 5_000)
        var attempt = group.beginAttempt(clientAddress: [], hashKey: "", maxTries: 0)
        #expect(group.hasNoServers(attempt))
        #expect(group.pick(&attempt) == nil)
    }

    @Test func replacingServersMakesANewGeneration() throws {
        let proxy = try module()
        let group = try #require(proxy.groups["app"])
        let servers: [(address: UpstreamAddress, peer: PeerConfiguration)] = [
            (.unix(path: "/tmp/a.sock"), PeerConfiguration(name: "unix:/tmp/a.sock")),
            (.unix(path: "/tmp/b.sock"), PeerConfiguration(name: "unix:/tmp/b.sock")),
        ]
        let early = group.beginAttempt(clientAddress: [], hashKey: "", maxTries: 0)
        #expect(proxy.replaceServers(ofGroup: "app", with: servers))
        #expect(group.isSuperseded(early))
        #expect(group.addresses == [.unix(path: "/tmp/a.sock"), .unix(path: "/tmp/b.sock")])
        let later = group.beginAttempt(clientAddress: [], hashKey: "", maxTries: 0)
        #expect(!group.isSuperseded(later))
        #expect(proxy.replaceServers(ofGroup: "app", with: Array(servers.prefix(1))))
        #expect(group.isSuperseded(later))
        #expect(group.addresses == [.unix(path: "/tmp/a.sock")])
        #expect(!proxy.replaceServers(ofGroup: "nope", with: servers))
        group.endAttempt(early)
        group.endAttempt(later)
        #expect(group.generationCount == 1)
    }

    @Test func waitersAreWokenByTheNextServers() throws {
        let proxy = try module()
        let group = try #require(proxy.groups["app"])
        final class Flag: @unchecked Sendable { var woken = false }
        let flag = Flag()
        let generation = group.currentGeneration
        #expect(group.whenServersReplaced(after: generation) { flag.woken = true })
        #expect(!flag.woken)
        proxy.replaceServers(ofGroup: "app", with: [(.unix(path: "/tmp/a.sock"), PeerConfiguration(name: "a"))])
        #expect(flag.woken)
        // Already replaced: no wait.
        #expect(!group.whenServersReplaced(after: generation) {})
    }
}
