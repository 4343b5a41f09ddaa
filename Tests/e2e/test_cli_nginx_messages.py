"""Bad configurations: `gantry -t` must fail with nginx's own message, file and line.

Each configuration also goes through Debian's `nginx -t` (nginx-light) in a private prefix,
and the `[emerg]` text must be identical, so a message can never drift from nginx's.
"""
import pytest

from nginx_oracle import NGINX, emerg_line, run_test, warn_lines

E = "events {}\n"

CASES = [
    E + "foo bar;\n",
    E + "http {\n  alias /x;\n}\n",
    E + "http {\n  server {\n    listen;\n  }\n}\n",
    E + "http\n;\n",
    E + "http {\n  root /x {\n  }\n}\n",
    E + "http {\n  root /a;\n  root /b;\n}\n",
    E + "http {}\nhttp {}\n",
    E + "events {}\n",
    E + "http {\n server {\n  location / {\n   root /a;\n   alias /b;\n  }\n }\n}\n",
    E + "http {\n server {\n  location / {\n   alias /a;\n   root /b;\n  }\n }\n}\n",
    E + "http {\n server {\n  location /x {}\n  location /x {}\n }\n}\n",
    E + "http {\n server {\n  location ^~ /x {}\n  location /x {}\n }\n}\n",
    E + "http {\n  sendfile maybe;\n}\n",
    E + "http {\n  client_max_body_size 10x;\n}\n",
    E + "http {\n  keepalive_timeout 1q;\n}\n",
    E + "http {\n  proxy_read_timeout 1m1h;\n}\n",
    E + "http {\n  keepalive_requests many;\n}\n",
    E + "http {\n server {\n  listen foo.invalid:80;\n }\n}\n",
    E + "http {\n server {\n  listen 70000;\n }\n}\n",
    E + "http {\n server {\n  listen [::1;\n }\n}\n",
    E + "http {\n server {\n  listen unix:;\n }\n}\n",
    E + "http {\n server {\n  listen 80 fast;\n }\n}\n",
    E + "http {\n server { listen 80 default_server; }\n server { listen 80 default_server; }\n}\n",
    E + "http {\n server {\n  server_name *example.com;\n }\n}\n",
    E + "http {\n server {\n  server_name ~;\n }\n}\n",
    E + "http {\n server {\n  location /a {\n   location /b {}\n  }\n }\n}\n",
    E + "http {\n server {\n  location = /a {\n   location /a/b {}\n  }\n }\n}\n",
    E + "http {\n server {\n  location @a {\n   location /a {}\n  }\n }\n}\n",
    E + "http {\n server {\n  location /a {\n   location @b {}\n  }\n }\n}\n",
    E + "http {\n server {\n  location xx /a {}\n }\n}\n",
    E + "http {\n}\n}\n",
    E + "http {\n  root /x\n",
    E + "http {\n",
    E + "http { ; }\n",
    E + "include /nonexistent/gantry-test.conf;\n",
    E + "http {\n  upstream u {\n  }\n}\n",
    E + "http {\n  upstream u { server 127.0.0.1 weight=0; }\n}\n",
    E + "http {\n  upstream u { server 127.0.0.1:1; }\n  upstream u { server 127.0.0.1:2; }\n}\n",
    E + "http {\n  upstream u { ip_hash; server 127.0.0.1 backup; }\n}\n",
    E + "http {\n server {\n  location / {\n   proxy_pass ftp://x;\n  }\n }\n}\n",
    E + "http {\n server {\n  location ~ ^/a {\n   proxy_pass http://127.0.0.1/x;\n  }\n }\n}\n",
    E + "http {\n upstream u { server 127.0.0.1; }\n server {\n  location / {\n   proxy_pass http://u:81;\n  }\n }\n}\n",
    E + "http {\n server { foo; }\n include /nonexistent;\n",
    "user nosuchuser;\n" + E,
    "worker_cpu_affinity 01x;\n" + E,
    "worker_cpu_affinity auto 01 10;\n" + E,
    "worker_cpu_affinity 01;\nworker_cpu_affinity 10;\n" + E,
    E + "http {\n server {\n  listen 80;\n  listen 0.0.0.0:80;\n }\n}\n",
    E + "http {\n server { listen 80 backlog=10; }\n server { listen 80 backlog=20; }\n}\n",
    "http {}\n",
    # value checks of directives with their own syntax (some made by the front and proxy modules)
    E + "http {\n server {\n  location / {\n   error_page 99 /x;\n  }\n }\n}\n",
    E + "http {\n server {\n  access_log /tmp/gantry-test-x.log nofmt;\n }\n}\n",
    E + "http {\n gzip_static maybe;\n}\n",
    E + "http {\n expires maybe;\n}\n",
    E + "http {\n expires @25h;\n}\n",
    E + "http {\n server {\n  location / {\n   return 1000;\n  }\n }\n}\n",
    E + "http {\n disable_symlinks maybe;\n}\n",
    E + "http {\n proxy_http_version 3;\n}\n",
    E + "http {\n proxy_next_upstream error bogus;\n}\n",
    E + "http {\n server_tokens maybe;\n}\n",
    E + "http {\n gzip_comp_level 0;\n}\n",
    E + "http {\n lingering_close x;\n}\n",
    E + "http {\n ssl_protocols TLSv1.2 TLSv9;\n}\n",
    "events {\n use x;\n}\n",
    E + "http {\n error_log stderr bogus;\n}\n",
    E + "http {\n large_client_header_buffers 0 8k;\n}\n",
    E + "http {\n proxy_redirect 1m;\n}\n",
    E + "http {\n upstream u {\n  server 127.0.0.1:9 backup;\n }\n server { listen 8080; location / { proxy_pass http://u; } }\n}\n",
    E + "http {\n error_log stderr info debug;\n}\n",
]


