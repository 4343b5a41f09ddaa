"""The app the arbiter end-to-end tests run.

Its code version is read at import time from $ARBITER_VERSION_FILE, so a reload
(new worker processes re-import the module) is visible in the responses.
"""
import os
import signal
import time
from urllib.parse import parse_qs

VERSION = open(os.environ["ARBITER_VERSION_FILE"]).read().strip() if os.environ.get("ARBITER_VERSION_FILE") else "v0"


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/freeze":
        # The whole worker stops (event loop included): only the master's heartbeat check can catch it.
        os.kill(os.getpid(), signal.SIGSTOP)
    if path == "/sleep":
        marker = query.get("marker", [None])[0]
        if marker:
            open(marker, "w").close()
        time.sleep(float(query.get("s", ["1"])[0]))
    body = f"{os.getpid()} {VERSION}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
