"""nginx's rewrite phase — `if (…) { return …; }`, `rewrite` with every flag, `break` — and
`internal` locations, checked side by side with the real nginx: certbot's redirect block, method
and user-agent filters, regex captures, order with the level's `return`, server level then
location level, arguments, internal rewrites that search the location again (and the 500 of a
rewrite cycle), internal locations reached only by redirects; and what `gantry -t` refuses with
file and line."""
import http.client
import subprocess

import pytest

from conftest import free_port
from nginx_oracle import needs_nginx, side_by_side

pytestmark = needs_nginx


def config(root, port, head=""):
    return f"""{head}
events {{ }}
http {{
    access_log off;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        server_name shop.example.com old.example.com;
        root {root};
        # certbot's "managed by Certbot" redirect, at server level.
        if ($host = old.example.com) {{
            return 301 https://shop.example.com$request_uri;
        }}
        if ($http_x_block) {{ return 403; }}
        rewrite ^/legacy/(.*)$ /methods/$1 permanent;
        rewrite ^/moved$ /methods/page.txt?from=moved redirect;
        rewrite ^/elsewhere$ https://example.com/x;
        rewrite ^/short/(\\w+)$ /agents/$1.txt;
        location /methods/ {{
            if ($request_method !~ ^(GET|HEAD)$) {{ return 405; }}
        }}
        location /agents/ {{
            if ($http_user_agent ~* (curl|wget)) {{ return 403 "no $1\\n"; }}
            if ($http_user_agent ~ "^Bot/(?<version>[0-9]+)") {{ return 200 "bot $version\\n"; }}
        }}
        location /order/ {{
            if ($arg_a = "") {{ return 200 "empty a\\n"; }}
            return 200 "a=$arg_a\\n";
            if ($arg_a = x) {{ return 200 "never\\n"; }}
        }}
        location /compare/ {{
            if ($arg_a != $arg_b) {{ return 200 "differ\\n"; }}
            if ($arg_c) {{ return 200 "c is set\\n"; }}
        }}
        location /captures/ {{
            if ($uri ~ ^/captures/(\\w+)/(\\w+)$) {{ return 200 "$2 $1\\n"; }}
        }}
        location /noreturn/ {{
            if ($arg_a) {{ }}
        }}
        location /last/ {{
            rewrite ^/last/(.*)$ /compare/$1 last;
            return 200 "not reached\n";
        }}
        location /brk/ {{
            rewrite ^/brk/(.*)$ /order/$1? break;
            return 200 "after break\n";
        }}
        location /brk2/ {{
            root {root};
            rewrite ^/brk2/(.*)$ /methods/$1 break;
        }}
        location /chain/ {{
            rewrite ^/chain/a$ /chain/b;
            rewrite ^/chain/b$ /order/page.txt?a=chained;
        }}
        location /stop/ {{
            break;
            rewrite ^ /never last;
        }}
        location /cycle/ {{
            rewrite ^ /cycle/again last;
        }}
        location /private/ {{ internal; }}
        location /tf/ {{ try_files $uri /private/fallback.txt; }}
        location /int/ {{ rewrite ^/int/(.*)$ /private/$1 last; }}
    }}
}}
"""


