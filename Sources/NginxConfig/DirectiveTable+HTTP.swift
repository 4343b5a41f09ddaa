// nginx's HTTP modules other than proxy and upstream: core, index, autoindex, log, headers,

private let httpOnly = DirectiveContexts.http
private let hs = DirectiveContexts.httpServer
private let hsl = DirectiveContexts.httpServerLocation
private let hslIf: DirectiveContexts = [.http, .server, .location, .locationIf]
private let sl = DirectiveContexts.serverLocation
private let loc = DirectiveContexts.location
private let rewrite = DirectiveContexts.rewriteContexts
private let hslLimit: DirectiveContexts = [.http, .server, .location, .limitExcept]
private let ssl = DirectiveStatus.partial("Gantry serves no TLS: accepted with a warning that it has no effect while no `listen` has `ssl`")

extension DirectiveTable {
    static let http: [DirectiveSpec] = httpCore + httpModules + httpSSL + httpGateways

    static let httpCore: [DirectiveSpec] = [
        // MARK: ngx_http_core_module
        .init(module: "http_core", "server", httpOnly, [.block, .noArgs], .supported),
        .init(module: "http_core", "listen", [.server], .oneOrMore, .supported, repeatable: true,
              note: "`addr:port`, `[::]:port`, `*:port`, port alone, `unix:PATH`, `default_server`, `backlog=`, `reuseport`, `ipv6only=`, `rcvbuf=`, `sndbuf=`, `so_keepalive=`, `deferred`, `bind`, `fastopen=`. Host names are resolved through /etc/hosts only (nginx: DNS too). `ssl`, `http2`, `quic`, `proxy_protocol` are refused."),
        .init(module: "http_core", "server_name", [.server], .oneOrMore, .supported, repeatable: true,
              note: "Regexes use Swift's regex engine; PCRE-only syntax is refused at load time."),
        .init(module: "http_core", "location", sl, [.block, .take12], .supported),
        .init(module: "http_core", "variables_hash_max_size", httpOnly, .take1, .accepted, value: .number),
        .init(module: "http_core", "variables_hash_bucket_size", httpOnly, .take1, .accepted, value: .number),
        .init(module: "http_core", "server_names_hash_max_size", httpOnly, .take1, .accepted, value: .number),
        .init(module: "http_core", "server_names_hash_bucket_size", httpOnly, .take1, .accepted, value: .number),
        .init(module: "http_core", "types_hash_max_size", hsl, .take1, .accepted, value: .number),
        .init(module: "http_core", "types_hash_bucket_size", hsl, .take1, .accepted, value: .number),
        .init(module: "http_core", "connection_pool_size", hs, .take1, .accepted, value: .size),
        .init(module: "http_core", "request_pool_size", hs, .take1, .accepted, value: .size),
        .init(module: "http_core", "client_header_timeout", hs, .take1, .supported, value: .milliseconds),
        .init(module: "http_core", "client_header_buffer_size", hs, .take1, .accepted, value: .size),
        .init(module: "http_core", "large_client_header_buffers", hs, .take2, .supported,
              note: "Answers as nginx: request line longer than one buffer → 414, a longer header line or a head over all buffers → 400."),
        .init(module: "http_core", "ignore_invalid_headers", hs, .flag, .supported, value: .flag,
              note: "Read from the default server of the address, as nginx reads it."),
        .init(module: "http_core", "merge_slashes", hs, .flag, .supported, value: .flag),
        .init(module: "http_core", "underscores_in_headers", hs, .flag, .supported, value: .flag,
              note: "Read from the default server of the address, as nginx reads it."),
        .init(module: "http_core", "types", hsl, [.block, .noArgs], .supported),
        .init(module: "http_core", "default_type", hsl, .take1, .supported),
        .init(module: "http_core", "root", hslIf, .take1, .supported,
              note: "The file must stay inside the root: a path with `..`/`.` components, a NUL byte, or a real path (symlinks resolved) outside the root is refused (404/403)."),
        .init(module: "http_core", "alias", loc, .take1, .supported,
              note: "Safe where nginx is not: the file must stay inside the alias directory, so `location /static { alias /srv/static/; }` answers 404 to `/static../secret` (nginx serves `/srv/secret`), and `alias /srv/static` (no slash) never reaches the sibling `/srv/static.txt`. Regex locations with captures as nginx."),
        .init(module: "http_core", "limit_except", loc, [.block, .oneOrMore], .unsupported, repeatable: false),
        .init(module: "http_core", "client_max_body_size", hsl, .take1, .supported, value: .offset),
        .init(module: "http_core", "client_body_buffer_size", hsl, .take1, .accepted, value: .size),
        .init(module: "http_core", "client_body_timeout", hsl, .take1, .unsupported, value: .milliseconds),
        .init(module: "http_core", "client_body_temp_path", hsl, .take1234, .accepted),
        .init(module: "http_core", "client_body_in_file_only", hsl, .take1, .unsupported),
        .init(module: "http_core", "client_body_in_single_buffer", hsl, .flag, .accepted, value: .flag),
        .init(module: "http_core", "sendfile", hslIf, .flag, .supported, value: .flag,
              note: "Files over 32 KiB are always sent with sendfile (zero-copy) from a cached descriptor; smaller ones from memory in one write, whatever the setting."),
        .init(module: "http_core", "sendfile_max_chunk", hsl, .take1, .accepted, value: .size),
        .init(module: "http_core", "subrequest_output_buffer_size", hsl, .take1, .accepted, value: .size),
        .init(module: "http_core", "aio", hsl, .take1, .accepted),
        .init(module: "http_core", "aio_write", hsl, .flag, .accepted, value: .flag),
        .init(module: "http_core", "read_ahead", hsl, .take1, .accepted, value: .size),
        .init(module: "http_core", "directio", hsl, .take1, .accepted),
        .init(module: "http_core", "directio_alignment", hsl, .take1, .accepted, value: .offset),
        .init(module: "http_core", "tcp_nopush", hsl, .flag, .accepted, value: .flag),
        .init(module: "http_core", "tcp_nodelay", hsl, .flag, .accepted, value: .flag),
        .init(module: "http_core", "send_timeout", hsl, .take1, .supported, value: .milliseconds,
              note: "The connection closes when the client has not taken data for this long."),
        .init(module: "http_core", "send_lowat", hsl, .take1, .accepted, value: .size),
        .init(module: "http_core", "postpone_output", hsl, .take1, .accepted, value: .size),
        .init(module: "http_core", "limit_rate", hslIf, .take1, .unsupported),
        .init(module: "http_core", "limit_rate_after", hslIf, .take1, .unsupported),
        .init(module: "http_core", "keepalive_time", [.http, .server, .location, .upstream], .take1, .unsupported, value: .milliseconds),
        .init(module: "http_core", "keepalive_timeout", hsl, .take12, .supported,
              note: "Both parameters (the second is sent as `Keep-Alive: timeout=N`)."),
        .init(module: "http_core", "keepalive_requests", hsl, .take1, .supported, value: .number),
        .init(module: "http_core", "keepalive_disable", hsl, .take12, .unsupported, repeatable: true),
        .init(module: "http_core", "satisfy", hsl, .take1, .unsupported),
        .init(module: "http_core", "auth_delay", hsl, .take1, .unsupported),
        .init(module: "http_core", "internal", loc, .noArgs, .unsupported),
        .init(module: "http_core", "lingering_close", hsl, .take1, .accepted),
        .init(module: "http_core", "lingering_time", hsl, .take1, .accepted, value: .milliseconds),
        .init(module: "http_core", "lingering_timeout", hsl, .take1, .accepted, value: .milliseconds),
        .init(module: "http_core", "reset_timedout_connection", hsl, .flag, .accepted, value: .flag),
        .init(module: "http_core", "absolute_redirect", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_core", "server_name_in_redirect", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_core", "port_in_redirect", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_core", "msie_padding", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_core", "msie_refresh", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_core", "log_not_found", hsl, .flag, .accepted, value: .flag),
        .init(module: "http_core", "log_subrequest", hsl, .flag, .accepted, value: .flag),
        .init(module: "http_core", "recursive_error_pages", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_core", "server_tokens", hsl, .take1, .supported,
              note: "`on`/`build`: `Server: gantry/VERSION`; `off`: `Server: gantry`. Error pages say the same."),
        .init(module: "http_core", "if_modified_since", hsl, .take1, .supported),
        .init(module: "http_core", "max_ranges", hsl, .take1, .supported, value: .number),
        .init(module: "http_core", "chunked_transfer_encoding", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_core", "etag", hsl, .flag, .supported, value: .flag),
        .init(module: "http_core", "error_page", hslIf, .twoOrMore, .supported, repeatable: true,
              note: "Codes → URI (internal redirect, GET), `@named`, or a URL (302, or `=301/302/303/307/308`); `=code` and `=` as nginx. No recursion (`recursive_error_pages off`)."),
        .init(module: "http_core", "post_action", hslIf, .take1, .unsupported),
        .init(module: "http_core", "open_file_cache", hsl, .take12, .accepted,
              note: "Gantry always keeps a per-event-loop open-file cache valid for 1 s (files ≤ 32 KiB in memory): a file changed in place can be served as it was for up to a second. The directive's values have no effect."),
        .init(module: "http_core", "open_file_cache_valid", hsl, .take1, .accepted, value: .seconds),
        .init(module: "http_core", "open_file_cache_min_uses", hsl, .take1, .accepted, value: .number),
        .init(module: "http_core", "open_file_cache_errors", hsl, .flag, .accepted, value: .flag),
        .init(module: "http_core", "open_file_cache_events", hsl, .flag, .accepted, value: .flag),
        .init(module: "http_core", "resolver", hsl, .oneOrMore, .unsupported),
        .init(module: "http_core", "resolver_timeout", hsl, .take1, .unsupported, value: .milliseconds),
        .init(module: "http_core", "disable_symlinks", hsl, .take12, .supported,
              note: "Default differs (safer): without the directive, symlinks are followed only while the real path stays inside the root/alias (nginx follows all). `off` follows all, as nginx's default; `on` and `if_not_owner` refuse every symlink below the root; `from=` is refused."),
        .init(module: "http_core", "try_files", sl, .twoOrMore, .supported,
              note: "Files, `$uri/` directories, `=code`, `@named`, and a URI (internal redirect)."),
        .init(module: "http_core", "output_buffers", hsl, .take2, .accepted),
        .init(module: "http_core", "gzip_vary", hsl, .flag, .supported, value: .flag),
        .init(module: "http_core", "gzip_http_version", hsl, .take1, .unsupported),
        .init(module: "http_core", "gzip_proxied", hsl, .oneOrMore, .unsupported, repeatable: true),
        .init(module: "http_core", "gzip_disable", hsl, .oneOrMore, .unsupported, repeatable: true),
        .init(module: "http_v2", "http2_push", hsl, .take1, .unsupported, repeatable: true),
        .init(module: "http_v2", "http2_max_concurrent_streams", hs, .take1, .unsupported),
    ]

    static let httpModules: [DirectiveSpec] = [
        // MARK: ngx_http_index_module
        .init(module: "http_index", "index", hsl, .oneOrMore, .supported, repeatable: true,
              note: "Index files are found through the open-file cache (see `open_file_cache`); the first existing one is an internal redirect, as nginx."),
        // MARK: ngx_http_autoindex_module
        .init(module: "http_autoindex", "autoindex", hsl, .flag, .partial("only `autoindex off`: a directory without an index file is 403; `on` is refused"), value: .flag),
        .init(module: "http_autoindex", "autoindex_exact_size", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_autoindex", "autoindex_format", hsl, .take1, .unsupported),
        .init(module: "http_autoindex", "autoindex_localtime", hsl, .flag, .unsupported, value: .flag),
        // MARK: ngx_http_random_index_module
        .init(module: "http_random_index", "random_index", loc, .flag, .unsupported, value: .flag),
        // MARK: ngx_http_log_module
        .init(module: "http_log", "log_format", httpOnly, .twoOrMore, .supported, repeatable: true,
              note: "`escape=default|json|none` as nginx; an empty value is written `-` with `escape=default`."),
        .init(module: "http_log", "access_log", [.http, .server, .location, .locationIf, .limitExcept], .oneOrMore, .supported, repeatable: true,
              note: "`PATH [FORMAT [buffer=] [flush=]]` and `off`, written by a background thread (lines reach the file within 100 ms). Variables in PATH, `gzip`, `if=` are refused. When no `access_log` is set and `logs/access.log` cannot be opened, Gantry logs the error and runs without it (nginx refuses to start)."),
        .init(module: "http_log", "open_log_file_cache", hsl, .take1234, .accepted),
        // MARK: ngx_http_headers_module
        .init(module: "http_headers", "add_header", hslIf, .take23, .supported, repeatable: true),
        .init(module: "http_headers", "add_trailer", hslIf, .take23, .unsupported, repeatable: true),
        .init(module: "http_headers", "expires", hslIf, .take12, .supported,
              note: "`epoch`, `max`, `off`, `[modified] [+|-]TIME`; `@TIME` (time of day) is refused."),
        // MARK: ngx_http_gzip_module
        .init(module: "http_gzip", "gzip", hslIf, .flag, .supported, value: .flag,
              note: "Whole files compressed off the event loop and cached per (inode, mtime, size, level); files over 8 MiB are sent uncompressed."),
        .init(module: "http_gzip", "gzip_types", hsl, .oneOrMore, .supported, repeatable: true),
        .init(module: "http_gzip", "gzip_comp_level", hsl, .take1, .supported, value: .number),
        .init(module: "http_gzip", "gzip_min_length", hsl, .take1, .supported, value: .offset),
        .init(module: "http_gzip", "gzip_buffers", hsl, .take2, .accepted),
        .init(module: "http_gzip", "gzip_window", hsl, .take1, .accepted, value: .size),
        .init(module: "http_gzip", "gzip_hash", hsl, .take1, .accepted, value: .size),
        .init(module: "http_gzip", "gzip_no_buffer", hsl, .flag, .accepted, value: .flag),
        // MARK: ngx_http_gzip_static_module
        .init(module: "http_gzip_static", "gzip_static", hsl, .take1, .supported,
              note: "`on`, `always`, `off`: serves `FILE.gz` beside the file."),
        // MARK: ngx_http_gunzip_module
        .init(module: "http_gunzip", "gunzip", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_gunzip", "gunzip_buffers", hsl, .take2, .unsupported),
        // MARK: ngx_http_rewrite_module
        .init(module: "http_rewrite", "return", rewrite, .take12, .supported, repeatable: true,
              note: "Code with text, code with URL (a relative URL is made absolute as `absolute_redirect on`), URL alone (302), `444` closes."),
        .init(module: "http_rewrite", "rewrite", rewrite, .take23, .unsupported, repeatable: true),
        .init(module: "http_rewrite", "break", rewrite, .noArgs, .unsupported, repeatable: true),
        .init(module: "http_rewrite", "if", sl, [.block, .oneOrMore], .unsupported),
        .init(module: "http_rewrite", "set", rewrite, .take2, .unsupported, repeatable: true),
        .init(module: "http_rewrite", "rewrite_log", [.http, .server, .serverIf, .location, .locationIf], .flag, .unsupported, value: .flag),
        .init(module: "http_rewrite", "uninitialized_variable_warn", [.http, .server, .serverIf, .location, .locationIf], .flag, .accepted, value: .flag),
        // MARK: ngx_http_access_module
        .init(module: "http_access", "allow", hslLimit, .take1, .unsupported, repeatable: true),
        .init(module: "http_access", "deny", hslLimit, .take1, .unsupported, repeatable: true),
        // MARK: ngx_http_auth_basic_module
        .init(module: "http_auth_basic", "auth_basic", hslLimit, .take1, .unsupported),
        .init(module: "http_auth_basic", "auth_basic_user_file", hslLimit, .take1, .unsupported),
        // MARK: ngx_http_auth_request_module
        .init(module: "http_auth_request", "auth_request", hsl, .take1, .unsupported),
        .init(module: "http_auth_request", "auth_request_set", hsl, .take2, .unsupported, repeatable: true),
        // MARK: ngx_http_limit_req_module
        .init(module: "http_limit_req", "limit_req_zone", httpOnly, .take3, .unsupported, repeatable: true),
        .init(module: "http_limit_req", "limit_req", hsl, .take123, .unsupported, repeatable: true),
        .init(module: "http_limit_req", "limit_req_status", hsl, .take1, .unsupported),
        .init(module: "http_limit_req", "limit_req_log_level", hsl, .take1, .unsupported),
        .init(module: "http_limit_req", "limit_req_dry_run", hsl, .flag, .unsupported, value: .flag),
        // MARK: ngx_http_limit_conn_module
        .init(module: "http_limit_conn", "limit_conn_zone", httpOnly, .take2, .unsupported, repeatable: true),
        .init(module: "http_limit_conn", "limit_conn", hsl, .take2, .unsupported, repeatable: true),
        .init(module: "http_limit_conn", "limit_conn_status", hsl, .take1, .unsupported),
        .init(module: "http_limit_conn", "limit_conn_log_level", hsl, .take1, .unsupported),
        .init(module: "http_limit_conn", "limit_conn_dry_run", hsl, .flag, .unsupported, value: .flag),
        // MARK: ngx_http_map_module
        .init(module: "http_map", "map", httpOnly, [.block, .take2], .unsupported),
        .init(module: "http_map", "map_hash_max_size", httpOnly, .take1, .accepted, value: .number),
        .init(module: "http_map", "map_hash_bucket_size", httpOnly, .take1, .accepted, value: .number),
        // MARK: ngx_http_geo_module
        .init(module: "http_geo", "geo", httpOnly, [.block, .take12], .unsupported),
        // MARK: ngx_http_split_clients_module
        .init(module: "http_split_clients", "split_clients", httpOnly, [.block, .take2], .unsupported),
        // MARK: ngx_http_charset_module
        .init(module: "http_charset", "charset", hslIf, .take1, .unsupported),
        .init(module: "http_charset", "source_charset", hslIf, .take1, .unsupported),
        .init(module: "http_charset", "override_charset", hslIf, .flag, .unsupported, value: .flag),
        .init(module: "http_charset", "charset_types", hsl, .oneOrMore, .unsupported, repeatable: true),
        .init(module: "http_charset", "charset_map", httpOnly, [.block, .take2], .unsupported),
        // MARK: ngx_http_realip_module
        .init(module: "http_realip", "set_real_ip_from", hsl, .take1, .unsupported, repeatable: true),
        .init(module: "http_realip", "real_ip_header", hsl, .take1, .unsupported),
        .init(module: "http_realip", "real_ip_recursive", hsl, .flag, .unsupported, value: .flag),
        // MARK: ngx_http_sub_module
        .init(module: "http_sub", "sub_filter", hsl, .take2, .unsupported, repeatable: true),
        .init(module: "http_sub", "sub_filter_once", hsl, .flag, .unsupported, value: .flag),
        .init(module: "http_sub", "sub_filter_types", hsl, .oneOrMore, .unsupported, repeatable: true),
        // MARK: ngx_http_ssi_module
        .init(module: "http_ssi", "ssi", hslIf, .flag, .unsupported, value: .flag),
        // MARK: ngx_http_addition_module
        .init(module: "http_addition", "add_before_body", hsl, .take1, .unsupported),
        .init(module: "http_addition", "add_after_body", hsl, .take1, .unsupported),
        // MARK: ngx_http_stub_status_module
        .init(module: "http_stub_status", "stub_status", sl, [.noArgs, .take1], .unsupported, repeatable: true),
        // MARK: ngx_http_referer_module
        .init(module: "http_referer", "valid_referers", sl, .oneOrMore, .unsupported, repeatable: true),
        // MARK: ngx_http_secure_link_module
        .init(module: "http_secure_link", "secure_link", hsl, .take1, .unsupported),
        .init(module: "http_secure_link", "secure_link_md5", hsl, .take1, .unsupported),
        .init(module: "http_secure_link", "secure_link_secret", hsl, .take1, .unsupported),
        // MARK: ngx_http_empty_gif_module
        .init(module: "http_empty_gif", "empty_gif", loc, .noArgs, .unsupported, repeatable: true),
        // MARK: ngx_http_mp4_module
        .init(module: "http_mp4", "mp4", loc, .noArgs, .unsupported, repeatable: true),
        // MARK: ngx_http_flv_module
        .init(module: "http_flv", "flv", loc, .noArgs, .unsupported, repeatable: true),
        // MARK: ngx_http_dav_module
        .init(module: "http_dav", "dav_methods", hsl, .oneOrMore, .unsupported, repeatable: true),
        .init(module: "http_dav", "create_full_put_path", hsl, .flag, .unsupported, value: .flag),
        // MARK: ngx_http_slice_module
        .init(module: "http_slice", "slice", hsl, .take1, .unsupported),
        // MARK: ngx_http_mirror_module
        .init(module: "http_mirror", "mirror", hsl, .take1, .unsupported, repeatable: true),
        // MARK: ngx_http_userid_module
        .init(module: "http_userid", "userid", hsl, .take1, .unsupported),
    ]

    static let httpSSL: [DirectiveSpec] = [
        // MARK: ngx_http_ssl_module
        .init(module: "http_ssl", "ssl", hs, .flag, .unsupported, value: .flag),
        .init(module: "http_ssl", "ssl_certificate", hs, .take1, ssl, repeatable: true),
        .init(module: "http_ssl", "ssl_certificate_key", hs, .take1, ssl, repeatable: true),
        .init(module: "http_ssl", "ssl_password_file", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_dhparam", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_ecdh_curve", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_protocols", hs, .oneOrMore, ssl, repeatable: true),
        .init(module: "http_ssl", "ssl_ciphers", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_buffer_size", hs, .take1, ssl, value: .size),
        .init(module: "http_ssl", "ssl_verify_client", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_verify_depth", hs, .take1, ssl, value: .number),
        .init(module: "http_ssl", "ssl_client_certificate", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_trusted_certificate", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_prefer_server_ciphers", hs, .flag, ssl, value: .flag),
        .init(module: "http_ssl", "ssl_session_cache", hs, .take12, ssl, repeatable: true),
        .init(module: "http_ssl", "ssl_session_tickets", hs, .flag, ssl, value: .flag),
        .init(module: "http_ssl", "ssl_session_ticket_key", hs, .take1, ssl, repeatable: true),
        .init(module: "http_ssl", "ssl_session_timeout", hs, .take1, ssl, value: .seconds),
        .init(module: "http_ssl", "ssl_crl", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_ocsp", hs, .flag, ssl),
        .init(module: "http_ssl", "ssl_ocsp_cache", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_ocsp_responder", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_stapling", hs, .flag, ssl, value: .flag),
        .init(module: "http_ssl", "ssl_stapling_file", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_stapling_responder", hs, .take1, ssl),
        .init(module: "http_ssl", "ssl_stapling_verify", hs, .flag, ssl, value: .flag),
        .init(module: "http_ssl", "ssl_early_data", hs, .flag, ssl, value: .flag),
        .init(module: "http_ssl", "ssl_conf_command", hs, .take2, ssl, repeatable: true),
        .init(module: "http_ssl", "ssl_reject_handshake", hs, .flag, ssl, value: .flag),
    ]

    /// The other gateways: Gantry speaks HTTP to its upstreams and runs WSGI itself.
    static let httpGateways: [DirectiveSpec] = {
        let gateways = ["fastcgi", "uwsgi", "scgi", "grpc"]
        let common: [(String, DirectiveArity, Bool)] = [
            ("pass", .take1, false), ("param", .take23, true), ("read_timeout", .take1, false),
            ("send_timeout", .take1, false), ("connect_timeout", .take1, false), ("buffers", .take2, false),
            ("buffer_size", .take1, false), ("buffering", .flag, false), ("intercept_errors", .flag, false),
            ("next_upstream", .oneOrMore, false), ("hide_header", .take1, true), ("pass_header", .take1, true),
            ("ignore_headers", .oneOrMore, false), ("cache", .take1, false), ("cache_valid", .oneOrMore, true),
            ("cache_key", .take1, false), ("temp_path", .take1234, false), ("pass_request_headers", .flag, false),
            ("pass_request_body", .flag, false),
        ]
        var rows: [DirectiveSpec] = []
        for gateway in gateways {
            for (suffix, arity, repeatable) in common {
                if gateway == "grpc" && ["buffers", "param", "cache", "cache_valid", "cache_key", "temp_path", "buffering", "pass_request_headers", "pass_request_body"].contains(suffix) { continue }
                let contexts: DirectiveContexts = suffix == "pass" ? [.location, .locationIf] : hsl
                rows.append(.init(module: "http_\(gateway)", "\(gateway)_\(suffix)", contexts, arity, .unsupported, repeatable: repeatable))
            }
        }
        rows += [
            .init(module: "http_fastcgi", "fastcgi_index", hsl, .take1, .unsupported),
            .init(module: "http_fastcgi", "fastcgi_split_path_info", hsl, .take1, .unsupported, repeatable: true),
            .init(module: "http_fastcgi", "fastcgi_cache_path", httpOnly, .twoOrMore, .unsupported, repeatable: true),
            .init(module: "http_uwsgi", "uwsgi_cache_path", httpOnly, .twoOrMore, .unsupported, repeatable: true),
            .init(module: "http_scgi", "scgi_cache_path", httpOnly, .twoOrMore, .unsupported, repeatable: true),
            .init(module: "http_uwsgi", "uwsgi_modifier1", hsl, .take1, .unsupported),
            .init(module: "http_grpc", "grpc_set_header", hsl, .take2, .unsupported, repeatable: true),
            .init(module: "http_memcached", "memcached_pass", [.location, .locationIf], .take1, .unsupported),
        ]
        return rows
    }()
}
