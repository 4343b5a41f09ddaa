"""`gantry -t` gives nginx's verdict on every configuration of nginx-compat/corpus/.

Each corpus directory is copied into a private prefix (with nginx's mime.types beside it, which
nginx needs and Gantry has built in) and checked by both `gantry -t` and Debian's `nginx -t`.
"""
import pathlib
import shutil

import pytest

from conftest import ROOT
from nginx_oracle import MIME_TYPES, NGINX, emerg_line, run_test, warn_lines

CORPUS = ROOT / "nginx-compat/corpus"

# Where Gantry's verdict differs from nginx's on purpose: (directive refused, file, line).
REFUSED_BY_NAME = {
    "php-fpm": ("fastcgi_param", "fastcgi_params", 2),
}
GANTRY_ONLY = {"app-pool"}
EXPECTED_WARNINGS = {
    "debian-stock": [
        '"ssl_prefer_server_ciphers" directive has no effect in gantry (swift-nio-ssl\'s defaults apply) in {prefix}/nginx.conf:34',
    ],
}


def corpus_cases():
    names = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    return names


def main_file(directory: pathlib.Path) -> str:
    for name in ("gantry.conf", "nginx.conf"):
        if (directory / name).exists():
            return name
    raise AssertionError(f"{directory} has no gantry.conf or nginx.conf")


def copy_case(name, tmp_path, with_mime_types):
    prefix = tmp_path / name
    shutil.copytree(CORPUS / name, prefix, symlinks=True)
    if with_mime_types and not (prefix / "mime.types").exists():
        shutil.copy(MIME_TYPES, prefix / "mime.types")
    return prefix


def test_corpus_is_not_empty():
    names = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert {"seed-article", "debian-stock", "flask", "gunicorn-deploy", "upstream-balanced", "app-pool"} <= names


@pytest.mark.parametrize("name", corpus_cases())
def test_gantry_verdict(gantry, tmp_path, name):
    # Without a mime.types file on disk: Gantry's built-in one answers `include mime.types;`.
    prefix = copy_case(name, tmp_path, with_mime_types=False)
    conf = prefix / main_file(prefix)
    code, err = run_test(gantry, prefix, conf)
    if name in REFUSED_BY_NAME:
        directive, file, line = REFUSED_BY_NAME[name]
        assert code == 1, err
        assert emerg_line(err) == f'"{directive}" is not supported by gantry in {prefix / file}:{line}'
    else:
        assert code == 0, err
        assert f"gantry: configuration file {conf} test is successful" in err
        expected = [w.format(prefix=prefix) for w in EXPECTED_WARNINGS.get(name, [])]
        # As non-root, nginx (and Gantry) also warn that `user` makes sense only for root.
        assert [w for w in warn_lines(err) if '"user" directive' not in w] == expected


@pytest.mark.skipif(NGINX is None, reason="nginx-light is not installed (Scripts/install-deps installs it)")
@pytest.mark.parametrize("name", corpus_cases())
def test_nginx_agrees(gantry, tmp_path, name):
    prefix = copy_case(name, tmp_path, with_mime_types=True)
    conf = prefix / main_file(prefix)
    nginx_code, nginx_err = run_test(NGINX, prefix, conf)
    gantry_code, gantry_err = run_test(gantry, prefix, conf)
    if name in GANTRY_ONLY:
        assert nginx_code == 1 and "unknown directive" in nginx_err
        assert gantry_code == 0, gantry_err
    elif name in REFUSED_BY_NAME:
        assert nginx_code == 0, nginx_err
        assert gantry_code == 1 and "is not supported by gantry" in gantry_err
    else:
        assert (gantry_code, nginx_code) == (0, 0), gantry_err + nginx_err


@pytest.mark.skipif(not pathlib.Path("/etc/nginx/nginx.conf").exists(), reason="no /etc/nginx on this machine")
def test_this_machines_stock_nginx_conf_is_read(gantry, tmp_path):
    conf = pathlib.Path("/etc/nginx/nginx.conf")
    code, err = run_test(gantry, tmp_path, conf)
    assert code == 0, err
    # Only warnings, each naming a directive Gantry does not act on, at its file:line.
    for line in warn_lines(err):
        assert "has no effect" in line or "is ignored" in line, line
    if NGINX is not None:
        nginx_code, nginx_err = run_test(NGINX, "/usr/share/nginx", conf)
        assert nginx_code == 0, nginx_err


def test_two_default_servers_on_one_address_are_refused_as_nginx(gantry, tmp_path):
    conf = tmp_path / "gantry.conf"
    conf.write_text("events {}\nhttp {\n  server { listen 127.0.0.1:8081 default_server; }\n"
                    "  server { listen 127.0.0.1:8081 default_server; }\n}\n")
    code, err = run_test(gantry, tmp_path, conf)
    assert code == 1
    assert f"a duplicate default server for 127.0.0.1:8081 in {conf}:4" in err
