# seeds/003 (Adam Bard): "these next two examples are equivalent to the first".
class app(object):

    def __init__(self, environ, start_fn):
        self.environ = environ
        self.start_fn = start_fn

    def __iter__(self):
        self.start_fn('200 OK', [('Content-Type', 'text/plain')])
        yield b"Hello World!\n"
