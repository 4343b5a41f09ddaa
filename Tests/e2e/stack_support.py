"""Helpers for the stack tests: run `gantry -c CONFIG` with app pools, wait for its ready line."""
import pathlib
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request

from conftest import stop_process

APPS = pathlib.Path(__file__).resolve().parent / "apps"


def stack_config(port, pool="", static_root=None, extra_http="", locations=None):
    static = f"location /static/ {{ alias {static_root}/; }}" if static_root else ""
    locations = locations or """
            location / {
                proxy_pass http://app;
                proxy_set_header Host $host;
                proxy_set_header X-Real-IP $remote_addr;
            }"""
    return f"""
error_log stderr info;
events {{ }}
http {{
    access_log off;
    {extra_http}
    {pool}
    server {{
        listen 127.0.0.1:{port};
        {static}
        {locations}
    }}
}}
"""


def pool_block(app="stack_app:application", chdir=".", workers=2, extra=""):
    return f"""
    app_pool app {{
        wsgi {app};
        chdir {chdir};
        workers {workers};
        timeout 30s;
        graceful_timeout 10s;
        {extra}
    }}"""


class Stack:
    """A running stack; `output()` is everything it printed (stderr and stdout)."""

    def __init__(self, binary, directory, config_text, args=(), ready_timeout=30.0, expect_ready=True, env=None):
        self.directory = directory
        self.config = directory / "gantry.conf"
        self.config.write_text(config_text)
        self.log_path = directory / "stack.out"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(binary), "-p", str(directory), "-c", "gantry.conf", *args],
                                     cwd=directory, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        if expect_ready:
            deadline = time.monotonic() + ready_timeout
            while "ready:" not in self.output():
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError(f"the stack did not get ready:\n{self.output()}")
                time.sleep(0.05)

    def output(self):
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def send(self, name, binary):
        subprocess.run([str(binary), "-p", str(self.directory), "-c", "gantry.conf", "-s", name],
                       check=True, capture_output=True, timeout=10)

    def wait_for_output(self, text, timeout=30.0, after=0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output()[after:]:
                return True
            time.sleep(0.05)
        return False

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        stop_process(self.proc, sig, timeout)
        self._log.close()
        # SwiftNIO's warning for work scheduled on a stopped event loop (a future crash).
        assert "Cannot schedule tasks on an EventLoop" not in self.log_path.read_text(errors="replace"), \
            "work was scheduled on a stopped event loop"
        return self.proc.returncode


def copy_app(directory, name="stack_app.py"):
    shutil.copy(APPS / name, directory / name)


def get(port, path="/", headers=None, timeout=10.0):
    """(status, body text) of a GET; status 0 with the error text when no HTTP answer came."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
    except OSError as error:
        return 0, str(error)


def field(body, name):
    for part in body.split():
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    return None
