// Gantry's own `app_pool NAME { … }` block: a supervised pool of WSGI app servers,
// which is also an upstream (`proxy_pass http://NAME;`).

private let pool = DirectiveContexts.appPool

extension DirectiveTable {
    static let appPool: [DirectiveSpec] = [
        // MARK: gantry_app_pool
        .init(module: "gantry_app_pool", "app_pool", [.http], [.block, .take1], .supported,
              note: "Gantry's own. A pool is also an upstream named NAME."),
        .init(module: "gantry_app_pool", "wsgi", pool, .take1, .supported, note: "`module:callable` or `module:factory()`, as gunicorn takes it."),
        .init(module: "gantry_app_pool", "chdir", pool, .take1, .supported),
        .init(module: "gantry_app_pool", "python", pool, .take1, .supported, note: "The interpreter (a virtualenv's `bin/python`); default `python3` on PATH."),
        .init(module: "gantry_app_pool", "workers", pool, .take1, .supported, value: .number),
        .init(module: "gantry_app_pool", "threads", pool, .take1, .supported, value: .number),
        .init(module: "gantry_app_pool", "timeout", pool, .take1, .supported, value: .seconds),
        .init(module: "gantry_app_pool", "graceful_timeout", pool, .take1, .supported, value: .seconds),
        .init(module: "gantry_app_pool", "max_requests", pool, .take1, .supported, value: .number),
        .init(module: "gantry_app_pool", "max_requests_jitter", pool, .take1, .supported, value: .number),
        .init(module: "gantry_app_pool", "env", pool, .take1, .supported, repeatable: true, note: "`KEY=VALUE`."),
        .init(module: "gantry_app_pool", "user", pool, .take1, .supported),
        .init(module: "gantry_app_pool", "group", pool, .take1, .supported),
        .init(module: "gantry_app_pool", "socket_dir", pool, .take1, .supported),
        .init(module: "gantry_app_pool", "socket_mode", pool, .take1, .supported, note: "Octal, e.g. `0660`."),
    ]
}
