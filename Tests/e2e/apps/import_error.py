import a_module_that_does_not_exist  # noqa: F401


def app(environ, start_response):
    start_response("200 OK", [])
    return [b""]
