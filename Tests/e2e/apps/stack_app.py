"""The stack tests' app: tells which worker answered, what the front forwarded, and its code version."""
import os
import time

VERSION = "v1"


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
    body = "version=%s pid=%d real_ip=%s path=%s\n" % (
        VERSION, os.getpid(), environ.get("HTTP_X_REAL_IP", "-"), path)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body.encode()]
