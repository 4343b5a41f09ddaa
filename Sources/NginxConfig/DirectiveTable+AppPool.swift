// Gantry's own `app_pool NAME { … }` block: a supervised pool of WSGI app servers,
// which is also an upstream (`proxy_pass http://NAME;`).

private let pool = DirectiveContexts.appPool

extension DirectiveTable {
    static let appPool: [DirectiveSpec] = [
        .init("app_pool", [.http], [.block, .take1], .supported,
              note: "Gantry's own. A pool is also an upstream named NAME."),
        .init("wsgi", pool, .take1, .supported, note: "`module:callable` or `module:factory()`, as gunicorn takes it."),
        .init("chdir", pool, .take1, .supported),
        .init("python", pool, .take1, .supported, note: "The interpreter (a virtualenv's `bin/python`); default `python3` on PATH."),
        .init("workers", pool, .take1, .supported, value: .number),
        .init("threads", pool, .take1, .supported, value: .number),
        .init("timeout", pool, .take1, .supported, value: .seconds),
        .init("graceful_timeout", pool, .take1, .supported, value: .seconds),
        .init("max_requests", pool, .take1, .supported, value: .number),
        .init("max_requests_jitter", pool, .take1, .supported, value: .number),
        .init("env", pool, .take1, .supported, repeatable: true, note: "`KEY=VALUE`."),
        .init("user", pool, .take1, .supported),
        .init("group", pool, .take1, .supported),
        .init("socket_dir", pool, .take1, .supported),
        .init("socket_mode", pool, .take1, .supported, note: "Octal, e.g. `0660`."),
    ]
}
