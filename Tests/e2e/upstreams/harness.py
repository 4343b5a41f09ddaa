"""Starting real upstreams and a real gantry for the proxy tests, always bounded and cleaned up."""
import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class Upstream:
    """One upstream server process (so a test can kill it like a crashed app server)."""

    def __init__(self, name, tcp_port=None, unix_path=None):
        self.name = name
        self.port = tcp_port
        self.unix_path = unix_path
        self.process = None

    @property
    def address(self):
        return f"unix:{self.unix_path}" if self.unix_path else f"127.0.0.1:{self.port}"

    def start(self):
        args = [sys.executable, str(HERE / "upstream.py"), "--name", self.name]
        args += ["--unix", self.unix_path] if self.unix_path else ["--tcp", f"127.0.0.1:{self.port}"]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.process.stdout.readline().strip() == b"ready"
        return self

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self.process = None

    def connection(self):
        if self.unix_path:
            conn = http.client.HTTPConnection("localhost", timeout=5)
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(self.unix_path)
            conn.sock = sock
            return conn
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)

    def get(self, path):
        conn = self.connection()
        try:
            conn.request("GET", path)
            return json.loads(conn.getresponse().read())
        finally:
            conn.close()

    def stats(self):
        return self.get("/_stats")


class Gantry:
    """The real gantry binary with a config written to a temporary directory."""

    def __init__(self, binary, config_body, port, directory):
        self.binary = binary
        self.port = port
        self.directory = pathlib.Path(directory)
        (self.directory / "logs").mkdir(exist_ok=True)
        self.config = self.directory / "gantry.conf"
        self.config.write_text(
            "error_log logs/error.log info;\n"
            "events {}\n"
            f"http {{\n access_log off;\n{config_body}\n}}\n")
        self.process = None

    def start(self):
        self.process = subprocess.Popen([str(self.binary), "-c", str(self.config)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"gantry exited: {self.process.stderr.read().decode()} "
                                     f"{self.error_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        try:
            assert wait_for(up, timeout=20), "gantry did not start listening"
        except BaseException:
            self.stop()     # never leave a half-started gantry behind
            raise
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def error_log(self):
        path = self.directory / "logs" / "error.log"
        return path.read_text() if path.exists() else ""

    def connection(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, dict((k.lower(), v) for k, v in response.getheaders()), data
        finally:
            conn.close()

    def get_json(self, path, headers=None):
        status, response_headers, data = self.request("GET", path, headers=headers)
        assert status == 200, (status, data, self.error_log()[-2000:])
        return json.loads(data), response_headers

    def status_line(self, pid_field):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith(pid_field + ":"):
                    return int(line.split()[1]) * 1024
        raise KeyError(pid_field)


def header(payload, name):
    """The values of header `name` the upstream received (case-insensitive)."""
    return [v for k, v in payload["headers"] if k.lower() == name.lower()]
