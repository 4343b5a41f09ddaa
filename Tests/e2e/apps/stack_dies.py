"""Imports fine, then the process dies a moment later: the pool must back off and give up."""
import os
import threading

threading.Timer(0.2, lambda: os._exit(3)).start()


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"alive\n"]
