# seeds/003 (Adam Bard): middleware. log_environ "pretty-prints the environ argument before
# deferring to the original callback" (the pprint line is lost in the article's text).
# The other middlewares of the article, with its Python 2 typos fixed (print e, urlparse,
# reduce, map(...)[::-1]) and its truncated lines restored.
import pprint
from functools import reduce
from urllib import parse as urlparse


def handler(environ, start_fn):
    start_fn('200 OK', [('Content-Type', 'text/plain')])
    return [b"Hello World!\n"]


def log_environ(handler):
    def _inner(environ, start_fn):
        pprint.pprint(environ)
        return handler(environ, start_fn)
    return _inner


app = log_environ(handler)


def handle_error(handler):
    def _inner(environ, start_fn):
        try:
            return handler(environ, start_fn)
        except Exception as e:
            print(e)  # Log error
            start_fn('500 Server Error', [('Content-Type', 'text/plain')])
            return [b'500 Server Error']
    return _inner


def wrap_query_params(handler):
    def _inner(environ, start_fn):
        qs = environ.get('QUERY_STRING')
        environ['QUERY_PARAMS'] = urlparse.parse_qs(qs)
        return handler(environ, start_fn)
    return _inner


def failing_handler(environ, start_fn):
    if 'fail' in environ['QUERY_PARAMS']:
        raise ValueError('asked to fail')
    return handler(environ, start_fn)


# Applied from bottom to top on the way in, then top to bottom on the way out
MIDDLEWARES = [wrap_query_params,
               handle_error]

guarded_app = reduce(lambda h, m: m(h), MIDDLEWARES, failing_handler)


def reverser(handler):

    # A reverse function
    rev = lambda it: it[::-1]

    def _inner(environ, start_fn):
        do_reverse = []  # Must be a reference type such as a list

        # Override start_fn to check the content type and set a flag
        def start_reverser(status, headers):
            for name, value in headers:
                if (name.lower() == 'content-type'
                        and value.lower() == 'text/plain'):
                    do_reverse.append(True)
                    break

            # Remember to call `start_fn`
            start_fn(status, headers)

        response = handler(environ, start_reverser)

        try:
            if do_reverse:
                return list(rev(list(map(rev, response))))

            return response
        finally:
            if hasattr(response, 'close'):
                response.close()
    return _inner


reversed_app = reverser(handler)


def home_handler(environ, start_fn):
    start_fn('200 OK', [('Content-Type', 'text/plain')])
    return [b'Home']


def about_handler(environ, start_fn):
    start_fn('200 OK', [('Content-Type', 'text/plain')])
    return [b'About']


routes = {
    '/': home_handler,
    '/about': about_handler,
}


class Application(object):
    def __init__(self, routes):
        self.routes = routes

    def not_found(self, environ, start_fn):
        start_fn('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'404 Not Found']

    def __call__(self, environ, start_fn):
        handler = self.routes.get(environ.get('PATH_INFO')) or self.not_found
        return handler(environ, start_fn)


router_app = Application(routes)
