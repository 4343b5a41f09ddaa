"""The servers under test — Gantry and its peers — described as steps (processes) to start,
how to tell they are ready, what a correct answer looks like, and what "reload" means."""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import procs

HELLO = b"Hello, World!"
UPSTREAM_HELLO = b"Hello, World!\n"
SMALL_FILE, SMALL_SIZE = "1k.bin", 1024
LARGE_FILE, LARGE_SIZE = "1m.bin", 1024 * 1024


@dataclass
class Env:
    """Everything a server needs to be described: tools, paths, worker counts."""
    bench_dir: Path        # Benchmarks/
    work: Path             # scratch directory of this run (configs, sockets, logs, files)
    nginx: str
    wrk: str
    venv_bin: Path
    gantry: Path | None    # None when it could not be built or found
    gantry_problem: str    # why gantry is None
    workers: int           # nginx worker_processes = Gantry worker_processes = app server workers
    app_workers: int       # workers of the app pool in the full stack

    @property
    def docroot(self) -> Path:
        return self.work / "www"

    @property
    def apps(self) -> Path:
        return self.bench_dir / "apps"

    @property
    def python(self) -> Path:
        return self.venv_bin / "python"

    @property
    def tls_cert(self) -> Path:
        return self.work / "tls" / "cert.pem"

    @property
    def tls_key(self) -> Path:
        return self.work / "tls" / "key.pem"


@dataclass
class Step:
    """One process of a server: argv, and the address that shows it is up."""
    name: str
    argv: list[str]
    ready_port: int | None = None
    ready_socket: Path | None = None
    timeout: float = 20.0
    cwd: Path | None = None


@dataclass
class Probe:
    """A request that must succeed before measuring: the answer's body length or bytes."""
    path: str
    length: int | None = None
    body: bytes | None = None


@dataclass
class ServerSpec:
    label: str                  # shown in the table: gantry, nginx, nginx→gunicorn, …
    is_gantry: bool
    port: int
    steps: list[Step]
    probes: list[Probe]
    reload_steps: list[int] = field(default_factory=list)  # steps HUP'd for a reload
    unavailable: str = ""       # set when the server cannot even be tried (e.g. no binary)
    probe_timeout: float = 10.0  # once listening, how long wrong answers are retried
    tls: bool = False           # the port speaks TLS (https:// for the probes and wrk)

    @property
    def url_base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


class RunningServer:
    def __init__(self, spec: ServerSpec, processes: list[procs.Process]):
        self.spec = spec
        self.processes = processes
        self.sampler = procs.MemorySampler([p.pid for p in processes]).start()

    def dead_reason(self) -> str:
        for process in self.processes:
            if not process.alive():
                return (f"{process.name} died (code {process.popen.returncode}): "
                        f"{process.failure_reason()}")
        return ""

    def reload(self) -> None:
        for index in self.spec.reload_steps:
            self.processes[index].signal(signal.SIGHUP)

    def stop(self) -> None:
        self.sampler.stop()
        for process in reversed(self.processes):
            process.stop()


def render(env: Env, template: str, name: str, **values: object) -> Path:
    """Fill a Benchmarks/configs template into the run's scratch directory."""
    text = (env.bench_dir / "configs" / template).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise ValueError(f"unfilled placeholder in {template}: {text[text.index('{{'):][:30]}")
    path = env.work / "conf" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _nginx_step(env: Env, name: str, conf: Path, port: int | None = None, socket: Path | None = None) -> Step:
    pid = env.work / "run" / f"{conf.stem}.pid"  # one per config: servers of a scenario run at once
    pid.parent.mkdir(parents=True, exist_ok=True)
    # Only these two differ from the file Gantry gets; they go on the command line.
    return Step(name, [env.nginx, "-p", str(env.work), "-e", "stderr", "-c", str(conf),
                       "-g", f"daemon off; pid {pid};"], ready_port=port, ready_socket=socket)


def _gantry_argv(env: Env, *args: str) -> list[str]:
    return [str(env.gantry or "gantry"), *args]


def _gantry_spec(env: Env, port: int, steps: list[Step], probes: list[Probe], reload_steps=()) -> ServerSpec:
    return ServerSpec("gantry", True, port, steps, probes, list(reload_steps),
                      unavailable="" if env.gantry else env.gantry_problem)


