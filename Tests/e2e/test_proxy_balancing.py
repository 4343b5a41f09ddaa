"""Upstream balancing with real upstream processes: nginx's exact weighted split, least_conn under
slow requests, ip_hash and consistent-hash stickiness, a killed server taken out with no failed GET
and used again once back, active health checks, and the wait queue."""
import collections
import json
import threading
import time

import pytest

from upstreams.harness import Gantry, Upstream, free_port, wait_for


@pytest.fixture
def upstreams(tmp_path):
    started = []

    def start(*names, unix=()):
        for name in names:
            if name in unix:
                started.append(Upstream(name, unix_path=str(tmp_path / f"{name}.sock")).start())
            else:
                started.append(Upstream(name, tcp_port=free_port()).start())
        return started[-len(names):]

    yield start
    for upstream in started:
        upstream.kill()


def run_gantry(gantry, tmp_path, body):
    port = free_port()
    return Gantry(gantry, body.replace("PORT", str(port)), port, tmp_path).start()


def names_of(front, count, path="/", headers=None):
    """`count` requests over one keep-alive connection; the upstream name of each answer."""
    conn = front.connection()
    names = []
    try:
        for _ in range(count):
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, (response.status, body, front.error_log()[-2000:])
            names.append(json.loads(body)["name"])
    finally:
        conn.close()
    return names


def test_weighted_round_robin_exact_split(gantry, tmp_path, upstreams):
    a, b = upstreams("a", "b", unix=("b",))
    front = run_gantry(gantry, tmp_path, f"""
    upstream app {{ server {a.address} weight=3; server {b.address}; }}
    server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://app; }} }}""")
    try:
        names = names_of(front, 400)
        assert collections.Counter(names) == {"a": 300, "b": 100}
        assert names[:8] == ["a", "a", "b", "a"] * 2     # nginx's smooth interleaving
    finally:
        front.stop()


def test_least_conn_prefers_the_idle_server(gantry, tmp_path, upstreams):
    a, b = upstreams("a", "b")
    front = run_gantry(gantry, tmp_path, f"""
    upstream app {{ least_conn; server {a.address}; server {b.address}; }}
    server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://app; }} }}""")
    try:
        # Hold two slow requests open; least_conn puts one on each server.
        results = []
        threads = [threading.Thread(target=lambda: results.append(front.get_json("/slow?ms=1500")[0]["name"]))
                   for _ in range(2)]
        for t in threads:
            t.start()
        assert wait_for(lambda: a.stats()["requests"] + b.stats()["requests"] == 2, timeout=5)
        # Both busy (1:1), a tie broken by round robin: a third slow one goes to either.
        third = []
        t3 = threading.Thread(target=lambda: third.append(front.get_json("/slow?ms=1500")[0]["name"]))
        t3.start()
        assert wait_for(lambda: a.stats()["requests"] + b.stats()["requests"] == 3, timeout=5)
        # While one server holds 2 slow requests and the other 1, every quick request goes to the other.
        counts_before = {u.name: u.stats()["requests"] for u in (a, b)}
        busy_name = max(counts_before, key=counts_before.get)
        quick = names_of(front, 20, "/")
        assert set(quick) == {"a", "b"} - {busy_name}, (quick, counts_before)
        for t in threads + [t3]:
            t.join(timeout=10)
        assert sorted(results + third).count("a") in (1, 2)
        assert sorted(results) == ["a", "b"]     # the first two went one to each server
    finally:
        front.stop()


def test_ip_hash_is_sticky(gantry, tmp_path, upstreams):
    a, b, c = upstreams("a", "b", "c")
    front = run_gantry(gantry, tmp_path, f"""
    upstream app {{ ip_hash; server {a.address}; server {b.address}; server {c.address}; }}
    server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://app; }} }}""")
    try:
        names = names_of(front, 60)
        assert len(set(names)) == 1     # every request from 127.0.0.1 lands on one server
        # nginx's hash over 127.0.0: 89 → (h*113 + octet) % 6271 for three octets, then % 3 servers.
        h = 89
        for octet in (127, 0, 0):
            h = (h * 113 + octet) % 6271
        assert names[0] == ["a", "b", "c"][h % 3]
    finally:
        front.stop()


def test_consistent_hash_sticks_and_survives_a_removed_server(gantry, tmp_path, upstreams):
    a, b, c = upstreams("a", "b", "c")
    front = run_gantry(gantry, tmp_path, f"""
    upstream app {{
        hash $arg_key consistent;
        server {a.address}; server {b.address}; server {c.address} max_fails=1 fail_timeout=30s;
    }}
    server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://app; }} }}""")
    try:
        keys = [f"user{n}" for n in range(40)]
        first = {k: names_of(front, 1, f"/?key={k}")[0] for k in keys}
        again = {k: names_of(front, 3, f"/?key={k}") for k in keys}
        assert all(again[k] == [first[k]] * 3 for k in keys)
        assert set(first.values()) == {"a", "b", "c"}
        c.kill()
        after = {k: names_of(front, 1, f"/?key={k}")[0] for k in keys}
        # Keys that were on a or b stay there; only c's keys move.
        assert all(after[k] == first[k] for k in keys if first[k] != "c")
        assert all(after[k] in ("a", "b") for k in keys)
    finally:
        front.stop()


