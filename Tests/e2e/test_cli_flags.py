"""The `gantry` command's nginx-style flags, against the real binary."""
import subprocess

import pytest

from conftest import ROOT


def run(gantry, *args, cwd=None):
    return subprocess.run([str(gantry), *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.fixture
def good_conf(tmp_path):
    conf = tmp_path / "gantry.conf"
    conf.write_text("events {}\nhttp {\n    include mime.types;\n    server { listen 127.0.0.1:8080; }\n}\n")
    return conf


def test_t_prints_nginx_verdict_to_stderr_and_exits_0(gantry, good_conf):
    r = run(gantry, "-t", "-c", good_conf)
    assert r.returncode == 0
    assert r.stdout == ""
    assert r.stderr == (f"gantry: the configuration file {good_conf} syntax is ok\n"
                        f"gantry: configuration file {good_conf} test is successful\n")


def test_t_failure_prints_emerg_with_file_line_and_exits_1(gantry, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("events {}\nhttp {\n    server {\n        bogus on;\n    }\n}\n")
    r = run(gantry, "-t", "-c", conf)
    assert r.returncode == 1
    assert r.stderr == (f'gantry: [emerg] unknown directive "bogus" in {conf}:4\n'
                        f"gantry: configuration file {conf} test failed\n")


def test_q_suppresses_success_messages_but_not_errors(gantry, good_conf, tmp_path):
    r = run(gantry, "-t", "-q", "-c", good_conf)
    assert (r.returncode, r.stderr) == (0, "")
    r = run(gantry, "-tq", "-c", good_conf)
    assert (r.returncode, r.stderr) == (0, "")
    bad = tmp_path / "bad.conf"
    bad.write_text("http {}\n")
    r = run(gantry, "-t", "-q", "-c", bad)
    assert r.returncode == 1
    assert 'gantry: [emerg] no "events" section in configuration\n' in r.stderr


def test_warnings_are_printed_even_with_q(gantry, tmp_path):
    conf = tmp_path / "gantry.conf"
    conf.write_text("events {}\nhttp {\n    ssl_session_timeout 5m;\n}\n")
    r = run(gantry, "-t", "-q", "-c", conf)
    assert r.returncode == 0
    assert r.stderr == f'gantry: [warn] "ssl_session_timeout" directive has no effect in gantry (swift-nio-ssl\'s defaults apply) in {conf}:3\n'


def test_T_dumps_every_file_read(gantry, tmp_path):
    conf = tmp_path / "gantry.conf"
    conf.write_text("events {}\nhttp {\n    include sites/*.conf;\n}\n")
    (tmp_path / "sites").mkdir()
    site = tmp_path / "sites/a.conf"
    site.write_text("server { listen 127.0.0.1:8081; }\n")
    r = run(gantry, "-T", "-c", conf)
    assert r.returncode == 0
    assert "syntax is ok" in r.stderr
    assert r.stdout == (f"# configuration file {conf}:\n{conf.read_text()}\n"
                        f"# configuration file {site}:\n{site.read_text()}\n")


def test_T_dumps_the_builtin_mime_types(gantry, good_conf):
    r = run(gantry, "-T", "-c", good_conf)
    assert r.returncode == 0
    assert f"# configuration file {good_conf.parent}/mime.types:\n\ntypes {{\n" in r.stdout
    assert "text/html" in r.stdout


def test_relative_c_is_taken_against_p(gantry, good_conf, tmp_path):
    r = run(gantry, "-t", "-p", tmp_path, "-c", "gantry.conf", cwd="/")
    assert r.returncode == 0, r.stderr
    assert f"the configuration file {tmp_path}/gantry.conf syntax is ok" in r.stderr


def test_relative_c_without_p_is_taken_against_the_current_directory(gantry, good_conf, tmp_path):
    r = run(gantry, "-t", "-c", "gantry.conf", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"the configuration file {tmp_path}/gantry.conf syntax is ok" in r.stderr


def test_default_c_is_etc_gantry(gantry, tmp_path):
    r = run(gantry, "-t", cwd=tmp_path)
    expected = "/etc/gantry/gantry.conf"
    if r.returncode == 1:
        assert f'gantry: [emerg] open() "{expected}" failed (2: No such file or directory)' in r.stderr
    assert f"configuration file {expected} test" in r.stderr


def test_g_adds_main_directives_named_command_line(gantry, good_conf):
    r = run(gantry, "-t", "-c", good_conf, "-g", "daemon off; worker_processes 2;")
    assert r.returncode == 0, r.stderr
    r = run(gantry, "-t", "-c", good_conf, "-g", "bogus;")
    assert r.returncode == 1
    assert 'gantry: [emerg] unknown directive "bogus" in command line\n' in r.stderr
    r = run(gantry, "-t", "-c", good_conf, "-g", "daemon off")
    assert 'gantry: [emerg] unexpected end of parameter, expecting ";" in command line\n' in r.stderr


def test_e_file_receives_emerg_messages(gantry, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("events {}\nfoo;\n")
    log = tmp_path / "error.log"
    r = run(gantry, "-t", "-c", conf, "-e", log)
    assert r.returncode == 1
    assert f'unknown directive "foo" in {conf}:2' in r.stderr
    assert f'[emerg] ' in log.read_text()
    assert f'unknown directive "foo" in {conf}:2' in log.read_text()
    r = run(gantry, "-t", "-c", conf, "-e", "stderr")
    assert r.returncode == 1
    assert not (tmp_path / "stderr").exists()


def test_v_and_V(gantry):
    r = run(gantry, "-v")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "gantry version: gantry/0.1.0\n")
    r = run(gantry, "-V")
    assert r.returncode == 0
    lines = r.stderr.splitlines()
    assert lines[0] == "gantry version: gantry/0.1.0"
    assert any(line.startswith("  http_proxy — supported: proxy_pass") for line in lines)
    assert any(line.startswith("  gantry_app_pool — supported: app_pool wsgi") for line in lines)
    not_built = [line for line in lines if line.startswith("not built in:")]
    assert not_built and "http_fastcgi" in not_built[0] and "stream" in not_built[0]


def test_h_lists_nginx_flags_and_subcommands(gantry):
    r = run(gantry, "-h")
    assert r.returncode == 0
    for flag in ("-c <file>", "-p <prefix>", "-g <directives>", "-e <errorlog>", "-t ", "-T ", "-q ", "-v ", "-V "):
        assert flag in r.stdout, flag
    for sub in ("wsgi", "serve"):
        assert sub in r.stdout
    assert "\n  -s " in r.stdout
    # No stack is running under this prefix: -s must say so and fail, as nginx does.
    r = run(gantry, "-p", "/nonexistent-gantry-prefix", "-s", "reload")
    assert r.returncode != 0
