// nginx's upstream module and balancers (src/http/ngx_http_upstream.c, modules/ngx_http_upstream_*),
// and Gantry's own `health_check` and `queue` (nginx keeps both for its paid edition).

private let httpOnly = DirectiveContexts.http
private let groups: DirectiveContexts = [.upstream, .appPool]

extension DirectiveTable {
    static let upstream: [DirectiveSpec] = [
        // MARK: ngx_http_upstream_module
        .init(module: "http_upstream", "upstream", httpOnly, [.block, .take1], .supported),
        .init(module: "http_upstream", "server", [.upstream], .oneOrMore, .supported, repeatable: true,
              note: "`weight=`, `max_fails=`, `fail_timeout=`, `max_conns=`, `backup`, `down`; `resolve`, `service=`, `route=`, `slow_start=` are refused."),
        // MARK: ngx_http_upstream_least_conn_module
        .init(module: "http_upstream_least_conn", "least_conn", [.upstream], .noArgs, .supported, repeatable: true),
        // MARK: ngx_http_upstream_ip_hash_module
        .init(module: "http_upstream_ip_hash", "ip_hash", [.upstream], .noArgs, .supported, repeatable: true),
        // MARK: ngx_http_upstream_hash_module
        .init(module: "http_upstream_hash", "hash", [.upstream], .take12, .supported, repeatable: true),
        // MARK: ngx_http_upstream_random_module
        .init(module: "http_upstream_random", "random", [.upstream], [.noArgs, .take12], .supported, repeatable: true),
        // MARK: ngx_http_upstream_keepalive_module
        .init(module: "http_upstream_keepalive", "keepalive", groups, .take1, .supported, value: .number),
        .init(module: "http_upstream_keepalive", "keepalive_timeout", groups, .take1, .supported, value: .milliseconds),
        .init(module: "http_upstream_keepalive", "keepalive_requests", groups, .take1, .supported, value: .number),
        // MARK: ngx_http_upstream_zone_module
        .init(module: "http_upstream_zone", "zone", [.upstream], .take12, .accepted,
              note: "Gantry's balancer state lives in its one front process, so no shared memory zone is needed."),
        // MARK: ngx_http_upstream_sticky_module
        .init(module: "http_upstream_sticky", "sticky", [.upstream], .oneOrMore, .unsupported),
        // MARK: ngx_http_upstream_ntlm_module
        .init(module: "http_upstream_ntlm", "ntlm", [.upstream], .noArgs, .unsupported),
        // MARK: gantry_health_check
        .init(module: "gantry_health_check", "health_check", groups, [.noArgs, .oneOrMore], .supported,
              note: "Gantry's own (nginx Plus has one in `location`): `health_check [uri=/PATH] [interval=TIME] [fails=N] [passes=N] [timeout=TIME];` in `upstream` or `app_pool`."),
        // MARK: gantry_queue
        .init(module: "gantry_queue", "queue", groups, .take12, .supported,
              note: "Gantry's own (nginx Plus has one): `queue N [timeout=TIME];` requests wait when every server is at `max_conns`."),
    ]
}