def test_killed_server_is_taken_out_without_failed_requests_and_used_again(gantry, tmp_path, upstreams):
    a, b = upstreams("a", "b")
    front = run_gantry(gantry, tmp_path, f"""
    upstream app {{ server {a.address} fail_timeout=1s; server {b.address} fail_timeout=1s; }}
    server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://app; }} }}""")
    try:
        assert collections.Counter(names_of(front, 10)) == {"a": 5, "b": 5}
        b.kill()
        # Every GET still succeeds: the refused connection sends it on to a (proxy_next_upstream error).
        assert set(names_of(front, 30)) == {"a"}
        assert wait_for(lambda: "upstream server temporarily disabled" in front.error_log(), timeout=5)
        b.start()
        time.sleep(1.2)     # past fail_timeout, b is tried again and, answering, is live again
        assert wait_for(lambda: "b" in names_of(front, 4), timeout=5)
        assert collections.Counter(names_of(front, 10)) == {"a": 5, "b": 5}
    finally:
        front.stop()


def test_active_health_checks_mark_down_and_up(gantry, tmp_path, upstreams):
    a, b = upstreams("a", "b", unix=("b",))
    front = run_gantry(gantry, tmp_path, f"""
    upstream app {{
        server {a.address}; server {b.address};
        health_check uri=/health interval=200ms fails=2 passes=2;
    }}
    server {{ listen 127.0.0.1:PORT; location / {{ proxy_pass http://app; }} }}""")
    try:
        assert set(names_of(front, 4)) == {"a", "b"}
        b.get("/_control/health?status=503")
        # After two failed checks b is out before any user request hits it.
        assert wait_for(lambda: "peer is unhealthy" in front.error_log(), timeout=5)
        served_by_b = b.stats()["requests"]
        assert set(names_of(front, 10)) == {"a"}
        # b's request count grew by health checks only, not by user requests.
        b.get("/_control/health?status=200")
        assert wait_for(lambda: "peer is healthy again" in front.error_log(), timeout=5)
        assert set(names_of(front, 4)) == {"a", "b"}
        assert served_by_b > 0
    finally:
        front.stop()


def test_queue_waits_when_every_server_is_at_max_conns(gantry, tmp_path, upstreams):
    (a,) = upstreams("a")
    front = run_gantry(gantry, tmp_path, f"""
    upstream waits {{ server {a.address} max_conns=1; queue 10 timeout=10s; }}
    upstream short {{ server {a.address} max_conns=1; queue 1 timeout=300ms; }}
    upstream none  {{ server {a.address} max_conns=1; }}
    server {{
        listen 127.0.0.1:PORT;
        location /w/ {{ proxy_pass http://waits/; }}
        location /s/ {{ proxy_pass http://short/; }}
        location /n/ {{ proxy_pass http://none/; }}
    }}""")
    try:
        def fire(path, n):
            statuses = []
            threads = [threading.Thread(target=lambda: statuses.append(front.request("GET", path)[0]))
                       for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=15)
            return sorted(statuses)

        # Three slow requests, one server at max_conns=1: they wait their turn, all succeed.
        assert fire("/w/slow?ms=300", 3) == [200, 200, 200]
        # A short queue: one runs, one waits past 300 ms or finds the queue full → 502.
        statuses = fire("/s/slow?ms=800", 3)
        assert statuses.count(200) >= 1 and 502 in statuses
        # No queue: busy means 502 at once, as nginx.
        statuses = fire("/n/slow?ms=500", 3)
        assert statuses.count(200) >= 1 and 502 in statuses
    finally:
        front.stop()


def test_next_upstream_rules(gantry, tmp_path, upstreams):
    a, b = upstreams("a", "b")
    front = run_gantry(gantry, tmp_path, f"""
    upstream app {{ server {a.address} max_fails=0; server {b.address} max_fails=0; }}
    upstream one {{ server {a.address} max_fails=0; server {b.address} max_fails=0; }}
    server {{
        listen 127.0.0.1:PORT;
        location /retry/ {{ proxy_pass http://app/; proxy_next_upstream error timeout http_503; }}
        location /anyway/ {{ proxy_pass http://app/; proxy_next_upstream error timeout http_503 non_idempotent; }}
        location /off/ {{ proxy_pass http://app/; proxy_next_upstream off; }}
        location /once/ {{ proxy_pass http://one/; proxy_next_upstream_tries 1; }}
    }}""")
    try:
        a.get("/_control/health?status=503")
        # GET answered 503 by a goes on to b: every answer is b's 200.
        for _ in range(6):
            status, headers, _ = front.request("GET", "/retry/health")
            assert (status, headers["x-upstream"]) == (200, "b")
        # POST was sent to a and answered 503: not retried without non_idempotent.
        answers = [front.request("POST", "/retry/health", body=b"x") for _ in range(4)]
        assert {(s, h["x-upstream"]) for s, h, _ in answers} == {(503, "a"), (200, "b")}
        # With non_idempotent it is: the small body was read whole first (proxy_request_buffering on),
        # so it goes again, complete, to b.
        for _ in range(4):
            status, headers, data = front.request("POST", "/anyway/health", body=b"hello")
            assert (status, headers["x-upstream"], json.loads(data)["received"]) == (200, "b", 5)
        # A body past client_body_buffer_size (16k) is stored in a temp file, and goes again too.
        big = bytes(range(256)) * 4096
        for _ in range(4):
            status, headers, data = front.request("POST", "/anyway/health", body=big)
            assert (status, headers["x-upstream"], json.loads(data)["received"]) == (200, "b", len(big))
        a.kill()
        # A refused connection never reached the server: even POST goes on to b.
        for _ in range(4):
            status, headers, data = front.request("POST", "/retry/upload", body=b"hello")
            assert status == 200 and json.loads(data)["name"] == "b"
        # proxy_next_upstream off, and _tries 1: the dead server's share is a 502.
        assert 502 in {front.request("GET", "/off/x")[0] for _ in range(4)}
        assert 502 in {front.request("GET", "/once/x")[0] for _ in range(4)}
    finally:
        front.stop()
