// nginx's upstream module and balancers (src/http/ngx_http_upstream.c, modules/ngx_http_upstream_*),
// and Gantry's own `health_check` and `queue` (nginx keeps both for its paid edition).

private let httpOnly = DirectiveContexts.http
private let groups: DirectiveContexts = [.upstream, .appPool]

extension DirectiveTable {
    static let upstream: [DirectiveSpec] = [
        .init("upstream", httpOnly, [.block, .take1], .supported),
        .init("server", [.upstream], .oneOrMore, .supported, repeatable: true,
              note: "`weight=`, `max_fails=`, `fail_timeout=`, `max_conns=`, `backup`, `down`; `resolve`, `service=`, `route=`, `slow_start=` are refused."),
        .init("least_conn", [.upstream], .noArgs, .supported),
        .init("ip_hash", [.upstream], .noArgs, .supported),
        .init("hash", [.upstream], .take12, .supported),
        .init("random", [.upstream], [.noArgs, .take12], .supported),
        .init("keepalive", groups, .take1, .supported, value: .number),
        .init("keepalive_timeout", groups, .take1, .supported, value: .milliseconds),
        .init("keepalive_requests", groups, .take1, .supported, value: .number),
        .init("zone", [.upstream], .take12, .accepted,
              note: "Gantry's balancer state lives in its one front process, so no shared memory zone is needed."),
        .init("sticky", [.upstream], .oneOrMore, .unsupported),
        .init("ntlm", [.upstream], .noArgs, .unsupported),
        .init("health_check", groups, [.noArgs, .oneOrMore], .supported,
              note: "Gantry's own (nginx Plus has one in `location`): `health_check [uri=/PATH] [interval=TIME] [fails=N] [passes=N] [timeout=TIME];` in `upstream` or `app_pool`."),
        .init("queue", groups, .take12, .supported,
              note: "Gantry's own (nginx Plus has one): `queue N [timeout=TIME];` requests wait when every server is at `max_conns`."),
    ]
}