@pytest.mark.skipif(NGINX is None, reason="nginx-light is not installed (Scripts/install-deps installs it)")
@pytest.mark.parametrize("config", CASES, ids=range(len(CASES)))
def test_same_emerg_as_nginx(gantry, tmp_path, config):
    conf = tmp_path / "t.conf"
    conf.write_text(config)
    nginx_code, nginx_err = run_test(NGINX, tmp_path, conf)
    gantry_code, gantry_err = run_test(gantry, tmp_path, conf)
    assert nginx_code == 1, f"the case must be one nginx refuses: {nginx_err}"
    assert gantry_code == 1, gantry_err
    assert emerg_line(gantry_err) == emerg_line(nginx_err)
    assert gantry_err.endswith(f"gantry: configuration file {conf} test failed\n")


WARN_CASES = [
    E + "http {\n types { text/html html; text/plain html; }\n}\n",
    E + "http {\n upstream u { least_conn; ip_hash; server 127.0.0.1; }\n}\n",
    E + "http {\n server { listen 80; server_name a/b; }\n}\n",
    E + "http {\n server { listen 80; server_name a; }\n server { listen 80; server_name b a; }\n}\n",
    E + "http {\n server { listen 8080 reuseport; }\n server { listen 8080; }\n}\n",
    E + "http {\n index /a b;\n}\n",
]


@pytest.mark.skipif(NGINX is None, reason="nginx-light is not installed")
@pytest.mark.parametrize("config", WARN_CASES, ids=range(len(WARN_CASES)))
def test_same_warnings_as_nginx(gantry, tmp_path, config):
    conf = tmp_path / "t.conf"
    conf.write_text(config)
    nginx_code, nginx_err = run_test(NGINX, tmp_path, conf)
    gantry_code, gantry_err = run_test(gantry, tmp_path, conf)
    assert (nginx_code, gantry_code) == (0, 0), gantry_err
    assert warn_lines(gantry_err) == warn_lines(nginx_err)
    assert warn_lines(gantry_err)


def test_unsupported_directive_is_refused_by_name(gantry, tmp_path):
    conf = tmp_path / "t.conf"
    conf.write_text(E + "http {\n  server {\n    location / {\n      auth_basic \"area\";\n    }\n  }\n}\n")
    code, err = run_test(gantry, tmp_path, conf)
    assert code == 1
    assert emerg_line(err) == f'"auth_basic" is not supported by gantry in {conf}:5'


# Documented differences (nginx-compat/directives.md): nginx refuses, Gantry accepts.
DIFFERENCES = [
    # Upstream host names are resolved when the proxy connects, not at load time.
    E + "http {\n upstream u { server backend.invalid:8000; }\n server { listen 8080; location / { proxy_pass http://u; } }\n}\n",
    E + "http {\n server {\n  listen 8080;\n  location / {\n   proxy_pass http://nowhere.invalid:8080/x;\n  }\n }\n}\n",
    # Gantry's own block.
    E + "http {\n app_pool p { wsgi app:application; }\n}\n",
]


@pytest.mark.skipif(NGINX is None, reason="nginx-light is not installed")
@pytest.mark.parametrize("config", DIFFERENCES, ids=range(len(DIFFERENCES)))
def test_documented_differences(gantry, tmp_path, config):
    conf = tmp_path / "t.conf"
    conf.write_text(config)
    nginx_code, nginx_err = run_test(NGINX, tmp_path, conf)
    gantry_code, gantry_err = run_test(gantry, tmp_path, conf)
    assert nginx_code == 1, nginx_err
    assert gantry_code == 0, gantry_err