# --- static files -------------------------------------------------------------------------

def static_servers(env: Env, probes: list[Probe], template: str = "static.conf", tls: bool = False) -> list[ServerSpec]:
    specs = []
    for label, port in zip(("gantry", "nginx"), procs.free_ports(2)):
        conf = render(env, template, f"{template[:-5]}-{label}.conf", WORKERS=env.workers, PORT=port,
                      DOCROOT=env.docroot, **({"TLS_CERT": env.tls_cert, "TLS_KEY": env.tls_key} if tls else {}))
        if label == "gantry":
            step = Step("gantry", _gantry_argv(env, "-c", str(conf)), ready_port=port)
            specs.append(_gantry_spec(env, port, [step], probes, reload_steps=[0]))
        else:
            specs.append(ServerSpec("nginx", False, port, [_nginx_step(env, "nginx", conf, port=port)], probes, [0]))
        specs[-1].tls = tls
    return specs


# --- reverse proxy --------------------------------------------------------------------------

def upstream_fixture(env: Env) -> tuple[Step, Path]:
    sock = env.work / "run" / "upstream.sock"
    conf = render(env, "upstream.conf", "upstream.conf", UPSTREAM_SOCK=sock)
    return _nginx_step(env, "upstream-nginx", conf, socket=sock), sock


def proxy_servers(env: Env, template: str, upstream_sock: Path) -> list[ServerSpec]:
    probes = [Probe("/", body=UPSTREAM_HELLO)]
    specs = []
    for label, port in zip(("gantry", "nginx"), procs.free_ports(2)):
        conf = render(env, template, f"{template[:-5]}-{label}.conf", WORKERS=env.workers, PORT=port,
                      UPSTREAM_SOCK=upstream_sock)
        if label == "gantry":
            specs.append(_gantry_spec(env, port, [Step("gantry", _gantry_argv(env, "-c", str(conf)), ready_port=port)],
                                      probes, [0]))
        else:
            specs.append(ServerSpec("nginx", False, port, [_nginx_step(env, "nginx", conf, port=port)], probes, [0]))
    return specs


# --- WSGI app servers alone --------------------------------------------------------------------

def _gunicorn_step(env: Env, app: str, bind: str, port=None, sock=None) -> Step:
    return Step("gunicorn", [str(env.venv_bin / "gunicorn"), "-k", "sync", "-w", str(env.app_workers),
                             "-b", bind, "--chdir", str(env.apps), "--log-level", "warning", app],
                ready_port=port, ready_socket=sock)


def _granian_step(env: Env, app: str, port=None, sock=None) -> Step:
    where = ["--uds", str(sock)] if sock else ["--host", "127.0.0.1", "--port", str(port)]
    return Step("granian", [str(env.venv_bin / "granian"), "--interface", "wsgi", "--http", "1",
                            "--workers", str(env.app_workers), *where, "--working-dir", str(env.apps),
                            "--log-level", "warning", app],
                ready_port=port, ready_socket=sock)


def wsgi_servers(env: Env, app: str, body: bytes) -> list[ServerSpec]:
    probes = [Probe("/", body=body)]
    ports = procs.free_ports(3)
    gantry = Step("gantry", _gantry_argv(env, "wsgi", "-w", str(env.app_workers), "-b", f"127.0.0.1:{ports[0]}",
                                         "--python", str(env.python), "--chdir", str(env.apps), app),
                  ready_port=ports[0], timeout=30)
    return [
        _gantry_spec(env, ports[0], [gantry], probes, [0]),
        ServerSpec("gunicorn", False, ports[1], [_gunicorn_step(env, app, f"127.0.0.1:{ports[1]}", port=ports[1])],
                   probes, [0]),
        ServerSpec("granian", False, ports[2], [_granian_step(env, app, port=ports[2])], probes, [0]),
    ]


# --- the whole stack ---------------------------------------------------------------------------