REQUESTS = [
    ("GET", "/methods/page.txt", {}),
    ("HEAD", "/methods/page.txt", {}),
    ("POST", "/methods/page.txt", {}),
    ("DELETE", "/methods/page.txt", {}),
    ("GET", "/agents/page.txt", {"User-Agent": "curl/8.0"}),
    ("GET", "/agents/page.txt", {"User-Agent": "Mozilla WGET"}),
    ("GET", "/agents/page.txt", {"User-Agent": "Bot/42 (x)"}),
    ("GET", "/agents/page.txt", {"User-Agent": "bot/42"}),
    ("GET", "/agents/page.txt", {"User-Agent": "Mozilla/5.0"}),
    ("GET", "/order/page.txt", {}),
    ("GET", "/order/page.txt?a=x", {}),
    ("GET", "/compare/page.txt?a=1&b=1", {}),
    ("GET", "/compare/page.txt?a=1&b=2", {}),
    ("GET", "/compare/page.txt?a=1&b=1&c=0", {}),
    ("GET", "/compare/page.txt?a=1&b=1&c=yes", {}),
    ("GET", "/captures/one/two", {}),
    ("GET", "/captures/one/two/three", {}),
    ("GET", "/noreturn/page.txt?a=1", {}),
    ("GET", "/methods/page.txt", {"Host": "old.example.com"}),
    ("GET", "/missing?q=1", {"Host": "old.example.com"}),
    ("GET", "/methods/page.txt", {"X-Block": "1"}),
    ("GET", "/methods/page.txt", {"X-Block": "0"}),
    ("GET", "/legacy/page.txt?x=1", {}),
    ("GET", "/moved?x=1", {}),
    ("GET", "/elsewhere?x=1", {}),
    ("GET", "/short/page", {"User-Agent": "Bot/7"}),
    ("GET", "/last/page.txt?a=1&b=2", {}),
    ("GET", "/last/page.txt?a=1&b=1&c=1", {}),
    ("GET", "/brk/page.txt?a=1", {}),
    ("GET", "/brk2/page.txt", {}),
    ("GET", "/chain/a?q=1", {}),
    ("GET", "/stop/page.txt", {}),
    ("GET", "/cycle/x", {}),
    ("GET", "/private/fallback.txt", {}),
    ("GET", "/tf/missing.txt", {}),
    ("GET", "/int/fallback.txt", {}),
]


def answer(port, method, path, headers):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, headers={"Host": "shop.example.com", **headers})
        response = connection.getresponse()
        location = response.getheader("Location")
        # Absolute redirects name the server's own port, which differs between the two.
        location = location.replace(f":{port}/", ":PORT/") if location else location
        return response.status, location, response.read()
    finally:
        connection.close()


def test_every_request_gets_nginxs_answer(gantry, tmp_path):
    root = tmp_path / "root"
    for directory in ["methods", "agents", "order", "compare", "noreturn"]:
        (root / directory).mkdir(parents=True)
        (root / directory / "page.txt").write_text("page\n")
    (root / "private").mkdir()
    (root / "private" / "fallback.txt").write_text("internal only\n")
    nginx_port, gantry_port = free_port(), free_port()
    with side_by_side(gantry, tmp_path, lambda port, head: config(root, port, head), nginx_port, gantry_port):
        differences = []
        for method, path, headers in REQUESTS:
            expected = answer(nginx_port, method, path, headers)
            got = answer(gantry_port, method, path, headers)
            if b"<hr><center>nginx/" in expected[2]:
                # Built-in pages name the server; compare status and Location only.
                expected, got = expected[:2], got[:2]
            if expected != got:
                differences.append(f"{method} {path} {headers}: nginx {expected}, gantry {got}")
        assert not differences, "\n".join(differences)


def _check(gantry, tmp_path, body):
    (tmp_path / "t.conf").write_text("events { }\nhttp {\nserver {\n" + body + "\n}\n}\n")
    result = subprocess.run([str(gantry), "-t", "-c", str(tmp_path / "t.conf")], capture_output=True, text=True)
    return result.returncode, result.stderr


@pytest.mark.parametrize("body, message, line", [
    ("if (!-f $request_filename) { return 404; }", 'the "!-f" condition of "if" is not supported by gantry (use "try_files")', 4),
    ("location / {\n if ($arg_a) { proxy_pass http://127.0.0.1:9; }\n}", '"proxy_pass" inside "if" is not supported by gantry (only "return")', 5),
    ("if ($arg_a) { rewrite ^ /x last; }", '"rewrite" inside "if" is not supported by gantry (only "return")', 4),
    ("rewrite ^/a /b forever;", 'invalid parameter "forever"', 4),
    ("rewrite ( /b;", "pcre2_compile() failed", 4),
    ("if ($arg_a) { set $x 1; }", '"set" is not supported by gantry', 4),
    ("if ($arg_a ~ \"(\") { return 404; }", "pcre2_compile() failed", 4),
    ("if ($arg_a <> b) { return 404; }", 'unexpected "<>" in condition', 4),
    ("if $arg_a { return 404; }", 'invalid condition "$arg_a"', 4),
])
def test_config_test_refuses_what_gantry_does_not_run(gantry, tmp_path, body, message, line):
    code, err = _check(gantry, tmp_path, body)
    assert code == 1, err
    assert message in err and f"t.conf:{line}" in err, err
