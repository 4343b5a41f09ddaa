"""Runs Debian's real `nginx -t` beside `gantry -t` on the same files, in a private prefix.

Used by the test_cli_* files to compare verdicts and messages with nginx itself.
"""
import contextlib
import re
import shutil
import subprocess

import pytest

from conftest import ROOT

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if shutil.which("/usr/sbin/nginx") else None)
# For the side-by-side test modules (`pytestmark = needs_nginx`). Scripts/install-deps installs
# nginx-light, so CI never skips them.
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Scripts/install-deps installs nginx-light)")
MIME_TYPES = ROOT / "nginx-compat/mime.types"


def run_test(binary, prefix, config, *extra):
    """`BINARY -t -p PREFIX/ -c CONFIG` (plus `-e stderr` for nginx): (exit code, stderr)."""
    args = [str(binary), "-t", "-p", f"{prefix}/", "-c", str(config), *extra]
    if binary == NGINX:
        args += ["-e", "stderr"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    return result.returncode, result.stderr


@contextlib.contextmanager
def side_by_side(gantry, tmp_path, config, nginx_port, gantry_port, gantry_head="error_log stderr;"):
    """The real nginx (one process, in its own prefix) and gantry, each given `config(port, head)`
    (the same text but for the port and the head line), running until the block ends."""
    from conftest import wait_for_endpoint

    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    nginx_conf = prefix / "nginx.conf"
    nginx_conf.write_text(config(nginx_port, f"daemon off; master_process off; user root; pid {prefix}/nginx.pid; "
                                             f"error_log {prefix}/logs/error.log;"))
    gantry_conf = tmp_path / "gantry.conf"
    gantry_conf.write_text(config(gantry_port, gantry_head))
    processes = [
        subprocess.Popen([NGINX, "-p", f"{prefix}/", "-c", str(nginx_conf)], stderr=subprocess.PIPE),
        subprocess.Popen([str(gantry), "-c", str(gantry_conf)], stderr=subprocess.PIPE),
    ]
    try:
        wait_for_endpoint(("127.0.0.1", nginx_port), processes[0])
        wait_for_endpoint(("127.0.0.1", gantry_port), processes[1])
        yield
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def emerg_line(stderr):
    """The `[emerg] MESSAGE in FILE:LINE` text of a failed test, without nginx's timestamp and pid."""
    for line in stderr.splitlines():
        match = re.search(r"\[emerg\] (?:\d+#\d+: )?(.*)$", line)
        if match:
            return match.group(1)
    return None


def warn_lines(stderr):
    return [re.sub(r"^.*\[warn\] (?:\d+#\d+: )?", "", line) for line in stderr.splitlines() if "[warn]" in line]
