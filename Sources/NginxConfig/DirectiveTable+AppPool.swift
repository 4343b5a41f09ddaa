// Gantry's own `app_pool NAME { … }` block: a supervised pool of WSGI app servers,
// which is also an upstream (`proxy_pass http://NAME;`).

private let pool = DirectiveContexts.appPool

extension DirectiveTable {
    static let appPool: [DirectiveSpec] = [
        // MARK: gantry_app_pool
        .init(module: "gantry_app_pool", "app_pool", [.http], [.block, .take1], .supported,
              note: "Gantry's own. A pool is also an upstream named NAME: `least_conn` over its workers' Unix sockets; `keepalive`, `keepalive_timeout`, `keepalive_requests`, `queue`, `health_check` may stand inside. See nginx-compat/app-pool.md."),
        .init(module: "gantry_app_pool", "wsgi", pool, .take1, .supported, note: "`module:callable` or `module:factory()`, as gunicorn takes it."),
        .init(module: "gantry_app_pool", "chdir", pool, .take1, .supported, note: "Relative to the prefix (`-p`); default: gantry's working directory."),
        .init(module: "gantry_app_pool", "python", pool, .take1, .supported, note: "The interpreter (a virtualenv's `bin/python`, relative to the prefix when it holds a `/`); default `python3` on PATH."),
        .init(module: "gantry_app_pool", "workers", pool, .take1, .supported, value: .number, note: "Default 1, as gunicorn."),
        .init(module: "gantry_app_pool", "threads", pool, .take1, .supported, value: .number, note: "Default 1. With `queue`, also each worker's `max_conns`."),
        .init(module: "gantry_app_pool", "same_thread", pool, .flag, .supported, value: .flag,
              note: "Default off: with `threads 1`, a request without a body runs on the worker's event loop, others on its Python thread (one at a time either way). `on` runs every request on the Python thread, as gunicorn's sync worker, for apps that keep thread-bound objects (a `sqlite3` connection) across requests; it costs about a third of a hello world's speed. Needs `threads 1`."),
        .init(module: "gantry_app_pool", "timeout", pool, .take1, .supported, value: .seconds, note: "Default 30s; a request running longer is answered 504 and its worker replaced; `0` turns it off."),
        .init(module: "gantry_app_pool", "graceful_timeout", pool, .take1, .supported, value: .seconds, note: "Default 30s: how long a draining worker (reload, recycle, `-s quit`) may finish its requests."),
        .init(module: "gantry_app_pool", "max_requests", pool, .take1, .supported, value: .number, note: "Default 0 (never). The replacement boots first; the front stops routing to the old worker before it drains."),
        .init(module: "gantry_app_pool", "max_requests_jitter", pool, .take1, .supported, value: .number),
        .init(module: "gantry_app_pool", "env", pool, .take1, .supported, repeatable: true, note: "`KEY=VALUE`."),
        .init(module: "gantry_app_pool", "user", pool, .take1, .supported, note: "The workers' account (default: the main `user`); another than the front's is started by a root helper, `gantry spawner`, with its own socket directory (02770, the front's group)."),
        .init(module: "gantry_app_pool", "group", pool, .take1, .supported, note: "The workers' group (default: the `user`'s primary group); needs a `user` here or in the main context."),
        .init(module: "gantry_app_pool", "socket_dir", pool, .take1, .supported, note: "Relative to the prefix; created 0700 when missing. Default: a private directory per run, `/tmp/gantry-PID-XXXXXX` (0700), removed at exit."),
        .init(module: "gantry_app_pool", "socket_mode", pool, .take1, .supported, note: "Octal, e.g. `0660`: sets the workers' umask (as gunicorn's `-m`). Default: the workers' umask; the private directory keeps others out."),
    ]
}
