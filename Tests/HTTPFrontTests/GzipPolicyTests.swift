import Testing
@testable import HTTPFront

private func request(_ minor: Int = 1, via: Bool = false, auth: Bool = false, agent: String? = nil) -> GzipPolicy.Request {
    GzipPolicy.Request(major: 1, minor: minor, hasVia: via, hasAuthorization: auth, userAgent: agent)
}

private func response(expires: Int?? = nil, cacheControl: [String] = [], lastModified: Bool = false, etag: Bool = true) -> GzipPolicy.Response {
    GzipPolicy.Response(expires: expires, date: 1_000_000, cacheControl: cacheControl, hasLastModified: lastModified, hasETag: etag)
}

@Test func directRequestsAreCompressedProxiedOnesOnlyAsGzipProxiedSays() {
    var policy = GzipPolicy()
    #expect(policy.allows(request(), response()))
    #expect(!policy.allows(request(via: true), response()))  // default: off
    policy.proxied = .any
    #expect(policy.allows(request(via: true), response()))
    policy.proxied = [.off, .any]
    #expect(!policy.allows(request(via: true), response()))  // off wins
    policy.proxied = .auth
    #expect(policy.allows(request(via: true, auth: true), response()))
}

@Test func expiresDecidesBeforeCacheControl() {
    let policy = GzipPolicy(proxied: [.expired, .noCache])
    #expect(policy.allows(request(via: true), response(expires: 1)))           // in the past
    #expect(!policy.allows(request(via: true), response(expires: 2_000_000)))  // in the future: declined, Cache-Control unread
    #expect(!policy.allows(request(via: true), response(expires: .some(nil)))) // unreadable
    #expect(policy.allows(request(via: true), response(cacheControl: ["public, no-cache"])))
    #expect(!policy.allows(request(via: true), response(cacheControl: ["public"])))
    // Neither header: only the Last-Modified / ETag conditions remain.
    #expect(policy.allows(request(via: true), response()))
    #expect(!GzipPolicy(proxied: .noETag).allows(request(via: true), response(etag: true)))
    #expect(GzipPolicy(proxied: .noETag).allows(request(via: true), response(etag: false)))
    #expect(!GzipPolicy(proxied: .noLastModified).allows(request(via: true), response(lastModified: true)))
}

@Test func httpVersionAndDisable() throws {
    var policy = GzipPolicy()
    #expect(!policy.allows(request(0), response()))
    policy.minimumMinorVersion = 0
    #expect(policy.allows(request(0), response()))
    policy.disable = [try ConfigRegex("curl/\\d", caseInsensitive: true)]
    #expect(!policy.allows(request(agent: "CURL/8.0"), response()))
    #expect(policy.allows(request(agent: "Wget/1.2"), response()))
}

@Test func msie6IsNginxs() {
    #expect(GzipPolicy.isMSIE6("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"))
    #expect(GzipPolicy.isMSIE6("Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)"))
    #expect(!GzipPolicy.isMSIE6("Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"))
    #expect(!GzipPolicy.isMSIE6("Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"))
    #expect(!GzipPolicy.isMSIE6("Opera/9.0 (compatible; MSIE 6.0; Windows NT 5.1)"))
    #expect(!GzipPolicy.isMSIE6("MSIE"))
    #expect(!GzipPolicy.isMSIE6(""))
}

@Test func acceptEncodingIsReadAsNginxReadsIt() {
    for accepted in ["gzip", "gzip, deflate", "deflate, gzip", "GZIP", "br,gzip ;q=1", "gzip;q=0.5", "gzip; q=1.000", "gzip;q=0.001", "gzip;"] {
        #expect(GzipPolicy.acceptsGzip(accepted), "\(accepted)")
    }
    for refused in ["", "gz", "identity", "gzip;q=0", "gzip; q=0.000", "x-gzip", "gzip2", "gzip;q=2", "gzip;q=0.0001", "gzip;q=", "gzip;x"] {
        #expect(!GzipPolicy.acceptsGzip(refused), "\(refused)")
    }
}
