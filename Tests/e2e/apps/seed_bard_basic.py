# seeds/003 "Python Web Applications: The basics of WSGI" (Adam Bard): the first app,
# run there as `gunicorn app:app`. Python 2 str body → bytes.
def app(environ, start_fn):
    start_fn('200 OK', [('Content-Type', 'text/plain')])
    return [b"Hello World!\n"]
