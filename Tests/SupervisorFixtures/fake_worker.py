"""A stand-in for `gantry worker` that speaks the worker contract, to test the
supervisor's process handling (spawn, fds, control lines, signals, reaping)
without an embedded Python app server.

Modes: serve, import-error, crash, recycle, check-fds, bind.
"""
import argparse
import os
import signal
import socket
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("mode")
parser.add_argument("--control-fd", type=int, required=True)
parser.add_argument("--listen-fd", type=int, action="append", default=[])
parser.add_argument("--bind", action="append", default=[])
parser.add_argument("--max-requests", type=int)
args = parser.parse_args()


def send(message):
    os.write(args.control_fd, (message + "\n").encode())


def open_fds():
    names = os.listdir("/proc/self/fd")
    found = set()
    for name in names:
        try:
            os.fstat(int(name))
            found.add(int(name))
        except OSError:
            pass
    return found


if args.mode == "import-error":
    sys.stderr.write("Traceback (most recent call last):\nModuleNotFoundError: No module named 'nope'\n")
    sys.exit(11)
if args.mode == "crash":
    sys.exit(1)

signal.signal(signal.SIGQUIT, lambda *_: sys.exit(0))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

if args.mode == "check-fds":
    expected = {0, 1, 2, args.control_fd, *args.listen_fd}
    if open_fds() != expected:
        sys.stderr.write(f"unexpected fds: {sorted(open_fds())} != {sorted(expected)}\n")
        sys.exit(1)
    for fd in args.listen_fd:
        sock = socket.socket(fileno=os.dup(fd))
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sys.stderr.write(f"fd {fd} is not listening\n")
            sys.exit(1)
        sock.detach()

listeners = []
if args.mode == "bind":
    for address in args.bind:
        path = address.removeprefix("unix:")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
        sock.listen()
        listeners.append(sock)

send("ready")
started = time.monotonic()
recycled = False
while True:
    if args.mode == "recycle" and not recycled and time.monotonic() - started > 0.3:
        send("recycle")
        recycled = True
    send("heartbeat")
    time.sleep(0.1)