def stack_servers(env: Env) -> list[ServerSpec]:
    probes = [Probe("/", body=HELLO), Probe(f"/static/{SMALL_FILE}", length=SMALL_SIZE)]
    specs = []
    ports = procs.free_ports(3)
    port = ports[0]
    conf = render(env, "stack-gantry.conf", "stack-gantry.conf", WORKERS=env.workers, APP_WORKERS=env.app_workers,
                  PORT=port, DOCROOT=env.docroot, APPS=env.apps, PYTHON=env.python)
    gantry = _gantry_spec(env, port, [Step("gantry", _gantry_argv(env, "-c", str(conf)), ready_port=port, timeout=40)],
                          probes, [0])
    gantry.probe_timeout = 20.0  # the front may listen before every worker has imported the app
    specs.append(gantry)
    for app_server, port in zip(("gunicorn", "granian"), ports[1:]):
        sock = env.work / "run" / f"{app_server}.sock"
        conf = render(env, "stack-nginx.conf", f"stack-nginx-{app_server}.conf", WORKERS=env.workers,
                      APP_WORKERS=env.app_workers, PORT=port, DOCROOT=env.docroot, APP_SOCK=sock)
        app_step = (_gunicorn_step(env, "hello:app", f"unix:{sock}", sock=sock) if app_server == "gunicorn"
                    else _granian_step(env, "hello:app", sock=sock))
        specs.append(ServerSpec(f"nginx→{app_server}", False, port,
                                [app_step, _nginx_step(env, "nginx", conf, port=port)], probes, [0, 1]))
    return specs


# --- starting and checking -----------------------------------------------------------------------

def _probe_once(port: int, probe: Probe, tls: bool = False) -> str:
    """'' when the answer is right, else what was wrong."""
    connection = (http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ssl._create_unverified_context())
                  if tls else http.client.HTTPConnection("127.0.0.1", port, timeout=5))
    try:
        connection.request("GET", probe.path)
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as error:
        return f"GET {probe.path}: {type(error).__name__}: {error}"
    finally:
        connection.close()
    if response.status != 200:
        return f"GET {probe.path} answered {response.status} {response.reason}"
    if probe.body is not None and body != probe.body:
        return f"GET {probe.path} answered a wrong body ({body[:40]!r})"
    if probe.length is not None and len(body) != probe.length:
        return f"GET {probe.path} answered {len(body)} bytes, not {probe.length}"
    return ""


def probe_all(port: int, probes: list[Probe], tls: bool = False) -> str:
    for probe in probes:
        problem = _probe_once(port, probe, tls)
        if problem:
            return problem
    return ""


def start_steps(env: Env, steps: list[Step], log_prefix: str) -> list[procs.Process]:
    """Start each step in order, waiting for its address; on failure stop what started."""
    processes: list[procs.Process] = []
    try:
        for step in steps:
            process = procs.start(step.name, step.argv, env.work / "logs" / f"{log_prefix}-{step.name}.log", cwd=step.cwd)
            processes.append(process)
            if step.ready_socket is not None:
                procs.wait_ready(process, procs.unix_accepting(step.ready_socket), step.timeout,
                                 f"listening on {step.ready_socket.name}")
                # nginx workers run as an unprivileged user: let them reach the socket.
                os.chmod(step.ready_socket, 0o666)
            if step.ready_port is not None:
                procs.wait_ready(process, procs.tcp_accepting(step.ready_port), step.timeout,
                                 f"listening on 127.0.0.1:{step.ready_port}")
        return processes
    except BaseException:
        for process in reversed(processes):
            process.stop()
        raise


def start_server(env: Env, spec: ServerSpec, scenario: str) -> RunningServer:
    """Start a server and check it answers correctly; raises StartFailure with the reason."""
    if spec.unavailable:
        raise procs.StartFailure(spec.unavailable)
    processes = start_steps(env, spec.steps, f"{scenario}-{spec.label.replace('→', '-')}")
    server = RunningServer(spec, processes)
    try:
        deadline = time.monotonic() + spec.probe_timeout
        while True:
            dead = server.dead_reason()
            if dead:
                raise procs.StartFailure(dead)
            problem = probe_all(spec.port, spec.probes, spec.tls)
            if not problem:
                return server
            if time.monotonic() > deadline:
                logged = [p.failure_reason() for p in processes if p.failure_reason() != "no output"]
                raise procs.StartFailure(problem + (f"; its log: {logged[-1]}" if logged else ""))
            time.sleep(0.25)
    except BaseException:
        server.stop()
        raise
