# seeds/004 "Understand the Basics of Web Servers and WSGI": simple_app and simple_middleware.
def simple_app(environ, start_response):
    status = '200 OK'
    headers = [('Content-type', 'text/plain; charset=utf-8')]
    start_response(status, headers)
    return [b"Hello, World!"]


def simple_middleware(app):
    def wrapped_app(environ, start_response):
        # Modify environ or response here
        return app(environ, start_response)
    return wrapped_app

# Use middleware with an application
app = simple_middleware(simple_app)
