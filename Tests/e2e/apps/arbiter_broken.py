"""An app whose module cannot be imported: `gantry wsgi` must exit at once with this error."""
import module_that_does_not_exist  # noqa: F401


def application(environ, start_response):
    start_response("200 OK", [])
    return [b"unreachable\n"]
