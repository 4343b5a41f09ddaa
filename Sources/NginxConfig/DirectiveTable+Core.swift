// nginx's core, events and error-log directives (src/core/nginx.c, src/event/ngx_event.c,
// src/core/ngx_log.c), plus the top-level blocks Gantry refuses whole.

private let main = DirectiveContexts.main
private let events = DirectiveContexts.events
private let hsl = DirectiveContexts.httpServerLocation
private let everywhere: DirectiveContexts = [
    .main, .events, .http, .server, .location, .serverIf, .locationIf, .limitExcept, .upstream, .appPool, .types, .map,
]

extension DirectiveTable {
    static let core: [DirectiveSpec] = [
        // MARK: ngx_core_module
        .init(module: "core", "include", everywhere, .take1, .supported, repeatable: true,
              note: "A relative path is looked up beside the including file first, then in the configuration prefix (nginx: prefix only). `mime.types` is built in when no such file exists."),
        .init(module: "core", "daemon", main, .flag, .supported, value: .flag,
              note: "Gantry runs in the foreground (systemd, containers, a terminal); `daemon on` is refused at start."),
        .init(module: "core", "master_process", main, .flag, .unsupported, value: .flag),
        .init(module: "core", "pid", main, .take1, .supported, note: "Default `logs/gantry.pid` under the prefix (nginx: a compile-time path); `gantry -s` reads it."),
        .init(module: "core", "user", main, .take12, .supported, note: "Started as root, gantry binds its ports, then the front and every app_pool worker run as this user (default group: the user's own)."),
        .init(module: "core", "worker_processes", main, .take1, .supported,
              note: "The number of event-loop threads in the one front process (nginx: worker processes). `auto` is one per core."),
        .init(module: "core", "worker_cpu_affinity", main, .oneOrMore, .supported,
              note: "Binds the front's event loops (nginx: worker processes); `auto` uses the CPUs the process may run on (nginx: CPUs 0…n-1). Gantry's own `off` turns binding off. Without the directive Gantry binds as `auto` when there is exactly one loop per usable CPU (nginx: no binding); see docs/architecture.md."),
        .init(module: "core", "worker_priority", main, .take1, .unsupported, repeatable: true),
        .init(module: "core", "worker_rlimit_nofile", main, .take1, .accepted, value: .number),
        .init(module: "core", "worker_rlimit_core", main, .take1, .accepted, value: .offset),
        .init(module: "core", "worker_shutdown_timeout", main, .take1, .unsupported, value: .milliseconds),
        .init(module: "core", "working_directory", main, .take1, .unsupported),
        .init(module: "core", "timer_resolution", main, .take1, .accepted, value: .milliseconds),
        .init(module: "core", "lock_file", main, .take1, .accepted),
        .init(module: "core", "debug_points", main, .take1, .accepted),
        .init(module: "core", "pcre_jit", main, .flag, .accepted, value: .flag),
        .init(module: "core", "thread_pool", main, .take23, .accepted, repeatable: true),
        .init(module: "core", "env", main, .take1, .unsupported, repeatable: true,
              note: "Set an app's environment with `env` inside `app_pool`."),
        .init(module: "core", "load_module", main, .take1,
              .partial("accepted with a warning and ignored: Gantry loads no dynamic modules, so their directives stay unknown"),
              repeatable: true),
        .init(module: "core", "ssl_engine", main, .take1, .unsupported),
        .init(module: "core", "google_perftools_profiles", main, .take1, .unsupported),
        .init(module: "core", "error_log", [.main, .http, .server, .location], .oneOrMore, .partial("one per process: main (else http); refused in server/location at start"), repeatable: true,
              note: "`stderr` and file paths; `syslog:` and `memory:` are refused. One error log per process: the main context's (else the `http` one's) first `error_log`; in `server`/`location` Gantry refuses it at start."),

        // MARK: ngx_events_module
        .init(module: "events", "events", main, [.block, .noArgs], .supported),
        .init(module: "events", "worker_connections", events, .take1, .accepted, value: .number),
        .init(module: "events", "use", events, .take1, .accepted),
        .init(module: "events", "multi_accept", events, .flag, .accepted, value: .flag),
        .init(module: "events", "accept_mutex", events, .flag, .accepted, value: .flag),
        .init(module: "events", "accept_mutex_delay", events, .take1, .accepted, value: .milliseconds),
        .init(module: "events", "debug_connection", events, .take1, .accepted, repeatable: true),
        .init(module: "events", "worker_aio_requests", events, .take1, .accepted, value: .number),
        .init(module: "events", "epoll_events", [.events], .take1, .accepted),

        // MARK: ngx_http_module
        .init(module: "http", "http", main, [.block, .noArgs], .supported),
        // MARK: ngx_stream_module
        .init(module: "stream", "stream", main, [.block, .noArgs], .unsupported),
        // MARK: ngx_mail_module
        .init(module: "mail", "mail", main, [.block, .noArgs], .unsupported),
    ]
}
