"""Every directive Debian's nginx knows is known to Gantry too (supported, or refused by name):
a Gantry user never gets `unknown directive` for a real nginx directive.

The candidate names are read from the nginx binary itself; nginx says which of them it knows.
"""
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from nginx_oracle import NGINX, run_test


def candidate_names():
    data = open(NGINX, "rb").read()
    return sorted({m.decode() for m in re.findall(rb"(?<![A-Za-z0-9_])[a-z][a-z0-9_]{2,40}(?=\x00)", data)})


def refused_as_unknown(binary, tmp_path, name):
    prefix = tmp_path / name
    prefix.mkdir()
    conf = prefix / "t.conf"
    conf.write_text(f"{name} x;\nevents {{}}\n")
    _, err = run_test(binary, prefix, conf)
    return "unknown directive" in err


@pytest.mark.skipif(NGINX is None, reason="nginx-light is not installed (Scripts/install-deps installs it)")
def test_no_nginx_directive_is_unknown_to_gantry(gantry, tmp_path):
    names = candidate_names()
    nginx_dir = tmp_path / "nginx"
    gantry_dir = tmp_path / "gantry"
    nginx_dir.mkdir()
    gantry_dir.mkdir()
    with ThreadPoolExecutor(max_workers=4) as pool:
        unknown = list(pool.map(lambda n: refused_as_unknown(NGINX, nginx_dir, n), names))
        known_to_nginx = [n for n, u in zip(names, unknown) if not u]
        assert len(known_to_nginx) > 300, "the nginx binary should name its directives"
        gantry_unknown = list(pool.map(lambda n: refused_as_unknown(gantry, gantry_dir, n), known_to_nginx))
    missing = [n for n, u in zip(known_to_nginx, gantry_unknown) if u]
    assert missing == [], "nginx directives missing from Gantry's directive table"
