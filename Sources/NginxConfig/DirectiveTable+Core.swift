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
        .init("include", everywhere, .take1, .supported, repeatable: true,
              note: "A relative path is looked up beside the including file first, then in the configuration prefix (nginx: prefix only). `mime.types` is built in when no such file exists."),
        .init("daemon", main, .flag, .supported, value: .flag,
              note: "Gantry stays in the foreground unless `daemon on`."),
        .init("master_process", main, .flag, .unsupported, value: .flag),
        .init("pid", main, .take1, .supported),
        .init("user", main, .take12, .supported),
        .init("worker_processes", main, .take1, .supported,
              note: "The number of event-loop threads in the one front process (nginx: worker processes). `auto` is one per core."),
        .init("worker_cpu_affinity", main, .oneOrMore, .accepted),
        .init("worker_priority", main, .take1, .unsupported),
        .init("worker_rlimit_nofile", main, .take1, .accepted, value: .number),
        .init("worker_rlimit_core", main, .take1, .accepted, value: .offset),
        .init("worker_shutdown_timeout", main, .take1, .unsupported, value: .milliseconds),
        .init("working_directory", main, .take1, .unsupported),
        .init("timer_resolution", main, .take1, .accepted, value: .milliseconds),
        .init("lock_file", main, .take1, .accepted),
        .init("debug_points", main, .take1, .accepted),
        .init("pcre_jit", main, .flag, .accepted, value: .flag),
        .init("thread_pool", main, .take23, .accepted, repeatable: true),
        .init("env", main, .take1, .unsupported, repeatable: true,
              note: "Set an app's environment with `env` inside `app_pool`."),
        .init("load_module", main, .take1,
              .partial("accepted with a warning and ignored: Gantry loads no dynamic modules, so their directives stay unknown"),
              repeatable: true),
        .init("ssl_engine", main, .take1, .unsupported),
        .init("google_perftools_profiles", main, .take1, .unsupported),
        .init("error_log", [.main, .http, .server, .location], .oneOrMore, .supported, repeatable: true,
              note: "`stderr` and file paths; `syslog:` and `memory:` are refused."),

        .init("events", main, [.block, .noArgs], .supported),
        .init("worker_connections", events, .take1, .accepted, value: .number),
        .init("use", events, .take1, .accepted),
        .init("multi_accept", events, .flag, .accepted, value: .flag),
        .init("accept_mutex", events, .flag, .accepted, value: .flag),
        .init("accept_mutex_delay", events, .take1, .accepted, value: .milliseconds),
        .init("debug_connection", events, .take1, .accepted, repeatable: true),
        .init("worker_aio_requests", events, .take1, .accepted, value: .number),

        .init("http", main, [.block, .noArgs], .supported),
        .init("stream", main, [.block, .noArgs], .unsupported),
        .init("mail", main, [.block, .noArgs], .unsupported),
    ]
}
