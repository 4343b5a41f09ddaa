"""Runs Debian's real `nginx -t` beside `gantry -t` on the same files, in a private prefix.

Used by the test_cli_* files to compare verdicts and messages with nginx itself.
"""
import re
import shutil
import subprocess

from conftest import ROOT

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if shutil.which("/usr/sbin/nginx") else None)
MIME_TYPES = ROOT / "nginx-compat/mime.types"


def run_test(binary, prefix, config, *extra):
    """`BINARY -t -p PREFIX/ -c CONFIG` (plus `-e stderr` for nginx): (exit code, stderr)."""
    args = [str(binary), "-t", "-p", f"{prefix}/", "-c", str(config), *extra]
    if binary == NGINX:
        args += ["-e", "stderr"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    return result.returncode, result.stderr


def emerg_line(stderr):
    """The `[emerg] MESSAGE in FILE:LINE` text of a failed test, without nginx's timestamp and pid."""
    for line in stderr.splitlines():
        match = re.search(r"\[emerg\] (?:\d+#\d+: )?(.*)$", line)
        if match:
            return match.group(1)
    return None


def warn_lines(stderr):
    return [re.sub(r"^.*\[warn\] (?:\d+#\d+: )?", "", line) for line in stderr.splitlines() if "[warn]" in line]
